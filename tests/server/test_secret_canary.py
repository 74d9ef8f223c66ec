"""The secret canary: plant unique key ids and secrets, run every tool and every error path at DEBUG,
then search everything a person or an agent could see for them.

Attack stopped: a key or secret leaking into a tool result, an error message (including the SDK's own
argument-validation errors, which echo input values), a log line at any level, or the database file;
nor any user's data key (#16), in any encoding, nor unwrapped in the database.
"""

from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
import string
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stamina
from mcp import Client

from alpaca_vault.db.sealed import SealedValue
from alpaca_vault.server.app import build_server
from alpaca_vault.server.logs import configure_logging
from alpaca_vault.tools.registry import TOOLS
from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.mcp_server import make_settings, text_of


def key_id_marker() -> str:
    return "PK" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18))


def secret_marker() -> str:
    return "canary" + uuid.uuid4().hex + "SECRET"


def odd_marker(kind: str) -> str:
    """A secret NOT shaped like an Alpaca key (dashes, slashes, short runs), so the generic log masks
    cannot hide a failure of the exact-match scrubbing: only the exposure scope can catch it."""
    return f"odd-{kind}-{uuid.uuid4().hex[:10]}/x+{uuid.uuid4().hex[:8]}"


def leaks(marker: str, text: str) -> bool:
    """True when any 8-character piece of the marker's random part shows up (catches truncated echoes)."""
    core = marker.removeprefix("PK").removeprefix("canary").removesuffix("SECRET")
    core = core.removeprefix("odd-key-").removeprefix("odd-secret-")
    return any(core[i : i + 8] in text for i in range(len(core) - 7))


# One call of every tool on the stored canary credential, keyed by tool name. The canary walks the
# registry and refuses to run when a tool has no entry here, so a new tool cannot slip past it.
CANARY_CALLS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "store_credential": lambda p: {"name": "extra", "api_key": p["key_id"], "secret_key": p["secret"],
                                   "validate": False},
    "list_credentials": lambda p: {},
    "validate_credential": lambda p: {"credential": "c"},
    "update_credential": lambda p: {"credential": "extra", "new_name": "extra-2"},
    "delete_credential": lambda p: {"credential": "extra-2"},
    "alpaca_get_account": lambda p: {"credential": "c"},
    "alpaca_get_positions": lambda p: {"credential": "c"},
    "alpaca_get_position": lambda p: {"symbol": "AAPL", "credential": "c"},
    "alpaca_get_portfolio_history": lambda p: {"credential": "c"},
    "alpaca_get_activities": lambda p: {"credential": "c"},
    "alpaca_list_orders": lambda p: {"status": "all", "credential": "c"},
    "alpaca_get_order": lambda p: {"order_id": p["order_id"], "credential": "c"},
    # The same order as the one placed before, under a new id inside the duplicate window: the guard's
    # refusal path (#14).
    "alpaca_place_order": lambda p: {"symbol": "AAPL", "side": "buy", "qty": 3, "credential": "c"},
    "alpaca_preview_order": lambda p: {"symbol": "AAPL", "side": "buy", "qty": 2, "credential": "c"},
    "get_trading_policy": lambda p: {"credential": "c"},
    "alpaca_replace_order": lambda p: {"order_id": p["order_id"], "qty": 2, "credential": "c"},
    "alpaca_cancel_order": lambda p: {"order_id": p["order_id"], "credential": "c"},
    "alpaca_cancel_all_orders": lambda p: {"credential": "c"},
    "alpaca_close_position": lambda p: {"symbol": "AAPL", "qty": 1, "credential": "c"},
    "alpaca_get_clock": lambda p: {"credential": "c"},
    "alpaca_get_calendar": lambda p: {"credential": "c"},
    "alpaca_get_asset": lambda p: {"symbol": "AAPL", "credential": "c"},
    "alpaca_get_latest_quote": lambda p: {"symbols": "AAPL,BTC/USD,AAPL261218C00190000,US912797SX61",
                                          "credential": "c"},
    "alpaca_get_latest_trade": lambda p: {"symbols": "AAPL,BTC/USD,AAPL261218C00190000", "credential": "c"},
    "alpaca_get_bars": lambda p: {"symbol": "AAPL", "limit": 2, "credential": "c"},
    "alpaca_get_snapshot": lambda p: {"symbols": "AAPL,BTC/USD,AAPL261218C00190000", "credential": "c"},
    # issue #15: every new tool; Alpaca's error paths where they are cheap (an unknown watchlist, a contract
    # not held).
    "list_audit_events": lambda p: {},
    "alpaca_get_account_config": lambda p: {"credential": "c"},
    "alpaca_update_account_config": lambda p: {"trade_confirm_email": "none", "credential": "c"},
    "alpaca_close_all_positions": lambda p: {"cancel_orders": True, "credential": "c"},
    "alpaca_list_assets": lambda p: {"limit": 3, "credential": "c"},
    "alpaca_get_quotes": lambda p: {"symbols": "AAPL", "start": "2026-11-30T15:00:00Z", "limit": 2, "credential": "c"},
    "alpaca_get_trades": lambda p: {"symbols": "BTC/USD", "start": "2026-11-30T15:00:00Z", "limit": 2,
                                    "credential": "c"},
    "alpaca_get_orderbook": lambda p: {"symbols": "BTC/USD", "depth": 2, "credential": "c"},
    "alpaca_get_market_movers": lambda p: {"top": 2, "credential": "c"},
    "alpaca_get_most_actives": lambda p: {"top": 2, "credential": "c"},
    "alpaca_get_option_contracts": lambda p: {"underlying": "AAPL", "limit": 2, "credential": "c"},
    "alpaca_get_option_chain": lambda p: {"underlying": "AAPL", "limit": 2, "credential": "c"},
    "alpaca_exercise_option": lambda p: {"symbol": "AAPL261218C00190000", "credential": "c"},
    "alpaca_get_news": lambda p: {"limit": 2, "credential": "c"},
    "alpaca_get_corporate_actions": lambda p: {"symbols": ["AAPL"], "start": "2020-01-01", "end": "2020-12-31",
                                               "credential": "c"},
    "alpaca_get_watchlists": lambda p: {"credential": "c"},
    "alpaca_save_watchlist": lambda p: {"name": "canary", "symbols": ["AAPL"], "credential": "c"},
    "alpaca_delete_watchlist": lambda p: {"watchlist_id": "00000000-0000-0000-0000-000000000000", "credential": "c"},
    # Locates (#15): a quote with an unquotable symbol, an active locate, and the listing that shows it;
    # fixed income by ISIN rides on alpaca_get_latest_quote above (the option exchanges on the chain).
    "alpaca_get_locates": lambda p: {"kind": "quotes", "symbols": "GME,AAPL", "credential": "c"},
    "alpaca_request_locate": lambda p: {"symbol": "GME", "qty": 100, "limit_price": "0.05", "credential": "c"},
}  # fmt: skip


