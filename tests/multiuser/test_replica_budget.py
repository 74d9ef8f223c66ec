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
from tests.fixtures.tool_listing import store_tool_listing
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
    # Replicas that have served before: each registers only the tools it is called with (a first start's
    # build of every tool is tests/server/test_cold_start.py's).
    store_tool_listing(tmp_path / "data", allow_secrets_in_arguments=True)
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


async def _tokens(db: Database, key: str) -> float:
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        return float(await conn.scalar(text("SELECT tokens FROM request_budgets WHERE key = :k"), {"k": key}))


def _paper_keys(sim_account: Any, limiter_key: str) -> Any:
    from alpaca_vault.broker import AlpacaKeys

    return AlpacaKeys(
        api_key=SecretStr(sim_account.api_key),
        secret_key=SecretStr(sim_account.secret_key),
        environment="paper",
        limiter_key=limiter_key,
    )


async def test_a_call_cancelled_while_queueing_for_a_shared_slot_gives_the_slot_back(
    simulator: Any, sim_account: Any, postgres_databases: PostgresDatabases
) -> None:
    # The attack: orders whose deadline cancels them while they queue each keep a slot never used,
    # so a burst of them starves the credential on every replica until the bucket refills.
    from alpaca_vault.broker import AlpacaClient
    from alpaca_vault.db.request_budget import SharedRequestBudget

    db = Database.create(await postgres_databases.create_migrated())
    budget = SharedRequestBudget(db, requests=1, period=20.0)  # a second call queues about 20 s
    keys = _paper_keys(sim_account, "credential-1")
    url = simulator.base_url
    client = AlpacaClient(
        paper_url=url, live_url=url, data_url=url, shared_budget=budget, rate_limit_max_wait=30.0
    )
    try:
        started = time.time()
        await client.get_clock(keys)
        assert await _tokens(db, "credential-1") == pytest.approx(0.0, abs=0.1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # as the order deadline does (tools/trading.py)
                await client.get_clock(keys)
        await asyncio.sleep(0.05)  # the shielded give-back finishes on its own
        assert len([at for at in simulator.arrivals(sim_account.api_key) if at >= started]) == 1
        # Given back: the bucket is where the one sent call left it, not a slot further in debt.
        assert await _tokens(db, "credential-1") == pytest.approx(0.0, abs=0.1)
    finally:
        await client.aclose()
        await db.dispose()


async def test_a_call_refused_by_the_in_process_limiter_gives_its_shared_slot_back(
    simulator: Any, sim_account: Any, postgres_databases: PostgresDatabases
) -> None:
    from alpaca_vault.broker import AlpacaClient
    from alpaca_vault.broker.errors import RequestBudgetExhausted
    from alpaca_vault.db.request_budget import SharedRequestBudget

    db = Database.create(await postgres_databases.create_migrated())
    budget = SharedRequestBudget(db, requests=100, period=1000.0)  # room: burst 10, slow refill
    keys = _paper_keys(sim_account, "credential-1")
    url = simulator.base_url
    client = AlpacaClient(
        paper_url=url,
        live_url=url,
        data_url=url,
        shared_budget=budget,
        rate_limit_per_minute=1,  # this process's own limiter is the one that runs out
        rate_limit_max_wait=0.2,
    )
    try:
        await client.get_clock(keys)
        assert await _tokens(db, "credential-1") == pytest.approx(9.0, abs=0.1)
        with pytest.raises(RequestBudgetExhausted) as refused:
            await client.get_clock(keys)
        assert "nothing was sent" in str(refused.value)
        assert await _tokens(db, "credential-1") == pytest.approx(9.0, abs=0.1)
    finally:
        await client.aclose()
        await db.dispose()


async def test_two_long_keys_sharing_their_first_64_characters_keep_separate_budgets(
    postgres_databases: PostgresDatabases,
) -> None:
    # The attack: keys cut to the column's 64 characters collide, so one user's key-pair checks
    # (new-key-pair:{user}:{credential}, 86 characters) could spend another's budget.
    from alpaca_vault.db.request_budget import SharedRequestBudget, bucket_key

    db = Database.create(await postgres_databases.create_migrated())
    try:
        budget = SharedRequestBudget(db, requests=1, period=20.0)
        prefix = "new-key-pair:" + "u" * 51
        first, second = prefix + ":credential-1", prefix + ":credential-2"
        assert await budget.reserve(first) == 0.0
        assert await budget.reserve(second) == 0.0  # its own bucket, not the first one's debt
        assert 15 < await budget.reserve(first) <= 20.0
        await budget.give_back(second)
        assert await _tokens(db, bucket_key(second)) == pytest.approx(1.0, abs=0.1)
        assert len(bucket_key(first)) == 64 and bucket_key("credential-1") == "credential-1"
    finally:
        await db.dispose()
