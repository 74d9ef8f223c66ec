"""Property: whatever arguments an agent sends, an order that needs a person is never placed without one.

Every order on this credential needs a confirmation (confirm_above_notional $0.01) and the client
declares no elicitation, so no call may reach the simulator's book; the agent has no argument
that stands in for the person.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import ThreadedClient, text_of
from tests.guard.test_guard_protocol import set_policy

# Every price and notional is above the $0.01 threshold set below: an order for exactly $0.01 is
# not "above" it, and is rightly placed without asking.
prices = st.decimals(min_value=Decimal("0.02"), max_value=Decimal(5000), places=2).map(str)
# Mostly orders Alpaca would take (so it is the confirmation that stops them, not a malformed
# argument: drawn from free combinations, 19 in 20 were refused for their shape and the property
# held even with the guard off), with odd combinations and the agent's stand-ins for the person mixed in.
quantity = st.one_of(
    st.fixed_dictionaries({"qty": st.integers(min_value=1, max_value=1000)}),
    st.fixed_dictionaries({"notional": prices}),
)
order_type = st.one_of(
    st.fixed_dictionaries({}, optional={"type": st.just("market")}),
    st.fixed_dictionaries({"type": st.just("limit"), "limit_price": prices}),
    st.fixed_dictionaries({"type": st.just("stop"), "stop_price": prices}),
    st.fixed_dictionaries({"type": st.just("stop_limit"), "limit_price": prices, "stop_price": prices}),
    st.fixed_dictionaries({"type": st.just("trailing_stop"), "trail_percent": st.sampled_from(["1", "5"])}),
)
extras = st.fixed_dictionaries(
    {},
    optional={
        "time_in_force": st.sampled_from(["day", "gtc", "ioc"]),
        "extended_hours": st.booleans(),
        "client_order_id": st.text(alphabet="abcdef0123456789-", min_size=1, max_size=20),
    },
)
# Names an agent might try in order to confirm on the person's behalf: refused as unknown.
stand_ins = st.one_of(
    st.just({}),
    st.fixed_dictionaries({}, optional={"confirm": st.booleans(), "confirmed": st.just(True)}),
)
arguments = st.builds(
    lambda *parts: {key: value for part in parts for key, value in part.items()},
    st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(["AAPL", "MSFT", "BTC/USD", "SPY"]),
            "side": st.sampled_from(["buy", "sell"]),
        }
    ),
    quantity,
    order_type,
    extras,
    stand_ins,
)


def test_no_order_needing_a_person_is_placed_without_one(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    # One server for every example (building one, storing the keys and setting the policy per
    # example cost ~1 s each): hypothesis drives a sync function, the Client lives on a loop of its own.
    client = ThreadedClient(server_settings)
    try:
        stored = client.call(
            "store_credential",
            {"name": "paper-1", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
        asyncio.run(set_policy(server_settings, "paper-1", confirm_above_notional=Decimal("0.01")))

        @settings(max_examples=40, deadline=None)
        @given(args=arguments)
        def refused(args: dict[str, Any]) -> None:
            assert client.call("alpaca_place_order", args).is_error
            assert simulator.orders(sim_account.api_key) == []

        refused()
    finally:
        client.close()
