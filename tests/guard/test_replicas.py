"""Two server processes on one PostgreSQL: the daily limit holds across replicas, and so does the kill switch.

40 orders, 20 sent concurrently through each of two `alpaca-vault serve` processes (stdio, the SDK's
Client), against a daily notional limit that fits 10: exactly 10 reach the simulator, the other 30
are refused naming the limit. The guard's checks and the intent insert share one transaction that
holds a row lock on the credential, so the replicas count each other's intents.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from alpaca_vault.db import Database
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.mcp_server import text_of
from tests.fixtures.postgres import PostgresDatabases
from tests.fixtures.tool_listing import store_tool_listing
from tests.server.test_stdio import SERVE, server_env

pytestmark = pytest.mark.postgres


async def test_two_replicas_never_together_pass_a_daily_limit_and_both_obey_a_halt(
    tmp_path: Path, simulator: Any, sim_account: Any, postgres_databases: PostgresDatabases
) -> None:
    url = await postgres_databases.create_migrated()
    env = server_env(tmp_path / "data", simulator.base_url, ALPACA_VAULT_DATABASE_URL=url)
    env["ALPACA_VAULT_LOG_LEVEL"] = "WARNING"
    keys = env["ALPACA_VAULT_ENCRYPTION_KEYS"]  # the same master keys on both replicas
    # Replicas that have served before: each registers only the tools it is called with (a first start's
    # build of every tool is tests/server/test_cold_start.py's).
    store_tool_listing(tmp_path / "data", allow_secrets_in_arguments=True)
    params = StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=env)
    async with Client(params, raise_exceptions=False) as one, Client(params, raise_exceptions=False) as two:
        stored = await one.call_tool(
            "store_credential",
            {"name": "paper-1", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
        db = Database.create(url)
        try:
            vault = CredentialService(db, KeyRing.from_string(keys))
            user = await vault.ensure_user("local")
            store = PolicyStore(db)
            # $100 orders (a little less each, so none is a duplicate of another): ten fit in $1,000.
            await store.update(user.id, "paper-1", {"max_daily_notional": Decimal(1000)})

            def order(i: int) -> dict[str, Any]:
                price = Decimal(100) - Decimal(i) / 100
                return {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit", "limit_price": str(price)}

            results = await asyncio.gather(
                *((one if i % 2 else two).call_tool("alpaca_place_order", order(i)) for i in range(40))
            )
            placed = [r for r in results if not r.is_error]
            refused = [r for r in results if r.is_error]
            assert len(placed) == 10, [text_of(r) for r in refused][:3]
            assert len(simulator.orders(sim_account.api_key)) == 10
            for result in refused:
                assert "above the daily limit of $1,000" in text_of(result), text_of(result)

            # The kill switch: set by the owner, obeyed by both replicas from their next call.
            await store.update(user.id, "paper-1", {"max_daily_notional": None})
            await store.set_halted(user.id, "paper-1", True)
            for replica in (one, two):
                halted = await replica.call_tool("alpaca_place_order", order(50))
                assert halted.is_error and "is halted" in text_of(halted)
            assert len(simulator.orders(sim_account.api_key)) == 10
            await store.set_halted(user.id, "paper-1", False)
            resumed = await two.call_tool("alpaca_place_order", order(60))
            assert not resumed.is_error, text_of(resumed)
        finally:
            await db.dispose()
