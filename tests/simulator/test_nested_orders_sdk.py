"""The bracket story (issue #11 item 1) through alpaca-py: after the entry fills, its exits are live,
listed, held against sells, and canceled by cancel-all, as on Alpaca."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)


def test_bracket_exits_are_listed_held_and_canceled(trading: TradingClient) -> None:
    entry_price = Decimal(
        str(
            trading.submit_order(
                MarketOrderRequest(symbol="KO", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
            ).filled_avg_price
        )
    )
    bracket = trading.submit_order(
        MarketOrderRequest(
            symbol="KO",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float((entry_price * 2).quantize(Decimal("0.01")))),
            stop_loss=StopLossRequest(stop_price=float((entry_price / 2).quantize(Decimal("0.01")))),
        )
    )
    assert bracket.status == OrderStatus.FILLED
    assert bracket.legs is not None
    exits = {leg.id for leg in bracket.legs}
    # Open orders rolled up: the filled entry is listed because its exits are live.
    listed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    assert [o.id for o in listed] == [bracket.id]
    assert {leg.id for leg in listed[0].legs or []} == exits
    assert all(leg.status == OrderStatus.NEW for leg in listed[0].legs or [])
    # Flat, the exits are open orders of their own.
    flat = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert {o.id for o in flat} == exits
    # Five shares are promised to the exits: selling them is refused with Alpaca's body.
    with pytest.raises(APIError) as caught:
        trading.submit_order(
            MarketOrderRequest(symbol="KO", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
        )
    assert caught.value.status_code == 403
    assert caught.value.message == "insufficient qty available for order (requested: 5, available: 1)"
    body = caught.value._error  # the JSON Alpaca answers
    assert '"held_for_orders":"5"' in body.replace(" ", "") and '"existing_qty":"6"' in body.replace(" ", "")
    assert all(str(order_id) in body for order_id in exits)
    # Cancel-all cancels both exits and reports each of them.
    canceled = trading.cancel_orders()
    assert {c.id for c in canceled} == exits and all(c.status == 200 for c in canceled)
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True)) == []
    assert all(trading.get_order_by_id(order_id).status == OrderStatus.CANCELED for order_id in exits)
    sold = trading.submit_order(
        MarketOrderRequest(symbol="KO", qty=6, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    assert sold.status == OrderStatus.FILLED
    closed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, nested=True))
    assert bracket.id in {o.id for o in closed}


def test_cancel_all_reports_held_legs_of_a_waiting_bracket(trading: TradingClient) -> None:
    waiting = trading.submit_order(
        LimitOrderRequest(
            symbol="DIS",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=1,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=500),
            stop_loss=StopLossRequest(stop_price=0.5),
        )
    )
    assert waiting.legs is not None and {leg.status for leg in waiting.legs} == {OrderStatus.HELD}
    canceled = trading.cancel_orders()
    assert {c.id for c in canceled} == {waiting.id, *(leg.id for leg in waiting.legs)}
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
