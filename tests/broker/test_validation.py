"""Argument errors are caught before anything is sent, with messages that say what to change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    InvalidRequestError,
    OrderRequest,
    ReplaceOrderRequest,
)
from tests.fixtures.network import dead_url

from .conftest import keys_for, make_client

BASE: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": 1}


def order(**changes: Any) -> dict[str, Any]:
    args = {**BASE, **changes}
    return {k: v for k, v in args.items() if v is not None}


BAD_ORDERS: list[tuple[str, dict[str, Any], str]] = [
    ("neither qty nor notional", order(qty=None), "exactly one of qty"),
    ("both qty and notional", order(notional=100), "exactly one of qty"),
    ("zero qty", order(qty=0), "greater than 0"),
    ("negative notional", order(qty=None, notional=-5), "greater than 0"),
    ("limit without price", order(type="limit"), "limit order needs limit_price"),
    (
        "stop_limit without limit",
        order(type="stop_limit", stop_price=5),
        "stop_limit order needs limit_price",
    ),
    ("stop without price", order(type="stop"), "stop order needs stop_price"),
    ("market with limit price", order(limit_price=5), "limit_price does not apply to a market order"),
    ("limit with stop price", order(type="limit", limit_price=5, stop_price=4), "stop_price does not apply"),
    ("trailing without trail", order(type="trailing_stop"), "exactly one of trail_price or trail_percent"),
    (
        "trailing with both trails",
        order(type="trailing_stop", trail_price=1, trail_percent=2),
        "exactly one of trail_price or trail_percent",
    ),
    (
        "trail on a limit order",
        order(type="limit", limit_price=5, trail_percent=1),
        "only to type='trailing_stop'",
    ),
    ("notional limit order", order(qty=None, notional=100, type="limit", limit_price=5), "notional"),
    ("notional gtc", order(qty=None, notional=100, time_in_force="gtc"), "time_in_force 'day'"),
    ("extended hours market", order(extended_hours=True), "extended_hours=true needs type='limit'"),
    (
        "extended hours ioc",
        order(extended_hours=True, type="limit", limit_price=5, time_in_force="ioc"),
        "extended_hours=true needs",
    ),
    ("opg stop", order(type="stop", stop_price=5, time_in_force="opg"), "opg"),
    ("crypto day order", order(symbol="BTC/USD"), "gtc' or 'ioc"),
    ("bracket without legs", order(order_class="bracket"), "both take_profit"),
    (
        "bracket without stop",
        order(order_class="bracket", take_profit={"limit_price": 300}),
        "both take_profit",
    ),
    (
        "legs on a simple order",
        order(take_profit={"limit_price": 300}),
        "need order_class 'bracket'",
    ),
    (
        "oto with both legs",
        order(order_class="oto", take_profit={"limit_price": 300}, stop_loss={"stop_price": 100}),
        "exactly one of take_profit or stop_loss",
    ),
    (
        "oco on market",
        order(order_class="oco", take_profit={"limit_price": 300}, stop_loss={"stop_price": 100}),
        "oco order must be type='limit'",
    ),
    (
        "buy bracket upside down",
        order(order_class="bracket", take_profit={"limit_price": 100}, stop_loss={"stop_price": 300}),
        "must be above",
    ),
    (
        "bracket ioc",
        order(
            order_class="bracket",
            time_in_force="ioc",
            take_profit={"limit_price": 300},
            stop_loss={"stop_price": 100},
        ),
        "bracket order needs time_in_force",
    ),
    ("path in symbol", order(symbol="../orders"), "not a valid symbol"),
    ("dot symbol", order(symbol=".."), "not a valid symbol"),
    ("unknown field", order(quantity=3), "Extra inputs are not permitted"),
    ("bad side", order(side="hold"), "'buy' or 'sell'"),
    ("long client_order_id", order(client_order_id="x" * 129), "at most 128"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), [(a, f) for _, a, f in BAD_ORDERS], ids=[n for n, _, _ in BAD_ORDERS]
)
def test_bad_order_arguments_are_refused(args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderRequest(**args)
    assert fragment in str(caught.value)


GOOD_ORDERS: list[dict[str, Any]] = [
    order(),
    order(qty=None, notional=Decimal("250.50")),
    order(qty=Decimal("0.5")),
    order(type="limit", limit_price=5, time_in_force="gtc", extended_hours=True),
    order(type="stop", stop_price=5, time_in_force="gtc"),
    order(type="stop_limit", stop_price=5, limit_price=4.9),
    order(type="trailing_stop", trail_percent=2),
    order(type="trailing_stop", trail_price=1, side="sell"),
    order(type="limit", limit_price=5, time_in_force="opg"),
    order(symbol="ETH/USD", qty=Decimal("0.25"), time_in_force="gtc"),
    order(
        order_class="bracket",
        take_profit={"limit_price": 300},
        stop_loss={"stop_price": 100, "limit_price": 99},
    ),
    order(
        side="sell", order_class="bracket", take_profit={"limit_price": 100}, stop_loss={"stop_price": 300}
    ),
    order(order_class="oto", type="limit", limit_price=190, stop_loss={"stop_price": 150}),
    order(
        order_class="oco",
        type="limit",
        limit_price=250,
        take_profit={"limit_price": 250},
        stop_loss={"stop_price": 100},
    ),
]


@pytest.mark.parametrize("args", GOOD_ORDERS)
def test_good_order_arguments_are_accepted(args: dict[str, Any]) -> None:
    request = OrderRequest(**args)
    body = request.to_alpaca("coid-1")
    assert body["client_order_id"] == "coid-1"
    assert body["symbol"] == args["symbol"].upper()
    # Money travels as exact decimal strings, never floats.
    assert all(not isinstance(v, float) for v in body.values())


def test_replace_needs_a_change() -> None:
    with pytest.raises(ValidationError, match="nothing to replace"):
        ReplaceOrderRequest(client_order_id="only-an-id")
    with pytest.raises(ValidationError, match="greater than 0"):
        ReplaceOrderRequest(limit_price=0)
    assert ReplaceOrderRequest(trail=Decimal("1.5")).to_alpaca("new") == {
        "trail": "1.5",
        "client_order_id": "new",
    }


@pytest.fixture
async def unreachable_client(simulator: Any) -> AsyncIterator[AlpacaClient]:
    """Points nowhere: any request it did send would fail as a connection error, not a ValueError."""
    dead = dead_url()
    client = make_client(simulator, paper_url=dead, live_url=dead, data_url=dead)
    yield client
    await client.aclose()


CLIENT_MISUSE: list[tuple[str, Callable[[AlpacaClient, AlpacaKeys], Awaitable[Any]], str]] = [
    # An order id that is a path would turn DELETE /v2/orders/{id} into DELETE /v2/orders (cancel all).
    ("order id path traversal", lambda c, k: c.cancel_order(k, "../orders"), "not an Alpaca order id"),
    ("order id not a uuid", lambda c, k: c.get_order(k, "12345"), "not an Alpaca order id"),
    (
        "replace bad id",
        lambda c, k: c.replace_order(k, "x", ReplaceOrderRequest(qty=1)),
        "not an Alpaca order id",
    ),
    ("symbol path traversal", lambda c, k: c.close_position(k, "../positions"), "not a valid symbol"),
    ("asset empty", lambda c, k: c.get_asset(k, ""), "not a valid symbol"),
    ("qty and percentage", lambda c, k: c.close_position(k, "AAPL", qty=1, percentage=50), "not both"),
    (
        "percentage over 100",
        lambda c, k: c.close_position(k, "AAPL", percentage=150),
        "percentage: must be greater than 0 and at most 100",
    ),
    (
        "qty not a number",
        lambda c, k: c.close_position(k, "AAPL", qty="lots"),
        "qty: must be greater than 0 and at most 1,000,000,000, with at most 9 decimal places (got something",
    ),
    ("bad timeframe", lambda c, k: c.get_bars(k, "AAPL", timeframe="7Day"), "1Min..59Min"),
    ("mixed bars", lambda c, k: c.get_bars(k, ["AAPL", "BTC/USD"]), "separate calls"),
    ("no symbols", lambda c, k: c.get_latest_quote(k, []), "at least one symbol"),
    ("bad symbol in list", lambda c, k: c.get_snapshot(k, ["AAPL", "A B"]), "not a valid symbol"),
    ("list limit", lambda c, k: c.list_orders(k, limit=0), "between 1 and 500"),
    ("history period", lambda c, k: c.get_portfolio_history(k, period="forever"), "period must look like"),
    (
        "history timeframe",
        lambda c, k: c.get_portfolio_history(k, timeframe="1Hour"),
        "timeframe must be one of",
    ),
    ("activity type", lambda c, k: c.get_activities(k, activity_types=["FILL&x=1"]), "activity_types"),
    ("client order id", lambda c, k: c.get_order_by_client_id(k, " "), "1 to 128"),
]


@pytest.mark.parametrize(
    ("call", "fragment"), [(c, f) for _, c, f in CLIENT_MISUSE], ids=[n for n, _, _ in CLIENT_MISUSE]
)
async def test_client_refuses_bad_arguments_before_sending(
    call: Callable[[AlpacaClient, AlpacaKeys], Awaitable[Any]],
    fragment: str,
    unreachable_client: AlpacaClient,
    sim_account: Any,
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(unreachable_client, keys_for(sim_account))
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


async def test_symbol_with_dots_cannot_climb_the_path(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    # BRK.B is a real ticker: dots inside a symbol are fine, it is only a leading dot that is refused.
    asset = await broker.get_asset(keys, "BRK.B")
    assert asset.symbol == "BRK.B"
