"""Resting orders against the price path: limits, stops, trailing stops, brackets, OCO/OTO, IOC/FOK.

These tests move prices (pins) and time, so they use a simulator of their own instead of the
session one.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread
from alpaca_vault.simulator.assets import find_asset
from alpaca_vault.simulator.books import Account, Position
from alpaca_vault.simulator.clock import MarketClock
from alpaca_vault.simulator.intake import build_order
from alpaca_vault.simulator.matching import MatchingEngine
from alpaca_vault.simulator.prices import PricePath
from tests.fixtures.simulator import SimAccount, SimulatorHandle


@pytest.fixture(scope="module")
def market() -> Iterator[SimulatorHandle]:
    with serve_in_thread(create_app(SimulatorConfig(seed=11, liquidity=Decimal("1000")))) as base_url:
        handle = SimulatorHandle(base_url)
        yield handle
        handle.close()


class Trader:
    """A tiny wire-level client for one account."""

    def __init__(self, market: SimulatorHandle, account: SimAccount) -> None:
        self.market = market
        self.http = httpx2.Client(base_url=market.base_url, headers=account.headers, timeout=10)

    def order(self, symbol: str = "AAPL", qty: str = "10", side: str = "buy", **kw: Any) -> dict[str, Any]:
        body = {"symbol": symbol, "qty": qty, "side": side, "type": "market", "time_in_force": "gtc", **kw}
        response = self.http.post("/v2/orders", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def get(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get(f"/v2/orders/{order_id}", params={"nested": "true"}).json()
        return result

    def price(self, symbol: str = "AAPL") -> Decimal:
        return Decimal(str(self.http.get(f"/v2/stocks/{symbol}/trades/latest").json()["trade"]["p"]))

    def position_qty(self, symbol: str = "AAPL") -> str | None:
        response = self.http.get(f"/v2/positions/{symbol}")
        return response.json()["qty"] if response.status_code == 200 else None

    def cash(self) -> Decimal:
        return Decimal(self.http.get("/v2/account").json()["cash"])


@pytest.fixture
def trader(market: SimulatorHandle) -> Iterator[Trader]:
    trader = Trader(market, market.new_account(cash="1000000"))
    yield trader
    trader.http.close()
    for symbol in ("AAPL", "MSFT", "KO"):
        market.pin_price(symbol, None)


def test_price_path_is_deterministic_per_seed() -> None:
    t = 1_750_000_000.0
    assert PricePath(7).price("AAPL", t) == PricePath(7).price("AAPL", t)
    assert PricePath(7).price("AAPL", t) != PricePath(8).price("AAPL", t)
    prices = {PricePath(7).price("AAPL", t + 60 * i) for i in range(60)}
    assert len(prices) > 30  # it moves


def test_resting_limit_fills_when_the_path_crosses_it(trader: Trader, market: SimulatorHandle) -> None:
    limit = (trader.price("MSFT") * Decimal("0.997")).quantize(Decimal("0.01"))
    order = trader.order("MSFT", qty="3", type="limit", limit_price=str(limit))
    assert order["status"] == "new"
    for _ in range(500):
        market.advance_clock(300)
        order = trader.get(order["id"])
        if order["status"] != "new":
            break
    assert order["status"] == "filled"
    assert Decimal(order["filled_avg_price"]) == limit  # a resting limit fills at its price
    assert trader.position_qty("MSFT") == "3"


def test_marketable_limit_fills_at_the_touch(trader: Trader) -> None:
    price = trader.price()
    order = trader.order(type="limit", limit_price=str(price * 2))
    assert order["status"] == "filled"
    assert Decimal(order["filled_avg_price"]) < price * 2


def test_stop_sell_triggers_when_price_falls(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    trader.order(qty="10")
    stop = trader.order(qty="10", side="sell", type="stop", stop_price="95")
    assert stop["status"] == "new"
    market.pin_price("AAPL", "90")
    filled = trader.get(stop["id"])
    assert filled["status"] == "filled"
    assert filled["filled_avg_price"] == "89.99"  # a triggered stop sells at the bid
    assert trader.position_qty() is None


def test_stop_limit_waits_for_its_limit_after_triggering(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    order = trader.order(qty="1", type="stop_limit", stop_price="110", limit_price="111")
    market.pin_price("AAPL", "115")  # stop hit, but above the limit: no fill
    assert trader.get(order["id"])["status"] == "new"
    market.pin_price("AAPL", "110.50")
    filled = trader.get(order["id"])
    assert filled["status"] == "filled"
    assert filled["filled_avg_price"] == "111"


def test_trailing_stop_follows_the_high_water_mark(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    trader.order(qty="5")
    trailing = trader.order(qty="5", side="sell", type="trailing_stop", trail_percent="5")
    assert trailing["hwm"] == "100"
    market.pin_price("AAPL", "120")
    moved = trader.get(trailing["id"])
    assert (moved["status"], moved["hwm"], moved["stop_price"]) == ("new", "120", "114")
    market.pin_price("AAPL", "115")
    assert trader.get(trailing["id"])["status"] == "new"
    market.pin_price("AAPL", "113")
    assert trader.get(trailing["id"])["status"] == "filled"


def test_bracket_take_profit_cancels_the_stop(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    cash = trader.cash()
    bracket = trader.order(
        qty="10", order_class="bracket", take_profit={"limit_price": "110"}, stop_loss={"stop_price": "90"}
    )
    legs = {leg["type"]: leg for leg in bracket["legs"]}
    assert bracket["status"] == "filled"
    # As on Alpaca: the take-profit works, the stop-loss waits its turn (one quantity for the pair).
    assert (legs["limit"]["status"], legs["stop"]["status"]) == ("new", "held")
    market.pin_price("AAPL", "112")
    take_profit, stop_loss = trader.get(legs["limit"]["id"]), trader.get(legs["stop"]["id"])
    assert take_profit["status"] == "filled"
    assert take_profit["filled_avg_price"] == "110"
    assert stop_loss["status"] == "canceled"
    assert trader.position_qty() is None
    assert trader.cash() == cash + (Decimal("110") - Decimal("100.01")) * 10


def test_bracket_legs_are_held_until_the_entry_fills(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    bracket = trader.order(
        qty="2",
        type="limit",
        limit_price="95",
        order_class="bracket",
        take_profit={"limit_price": "105"},
        stop_loss={"stop_price": "90", "limit_price": "89"},
    )
    assert bracket["status"] == "new"
    assert {leg["status"] for leg in bracket["legs"]} == {"held"}
    assert {leg["type"] for leg in bracket["legs"]} == {"limit", "stop_limit"}
    market.pin_price("AAPL", "94")
    entry = trader.get(bracket["id"])
    assert entry["status"] == "filled"
    legs = {leg["type"]: leg for leg in entry["legs"]}
    assert (legs["limit"]["status"], legs["stop_limit"]["status"]) == ("new", "held")
    # The stop is reached but the bid is below the stop-loss limit: the stop-loss goes to work
    # ("new") and replaces the take-profit; it fills once the bid is back at its limit.
    market.pin_price("AAPL", "88")
    take_profit, stop_loss = trader.get(legs["limit"]["id"]), trader.get(legs["stop_limit"]["id"])
    assert (stop_loss["status"], stop_loss["filled_qty"]) == ("new", "0")
    assert take_profit["status"] == "replaced"
    assert take_profit["replaced_by"] == stop_loss["id"] and take_profit["replaced_at"] is not None
    market.pin_price("AAPL", "89.5")
    stop_loss = trader.get(legs["stop_limit"]["id"])
    assert (stop_loss["status"], stop_loss["filled_qty"], stop_loss["filled_avg_price"]) == (
        "filled",
        "2",
        "89",
    )
    assert trader.get(legs["limit"]["id"])["status"] == "replaced"
    market.pin_price("AAPL", "200")  # the replaced take-profit never fills
    assert trader.get(legs["limit"]["id"])["filled_qty"] == "0"


def test_bracket_stop_loss_triggers_from_held(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    cash = trader.cash()
    bracket = trader.order(
        qty="3", order_class="bracket", take_profit={"limit_price": "110"}, stop_loss={"stop_price": "90"}
    )
    legs = {leg["type"]: leg for leg in bracket["legs"]}
    assert legs["stop"]["status"] == "held"
    market.pin_price("AAPL", "95")  # above the stop: still held
    assert trader.get(legs["stop"]["id"])["status"] == "held"
    market.pin_price("AAPL", "89")
    take_profit, stop_loss = trader.get(legs["limit"]["id"]), trader.get(legs["stop"]["id"])
    assert (stop_loss["status"], stop_loss["filled_qty"]) == ("filled", "3")
    assert (take_profit["status"], take_profit["replaced_by"]) == ("replaced", stop_loss["id"])
    assert trader.position_qty() is None
    sold_at = Decimal(stop_loss["filled_avg_price"])
    assert trader.cash() == cash - Decimal("100.01") * 3 + sold_at * 3


def test_bracket_prices_must_straddle_the_entry(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    response = trader.http.post(
        "/v2/orders",
        json={
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "gtc",
            "order_class": "bracket",
            "take_profit": {"limit_price": "99"},
            "stop_loss": {"stop_price": "90"},
        },
    )
    assert response.status_code == 422
    assert response.json()["message"].startswith("take_profit.limit_price must be >= base_price + 0.01")


def _long_ko_with_an_oco_exit(trader: Trader, market: SimulatorHandle) -> dict[str, Any]:
    """10 KO bought at 60, then an OCO exit: take profit at 66, stop loss at 57."""
    market.pin_price("KO", "60")
    trader.order("KO", qty="10")
    oco = trader.order(
        "KO",
        qty="10",
        side="sell",
        type="limit",
        order_class="oco",
        take_profit={"limit_price": "66"},
        stop_loss={"stop_price": "57"},
    )
    return oco


def test_oco_stop_leg_cancels_the_take_profit(trader: Trader, market: SimulatorHandle) -> None:
    oco = _long_ko_with_an_oco_exit(trader, market)
    # The order is the take-profit limit and works; its stop-loss leg is held, watched for its stop.
    assert oco["status"] == "new" and oco["legs"][0]["status"] == "held"
    market.pin_price("KO", "58")
    assert trader.get(oco["id"])["legs"][0]["status"] == "held"
    market.pin_price("KO", "56")
    parent = trader.get(oco["id"])
    assert (parent["status"], parent["replaced_by"]) == ("replaced", parent["legs"][0]["id"])
    assert parent["legs"][0]["status"] == "filled"
    assert trader.position_qty("KO") is None


def test_oco_take_profit_cancels_the_held_stop(trader: Trader, market: SimulatorHandle) -> None:
    oco = _long_ko_with_an_oco_exit(trader, market)
    market.pin_price("KO", "67")
    parent = trader.get(oco["id"])
    assert (parent["status"], parent["filled_qty"]) == ("filled", "10")
    assert parent["legs"][0]["status"] == "canceled"
    assert trader.position_qty("KO") is None


def test_oto_arms_its_single_leg(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    oto = trader.order(qty="4", order_class="oto", stop_loss={"stop_price": "80"})
    assert oto["status"] == "filled"
    assert [(leg["type"], leg["status"]) for leg in oto["legs"]] == [("stop", "new")]


@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_unmarketable_ioc_and_fok_cancel_at_once(trader: Trader, market: SimulatorHandle, tif: str) -> None:
    market.pin_price("AAPL", "100")
    order = trader.order(qty="1", type="limit", limit_price="50", time_in_force=tif)
    assert order["status"] == "canceled"
    filled = trader.order(qty="1", type="limit", limit_price="150", time_in_force=tif)
    assert filled["status"] == "filled"


def test_large_resting_order_fills_in_parts(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("KO", "60")
    order = trader.order("KO", qty="10000", type="limit", limit_price="55")
    assert order["status"] == "new"
    market.pin_price("KO", "54")
    market.advance_clock(5)
    partial = trader.get(order["id"])
    # 1,000 shares per second of crossing: about 5,000 of the 10,000 after five seconds.
    assert partial["status"] == "partially_filled"
    assert 5000 <= int(partial["filled_qty"]) < 6000
    assert 5000 <= int(trader.position_qty("KO") or 0) < 6000
    fills = trader.http.get("/v2/account/activities/FILL", params={"direction": "asc"}).json()
    assert fills[-1]["type"] == "partial_fill"
    assert Decimal(fills[-1]["leaves_qty"]) + Decimal(fills[-1]["cum_qty"]) == 10000
    market.advance_clock(60)
    done = trader.get(order["id"])
    assert (done["status"], done["filled_qty"], done["filled_avg_price"]) == ("filled", "10000", "55")
    assert trader.position_qty("KO") == "10000"


def test_canceling_a_partial_fill_keeps_what_was_filled(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("KO", "60")
    order = trader.order("KO", qty="10000", type="limit", limit_price="55")
    market.pin_price("KO", "54")
    market.advance_clock(3)
    assert trader.http.delete(f"/v2/orders/{order['id']}").status_code == 204
    canceled = trader.get(order["id"])
    assert canceled["status"] == "canceled"
    assert 3000 <= int(canceled["filled_qty"]) < 4000
    assert trader.position_qty("KO") == canceled["filled_qty"]


def test_stop_buy_beyond_cash_is_rejected_at_execution(market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "95")
    try:
        trader = Trader(market, market.new_account(cash="1000"))
        order = trader.order(qty="9", type="stop", stop_price="100")  # reserves 9 x 100
        market.pin_price("AAPL", "120")  # triggers; 9 x 120.01 is more than the cash
        rejected = trader.get(order["id"])
        assert rejected["status"] == "rejected"
        assert rejected["failed_at"] is not None
        assert trader.cash() == Decimal("1000")
        assert trader.position_qty() is None
    finally:
        market.pin_price("AAPL", None)


def test_replace_checks_funds_without_the_old_order(market: SimulatorHandle) -> None:
    market.pin_price("KO", "60")
    try:
        trader = Trader(market, market.new_account(cash="1000"))
        resting = trader.order("KO", qty="15", type="limit", limit_price="50")  # holds 750
        bigger = trader.http.patch(
            f"/v2/orders/{resting['id']}", json={"qty": "19"}
        )  # 950: fits once 750 is freed
        assert bigger.status_code == 200, bigger.text
        too_big = trader.http.patch(f"/v2/orders/{bigger.json()['id']}", json={"qty": "30"})
        assert too_big.status_code == 403
        assert too_big.json()["message"] == "insufficient buying power"
        # The refused replace leaves the order working: it still fills when the price comes down.
        market.pin_price("KO", "49")
        still = trader.get(bigger.json()["id"])
        assert (still["status"], still["filled_qty"]) == ("filled", "19")
    finally:
        market.pin_price("KO", None)


def test_replace_sell_limited_to_the_position(trader: Trader, market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")
    trader.order(qty="10")
    exit_order = trader.order(qty="5", side="sell", type="limit", limit_price="150")
    grown = trader.http.patch(f"/v2/orders/{exit_order['id']}", json={"qty": "10"})
    assert grown.status_code == 200
    refused = trader.http.patch(f"/v2/orders/{grown.json()['id']}", json={"qty": "11"})
    assert refused.status_code == 403
    assert refused.json()["message"] == "insufficient qty available for order (requested: 11, available: 10)"
    stale = trader.http.patch(f"/v2/orders/{exit_order['id']}", json={"qty": "9"})
    assert stale.status_code == 422
    assert stale.json()["message"] == 'order is already in "replaced" state'


def test_replace_oco_take_profit(trader: Trader, market: SimulatorHandle) -> None:
    oco = _long_ko_with_an_oco_exit(trader, market)
    replaced = trader.http.patch(f"/v2/orders/{oco['id']}", json={"limit_price": "65"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["limit_price"] == "65"
    market.pin_price("KO", "65.50")
    assert trader.get(replaced.json()["id"])["status"] == "filled"


def test_concurrent_orders_never_overspend(market: SimulatorHandle) -> None:
    market.pin_price("AAPL", "100")  # ask 100.01
    try:
        account = market.new_account(cash="2000.20")  # exactly 20 shares
        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}

        limits = httpx2.Limits(max_connections=16)
        with httpx2.Client(base_url=market.base_url, headers=account.headers, limits=limits) as client:

            def buy(_: int) -> int:
                return client.post("/v2/orders", json=body).status_code

            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                codes = list(pool.map(buy, range(50)))
        assert codes.count(200) == 20
        assert codes.count(403) == 30
        details = httpx2.get(market.base_url + "/v2/account", headers=account.headers).json()
        assert details["cash"] == "0.00"
        position = httpx2.get(market.base_url + "/v2/positions/AAPL", headers=account.headers).json()
        assert position["qty"] == "20"
        assert len(market.orders(account.api_key)) == 20
    finally:
        market.pin_price("AAPL", None)


def test_exchange_hours_clock() -> None:
    """Closed at the weekend: orders wait as accepted, fill at the open, day orders expire at the close."""
    with serve_in_thread(create_app(SimulatorConfig(clock="exchange_hours"))) as base_url:
        handle = SimulatorHandle(base_url)
        account = handle.new_account()
        http = httpx2.Client(base_url=base_url, headers=account.headers)
        clock = http.get("/v2/clock").json()
        # Move to the Saturday after the next open.
        from datetime import datetime, timedelta

        next_open = datetime.fromisoformat(clock["next_open"])
        now = datetime.fromisoformat(clock["timestamp"])
        saturday = next_open + timedelta(days=(5 - next_open.weekday()) % 7, hours=3)
        handle.advance_clock((saturday - now).total_seconds())
        weekend = http.get("/v2/clock").json()
        assert weekend["is_open"] is False
        monday_open = datetime.fromisoformat(weekend["next_open"])
        assert monday_open.weekday() == 0 and (monday_open.hour, monday_open.minute) == (9, 30)

        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
        waiting = http.post("/v2/orders", json=body).json()
        assert waiting["status"] == "accepted"
        far = http.post("/v2/orders", json={**body, "type": "limit", "limit_price": "1"}).json()
        crypto = http.post(
            "/v2/orders", json={**body, "symbol": "BTC/USD", "qty": "0.001", "time_in_force": "gtc"}
        ).json()
        assert crypto["status"] == "filled"  # crypto trades around the clock

        handle.advance_clock(
            (monday_open - datetime.fromisoformat(weekend["timestamp"])).total_seconds() + 60
        )
        opened = http.get(f"/v2/orders/{waiting['id']}").json()
        assert opened["status"] == "filled"
        assert datetime.fromisoformat(opened["filled_at"].replace("Z", "+00:00")) >= monday_open
        handle.advance_clock(7 * 3600)  # past 16:00
        expired = http.get(f"/v2/orders/{far['id']}").json()
        assert expired["status"] == "expired"
        assert expired["expired_at"] is not None
        http.close()
        handle.close()


def test_a_late_read_fills_the_stop_loss_that_came_first() -> None:
    """Read once after half an hour in which the path fell through an OCO's stop and later rose to its
    take-profit: the stop-loss took over first, so it fills and the take-profit is replaced, unfilled,
    as if every second had been watched (resting orders are matched lazily, order by order)."""
    prices, clock = PricePath(seed=11), MarketClock()
    engine = MatchingEngine(prices, clock, Decimal(10**6))
    asset = find_asset("AAPL")
    assert asset is not None
    span = 1800
    for start in range(1_780_000_000, 1_780_000_000 + 400 * 600, 600):
        grid = [start + i + 1.0 for i in range(span)]
        trades = [prices.price("AAPL", t) for t in grid]
        bids = [prices.quote("AAPL", t)[0] for t in grid]
        low = trades.index(min(trades))  # the first moment at the window's low
        if low == 0 or low == span - 1:
            continue
        stop, take_profit = trades[low], max(bids[low + 1 :])
        if take_profit > max(bids[: low + 1]) and take_profit > prices.quote("AAPL", start)[0] + 1:
            break
    else:
        pytest.fail("no stretch of the path falls to a low and then rises to a new high")
    account = Account("a", "k", "s", "1", "ACTIVE", Decimal(0), Decimal(0), float(start))
    account.positions["AAPL"] = Position(asset, Decimal(10), Decimal(1000))
    body = {
        "symbol": "AAPL", "qty": "10", "side": "sell", "type": "limit", "time_in_force": "gtc",
        "order_class": "oco", "take_profit": {"limit_price": str(take_profit)},
        "stop_loss": {"stop_price": str(stop)},
    }  # fmt: skip
    oco = build_order(account, body, prices, float(start))
    engine.accept(account, oco, float(start))
    for order in (oco, *oco.legs):
        engine.evaluate(account, order, float(start), float(start), submitting=True)
    assert (oco.status, oco.legs[0].status) == ("new", "held")
    engine.sync(account, float(start + span))
    stop_loss = oco.legs[0]
    assert (stop_loss.status, stop_loss.filled_at) == ("filled", grid[low])
    assert (oco.status, oco.replaced_at, oco.filled_qty) == ("replaced", grid[low], 0)
    assert "AAPL" not in account.positions


def test_stop_loss_takes_over_what_a_partial_take_profit_left(market: SimulatorHandle) -> None:
    market.pin_price("KO", "60")
    try:
        trader = Trader(market, market.new_account(cash="100000"))
        bracket = trader.order(
            "KO", qty="1500", order_class="bracket",
            take_profit={"limit_price": "66"}, stop_loss={"stop_price": "55"},
        )  # fmt: skip
        legs = {leg["type"]: leg["id"] for leg in bracket["legs"]}
        market.pin_price("KO", "67")  # one second's liquidity: 1,000 of the 1,500 sold at 66
        take_profit = trader.get(legs["limit"])
        assert (take_profit["status"], take_profit["filled_qty"]) == ("partially_filled", "1000")
        market.pin_price("KO", "50")
        stop_loss = trader.get(legs["stop"])
        assert (stop_loss["status"], stop_loss["qty"], stop_loss["filled_qty"]) == ("filled", "500", "500")
        assert trader.get(legs["limit"])["status"] == "replaced"
        assert trader.position_qty("KO") is None
    finally:
        market.pin_price("KO", None)
