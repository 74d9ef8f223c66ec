"""Property: whatever arguments an agent sends, an order that needs a person is never placed without one.

Every order on this credential needs a confirmation (confirm_above_notional $0.01) and the client
declares no elicitation, so no call may reach the simulator's book; the agent has no argument
that stands in for the person.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import CallToolResult

from alpaca_vault.server.settings import Settings
from tests.guard.test_guard_protocol import session, set_policy

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=2).map(str)
arguments = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["AAPL", "MSFT", "BTC/USD", "SPY"]), "side": st.sampled_from(["buy", "sell"])},
    optional={
        "qty": st.integers(min_value=1, max_value=1000),
        "notional": prices,
        "type": st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
        "time_in_force": st.sampled_from(["day", "gtc", "ioc"]),
        "limit_price": prices,
        "stop_price": prices,
        "trail_percent": st.sampled_from(["1", "5"]),
        "extended_hours": st.booleans(),
        "client_order_id": st.text(alphabet="abcdef0123456789-", min_size=1, max_size=20),
        # Names an agent might try in order to confirm on the person's behalf: refused as unknown.
        "confirm": st.booleans(),
        "confirmed": st.just(True),
    },
)


@contextmanager
def client_in_a_thread(settings: Settings, account: Any) -> Iterator[Callable[..., CallToolResult]]:
    """One connected server (credential stored, policy set) for every example: ``call(tool, args)``.

    Hypothesis drives a sync function, and building a server, storing keys and setting the policy
    per example cost ~1 s each; the Client lives on an event loop in a thread of its own instead
    (entered and left in one task there, as anyio requires) and each example is one tool call.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    connected: concurrent.futures.Future[Client] = concurrent.futures.Future()

    async def hold() -> None:
        stop = asyncio.Event()
        async with session(settings, account) as client:
            await set_policy(settings, "paper-1", confirm_above_notional=Decimal("0.01"))
            connected.set_result(client)
            held.append(stop)
            await stop.wait()

    held: list[asyncio.Event] = []
    holding = asyncio.run_coroutine_threadsafe(hold(), loop)
    try:
        client = connected.result(timeout=60)

        def call(tool: str, arguments: dict[str, Any]) -> CallToolResult:
            return asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), loop).result(30)

        yield call
    finally:
        if held:
            loop.call_soon_threadsafe(held[0].set)
        holding.result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_no_order_needing_a_person_is_placed_without_one(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    with client_in_a_thread(server_settings, sim_account) as call:

        @settings(max_examples=40, deadline=None)
        @given(args=arguments)
        def refused(args: dict[str, Any]) -> None:
            result = call("alpaca_place_order", args)
            assert result.is_error
            assert simulator.orders(sim_account.api_key) == []

        refused()
