"""Confirmation on protocol 2025-06-18, byte for byte: `alpaca-vault serve` over stdio, raw JSON-RPC.

The SDK's Client always speaks the newest protocol of an era, so this test is the client: it
initializes with 2025-06-18 declaring (bare, pre-modes) elicitation, and answers the server's
``elicitation/create`` request itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alpaca_vault.db import Database
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.tool_listing import store_tool_listing
from tests.server.test_stdio import SERVE, _rpc, server_env


class RawClient:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.asked: list[dict[str, Any]] = []

    def send(self, message: str) -> None:
        assert self.process.stdin
        self.process.stdin.write(message.encode())
        self.process.stdin.flush()

    def ask(self, request_id: int | None, method: str, params: dict[str, Any] | None = None,
            answer: str = "accept") -> dict[str, Any]:  # fmt: skip
        """Send a request and read until its answer, answering any elicitation on the way."""
        assert self.process.stdout
        self.send(_rpc(request_id, method, params))
        while request_id is not None:
            line = self.process.stdout.readline()
            assert line, "server closed stdout early"
            message: dict[str, Any] = json.loads(line)
            if message.get("method") == "elicitation/create":
                self.asked.append(message["params"])
                result: dict[str, Any] = {"action": answer}
                if answer == "accept":
                    result["content"] = {"confirm": True}
                self.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\n")
                continue
            if message.get("id") == request_id:
                return message
        return {}


@pytest.mark.timeout(120)
def test_form_elicitation_on_2025_06_18_accept_places_and_decline_refuses(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    # A vault file at head and a data dir that has served before: each tool is registered for its first call
    # (a first start's upgrade and build of every tool: tests/server/test_stdio_round_trips.py, test_cold_start.py).
    migrated_sqlite_file(tmp_path / "vault.db")
    store_tool_listing(tmp_path, allow_secrets_in_arguments=True)
    env = server_env(tmp_path, simulator.base_url)
    process = subprocess.Popen(
        SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    client = RawClient(process)
    try:
        init = client.ask(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}},
                                            "clientInfo": {"name": "raw", "version": "0"}})  # fmt: skip
        assert init["result"]["protocolVersion"] == "2025-06-18"
        client.ask(None, "notifications/initialized")
        stored = client.ask(1, "tools/call", {"name": "store_credential", "arguments": {
            "name": "paper-1", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key}})  # fmt: skip
        assert stored["result"]["isError"] is False

        async def confirm_everything() -> None:
            db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}")
            try:
                vault = CredentialService(db, KeyRing.from_string(env["ALPACA_VAULT_ENCRYPTION_KEYS"]))
                user = await vault.ensure_user("local")
                await PolicyStore(db).update(user.id, "paper-1", {"confirm_above_notional": Decimal(1)})
            finally:
                await db.dispose()

        asyncio.run(confirm_everything())
        order = {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit", "limit_price": "100"}
        placed = client.ask(2, "tools/call", {"name": "alpaca_place_order", "arguments": order})
        assert placed["result"]["isError"] is False, placed
        assert placed["result"]["structuredContent"]["environment"] == "paper"
        [question] = client.asked
        assert question["message"].startswith("Confirm on 'paper-1' (PAPER account): buy 1 AAPL limit")
        assert question["requestedSchema"]["properties"]["confirm"]["type"] == "boolean"
        assert len(simulator.orders(sim_account.api_key)) == 1

        cheaper = {"name": "alpaca_place_order", "arguments": {**order, "limit_price": "99"}}
        declined = client.ask(3, "tools/call", cheaper, answer="decline")
        assert declined["result"]["isError"] is True
        assert "The user declined this order on 'paper-1' (paper)" in declined["result"]["content"][0]["text"]
        assert len(client.asked) == 2
        assert len(simulator.orders(sim_account.api_key)) == 1
    finally:
        assert process.stdin
        process.stdin.close()
        process.wait(timeout=30)
