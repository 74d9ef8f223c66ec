"""Broker tests: the real AlpacaClient against the real simulator on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, RetryPolicy

# Short waits keep the suite fast; every bound is still real (attempts, total time, Retry-After cap).
FAST_RETRY = RetryPolicy(
    attempts=4, total_timeout=10.0, wait_initial=0.05, wait_max=0.3, wait_jitter=0.05, retry_after_cap=2.0
)
TIMEOUT = 2.0


def keys_for(account: Any, environment: str = "paper") -> AlpacaKeys:
    return AlpacaKeys(
        api_key=SecretStr(account.api_key),
        secret_key=SecretStr(account.secret_key),
        environment=environment,  # type: ignore[arg-type]
        limiter_key=str(account.id),
    )


def make_client(simulator: Any, **overrides: Any) -> AlpacaClient:
    options: dict[str, Any] = {
        "paper_url": simulator.base_url,
        "live_url": simulator.base_url,
        "data_url": simulator.base_url,
        "timeout": TIMEOUT,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return AlpacaClient(**options)


def faults_left(simulator: Any) -> dict[str, int | None]:
    """What is left of the injected faults, by match: a fault with a count is removed once it has fired
    that many times, so a test can assert that its fault really fired (and how often)."""
    return {fault["match"]: fault["remaining"] for fault in simulator.faults()}


@pytest.fixture
async def broker(simulator: Any) -> AsyncIterator[AlpacaClient]:
    simulator.clear_faults()  # the simulator is shared by the whole run: start from a clean slate
    client = make_client(simulator)
    yield client
    await client.aclose()


@pytest.fixture
def keys(sim_account: Any) -> AlpacaKeys:
    return keys_for(sim_account)
