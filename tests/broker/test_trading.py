"""Every trading method's main path against the simulator, parsed into our models."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import (
    Account,
    AlpacaClient,
    AlpacaKeys,
    AlpacaNotFound,
    Asset,
    CalendarDay,
    Clock,
    Order,
    OrderRequest,
    Position,
    ReplaceOrderRequest,
)


def far_limit_buy(symbol: str = "AAPL", **extra: Any) -> OrderRequest:
    """A limit buy far below the market: it rests open and never fills."""
    return OrderRequest(symbol=symbol, side="buy", type="limit", limit_price=Decimal("1.00"), qty=1, **extra)


async def test_get_account_parses_money_as_decimal(
    broker: AlpacaClient, keys: AlpacaKeys, sim_account: Any
) -> None:
    account = await broker.get_account(keys)
    assert isinstance(account, Account)
    assert account.account_number == sim_account.account_number
    assert account.status == "ACTIVE"
    assert account.cash == Decimal("100000")
    assert account.buying_power is not None and account.buying_power >= Decimal("100000")


async def test_market_order_fills_and_shows_as_position(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    order = await broker.place_order(keys, OrderRequest(symbol="aapl", side="buy", qty=3))
    assert isinstance(order, Order)
    assert order.symbol == "AAPL"
    assert order.side == "buy"
    assert order.qty == Decimal("3")
    # A generated client_order_id travels with the order and comes back on the result.
    assert uuid.UUID(order.client_order_id)
    assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [order.id]

    filled = await broker.get_order(keys, order.id)
    assert filled.status == "filled"
    assert filled.filled_qty == Decimal("3")

    positions = await broker.get_positions(keys)
    assert [(p.symbol, p.qty) for p in positions] == [("AAPL", Decimal("3"))]
    position = await broker.get_position(keys, "AAPL")
    assert isinstance(position, Position)
    assert position.qty == Decimal("3")
    assert position.avg_entry_price == filled.filled_avg_price


async def test_given_client_order_id_is_used_and_found(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    client_order_id = f"mine-{uuid.uuid4()}"
    order = await broker.place_order(keys, far_limit_buy(client_order_id=client_order_id))
    assert order.client_order_id == client_order_id
    found = await broker.get_order_by_client_id(keys, client_order_id)
    assert found.id == order.id
    assert found.status in ("new", "accepted")
    assert found.limit_price == Decimal("1.00")


async def test_list_orders_filters(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    resting = await broker.place_order(keys, far_limit_buy("MSFT"))
    filled = await broker.place_order(keys, OrderRequest(symbol="KO", side="buy", qty=1))

    open_orders = await broker.list_orders(keys)
    assert [o.id for o in open_orders] == [resting.id]
    closed = await broker.list_orders(keys, status="closed")
    assert [o.id for o in closed] == [filled.id]
    everything = await broker.list_orders(keys, status="all", direction="asc", limit=10)
    assert [o.id for o in everything] == [resting.id, filled.id]
    only_ko = await broker.list_orders(keys, status="all", symbols=["ko"])
    assert [o.id for o in only_ko] == [filled.id]
    later = await broker.list_orders(keys, status="all", after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert later == []


async def test_bracket_order_has_legs(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    quote = (await broker.get_latest_quote(keys, "SPY"))["SPY"]
    assert quote.ask_price is not None
    price = quote.ask_price
    order = await broker.place_order(
        keys,
        OrderRequest(
            symbol="SPY",
            side="buy",
            qty=1,
            type="limit",
            limit_price=(price * Decimal("0.5")).quantize(Decimal("0.01")),
            order_class="bracket",
            take_profit={"limit_price": (price * Decimal("2")).quantize(Decimal("0.01"))},
            stop_loss={"stop_price": (price * Decimal("0.25")).quantize(Decimal("0.01"))},
        ),
    )
    assert order.order_class == "bracket"
    assert order.legs is not None and len(order.legs) == 2
    assert {leg.type for leg in order.legs} == {"limit", "stop"}
    nested = await broker.list_orders(keys, nested=True)
    assert [o.id for o in nested] == [order.id]
    assert nested[0].legs is not None and len(nested[0].legs) == 2


async def test_replace_order_returns_the_new_order(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    original = await broker.place_order(keys, far_limit_buy())
    replacement = await broker.replace_order(
        keys, original.id, ReplaceOrderRequest(limit_price=Decimal("2.00"), qty=Decimal("2"))
    )
    assert replacement.id != original.id
    assert replacement.replaces == original.id
    assert replacement.limit_price == Decimal("2.00")
    assert replacement.qty == Decimal("2")
    assert uuid.UUID(replacement.client_order_id)
    assert (await broker.get_order(keys, original.id)).status == "replaced"


async def test_cancel_order_and_cancel_all(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    first = await broker.place_order(keys, far_limit_buy("AAPL"))
    second = await broker.place_order(keys, far_limit_buy("MSFT"))
    third = await broker.place_order(keys, far_limit_buy("NVDA"))

    await broker.cancel_order(keys, first.id)
    assert (await broker.get_order(keys, first.id)).status == "canceled"
    # Cancelling again is a no-op, not an error: the order is canceled either way.
    await broker.cancel_order(keys, first.id)
    assert (await broker.get_order(keys, first.id)).status == "canceled"

    results = await broker.cancel_all_orders(keys)
    assert sorted(r.id for r in results) == sorted([second.id, third.id])
    assert all(r.ok for r in results)
    assert await broker.list_orders(keys) == []


async def test_close_position_partly_then_all(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=10))
    await broker.place_order(
        keys, OrderRequest(symbol="BTC/USD", side="buy", qty=Decimal("0.01"), time_in_force="gtc")
    )

    closing = await broker.close_position(keys, "AAPL", qty=4)
    assert closing.side == "sell"
    assert closing.qty == Decimal("4")
    assert (await broker.get_position(keys, "AAPL")).qty == Decimal("6")
    half = await broker.close_position(keys, "AAPL", percentage=50)
    assert half.qty == Decimal("3")

    crypto = await broker.get_position(keys, "BTC/USD")
    assert crypto.qty == Decimal("0.01")

    results = await broker.close_all_positions(keys, cancel_orders=True)
    assert sorted(r.symbol for r in results) == ["AAPL", "BTCUSD"]
    assert all(r.ok and r.order is not None and r.order.side == "sell" for r in results)
    assert await broker.get_positions(keys) == []
    with pytest.raises(AlpacaNotFound):
        await broker.get_position(keys, "AAPL")


async def test_clock_calendar_asset(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    clock = await broker.get_clock(keys)
    assert isinstance(clock, Clock)
    assert clock.next_open.tzinfo is not None

    days = await broker.get_calendar(keys, start=dt.date(2024, 7, 1), end=dt.date(2024, 7, 8))
    assert all(isinstance(d, CalendarDay) for d in days)
    dates = [d.date for d in days]
    assert dt.date(2024, 7, 1) in dates and dt.date(2024, 7, 6) not in dates  # Monday yes, Saturday no
    assert all(d.weekday() < 5 for d in dates)
    assert days[0].open == "09:30"

    asset = await broker.get_asset(keys, "brk.b")
    assert isinstance(asset, Asset)
    assert (asset.symbol, asset.asset_class, asset.tradable) == ("BRK.B", "us_equity", True)
    coin = await broker.get_asset(keys, "BTC/USD")
    assert coin.asset_class == "crypto"
    with pytest.raises(AlpacaNotFound):
        await broker.get_asset(keys, "NOPE")


async def test_portfolio_history_and_activities(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    order = await broker.place_order(keys, OrderRequest(symbol="KO", side="buy", qty=2))
    history = await broker.get_portfolio_history(keys, period="1D", timeframe="5Min")
    assert len(history.timestamp) == len(history.equity) == len(history.profit_loss)
    assert history.timeframe == "5Min"
    assert history.equity and history.equity[-1] is not None and history.equity[-1] > 0

    activities = await broker.get_activities(keys, activity_types=["fill"])
    assert [(a.activity_type, a.order_id, a.qty, a.symbol) for a in activities] == [
        ("FILL", order.id, Decimal("2"), "KO")
    ]


async def test_live_trading_switch_is_a_second_wall(simulator: Any, sim_account: Any) -> None:
    from alpaca_vault.broker import LiveTradingDisabled

    from .conftest import keys_for, make_client

    client = make_client(simulator, allow_live_trading=False)
    live, paper = keys_for(sim_account, environment="live"), keys_for(sim_account)
    resting = far_limit_buy()
    try:
        assert (await client.get_account(live)).status == "ACTIVE"  # reading is fine
        with pytest.raises(LiveTradingDisabled, match="place an order") as caught:
            await client.place_order(live, resting)
        assert caught.value.action == "place an order"
        assert str(caught.value) == (
            "Refused to place an order with a live-environment credential: live trading is disabled."
        )
        for attempt in (
            client.cancel_all_orders(live),
            client.close_all_positions(live),
            client.close_position(live, "AAPL"),
            client.cancel_order(live, str(uuid.uuid4())),
            client.replace_order(live, str(uuid.uuid4()), ReplaceOrderRequest(qty=Decimal(1))),
        ):
            with pytest.raises(LiveTradingDisabled):
                await attempt
        assert simulator.orders(sim_account.api_key) == []
        placed = await client.place_order(paper, resting)  # paper keys are not affected
        assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [placed.id]
    finally:
        await client.aclose()
