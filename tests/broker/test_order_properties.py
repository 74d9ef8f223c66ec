"""Property-based: any argument set gives a valid order or a ValidationError, never anything else."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alpaca_vault.broker import AlpacaError, InvalidRequestError, OrderRequest

prices = st.one_of(
    st.none(),
    st.decimals(min_value=-5, max_value=1000, places=2, allow_nan=False),
    st.just("x"),
    # Exponent bombs and other numbers past the bounds (issue #10): refused, never expanded.
    st.sampled_from(["1e80000000", "1e-80000000", "NaN", "-Infinity", "9" * 50, "1000000000.5"]),
)
option_leg = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(
            ["AAPL250620C00200000", "AAPL250620P00180000", "SPY251219C00600000", "AAPL"]
        ),
        "side": st.sampled_from(["buy", "sell"]),
    },
    optional={
        "ratio_qty": st.integers(min_value=-1, max_value=120),
        "position_intent": st.sampled_from(["buy_to_open", "sell_to_close", "hold"]),
    },
)
leg = st.one_of(
    st.none(),
    st.fixed_dictionaries({"limit_price": prices}),
    st.fixed_dictionaries({"stop_price": prices}, optional={"limit_price": prices}),
    st.just({"bogus": 1}),
)
arguments = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(
            ["AAPL", "brk.b", "BTC/USD", "", "../x", "A B", "x" * 40, "AAPL250620C00200000"]
        )
    },
    optional={
        "side": st.sampled_from(["buy", "sell", "hold"]),
        "type": st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop", "iceberg"]),
        "time_in_force": st.sampled_from(["day", "gtc", "ioc", "fok", "opg", "cls", "forever"]),
        "qty": prices,
        "notional": prices,
        "limit_price": prices,
        "stop_price": prices,
        "trail_price": prices,
        "trail_percent": prices,
        "extended_hours": st.booleans(),
        "client_order_id": st.one_of(st.none(), st.text(max_size=140)),
        "order_class": st.sampled_from(["simple", "bracket", "oco", "oto", "mleg"]),
        "take_profit": leg,
        "stop_loss": leg,
        "position_intent": st.sampled_from(["buy_to_open", "sell_to_close"]),
        "legs": st.lists(option_leg, max_size=6),
    },
)


@settings(max_examples=400, deadline=None)
@given(arguments)
def test_any_arguments_validate_or_explain(args: dict[str, Any]) -> None:
    try:
        order = OrderRequest(**args)
    except ValidationError as exc:
        assert exc.errors(), "a refusal always says why"
        return
    body = order.to_alpaca("coid")
    # What passed validation keeps Alpaca's rules.
    assert (order.qty is None) != (order.notional is None)
    if order.order_class == "mleg":
        assert order.legs is not None and 2 <= len(order.legs) <= 4 and order.symbol is None
        assert order.qty is not None and order.qty == int(order.qty) and order.time_in_force == "day"
        return
    assert order.side in ("buy", "sell")
    assert order.asset_kind in ("stock", "crypto", "option")
    if order.asset_kind == "crypto":
        assert order.time_in_force in ("gtc", "ioc") and order.order_class == "simple"
    if order.asset_kind == "option":
        assert order.qty is not None and order.qty == int(order.qty) and order.time_in_force == "day"
    if order.type in ("limit", "stop_limit"):
        assert order.limit_price is not None and order.limit_price > 0
    if order.type in ("stop", "stop_limit"):
        assert order.stop_price is not None and order.stop_price > 0
    if order.type == "trailing_stop":
        assert (order.trail_price is None) != (order.trail_percent is None)
    if order.notional is not None:
        assert order.type == "market"
        assert order.time_in_force == ("day" if order.asset_kind == "stock" else order.time_in_force)
    if order.extended_hours:
        assert order.type == "limit" and order.time_in_force in ("day", "gtc")
    if order.order_class == "bracket":
        assert order.take_profit is not None and order.stop_loss is not None
    if order.order_class == "simple":
        assert "take_profit" not in body and "stop_loss" not in body
    assert all(not isinstance(v, float) for v in body.values())
    assert all(
        Decimal(0) < Decimal(body[k]) <= 1_000_000_000 and len(body[k]) <= 20
        for k in ("qty", "notional", "limit_price", "stop_price")
        if k in body
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
async def test_arbitrary_identifiers_give_results_or_typed_errors(text: str, broker: Any, keys: Any) -> None:
    """Whatever an agent passes as a symbol or id: a result, a typed error, or an argument error."""
    calls = [
        lambda: broker.get_order_by_client_id(keys, text),
        lambda: broker.get_order(keys, text),
        lambda: broker.get_asset(keys, text),
        lambda: broker.get_latest_quote(keys, text),
        lambda: broker.list_orders(keys, status="all", symbols=text or None),
    ]
    for call in calls:
        with contextlib.suppress(AlpacaError, InvalidRequestError):
            await call()
