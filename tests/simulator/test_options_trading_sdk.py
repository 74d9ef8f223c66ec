"""alpaca-py's TradingClient trading options against the simulator: single legs, multi-leg orders,
covered writes, exercise and expiry, option levels; every answer parsed by the SDK's models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AssetClass,
    OrderClass,
    OrderSide,
    OrderStatus,
    PositionIntent,
    PositionSide,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import AccountConfiguration, Order, Position
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OptionLegRequest,
)

from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread
from alpaca_vault.simulator.assets import strikes
from tests.fixtures.simulator import SimAccount, SimulatorHandle
from tests.simulator.conftest import no_retries


def _friday(weeks: int = 1, today: date | None = None) -> date:
    today = today or datetime.now(ZoneInfo("America/New_York")).date()  # the simulator dates by New York
    return today + timedelta(days=(4 - today.weekday()) % 7 + 7 * weeks)


def _occ(underlying: str, kind: str, strike: int | Decimal, weeks: int = 1) -> str:
    return f"{underlying}{_friday(weeks):%y%m%d}{kind}{int(strike * 1000):08d}"


def _first_strike_above_spot(simulator: SimulatorHandle, account: SimAccount, underlying: str) -> Decimal:
    """A call strike a step or less out of the money: its premium is dollars, never rounded to nothing
    (a fixed far strike priced at 0.00 on the days the seeded price path ran low)."""
    with httpx2.Client(base_url=simulator.base_url, headers=account.headers) as client:
        spot = Decimal(str(client.get(f"/v2/stocks/{underlying}/trades/latest").json()["trade"]["p"]))
    return min(strike for strike in strikes(underlying) if strike >= spot)  # the grid the simulator lists


def _buy(trading: TradingClient, symbol: str, qty: int = 1, **kw: object) -> Order:
    order = trading.submit_order(
        MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, **kw)
    )
    assert isinstance(order, Order)
    return order


def test_single_leg_round_trip_moves_cash_by_the_multiplier(trading: TradingClient) -> None:
    call = _occ("AAPL", "C", 190)
    cash_before = Decimal(trading.get_account().cash)
    order = _buy(trading, call, qty=2)
    assert order.status == OrderStatus.FILLED and order.asset_class == AssetClass.US_OPTION
    assert order.position_intent == PositionIntent.BUY_TO_OPEN
    premium = Decimal(str(order.filled_avg_price))
    cash_after = Decimal(trading.get_account().cash)
    assert cash_before - cash_after == premium * 2 * 100
    position = trading.get_open_position(call)
    assert isinstance(position, Position)
    assert position.asset_class == AssetClass.US_OPTION and position.qty == "2"
    assert Decimal(position.cost_basis) == premium * 200
    assert Decimal(position.avg_entry_price) == premium
    sell = trading.submit_order(
        MarketOrderRequest(symbol=call, qty=2, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    assert sell.status == OrderStatus.FILLED and sell.position_intent == PositionIntent.SELL_TO_CLOSE
    assert Decimal(trading.get_account().cash) == cash_after + Decimal(str(sell.filled_avg_price)) * 200
    assert trading.get_all_positions() == []


def test_option_order_rules(
    trading: TradingClient, simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    call = _occ("SPY", "C", 520)
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    base = {"symbol": call, "side": "buy", "type": "market", "time_in_force": "day"}
    cases = [
        ({**base, "qty": "1.5"}, "whole-contract"),
        ({**base, "qty": "1", "time_in_force": "gtc"}, "DAY orders"),
        ({**base, "notional": "100"}, "notional orders are not supported"),
        ({**base, "qty": "1", "position_intent": "sell_to_open"}, "does not match side buy"),
    ]
    for body, expected in cases:
        answer = client.post("/v2/orders", json=body)
        assert answer.status_code == 422, body
        assert expected in answer.json()["message"]
    client.close()
    # A resting limit reserves premium x 100 of buying power and can be canceled.
    power = Decimal(trading.get_account().buying_power)
    limit = trading.submit_order(
        LimitOrderRequest(
            symbol=call, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=0.05
        )
    )
    assert limit.status == OrderStatus.NEW
    assert Decimal(trading.get_account().buying_power) == power - 5
    trading.cancel_order_by_id(limit.id)


def test_writing_calls_needs_shares_and_puts_need_cash(
    trading: TradingClient, simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    call = _occ("AAPL", "C", _first_strike_above_spot(simulator, sim_account, "AAPL"))
    with pytest.raises(APIError) as caught:
        trading.submit_order(
            MarketOrderRequest(symbol=call, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
        )
    assert caught.value.status_code == 403 and "uncovered call" in caught.value.message
    _buy(trading, "AAPL", qty=100)
    written = trading.submit_order(
        MarketOrderRequest(symbol=call, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
    )
    assert written.status == OrderStatus.FILLED and written.position_intent == PositionIntent.SELL_TO_OPEN
    short = trading.get_open_position(call)
    assert short.side == PositionSide.SHORT and short.qty == "-1" and Decimal(short.cost_basis) < 0
    with pytest.raises(APIError):  # the 100 shares already cover one call
        trading.submit_order(
            MarketOrderRequest(symbol=call, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
        )
    put = _occ("AAPL", "P", 150)
    secured = trading.submit_order(
        MarketOrderRequest(
            symbol=put,
            qty=1,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            position_intent=PositionIntent.SELL_TO_OPEN,
        )
    )
    assert secured.status == OrderStatus.FILLED
    # Closing a short buys it back.
    closed = trading.close_position(call)
    assert closed.side == OrderSide.BUY and closed.position_intent == PositionIntent.BUY_TO_CLOSE
    assert {p.symbol for p in trading.get_all_positions()} == {"AAPL", put}


def test_multi_leg_spread_opens_and_closes_together(trading: TradingClient) -> None:
    long_call, short_call = _occ("SPY", "C", 520, 2), _occ("SPY", "C", 530, 2)
    cash_before = Decimal(trading.get_account().cash)
    spread = trading.submit_order(
        MarketOrderRequest(
            qty=2,
            order_class=OrderClass.MLEG,
            time_in_force=TimeInForce.DAY,
            legs=[
                OptionLegRequest(symbol=long_call, ratio_qty=1, side=OrderSide.BUY),
                OptionLegRequest(symbol=short_call, ratio_qty=1, position_intent=PositionIntent.SELL_TO_OPEN),
            ],
        )
    )
    assert spread.order_class == OrderClass.MLEG and spread.status == OrderStatus.FILLED
    assert spread.symbol is None and spread.side is None  # a spread has no single asset, as on Alpaca
    assert spread.legs is not None and len(spread.legs) == 2
    by_symbol = {leg.symbol: leg for leg in spread.legs}
    assert by_symbol[long_call].position_intent == PositionIntent.BUY_TO_OPEN
    assert by_symbol[short_call].side == OrderSide.SELL and float(by_symbol[short_call].ratio_qty or 0) == 1
    assert all(leg.status == OrderStatus.FILLED and leg.qty == "2" for leg in spread.legs)
    net = Decimal(str(spread.filled_avg_price))
    assert 0 < net < 11  # a debit: at most the strikes' width plus the quotes' spread
    assert cash_before - Decimal(trading.get_account().cash) == net * 200
    positions = {p.symbol: p.qty for p in trading.get_all_positions()}
    assert positions == {long_call: "2", short_call: "-2"}
    nested = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert [o.id for o in nested] == [spread.id]
    closing = trading.submit_order(
        MarketOrderRequest(
            qty=2,
            order_class=OrderClass.MLEG,
            time_in_force=TimeInForce.DAY,
            legs=[
                OptionLegRequest(symbol=long_call, ratio_qty=1, position_intent=PositionIntent.SELL_TO_CLOSE),
                OptionLegRequest(symbol=short_call, ratio_qty=1, position_intent=PositionIntent.BUY_TO_CLOSE),
            ],
        )
    )
    assert closing.status == OrderStatus.FILLED
    assert trading.get_all_positions() == []


def test_multi_leg_limit_rests_until_its_net_price_and_ratio_quantities(trading: TradingClient) -> None:
    legs = [
        OptionLegRequest(symbol=_occ("QQQ", "P", 440, 3), ratio_qty=1, side=OrderSide.BUY),
        OptionLegRequest(symbol=_occ("QQQ", "P", 430, 3), ratio_qty=2, side=OrderSide.SELL),
    ]
    # The second short put is secured by cash; a credit of at least $1 a spread is asked.
    resting = trading.submit_order(
        LimitOrderRequest(
            qty=1, order_class=OrderClass.MLEG, time_in_force=TimeInForce.DAY, limit_price=-100, legs=legs
        )
    )
    assert resting.status == OrderStatus.NEW and resting.limit_price == "-100"
    assert resting.legs is not None and [leg.qty for leg in resting.legs] == ["1", "2"]
    with pytest.raises(APIError) as caught:  # all or nothing: a leg is not canceled alone
        trading.cancel_order_by_id(resting.legs[0].id)
    assert caught.value.status_code == 422 and "cancel the order" in caught.value.message
    canceled = trading.cancel_orders()
    assert [c.id for c in canceled] == [resting.id, *(leg.id for leg in resting.legs)]  # legs reported too
    assert trading.get_order_by_id(resting.id).status == OrderStatus.CANCELED


def test_multi_leg_refusals(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    leg = {"ratio_qty": "1", "side": "buy"}
    symbols = [_occ("AAPL", "C", s) for s in (180, 185, 190, 195, 200)]
    base = {"order_class": "mleg", "qty": "1", "type": "market", "time_in_force": "day"}
    cases = [
        ({**base, "legs": [{**leg, "symbol": s} for s in symbols]}, 422, "between 2 and 4 legs"),
        ({**base, "legs": [{**leg, "symbol": symbols[0]}] * 2}, 422, "unique symbols"),
        (
            {**base, "legs": [{**leg, "symbol": symbols[0]}, {**leg, "symbol": _occ("SPY", "C", 520)}]},
            422,
            "same underlying",
        ),
        (
            {
                **base,
                "legs": [
                    {**leg, "symbol": symbols[0]},
                    {"symbol": symbols[1], "ratio_qty": "2", "side": "sell"},
                ],
            },
            403,
            "uncovered call",
        ),
        (
            {**base, "legs": [{**leg, "symbol": symbols[0]}, {**leg, "symbol": "AAPL991231C00001000"}]},
            422,
            "not found",
        ),
    ]
    for body, status, expected in cases:
        answer = client.post("/v2/orders", json=body)
        assert answer.status_code == status, answer.text
        assert expected in answer.json()["message"]
    client.close()


def test_exercise_and_do_not_exercise(
    trading: TradingClient, simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    call = _occ("NVDA", "C", 85)  # deep in the money: NVDA trades near 120
    _buy(trading, call)
    cash = Decimal(trading.get_account().cash)
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    assert client.post(f"/v2/positions/{call}/do-not-exercise").status_code == 200
    client.close()
    trading.exercise_options_position(call)
    shares = trading.get_open_position("NVDA")
    assert shares.qty == "100" and Decimal(shares.avg_entry_price) == 85
    assert cash - Decimal(trading.get_account().cash) == 8500
    assert call not in {p.symbol for p in trading.get_all_positions()}
    with pytest.raises(APIError) as caught:
        trading.exercise_options_position(call)
    assert caught.value.status_code == 404
    contract = trading.get_option_contract(_occ("NVDA", "P", 85))
    with pytest.raises(APIError) as caught:
        trading.exercise_options_position(contract.id)
    assert caught.value.status_code == 404


def test_options_level_and_account_configuration(trading: TradingClient) -> None:
    config = trading.get_account_configurations()
    assert isinstance(config, AccountConfiguration) and config.max_options_trading_level == 3
    config.max_options_trading_level = 1
    updated = trading.set_account_configurations(config)
    assert updated.max_options_trading_level == 1
    assert trading.get_account().options_trading_level == 1
    with pytest.raises(APIError) as caught:
        _buy(trading, _occ("TSLA", "C", 240))
    assert caught.value.status_code == 403 and "options trading level 1" in caught.value.message


def test_close_all_positions_with_options_and_cancel_orders(trading: TradingClient) -> None:
    call = _occ("MSFT", "C", 410)
    _buy(trading, call)
    _buy(trading, "MSFT", qty=3)
    trading.submit_order(
        LimitOrderRequest(
            symbol="MSFT", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY, limit_price=9999
        )
    )
    results = trading.close_all_positions(cancel_orders=True)
    assert {r.symbol for r in results} == {call, "MSFT"} and all(r.status == 200 for r in results)
    assert trading.get_all_positions() == []
    assert trading.get_orders() == []


def test_expiry_exercises_in_the_money_and_expires_the_rest() -> None:
    app = create_app(SimulatorConfig())
    with serve_in_thread(app) as base_url:
        handle = SimulatorHandle(base_url)
        account = handle.new_account(cash="200000")
        trading = TradingClient(account.api_key, account.secret_key, paper=True, url_override=base_url)
        no_retries(trading)
        itm, otm = _occ("AAPL", "C", 140, 0), _occ("AAPL", "C", 245, 0)
        written = _occ("AAPL", "P", 245, 0)  # deep in the money: assigned
        _buy(trading, itm)
        _buy(trading, otm)
        trading.submit_order(
            MarketOrderRequest(symbol=written, qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY)
        )
        expiry = datetime.combine(_friday(0), datetime.min.time(), UTC) + timedelta(hours=22)
        handle.advance_clock((expiry - datetime.now(UTC)).total_seconds())
        positions = {p.symbol: p.qty for p in trading.get_all_positions()}
        assert positions == {"AAPL": "200"}  # 100 from the exercised call, 100 assigned by the put
        client = httpx2.Client(base_url=base_url, headers=account.headers)
        types = [a["activity_type"] for a in client.get("/v2/account/activities").json()]
        client.close()
        assert types.count("OPEXC") == 2 and types.count("OPASN") == 2 and types.count("OPEXP") == 1
        handle.close()
