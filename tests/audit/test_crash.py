"""Crash safety: the server is SIGKILLed while an order's POST is in flight; after a restart the
reconciler settles the intent to the one order Alpaca holds, and nothing is sent twice.

The simulator's ``hang`` fault applies the POST and holds its answer, so the order exists at the
broker while the server that sent it is killed before hearing back.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from alpaca_vault.db import Database
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.mcp_server import text_of
from tests.fixtures.tool_listing import store_tool_listing
from tests.server.test_stdio import SERVE, _rpc, server_env


def _intents(db_path: Path) -> list[tuple[str, str, str | None]]:
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path) as connection:
        try:
            return connection.execute(
                "SELECT client_order_id, state, alpaca_order_id FROM order_intents"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(180)
async def test_a_server_killed_mid_post_reconciles_to_the_single_order_after_restart(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    env = server_env(tmp_path, simulator.base_url)
    db_path = tmp_path / "vault.db"
    # The vault the server will open (DATA_DIR's file, its keys), with the credential already in it:
    # the crash is about the order, and a server start just to store a key costs seconds.
    db = Database.create(migrated_sqlite_file(db_path))
    try:
        vault = CredentialService(db, KeyRing.from_string(env["ALPACA_VAULT_ENCRYPTION_KEYS"]))
        local = await vault.ensure_user("local")  # the user a stdio server acts as
        await vault.store(
            local.id, "desk", "paper", SecretStr(sim_account.api_key), SecretStr(sim_account.secret_key)
        )
    finally:
        await db.dispose()
    # A data dir that has served before: each server registers only the tools it is called with (the first
    # start's build of every tool is tests/server/test_cold_start.py's and test_stdio_round_trips.py's).
    store_tool_listing(tmp_path, allow_secrets_in_arguments=True)

    simulator.set_fault(match="POST /v2/orders", lost_response="hang", latency_ms=60_000)
    server = subprocess.Popen(
        SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert server.stdin and server.stdout
        hello = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "crash", "version": "0"},
        }
        server.stdin.write(_rpc(0, "initialize", hello).encode())
        server.stdin.write(_rpc(None, "notifications/initialized").encode())
        order = {"symbol": "AAPL", "side": "buy", "qty": 1, "client_order_id": "crash-1"}
        server.stdin.write(_rpc(1, "tools/call", {"name": "alpaca_place_order", "arguments": order}).encode())
        server.stdin.flush()
        # In flight: the intent is on record and the broker has applied the POST, whose answer hangs.
        _wait_for(lambda: _intents(db_path) == [("crash-1", "pending", None)], 30, "the pending intent")
        _wait_for(lambda: len(simulator.orders(sim_account.api_key)) == 1, 30, "the order at the simulator")
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
        simulator.clear_faults()
    assert _intents(db_path) == [("crash-1", "pending", None)]  # the killed server never heard back

    async with Client(StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=env)) as client:
        # The reconciler's start-up pass runs as soon as the server opens its database, which a server
        # does once it has answered its first tools/list (else a little later).
        await client.list_tools()
        for _ in range(200):
            if _intents(db_path)[0][1] == "reconciled":
                break
            await asyncio.sleep(0.1)
        [at_broker] = simulator.orders(sim_account.api_key)
        assert _intents(db_path) == [("crash-1", "reconciled", at_broker["id"])]
        listed = await client.call_tool("list_audit_events", {"limit": 200})
        events = list(reversed(listed.structured_content["events"]))
        trail = [
            (e["action"], e["actor"]) for e in events if e["details"].get("client_order_id") == "crash-1"
        ]
        assert trail[0] == ("order.intent", "stdio")
        assert trail[-1] == ("order.reconciled", "server")
        assert events[-1]["details"] == {
            "client_order_id": "crash-1",
            "alpaca_order_id": at_broker["id"],
            "status": at_broker["status"],
            "outcome": "found",
        }
        # Asking again under the same client_order_id returns that order and creates none.
        again = await client.call_tool("alpaca_place_order", order)
        assert not again.is_error, text_of(again)
        assert again.structured_content["order"]["id"] == at_broker["id"]
    assert len(simulator.orders(sim_account.api_key)) == 1
    assert json.dumps(events).count("crash-1") >= 2
