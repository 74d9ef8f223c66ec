"""The guard through the protocol: the real server in-process (SDK Client), the simulator on loopback.

For every rule: a call refused before anything reaches the simulator (its order count unchanged)
with a message that names the rule and the way forward, and the same kind of call passing once the
policy allows it. The owner changes policies the way the CLI does (``PolicyStore`` on the same
database file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from mcp import Client
from mcp_types import ElicitResult
from pydantic import SecretStr

from alpaca_vault.db import Database
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.mcp_server import text_of, wire


@asynccontextmanager
async def owner(settings: Settings) -> AsyncIterator[tuple[PolicyStore, Any]]:
    """The owner's side: the policy store and the local user's id, on the server's own database."""
    db = Database.create(settings.effective_database_url)
    try:
        vault = CredentialService(
            db, KeyRing.load(settings.encryption_keys.get_secret_value(), settings.data_dir)
        )  # type: ignore[union-attr]
        user = await vault.ensure_user(settings.user)
        yield PolicyStore(db), user.id
    finally:
        await db.dispose()


async def set_policy(settings: Settings, name: str, **changes: Any) -> None:
    async with owner(settings) as (store, user_id):
        await store.update(user_id, name, changes)


@asynccontextmanager
async def session(settings: Settings, account: Any, **client: Any) -> AsyncIterator[Client]:
    async with Client(build_server(settings), raise_exceptions=False, **client) as c:
        stored = await c.call_tool(
            "store_credential",
            {"name": "paper-1", "api_key": account.api_key, "secret_key": account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
        yield c


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = wire(result)["structuredContent"]
    return body


def limit_buy(qty: int = 1, price: str = "100", **extra: Any) -> dict[str, Any]:
    # Far below the simulator's price: the order rests (never fills), and is priced by its limit.
    return {"symbol": "AAPL", "side": "buy", "qty": qty, "type": "limit", "limit_price": price, **extra}


# (policy changes, the refused call's arguments, phrases in the refusal, a call that passes under the same policy)
RULES: list[tuple[str, dict[str, Any], dict[str, Any], list[str], dict[str, Any]]] = [
    ("symbols", {"symbols": ["MSFT"]}, limit_buy(), ["AAPL is not among the symbols", "--symbols MSFT,AAPL"],
     {**limit_buy(), "symbol": "MSFT"}),
    ("deny_symbols", {"deny_symbols": ["AAPL"]}, limit_buy(), ["deny list", "--deny-symbols none"],
     {**limit_buy(), "symbol": "MSFT"}),
    ("asset_classes", {"asset_classes": ["us_equity"]},
     {"symbol": "BTC/USD", "side": "buy", "qty": "0.01", "type": "limit", "limit_price": "1000"},
     ["BTC/USD is crypto", "--asset-classes us_equity,crypto"], limit_buy()),
    ("order_types", {"order_types": ["limit"]}, {"symbol": "AAPL", "side": "buy", "qty": 1},
     ["market orders are not allowed", "--order-types limit,market"], limit_buy()),
    ("allow_extended_hours", {"allow_extended_hours": False}, limit_buy(extended_hours=True),
     ["Extended-hours orders are not allowed", "--allow-extended-hours"], limit_buy()),
    ("allow_short", {"allow_short": False}, {"symbol": "AAPL", "side": "sell", "qty": 1, "type": "limit",
     "limit_price": "100000"}, ["more than the 0 held", "--allow-short"], limit_buy()),
    ("max_order_notional", {"max_order_notional": Decimal(500)}, limit_buy(qty=6),
     ["Order notional about $600 exceeds the per-order limit of $500", "At most 5 shares fit",
      "--max-order-notional 600"], limit_buy(qty=5)),
    ("mode", {"mode": "read_only"}, limit_buy(), ["is read_only", "--mode trade"], None),
    ("halted", {"halted": True}, limit_buy(), ["is halted", "alpaca-vault policy resume paper-1"], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "changes", "refused", "phrases", "passes"), RULES, ids=[r[0] for r in RULES]
)
async def test_each_rule_refuses_before_alpaca_and_lets_allowed_orders_through(
    server_settings: Settings,
    sim_account: Any,
    simulator: Any,
    rule: str,
    changes: dict[str, Any],
    refused: dict[str, Any],
    phrases: list[str],
    passes: dict[str, Any] | None,
) -> None:
    async with session(server_settings, sim_account) as client:
        await set_policy(server_settings, "paper-1", **changes)
        before = len(simulator.orders(sim_account.api_key))
        result = await client.call_tool("alpaca_place_order", refused)
        assert result.is_error
        message = text_of(result)
        for phrase in phrases:
            assert phrase in message, message
        assert "(paper)" in message  # the environment is named
        assert len(simulator.orders(sim_account.api_key)) == before  # nothing reached Alpaca
        if passes is not None:
            placed = ok(await client.call_tool("alpaca_place_order", passes))
            assert placed["environment"] == "paper"
            assert len(simulator.orders(sim_account.api_key)) == before + 1


async def test_daily_counts_and_notional_refuse_the_order_over_the_limit(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        await set_policy(server_settings, "paper-1", max_orders_per_day=2, max_daily_notional=Decimal(250))
        ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1)))
        ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1, price="90")))
        before = len(simulator.orders(sim_account.api_key))
        third = await client.call_tool("alpaca_place_order", limit_buy(qty=1, price="80"))
        assert third.is_error
        assert "placed 2 orders today (America/New_York), its daily limit of 2" in text_of(third)
        assert "--max-orders-per-day 4" in text_of(third)
        await set_policy(server_settings, "paper-1", max_orders_per_day=None)
        too_much = await client.call_tool("alpaca_place_order", limit_buy(qty=1, price="70"))
        assert too_much.is_error
        assert "come to about $190; this one, about $70, would bring the day to $260" in text_of(too_much)
        assert "At most $60 more fits today (0 shares)" in text_of(too_much)
        assert len(simulator.orders(sim_account.api_key)) == before
        ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1, price="60")))


