"""The bracket story (issue #11 item 1) through alpaca-py: after the entry fills, the take-profit works
and the stop-loss is held, both are listed where Alpaca lists them, the take-profit holds the shares
against sells, and cancel-all cancels both, as on Alpaca."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from tests.fixtures.simulator import SimulatorHandle


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
    by_type = {leg.type: leg for leg in bracket.legs}
    take_profit, stop_loss = by_type[OrderType.LIMIT], by_type[OrderType.STOP]
    # As on Alpaca: the take-profit works, the stop-loss is held (one quantity for the pair).
    assert (take_profit.status, stop_loss.status) == (OrderStatus.NEW, OrderStatus.HELD)
    # Alpaca's listings: rolled up, the filled entry is a closed order, live exits and all
    # (alpaca-trade-api-js#87); flat, the held stop-loss is not "open" (alpaca-trade-api-python#322).
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True)) == []
    flat = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [(o.id, o.status) for o in flat] == [(take_profit.id, OrderStatus.NEW)]
    closed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, nested=True))
    group = next(o for o in closed if o.id == bracket.id)
    assert {(leg.id, leg.status) for leg in group.legs or []} == {
        (take_profit.id, OrderStatus.NEW),
        (stop_loss.id, OrderStatus.HELD),
    }
    flat_closed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert (stop_loss.id, OrderStatus.HELD) in {(o.id, o.status) for o in flat_closed}
    assert trading.get_order_by_id(stop_loss.id).status == OrderStatus.HELD
    # Five shares are promised to the exits: selling them is refused with Alpaca's body.
    with pytest.raises(APIError) as caught:
        trading.submit_order(
            MarketOrderRequest(symbol="KO", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
        )
    assert caught.value.status_code == 403
    assert caught.value.message == "insufficient qty available for order (requested: 5, available: 1)"
    body = caught.value._error  # the JSON Alpaca answers
    assert '"held_for_orders":"5"' in body.replace(" ", "") and '"existing_qty":"6"' in body.replace(" ", "")
    # The take-profit holds them; the held stop-loss holds nothing of its own.
    assert str(take_profit.id) in body and str(stop_loss.id) not in body
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
    # Before the entry fills, flat open lists the entry alone (alpaca-trade-api-js#80); rolled up,
    # the entry carries both held exits.
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [waiting.id]
    nested = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    assert [o.id for o in nested] == [waiting.id]
    assert {leg.status for leg in nested[0].legs or []} == {OrderStatus.HELD}
    canceled = trading.cancel_orders()
    assert {c.id for c in canceled} == {waiting.id, *(leg.id for leg in waiting.legs)}
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_oco_and_oto_legs_through_their_lives(trading: TradingClient, simulator: SimulatorHandle) -> None:
    """OTO: its exit held until the entry fills, then working. OCO: the stop-loss held while the
    take-profit works, then, at its stop, working and filled, its partner reported replaced."""
    simulator.pin_price("JPM", "200")
    try:
        oto = trading.submit_order(
            LimitOrderRequest(
                symbol="JPM", qty=4, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=150,
                order_class=OrderClass.OTO, take_profit=TakeProfitRequest(limit_price=300),
            )
        )  # fmt: skip
        assert oto.status == OrderStatus.NEW and [leg.status for leg in oto.legs or []] == [OrderStatus.HELD]
        simulator.pin_price("JPM", "149")
        filled = trading.get_order_by_id(oto.id, GetOrderByIdRequest(nested=True))
        assert filled.status == OrderStatus.FILLED
        assert [leg.status for leg in filled.legs or []] == [OrderStatus.NEW]
        trading.cancel_order_by_id((filled.legs or [])[0].id)
        oco = trading.submit_order(
            LimitOrderRequest(
                symbol="JPM", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, limit_price=170,
                order_class=OrderClass.OCO, take_profit=TakeProfitRequest(limit_price=170),
                stop_loss=StopLossRequest(stop_price=140),
            )
        )  # fmt: skip
        assert oco.status == OrderStatus.NEW and [leg.status for leg in oco.legs or []] == [OrderStatus.HELD]
        stop_id = (oco.legs or [])[0].id
        simulator.pin_price("JPM", "139")
        parent = trading.get_order_by_id(oco.id, GetOrderByIdRequest(nested=True))
        assert parent.status == OrderStatus.REPLACED and str(parent.replaced_by) == str(stop_id)
        assert [leg.status for leg in parent.legs or []] == [OrderStatus.FILLED]
        with pytest.raises(APIError) as caught:
            trading.get_open_position("JPM")
        assert caught.value.status_code == 404
    finally:
        simulator.pin_price("JPM", None)
