"""Every tool call is on record: over stdio (a real `alpaca-vault serve` subprocess) and over HTTP
(many users, bearer tokens, SQLite and PostgreSQL as the application role).

Each tool that unseals writes ``credential.unseal``; each order writes its intent and outcome;
``list_audit_events`` returns them, and only the caller's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from sqlalchemy import select

from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.db import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.vault import KeyRing
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.mcp_server import text_of
from tests.fixtures.tool_listing import store_tool_listing
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http
from tests.server.test_stdio import SERVE, server_env

UNSEALING_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("alpaca_get_account", {}),
    ("alpaca_get_positions", {}),
    ("alpaca_list_orders", {"status": "all"}),
    ("alpaca_get_clock", {}),
    ("alpaca_get_latest_quote", {"symbols": "AAPL"}),
]


async def _events(client: Client, **filters: Any) -> list[dict[str, Any]]:
    result = await client.call_tool("list_audit_events", {"limit": 200, **filters})
    assert not result.is_error, text_of(result)
    events: list[dict[str, Any]] = result.structured_content["events"]
    return list(reversed(events))  # oldest first


async def _trade(client: Client, credential: str) -> tuple[str, str]:
    """Every unsealing read, one accepted order, one rejected order, a cancel; returns the two coids."""
    for name, args in UNSEALING_CALLS:
        result = await client.call_tool(name, {**args, "credential": credential})
        assert not result.is_error, text_of(result)
    placed = await client.call_tool(
        "alpaca_place_order",
        {
            "symbol": "AAPL",
            "side": "buy",
            "qty": 1,
            "type": "limit",
            "limit_price": 1,
            "credential": credential,
        },
    )
    assert not placed.is_error, text_of(placed)
    order = placed.structured_content["order"]
    refused = await client.call_tool(
        "alpaca_place_order",
        {
            "symbol": "AAPL",
            "side": "buy",
            "qty": 10_000_000,
            "credential": credential,
            "client_order_id": f"too-big-{credential}",
        },
    )
    assert refused.is_error
    canceled = await client.call_tool(
        "alpaca_cancel_order", {"order_id": order["id"], "credential": credential}
    )
    assert not canceled.is_error, text_of(canceled)
    return order["client_order_id"], f"too-big-{credential}"


def _assert_trail(events: list[dict[str, Any]], credential: str, accepted: str, rejected: str) -> None:
    actions = [(e["action"], e["tool"]) for e in events]
    for name, _ in UNSEALING_CALLS:
        assert ("credential.unseal", name) in actions, name
    intents = [e for e in events if e["action"] == "order.intent"]
    assert [e["details"]["client_order_id"] for e in intents] == [accepted, rejected]
    assert intents[0]["details"] | {"symbol": "AAPL", "side": "buy", "type": "limit"} == intents[0]["details"]
    outcome = {
        e["details"]["client_order_id"]: e
        for e in events
        if e["action"] in ("order.accepted", "order.rejected")
    }
    assert outcome[accepted]["action"] == "order.accepted" and outcome[accepted]["details"]["alpaca_order_id"]
    assert (
        outcome[rejected]["action"] == "order.rejected"
        and outcome[rejected]["details"]["error_status"] == 403
    )
    # Intent before outcome, unseal before the order's decrypt, all in one gap-free chain.
    position = {(e["action"], e["details"].get("client_order_id")): e["seq"] for e in events}
    assert position[("order.intent", accepted)] < position[("order.accepted", accepted)]
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + len(events)))
    assert any(e["action"] == "order.cancel" for e in events)
    assert {e["credential"] for e in events if e["action"] != "credential.store"} == {credential}


async def test_every_tool_call_over_stdio_is_on_record(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    # A vault file at head: the first start's upgrade is covered by tests/server/test_stdio_round_trips.py;
    # a data dir that has served before, so each tool is registered for its first call (the build of every
    # tool at a first start: tests/server/test_cold_start.py).
    migrated_sqlite_file(tmp_path / "vault.db")
    store_tool_listing(tmp_path, allow_secrets_in_arguments=True)
    env = server_env(tmp_path, simulator.base_url)
    async with Client(StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=env)) as client:
        stored = await client.call_tool(
            "store_credential",
            {"name": "desk", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
        accepted, rejected = await _trade(client, "desk")
        events = await _events(client)
        _assert_trail(events, "desk", accepted, rejected)
        assert {e["actor"] for e in events} == {"stdio"}
        assert events[0]["action"] == "credential.store"
        only_intents = await _events(client, action="order.intent")
        assert [e["details"]["client_order_id"] for e in only_intents] == [accepted, rejected]
        page = await client.call_tool("list_audit_events", {"limit": 2})
        token = page.structured_content["next_page_token"]
        older = await client.call_tool("list_audit_events", {"limit": 2, "page_token": token})
        assert [e["seq"] for e in older.structured_content["events"]] == [int(token) - 1, int(token) - 2]
        bad = await client.call_tool("list_audit_events", {"page_token": "abc"})
        assert bad.is_error and "page_token is not one this tool returned" in text_of(bad)

    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}")
    try:
        async with db.session() as session:
            rows = (
                (await session.execute(select(OrderIntent).order_by(OrderIntent.created_at))).scalars().all()
            )
        assert [(r.client_order_id, r.state) for r in rows] == [
            (accepted, "accepted"),
            (rejected, "rejected"),
        ]
        assert rows[0].request["symbol"] == "AAPL" and rows[0].alpaca_order_id
        assert rows[1].error is not None and rows[1].error["status"] == 403
        keyring = KeyRing.from_string(env["ALPACA_VAULT_ENCRYPTION_KEYS"])
        assert (await AuditLog(db, ChainKeys.from_keyring(keyring)).as_owner().verify()).ok
    finally:
        await db.dispose()


async def test_over_http_each_user_sees_only_their_own_events(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    tokens = {}
    for user, label in (("alice", "alice-laptop"), ("bob", "bob-ci")):
        await deployment.admin.add_user(user)
        tokens[user] = (await deployment.admin.create_token(user, name=label)).token.get_secret_value()
    alice_token, bob_token = tokens["alice"], tokens["bob"]
    accounts = {"alice": simulator.new_account(), "bob": simulator.new_account()}
    settings = http_settings(tmp_path / "data", deployment.server_url, simulator.base_url)
    trails: dict[str, list[dict[str, Any]]] = {}
    with serve_http(settings) as url:
        for user, token in (("alice", alice_token), ("bob", bob_token)):
            async with connect(url, token) as client:
                account = accounts[user]
                stored = await client.call_tool(
                    "store_credential",
                    {"name": f"{user}-paper", "api_key": account.api_key, "secret_key": account.secret_key},
                )
                assert not stored.is_error, text_of(stored)
                accepted, rejected = await _trade(client, f"{user}-paper")
                trails[user] = await _events(client)
                _assert_trail(trails[user], f"{user}-paper", accepted, rejected)
        async with connect(url, alice_token) as alice:
            # Asking for bob's credential by name finds nothing of bob's.
            assert await _events(alice, credential="bob-paper") == []
            assert await _events(alice) == trails["alice"]
    actors = {user: {e["actor"] for e in trail} for user, trail in trails.items()}
    assert len(actors["alice"]) == 1 and actors["alice"].pop().endswith(":alice-laptop")
    assert len(actors["bob"]) == 1 and actors["bob"].pop().endswith(":bob-ci")
    seen = json.dumps(trails["alice"])
    assert "bob-paper" not in seen and accounts["bob"].account_number not in seen