async def test_orders_per_minute(server_settings: Settings, sim_account: Any, simulator: Any) -> None:
    async with session(server_settings, sim_account) as client:
        await set_policy(server_settings, "paper-1", max_orders_per_minute=1)
        ok(await client.call_tool("alpaca_place_order", limit_buy()))
        before = len(simulator.orders(sim_account.api_key))
        second = await client.call_tool("alpaca_place_order", limit_buy(price="99"))
        assert second.is_error and "1 orders in the last minute, its limit of 1 per minute" in text_of(second)
        assert len(simulator.orders(sim_account.api_key)) == before


async def test_a_market_orders_notional_comes_from_the_quote_and_the_preview_says_so(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        await set_policy(server_settings, "paper-1", max_order_notional=Decimal(1000))
        preview = ok(
            await client.call_tool("alpaca_preview_order", {"symbol": "AAPL", "side": "buy", "qty": 1000})
        )
        assert preview["environment"] == "paper" and preview["allowed"] is False
        assert "latest quote's ask price" in preview["price_source"]
        [failed] = [c for c in preview["checks"] if not c["passed"]]
        assert failed["rule"] == "max_order_notional" and failed["limit"] == "$1,000"
        assert Decimal(preview["buying_power_after"]) < Decimal(preview["buying_power_before"])
        assert simulator.orders(sim_account.api_key) == []  # the preview placed nothing
        sell = ok(
            await client.call_tool("alpaca_preview_order", {"symbol": "AAPL", "side": "sell", "qty": 1})
        )
        assert "bid price" in sell["price_source"]
        refused = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1000})
        assert refused.is_error and "exceeds the per-order limit of $1,000" in text_of(refused)
        assert simulator.orders(sim_account.api_key) == []


