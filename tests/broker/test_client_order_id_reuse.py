"""A client_order_id that already belongs to an order never passes for a new order or a replacement."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaRejected,
    ClientOrderIdConflict,
    OrderRequest,
    ReplaceOrderRequest,
)


def resting_limit(symbol: str, price: str, **extra: Any) -> OrderRequest:
    """A limit buy far below the market: it rests open and never fills."""
    fields: dict[str, Any] = {"qty": 1, "type": "limit", "limit_price": Decimal(price), **extra}
    return OrderRequest(symbol=symbol, side="buy", **fields)


async def test_replace_with_a_client_order_id_of_an_unrelated_order_is_refused(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    a = await broker.place_order(keys, resting_limit("NVDA", "1.00", client_order_id="nvda-a"))
    b = await broker.place_order(keys, resting_limit("NVDA", "2.00"))

    with pytest.raises(ClientOrderIdConflict) as caught:
        await broker.replace_order(
            keys, b.id, ReplaceOrderRequest(limit_price=Decimal("3.00"), client_order_id="nvda-a")
        )
    assert isinstance(caught.value, AlpacaRejected)  # tools that key on the parent class still match
    assert (caught.value.client_order_id, caught.value.existing_order_id) == ("nvda-a", a.id)

    message = str(caught.value)
    assert caught.value.status == 422
    assert "'nvda-a' already belongs to a different order" in message
    assert a.id in message
    assert f"order {b.id} was NOT replaced" in message
    # At the broker: B is untouched and still open, no replacement exists.
    at_broker = {o["id"]: o for o in simulator.orders(sim_account.api_key)}
    assert sorted(at_broker) == sorted([a.id, b.id])
    assert at_broker[b.id]["status"] == "new"
    assert at_broker[b.id]["limit_price"] == "2"
    assert at_broker[b.id]["replaced_by"] is None


async def test_replace_with_the_client_order_id_of_another_orders_replacement_is_refused(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    first = await broker.place_order(keys, resting_limit("NVDA", "1.00"))
    other = await broker.place_order(keys, resting_limit("NVDA", "2.00"))
    replacement = await broker.replace_order(
        keys, first.id, ReplaceOrderRequest(limit_price=Decimal("1.10"), client_order_id="nvda-r")
    )
    assert replacement.replaces == first.id

    with pytest.raises(AlpacaRejected) as caught:
        await broker.replace_order(
            keys, other.id, ReplaceOrderRequest(limit_price=Decimal("2.10"), client_order_id="nvda-r")
        )
    assert f"which replaced order {first.id}" in str(caught.value)
    assert f"order {other.id} was NOT replaced" in str(caught.value)
    assert next(o for o in simulator.orders(sim_account.api_key) if o["id"] == other.id)["status"] == "new"


_AAPL_LIMIT = {
    "symbol": "AAPL",
    "side": "buy",
    "qty": Decimal("2"),
    "type": "limit",
    "limit_price": Decimal("1.00"),
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qty": Decimal("3")}, "qty"),
        ({"limit_price": Decimal("1.25")}, "limit_price"),
        ({"time_in_force": "gtc"}, "time_in_force"),
        ({"type": "stop_limit", "stop_price": Decimal("1.50")}, "type"),
        ({"type": "market", "limit_price": None}, "type"),
        (
            {
                "order_class": "bracket",
                "take_profit": {"limit_price": Decimal("5")},
                "stop_loss": {"stop_price": Decimal("0.50")},
            },
            "order_class",
        ),
    ],
    ids=["qty", "limit_price", "time_in_force", "stop_limit", "market", "bracket"],
)
async def test_reused_client_order_id_with_a_different_request_is_refused(
    change: dict[str, Any],
    field: str,
    broker: AlpacaClient,
    keys: AlpacaKeys,
    simulator: Any,
    sim_account: Any,
) -> None:
    first = await broker.place_order(keys, OrderRequest(**_AAPL_LIMIT, client_order_id="mine-1"))

    with pytest.raises(ClientOrderIdConflict) as caught:
        await broker.place_order(keys, OrderRequest(**{**_AAPL_LIMIT, **change}, client_order_id="mine-1"))
    assert caught.value.existing_order_id == first.id
    assert field in caught.value.differences

    message = str(caught.value)
    assert caught.value.status == 422
    assert "client_order_id 'mine-1' already belongs to a different order" in message
    assert first.id in message and field in message
    assert "nothing new was placed" in message
    assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [first.id]


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (
            {"symbol": "AAPL", "side": "buy", "notional": Decimal("100")},
            {"symbol": "AAPL", "side": "buy", "notional": Decimal("200")},
            "notional",
        ),
        (
            {"symbol": "AAPL", "side": "buy", "notional": Decimal("100")},
            {"symbol": "AAPL", "side": "buy", "qty": Decimal("100")},
            "qty",
        ),
        (
            {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "stop", "stop_price": Decimal("900")},
            {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "stop", "stop_price": Decimal("950")},
            "stop_price",
        ),
        (
            {
                "symbol": "AAPL",
                "side": "sell",
                "qty": 1,
                "type": "trailing_stop",
                "trail_percent": Decimal("5"),
            },
            {
                "symbol": "AAPL",
                "side": "sell",
                "qty": 1,
                "type": "trailing_stop",
                "trail_percent": Decimal("6"),
            },
            "trail_percent",
        ),
        (
            {
                "symbol": "AAPL",
                "side": "sell",
                "qty": 1,
                "type": "trailing_stop",
                "trail_price": Decimal("5"),
            },
            {
                "symbol": "AAPL",
                "side": "sell",
                "qty": 1,
                "type": "trailing_stop",
                "trail_percent": Decimal("5"),
            },
            "trail_price",
        ),
    ],
    ids=["notional", "notional-vs-qty", "stop_price", "trail_percent", "trail_price-vs-percent"],
)
async def test_reused_client_order_id_with_other_amounts_is_refused(
    first: dict[str, Any],
    second: dict[str, Any],
    field: str,
    broker: AlpacaClient,
    keys: AlpacaKeys,
    simulator: Any,
    sim_account: Any,
) -> None:
    if first["side"] == "sell":
        await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=1))  # something to sell
    placed = await broker.place_order(keys, OrderRequest(**first, client_order_id="mine-2"))
    before = simulator.orders(sim_account.api_key)

    with pytest.raises(AlpacaRejected) as caught:
        await broker.place_order(keys, OrderRequest(**second, client_order_id="mine-2"))

    assert placed.id in str(caught.value) and field in str(caught.value)
    assert simulator.orders(sim_account.api_key) == before


@pytest.mark.parametrize(
    "request_fields",
    [
        # Alpaca echoes "1" and "187.5"; the request said 1.0 and 187.50: still the same order.
        {
            "symbol": "AAPL",
            "side": "buy",
            "qty": Decimal("1.0"),
            "type": "limit",
            "limit_price": Decimal("1.50"),
        },
        {"symbol": "AAPL", "side": "buy", "notional": Decimal("150.00")},
        {"symbol": "BTC/USD", "side": "buy", "qty": Decimal("0.0010"), "time_in_force": "gtc"},
        # Alpaca sets a trailing stop's stop_price itself; that is no difference from the request.
        {"symbol": "AAPL", "side": "sell", "qty": 1, "type": "trailing_stop", "trail_price": Decimal("2.50")},
        {
            "symbol": "AAPL",
            "side": "buy",
            "qty": 1,
            "type": "limit",
            "limit_price": Decimal("1.00"),
            "order_class": "bracket",
            "take_profit": {"limit_price": Decimal("5")},
            "stop_loss": {"stop_price": Decimal("0.50")},
        },
    ],
    ids=["decimal-scale", "notional", "crypto", "trailing-stop", "bracket"],
)
async def test_same_request_after_a_lost_answer_returns_the_one_order(
    request_fields: dict[str, Any], broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    if request_fields["side"] == "sell":
        await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=1))
    before = {o["id"] for o in simulator.orders(sim_account.api_key)}
    request = OrderRequest(**request_fields, client_order_id="same-intent")

    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=2)
    first = await broker.place_order(keys, request)
    again = await broker.place_order(keys, request)

    assert again.id == first.id
    assert simulator.faults() == []  # both answers were really lost
    new = [o for o in simulator.orders(sim_account.api_key) if o["id"] not in before]
    assert [o["id"] for o in new if o["client_order_id"] == "same-intent"] == [first.id]
