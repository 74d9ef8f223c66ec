"""Two server replicas on one PostgreSQL share one credential's Alpaca request budget (#10, item 10).

The attack on the budget: N stateless replicas, each with its own in-process limiter, together send
N times Alpaca's limit, and an order meets a 429. Here two `alpaca-vault serve` processes (stdio,
the SDK's Client) share a budget of 5 requests per second for one credential, and 24 calls are
split between them, all at once. The simulator logs when each request arrived: no window of one
second holds more than 5 of them, and every call succeeds (callers queue for their slot instead of
failing). With one limiter per process the two replicas together send up to 10 a second.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from alpaca_vault.db import Database
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing
from tests.fixtures.mcp_server import text_of
from tests.fixtures.postgres import PostgresDatabases
from tests.server.test_stdio import SERVE, server_env

pytestmark = pytest.mark.postgres

BUDGET = 5  # requests per WINDOW seconds, for each credential
WINDOW = 1.0
CALLS = 16


def most_in_any_window(arrivals: list[float], window: float) -> int:
    """The largest number of arrivals inside any half-open window [t, t + window)."""
    ordered = sorted(arrivals)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_most_in_any_window_counts_a_sliding_window() -> None:
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4
    assert most_in_any_window([0.0, 1.0, 2.0], 1.0) == 1
    assert most_in_any_window([], 1.0) == 0


async def _replica(
    params: StdioServerParameters, calls: int, ready: asyncio.Event, go: asyncio.Event
) -> list[Any]:
    # Each replica's client lives in one task (its context must end where it began); both start at once.
    async with Client(params, raise_exceptions=False) as client:
        await client.call_tool("list_credentials", {})  # the runtime is open: later calls pay no start-up
        ready.set()
        await go.wait()
        return list(await asyncio.gather(*(client.call_tool("alpaca_get_clock", {}) for _ in range(calls))))


async def test_two_replicas_together_stay_within_one_credentials_request_budget(
    tmp_path: Path, simulator: Any, sim_account: Any, postgres_databases: PostgresDatabases
) -> None:
    url = await postgres_databases.create_migrated()
    env = server_env(
        tmp_path / "data",
        simulator.base_url,
        ALPACA_VAULT_DATABASE_URL=url,
        ALPACA_VAULT_LOG_LEVEL="WARNING",
        ALPACA_VAULT_RATE_LIMIT_PER_MINUTE=str(BUDGET),
        ALPACA_VAULT_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
    )
    db = Database.create(url)
    try:
        vault = CredentialService(db, KeyRing.from_string(env["ALPACA_VAULT_ENCRYPTION_KEYS"]))
        local = await vault.ensure_user("local")  # the user stdio replicas act as
        await vault.store(
            local.id, "paper-1", "paper", SecretStr(sim_account.api_key), SecretStr(sim_account.secret_key)
        )
    finally:
        await db.dispose()
    params = StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=env)
    ready = [asyncio.Event(), asyncio.Event()]
    go = asyncio.Event()
    replicas = [asyncio.ensure_future(_replica(params, CALLS // 2, r, go)) for r in ready]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 60)
        started = time.time()
    finally:
        go.set()
    results = [result for replica in replicas for result in await replica]
    elapsed = time.time() - started
    failed = [text_of(r) for r in results if r.is_error]
    assert failed == []
    arrivals = [at for at in simulator.arrivals(sim_account.api_key) if at >= started]
    assert len(arrivals) == CALLS
    assert most_in_any_window(arrivals, WINDOW) <= BUDGET, sorted(a - started for a in arrivals)
    # The callers waited for their slots rather than failing, and not much longer than the budget needs.
    assert elapsed < 2 * CALLS / BUDGET * WINDOW + 10  # + the replicas' shutdown


async def test_a_call_that_would_wait_longer_than_the_cap_is_refused_unsent_and_gives_its_slot_back(
    simulator: Any, sim_account: Any, postgres_databases: PostgresDatabases
) -> None:
    from alpaca_vault.broker import AlpacaClient, AlpacaKeys
    from alpaca_vault.broker.errors import RequestBudgetExhausted
    from alpaca_vault.db.request_budget import SharedRequestBudget

    db = Database.create(await postgres_databases.create_migrated())
    budget = SharedRequestBudget(db, requests=1, period=20.0)
    keys = AlpacaKeys(
        api_key=SecretStr(sim_account.api_key),
        secret_key=SecretStr(sim_account.secret_key),
        environment="paper",
        limiter_key="credential-1",
    )
    url = simulator.base_url
    client = AlpacaClient(
        paper_url=url, live_url=url, data_url=url, shared_budget=budget, rate_limit_max_wait=0.5
    )
    try:
        started = time.time()
        await client.get_clock(keys)
        with pytest.raises(RequestBudgetExhausted) as refused:
            await client.get_clock(keys)
        assert "shared by every server replica" in str(refused.value)
        assert "nothing was sent" in str(refused.value)
        assert refused.value.retry_after is not None and 15 < refused.value.retry_after <= 20
        assert len([at for at in simulator.arrivals(sim_account.api_key) if at >= started]) == 1
        # The refused call's slot went back: the next reservation waits one slot, not two.
        assert await budget.reserve("credential-1") <= 20.0
    finally:
        await client.aclose()
        await db.dispose()


async def test_the_application_role_draws_from_the_shared_budget(rls_database: Any) -> None:
    # Production runs as the application role (no table ownership, row-level security on): the budget
    # must work there too, through the grant rls.app_role_grants gives on request_budgets.
    from alpaca_vault.db.request_budget import SharedRequestBudget

    app = Database.create(rls_database.app_url)
    try:
        budget = SharedRequestBudget(app, requests=10, period=10.0)
        assert await budget.reserve("credential-1") == 0.0
        await budget.give_back("credential-1")
        waits = [await budget.reserve("credential-2") for _ in range(3)]
        assert waits[0] == 0.0 and 0 < waits[1] < waits[2] <= 2 * 10 / 9 + 0.1
    finally:
        await app.dispose()
