"""A per-credential request budget: one credential's burst never delays another's calls."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import keys_for, make_client


async def test_rate_limiter_bounds_requests_per_credential(simulator: Any) -> None:
    busy = keys_for(simulator.new_account())
    other = keys_for(simulator.new_account())
    client = make_client(simulator, rate_limit_per_minute=2)
    try:
        await client.get_clock(busy)
        await client.get_clock(busy)
        assert not client.rate_limiter(busy.limiter_key).has_capacity()

        third = asyncio.create_task(client.get_clock(busy))
        # The other credential has its own budget: two full round trips go through meanwhile...
        assert (await client.get_clock(other)).timestamp is not None
        assert (await client.get_clock(other)).timestamp is not None
        # ...while the busy credential's third call is still held back by its budget.
        assert not third.done()
        third.cancel()
        await asyncio.gather(third, return_exceptions=True)
    finally:
        await client.aclose()


async def test_our_budget_keeps_us_under_the_server_limit(simulator: Any, sim_account: Any) -> None:
    # The simulator answers 429 past 3 requests a minute; a client budgeted at 3 never sees one.
    simulator.set_fault(match="GET /v2/account", rate_limit_per_minute=3)
    client = make_client(simulator, rate_limit_per_minute=3)
    keys = keys_for(sim_account)
    other = keys_for(simulator.new_account())
    try:
        for _ in range(3):
            await client.get_account(keys)
        fourth = asyncio.create_task(client.get_account(keys))
        for _ in range(2):  # full round trips by another credential (on a path the server does not limit)
            await client.get_clock(other)
        # Held back by our limiter; without it the server's 429 (Retry-After ~60 s) would have ended it.
        assert not fourth.done()
        fourth.cancel()
        await asyncio.gather(fourth, return_exceptions=True)
    finally:
        await client.aclose()


def test_limiters_are_bounded_least_recently_used_first(simulator: Any) -> None:
    client = make_client(simulator, max_rate_limiters=2)
    first = client.rate_limiter("credential-a")
    second = client.rate_limiter("credential-b")
    assert client.rate_limiter("credential-a") is first  # touched: now most recent
    client.rate_limiter("credential-c")  # evicts b, the least recently used
    assert client.rate_limiter("credential-a") is first
    assert client.rate_limiter("credential-b") is not second