async def test_halt_stops_new_orders_cancels_still_work_resume_restores(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        resting = ok(await client.call_tool("alpaca_place_order", limit_buy()))["order"]
        async with owner(server_settings) as (store, user_id):
            await store.set_halted(user_id, None, True)
        before = len(simulator.orders(sim_account.api_key))
        refused = await client.call_tool("alpaca_place_order", limit_buy(price="98"))
        assert refused.is_error and "is halted (kill switch)" in text_of(refused)
        replaced = await client.call_tool(
            "alpaca_replace_order", {"order_id": resting["id"], "limit_price": "97"}
        )
        assert replaced.is_error and "is halted" in text_of(replaced)
        assert len(simulator.orders(sim_account.api_key)) == before
        canceled = ok(await client.call_tool("alpaca_cancel_order", {"order_id": resting["id"]}))
        assert canceled["environment"] == "paper"
        async with owner(server_settings) as (store, user_id):
            await store.set_halted(user_id, None, False)
        ok(await client.call_tool("alpaca_place_order", limit_buy(price="96")))


async def test_a_new_live_credential_is_read_only_and_still_walled_without_allow_live_trading(
    server_settings: Settings, simulator: Any
) -> None:
    live_allowed = server_settings.model_copy(update={"allow_live_trading": True})
    async with Client(build_server(live_allowed), raise_exceptions=False) as client:
        assert not (await client.call_tool("list_credentials", {})).is_error  # the server made its vault
        async with owner(server_settings) as (_store, user_id):
            db = Database.create(server_settings.effective_database_url)
            keyring = KeyRing.load(
                server_settings.encryption_keys.get_secret_value(), server_settings.data_dir
            )  # type: ignore[union-attr]
            await CredentialService(db, keyring).store(
                user_id, "live-1", "live", SecretStr("AKLIVETEST0000000001"), SecretStr("s" * 40)
            )
            await db.dispose()
        policy = ok(await client.call_tool("get_trading_policy", {"credential": "live-1"}))
        assert policy["policy"]["mode"] == "read_only" and policy["environment"] == "live"
        # Even with live trading allowed on the server, the new live credential's policy refuses.
        refused = await client.call_tool("alpaca_place_order", {**limit_buy(), "credential": "live-1"})
        assert refused.is_error and "'live-1' is read_only" in text_of(refused)
        assert "(live)" in text_of(refused)
        await set_policy(server_settings, "live-1", mode="trade")
        # In trade mode a person confirms every live change; this client cannot ask one.
        unconfirmed = await client.call_tool("alpaca_place_order", {**limit_buy(), "credential": "live-1"})
        assert unconfirmed.is_error and "A person must confirm this" in text_of(unconfirmed)
        assert "live credential" in text_of(unconfirmed)
    # With the policy in trade mode and ALLOW_LIVE_TRADING unset, the server's own wall still refuses.
    async with Client(build_server(server_settings), raise_exceptions=False) as client:
        walled = await client.call_tool("alpaca_place_order", {**limit_buy(), "credential": "live-1"})
        assert walled.is_error and "ALPACA_VAULT_ALLOW_LIVE_TRADING=true" in text_of(walled)


async def test_the_duplicate_window_catches_a_repeat_under_a_new_id_and_lets_the_same_id_through(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        first = ok(await client.call_tool("alpaca_place_order", limit_buy(client_order_id="order-1")))[
            "order"
        ]
        count = len(simulator.orders(sim_account.api_key))
        again = ok(await client.call_tool("alpaca_place_order", limit_buy(client_order_id="order-1")))[
            "order"
        ]
        assert again["id"] == first["id"]  # idempotent: the same order, not a second one
        repeat = await client.call_tool("alpaca_place_order", limit_buy(client_order_id="order-2"))
        assert repeat.is_error
        assert "A person must confirm this" in text_of(repeat)
        assert "was placed 0 s ago under client_order_id order-1" in text_of(
            repeat
        ) or "s ago under client_order_id order-1" in text_of(repeat)
        assert len(simulator.orders(sim_account.api_key)) == count


def answering(action: str, seen: list[str]) -> Any:
    async def callback(_ctx: Any, params: Any) -> ElicitResult:
        seen.append(params.message)
        return ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)  # type: ignore[arg-type]

    return callback


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_confirmation_accept_places_decline_refuses_no_capability_refuses(
    server_settings: Settings, sim_account: Any, simulator: Any, mode: str
) -> None:
    seen: list[str] = []
    async with session(
        server_settings, sim_account, mode=mode, elicitation_callback=answering("accept", seen)
    ) as client:
        await set_policy(server_settings, "paper-1", confirm_above_notional=Decimal(50))
        placed = ok(await client.call_tool("alpaca_place_order", limit_buy()))
        assert placed["order"]["status"] in ("new", "accepted")
    assert len(seen) == 1
    assert seen[0].startswith(
        "Confirm on 'paper-1' (PAPER account): buy 1 AAPL limit @ limit 100 day, about $100"
    )
    assert "confirmation threshold of $50" in seen[0]
    assert len(simulator.orders(sim_account.api_key)) == 1

    declined: list[str] = []
    async with Client(build_server(server_settings), raise_exceptions=False, mode=mode,
                      elicitation_callback=answering("decline", declined)) as client:  # fmt: skip
        refused = await client.call_tool("alpaca_place_order", limit_buy(price="99"))
        assert refused.is_error and "The user declined this order on 'paper-1' (paper)" in text_of(refused)
    assert len(declined) == 1
    assert len(simulator.orders(sim_account.api_key)) == 1

    async with Client(build_server(server_settings), raise_exceptions=False, mode=mode) as client:
        unable = await client.call_tool("alpaca_place_order", limit_buy(price="98"))
        assert unable.is_error and "A person must confirm this before it is sent" in text_of(unable)
    assert len(simulator.orders(sim_account.api_key)) == 1


async def test_the_preview_takes_exactly_the_place_orders_arguments(server_settings: Settings) -> None:
    async with Client(build_server(server_settings), raise_exceptions=False) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    place, preview = tools["alpaca_place_order"], tools["alpaca_preview_order"]

    def arguments(tool: Any) -> dict[str, Any]:
        return {k: v for k, v in tool.input_schema.items() if k != "title"}  # the title names the tool

    assert arguments(preview) == arguments(place)
    assert preview.annotations is not None and preview.annotations.read_only_hint is True
    policy = tools["get_trading_policy"]
    assert policy.annotations is not None and policy.annotations.read_only_hint is True
    assert set(policy.input_schema["properties"]) == {"credential"}  # nothing to change a policy with
