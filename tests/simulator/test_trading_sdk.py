"""alpaca-py's TradingClient drives every trading endpoint; each answer parses into the SDK's models."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AssetClass,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import (
    Asset,
    Calendar,
    Clock,
    ClosePositionResponse,
    Order,
    PortfolioHistory,
    Position,
    TradeAccount,
    TradeActivity,
)
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def _buy(trading: TradingClient, symbol: str = "AAPL", qty: float = 10, **kw: object) -> Order:
    order = trading.submit_order(
        MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, **kw)
    )
    assert isinstance(order, Order)
    return order


def test_account_parses_and_starts_funded(trading: TradingClient, sim_account: SimAccount) -> None:
    account = trading.get_account()
    assert isinstance(account, TradeAccount)
    assert account.account_number == sim_account.account_number
    assert str(account.id) == sim_account.id
    assert account.status == "ACTIVE"
    assert account.currency == "USD"
    assert Decimal(account.cash) == Decimal("100000")
    assert Decimal(account.buying_power) == Decimal("100000")
    assert Decimal(account.equity) == Decimal(account.portfolio_value) == Decimal("100000")
    assert account.trading_blocked is False
    assert account.pattern_day_trader is False


def test_full_lifecycle(trading: TradingClient, simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    """Buy market, see the position, rest a limit, replace it, cancel it, sell, see realized cash."""
    start_cash = Decimal(trading.get_account().cash)

    bought = _buy(trading, "MSFT", 5)
    assert bought.status == OrderStatus.FILLED
    assert bought.filled_qty == "5"
    buy_price = Decimal(str(bought.filled_avg_price))
    account = trading.get_account()
    assert Decimal(account.cash) == start_cash - buy_price * 5

    position = trading.get_open_position("MSFT")
    assert isinstance(position, Position)
    assert position.qty == "5"
    assert position.side == "long"
    assert Decimal(position.avg_entry_price) == buy_price
    assert Decimal(position.cost_basis) == buy_price * 5
    current = Decimal(position.current_price)
    assert Decimal(position.market_value) == current * 5
    assert Decimal(position.unrealized_pl) == current * 5 - buy_price * 5
    assert [p.symbol for p in trading.get_all_positions()] == ["MSFT"]

    # A buy limit far below the market rests, and reserves buying power.
    limit = (buy_price * Decimal("0.5")).quantize(Decimal("0.01"))
    resting = trading.submit_order(
        LimitOrderRequest(
            symbol="MSFT", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=float(limit)
        )
    )
    assert resting.status == OrderStatus.NEW
    assert Decimal(trading.get_account().buying_power) == Decimal(trading.get_account().cash) - limit * 2
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [resting.id]

    new_limit = (limit - Decimal("1")).quantize(Decimal("0.01"))
    replacement = trading.replace_order_by_id(
        resting.id, ReplaceOrderRequest(qty=3, limit_price=float(new_limit))
    )
    assert replacement.replaces == resting.id
    assert replacement.qty == "3"
    assert Decimal(str(replacement.limit_price)) == new_limit
    old = trading.get_order_by_id(resting.id)
    assert old.status == OrderStatus.REPLACED
    assert old.replaced_by == replacement.id

    trading.cancel_order_by_id(replacement.id)
    canceled = trading.get_order_by_id(replacement.id)
    assert canceled.status == OrderStatus.CANCELED
    assert canceled.canceled_at is not None
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []

    sold = trading.submit_order(
        MarketOrderRequest(symbol="MSFT", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    assert sold.status == OrderStatus.FILLED
    sell_price = Decimal(str(sold.filled_avg_price))
    assert trading.get_all_positions() == []
    final = trading.get_account()
    assert Decimal(final.cash) == start_cash + (sell_price - buy_price) * 5
    assert Decimal(final.equity) == Decimal(final.cash)
    # Out of band: the broker holds exactly these four orders.
    statuses = [o["status"] for o in simulator.orders(sim_account.api_key)]
    assert statuses == ["filled", "replaced", "canceled", "filled"]


def test_list_orders_filters(trading: TradingClient) -> None:
    first = _buy(trading, "AAPL", 1)
    second = _buy(trading, "SPY", 1)
    far = trading.submit_order(
        LimitOrderRequest(
            symbol="KO", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.00
        )
    )
    all_orders = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in all_orders] == [far.id, second.id, first.id]  # newest first by default
    asc = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc"))
    assert [o.id for o in asc] == [first.id, second.id, far.id]
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))] == [
        second.id,
        first.id,
    ]
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [far.id]
    limited = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))
    assert [o.id for o in limited] == [far.id]
    only_spy = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["SPY"]))
    assert [o.id for o in only_spy] == [second.id]
    after = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, after=first.created_at))
    assert {o.id for o in after} == {second.id, far.id}
    until = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, until=second.created_at))
    assert [o.id for o in until] == [first.id]


def test_order_by_client_order_id(trading: TradingClient) -> None:
    order = _buy(trading, "NVDA", 1, client_order_id="my-strategy-0001")
    found = trading.get_order_by_client_id("my-strategy-0001")
    assert found.id == order.id
    assert found.client_order_id == "my-strategy-0001"


def test_cancel_all_orders_is_multi_status(trading: TradingClient) -> None:
    ids = {
        trading.submit_order(
            LimitOrderRequest(
                symbol=s, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.0
            )
        ).id
        for s in ("AAPL", "MSFT")
    }
    responses = trading.cancel_orders()
    assert {r.id for r in responses} == ids
    assert {r.status for r in responses} == {200}
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_close_position_by_qty_and_percentage(trading: TradingClient) -> None:
    _buy(trading, "TSLA", 10)
    by_qty = trading.close_position("TSLA", ClosePositionRequest(qty="4"))
    assert isinstance(by_qty, Order)
    assert by_qty.side == OrderSide.SELL
    assert by_qty.qty == "4"
    assert by_qty.status == OrderStatus.FILLED
    assert trading.get_open_position("TSLA").qty == "6"
    by_pct = trading.close_position("TSLA", ClosePositionRequest(percentage="50"))
    assert by_pct.qty == "3"
    assert trading.get_open_position("TSLA").qty == "3"
    rest = trading.close_position("TSLA")
    assert rest.qty == "3"
    assert trading.get_all_positions() == []


def test_close_all_positions(trading: TradingClient) -> None:
    _buy(trading, "AAPL", 2)
    _buy(trading, "AMZN", 3)
    trading.submit_order(
        LimitOrderRequest(
            symbol="KO", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.0
        )
    )
    results = trading.close_all_positions(cancel_orders=True)
    assert all(isinstance(r, ClosePositionResponse) for r in results)
    assert {r.symbol: r.status for r in results} == {"AAPL": 200, "AMZN": 200}
    assert {r.body.qty for r in results} == {"2", "3"}
    assert trading.get_all_positions() == []
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_fractional_and_notional_market_orders(trading: TradingClient) -> None:
    fractional = _buy(trading, "AAPL", 0.5)
    assert fractional.qty == "0.5"
    assert fractional.status == OrderStatus.FILLED
    notional = trading.submit_order(
        MarketOrderRequest(symbol="SPY", notional=1000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert notional.notional == "1000"
    assert notional.status == OrderStatus.FILLED
    filled_qty = Decimal(str(notional.filled_qty))
    assert 0 < filled_qty * Decimal(str(notional.filled_avg_price)) <= Decimal("1000")
    assert Decimal(trading.get_open_position("SPY").qty) == filled_qty


def test_crypto_order_and_position(trading: TradingClient) -> None:
    order = trading.submit_order(
        MarketOrderRequest(symbol="BTC/USD", qty=0.01, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    assert order.asset_class == AssetClass.CRYPTO
    assert order.status == OrderStatus.FILLED
    position = trading.get_open_position("BTCUSD")
    assert position.symbol == "BTCUSD"
    assert position.qty == "0.01"
    assert position.asset_class == AssetClass.CRYPTO
    assert trading.get_open_position("BTC/USD").asset_id == position.asset_id


def test_bracket_order_nested_legs(trading: TradingClient) -> None:
    price = Decimal(str(_buy(trading, "AAPL", 1).filled_avg_price))
    bracket = trading.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float((price * 2).quantize(Decimal("0.01")))),
            stop_loss=StopLossRequest(stop_price=float((price / 2).quantize(Decimal("0.01")))),
        )
    )
    assert bracket.order_class == OrderClass.BRACKET
    assert bracket.status == OrderStatus.FILLED
    assert bracket.legs is not None and len(bracket.legs) == 2
    legs = {leg.type: leg for leg in bracket.legs}
    assert set(legs) == {OrderType.LIMIT, OrderType.STOP}
    assert all(leg.side == OrderSide.SELL for leg in bracket.legs)
    # As on Alpaca: the take-profit works while the stop-loss waits, held, for its stop.
    assert (legs[OrderType.LIMIT].status, legs[OrderType.STOP].status) == (OrderStatus.NEW, OrderStatus.HELD)
    assert trading.get_order_by_id(bracket.id).legs is None  # legs roll up only when nested
    nested = trading.get_order_by_id(bracket.id, GetOrderByIdRequest(nested=True))
    assert {leg.id for leg in nested.legs or []} == {leg.id for leg in bracket.legs}
    open_nested = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert bracket.id in {o.id for o in open_nested}
    assert not {leg.id for leg in bracket.legs} & {o.id for o in open_nested}
    # Canceling the take-profit leaves the stop-loss as it was: held, still watched for its stop.
    trading.cancel_order_by_id(legs[OrderType.LIMIT].id)
    assert trading.get_order_by_id(legs[OrderType.STOP].id).status == OrderStatus.HELD


def test_clock_calendar_assets(trading: TradingClient) -> None:
    clock = trading.get_clock()
    assert isinstance(clock, Clock)
    assert clock.is_open is True  # the session simulator is always open
    assert clock.next_close > clock.timestamp
    days = trading.get_calendar(GetCalendarRequest(start=date(2025, 1, 6), end=date(2025, 1, 12)))
    assert all(isinstance(d, Calendar) for d in days)
    assert [d.date for d in days] == [date(2025, 1, 6) + timedelta(days=i) for i in range(5)]
    assert days[0].open.hour == 9 and days[0].open.minute == 30 and days[0].close.hour == 16
    assets = trading.get_all_assets()
    assert all(isinstance(a, Asset) for a in assets)
    symbols = {a.symbol for a in assets}
    assert {"AAPL", "SPY", "BTC/USD"} <= symbols
    crypto = trading.get_all_assets(GetAssetsRequest(asset_class=AssetClass.CRYPTO))
    assert {a.symbol for a in crypto} == {"BTC/USD", "ETH/USD", "SOL/USD"}
    aapl = trading.get_asset("AAPL")
    assert aapl.symbol == "AAPL" and aapl.fractionable and aapl.tradable
    assert trading.get_asset(str(aapl.id)).symbol == "AAPL"
    assert trading.get_asset("BTC/USD").asset_class == AssetClass.CRYPTO


def test_unknown_asset_is_404(trading: TradingClient) -> None:
    with pytest.raises(APIError) as caught:
        trading.get_asset("NOPE")
    assert caught.value.status_code == 404
    assert caught.value.code == 40410000


def test_portfolio_history_moves_with_fills(trading: TradingClient) -> None:
    bought = _buy(trading, "SPY", 10)
    fill_price = Decimal(str(bought.filled_avg_price))
    cash_after = Decimal("100000") - fill_price * 10
    history = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1D", timeframe="5Min"))
    assert isinstance(history, PortfolioHistory)
    assert history.timeframe == "5Min"
    assert len(history.timestamp) == len(history.equity) == len(history.profit_loss) > 100
    assert history.equity[0] == 100000.0
    assert history.base_value == 100000.0
    assert history.profit_loss[-1] == pytest.approx(history.equity[-1] - 100000.0)
    # The last window ends after the buy: its equity is the cash left plus 10 SPY at that moment.
    spy_value = Decimal(str(history.equity[-1])) - cash_after
    assert abs(spy_value / 10 - fill_price) < fill_price * Decimal("0.01")
    daily = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1M", timeframe="1D"))
    assert 18 <= len(daily.timestamp) <= 24


def test_fill_activities(trading: TradingClient) -> None:
    bought = _buy(trading, "AAPL", 3)
    sold = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    raw = trading.get("/account/activities", {"activity_types": "FILL"})
    activities = [TradeActivity(**item) for item in raw]
    assert [a.order_id for a in activities] == [sold.id, bought.id]  # newest first
    assert [(a.side, a.qty) for a in activities] == [(OrderSide.SELL, 1.0), (OrderSide.BUY, 3.0)]
    assert activities[1].price == float(bought.filled_avg_price)
    by_type = trading.get("/account/activities/FILL", {"direction": "asc", "page_size": 1})
    assert [item["order_id"] for item in by_type] == [str(bought.id)]
    assert trading.get("/account/activities", {"activity_types": "DIV"}) == []
