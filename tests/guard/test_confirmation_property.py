"""Property: whatever arguments an agent sends, an order that needs a person is never placed without one.

Every order on this credential needs a confirmation (confirm_above_notional $0.01) and the client
declares no elicitation, so no call may reach the simulator's book; the agent has no argument
that stands in for the person.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from tests.guard.test_guard_protocol import set_policy

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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=arguments)
def test_no_order_needing_a_person_is_placed_without_one(
    server_settings: Settings, sim_account: Any, simulator: Any, args: dict[str, Any]
) -> None:
    async def run() -> None:
        async with Client(build_server(server_settings), raise_exceptions=False) as client:
            stored = await client.call_tool(
                "store_credential",
                {"name": "paper-1", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
            )
            assert not stored.is_error or "already" in str(stored.content)
            await set_policy(server_settings, "paper-1", confirm_above_notional=Decimal("0.01"))
            result = await client.call_tool("alpaca_place_order", args)
            assert result.is_error

    asyncio.run(run())
    assert simulator.orders(sim_account.api_key) == []