def every_tool_call(planted: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """One call of every registered tool, in the registry's order (``planted``: order id and spare keys)."""
    missing = [spec.name for spec in TOOLS if spec.name not in CANARY_CALLS]
    assert not missing, f"add canary calls for {missing} in CANARY_CALLS"
    return [(spec.name, CANARY_CALLS[spec.name](planted)) for spec in TOOLS]


def _unwrapped_data_keys(vault_file: Path, master_keys: str) -> list[bytes]:
    """The raw data keys in the vault file, opened the way the vault opens them."""
    ring = KeyRing.from_string(master_keys)
    with sqlite3.connect(vault_file) as connection:
        rows = connection.execute(
            "SELECT id, user_id, sealed_key FROM data_keys WHERE sealed_key IS NOT NULL"
        ).fetchall()
    return [
        ring.unwrap(
            SealedValue.parse(sealed), AssociatedData.for_data_key(uuid.UUID(key_id), uuid.UUID(user_id))
        )
        for key_id, user_id, sealed in rows
    ]


@pytest.mark.timeout(300)
async def test_planted_secrets_never_surface(
    tmp_path: Path, simulator: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    key_id, secret = key_id_marker(), secret_marker()
    wrong_key_id, wrong_secret = key_id_marker(), secret_marker()
    odd_key_id, odd_secret = odd_marker("key"), odd_marker("secret")
    markers = [key_id, secret, wrong_key_id, wrong_secret, odd_key_id, odd_secret]
    simulator.new_account(api_key=key_id, secret_key=secret)
    simulator.new_account(api_key=odd_key_id, secret_key=odd_secret)

    settings = make_settings(tmp_path / "data", simulator.base_url, http_timeout=1.0)
    assert settings.encryption_keys is not None
    markers.append(settings.encryption_keys.get_secret_value())  # the master key must never surface either
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    results: list[str] = []

    async def call(client: Client, name: str, args: dict[str, Any]) -> Any:
        result = await client.call_tool(name, args)
        results.append(result.model_dump_json(by_alias=True))
        return result

    async with Client(build_server(settings)) as client:
        # Storing: happy path, and the argument-validation error path that echoes inputs.
        assert not (
            await call(client, "store_credential", {"name": "c", "api_key": key_id, "secret_key": secret})
        ).is_error
        bad_env = await call(
            client,
            "store_credential",
            {"name": "x", "api_key": wrong_key_id, "secret_key": wrong_secret, "environment": "demo"},
        )
        assert bad_env.is_error
        # A missing field makes pydantic echo the whole input, secrets included, unless we scrub it.
        no_name = await call(
            client, "store_credential", {"api_key": wrong_key_id, "secret_key": wrong_secret}
        )
        assert no_name.is_error and "name" in text_of(no_name)
        bad_type = await call(
            client, "store_credential", {"name": "x", "api_key": wrong_key_id, "secret_key": 12}
        )
        assert bad_type.is_error
        # 401: a credential whose secret Alpaca refuses, stored without validation.
        await call(
            client,
            "store_credential",
            {"name": "broken", "api_key": wrong_key_id, "secret_key": wrong_secret, "validate": False},
        )
        unauthorized = await call(client, "alpaca_get_account", {"credential": "broken"})
        assert unauthorized.is_error and "401" in text_of(unauthorized)
        await call(client, "validate_credential", {"credential": "broken"})
        await call(client, "delete_credential", {"credential": "broken"})

        # A credential whose keys do not look like keys: logged at DEBUG, only the scope can scrub them.
        odd = await call(
            client,
            "store_credential",
            {"name": "odd", "api_key": odd_key_id, "secret_key": odd_secret, "validate": False},
        )
        assert not odd.is_error, text_of(odd)
        await call(client, "alpaca_get_account", {"credential": "odd"})
        await call(
            client, "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1, "credential": "odd"}
        )
        await call(client, "store_credential", {"api_key": odd_key_id, "secret_key": odd_secret})
        await call(client, "delete_credential", {"credential": "odd"})

        placed = await call(client, "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 3})
        assert not placed.is_error, text_of(placed)
        order_id = placed.structured_content["order"]["id"]
        planted = {"order_id": order_id, "key_id": odd_key_id, "secret": odd_secret}
        for name, args in every_tool_call(planted):
            answer = await call(client, name, args)
            assert "internal error" not in text_of(answer), (name, text_of(answer))

        # Error paths: unknown credential, 403, 422, 429, 5xx, timeout, lost response, bad arguments.
        await call(client, "alpaca_get_account", {"credential": "nope"})
        await call(client, "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 10_000_000})
        await call(client, "alpaca_cancel_order", {"order_id": order_id})
        simulator.set_fault(match="GET /v2/account", status=429, retry_after=0, count=20)
        assert (await call(client, "alpaca_get_account", {})).is_error
        simulator.clear_faults()
        simulator.set_fault(match="GET /v2/positions", status=500, count=20)
        assert (await call(client, "alpaca_get_positions", {})).is_error
        simulator.clear_faults()
        simulator.set_fault(match="GET /v2/clock", latency_ms=1500, count=20)
        # Each attempt waits out the whole http_timeout: two attempts walk the same paths as four (a
        # timeout, its retry, the final error), in half the wait (#9).
        with stamina.set_testing(True, attempts=2, cap=True):
            assert (await call(client, "alpaca_get_clock", {})).is_error
        simulator.clear_faults()
        simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
        await call(client, "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
        simulator.clear_faults()
        await call(client, "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": "lots"})
        await call(client, "update_credential", {"credential": "c", "api_key": key_id})
        await call(client, "update_credential", {"credential": "c", "api_key": key_id, "secret_key": 7})

    logging.getLogger("alpaca_vault.test").debug("end of canary run")
    captured = capfd.readouterr()
    log_text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "end of canary run" in log_text  # the log capture really worked
    database_bytes = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("vault.db*"))
    assert database_bytes  # the vault file exists and was read

    database_text = database_bytes.decode("latin-1")

    # #16: every user's data key (unwrapped here, by the test, with the master key) is planted too.
    data_keys = _unwrapped_data_keys(
        tmp_path / "data" / "vault.db", settings.encryption_keys.get_secret_value()
    )
    assert data_keys  # the canary user's credentials were sealed under a data key
    for raw in data_keys:
        assert raw not in database_bytes  # never stored unwrapped
        markers += [
            raw.hex(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            base64.b64encode(raw).decode(),
        ]
    # The audit trail and the order intents (#13), row by row: on record, and never with a secret in them.
    with sqlite3.connect(tmp_path / "data" / "vault.db") as connection:
        audit_rows = connection.execute("SELECT * FROM audit_events").fetchall()
        intent_rows = connection.execute("SELECT * FROM order_intents").fetchall()
        actions = {action for (action,) in connection.execute("SELECT action FROM audit_events")}
    assert {"credential.unseal", "credential.store", "order.intent", "order.accepted"} <= actions
    assert len(intent_rows) >= 3
    records_text = repr(audit_rows) + repr(intent_rows)
    for marker in markers:
        assert not leaks(marker, records_text)
    for marker in markers:
        for result in results:
            assert not leaks(marker, result), result
        assert not leaks(marker, log_text)
        assert not leaks(marker, captured.out)
        assert not leaks(marker, captured.err)
        assert not leaks(marker, database_text)
