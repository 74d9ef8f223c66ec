"""Crypto orders through alpaca-py: notional buys, fractional gtc limits, ioc, and the rules of the class."""

from __future__ import annotations

from decimal import Decimal

import httpx2
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def test_notional_buy_then_fractional_gtc_limit_sell(trading: TradingClient) -> None:
    bought = trading.submit_order(
        MarketOrderRequest(symbol="ETH/USD", notional=500, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    assert bought.status == OrderStatus.FILLED and bought.notional == "500"
    held = Decimal(trading.get_open_position("ETHUSD").qty)
    assert 0 < held < 1 and held * Decimal(str(bought.filled_avg_price)) <= 500
    half = (held / 2).quantize(Decimal("0.000000001"))
    resting = trading.submit_order(
        LimitOrderRequest(
            symbol="ETH/USD",
            qty=float(half),
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            limit_price=99999,
        )
    )
    assert resting.status == OrderStatus.NEW and resting.time_in_force == TimeInForce.GTC
    assert Decimal(trading.get_open_position("ETH/USD").qty_available) == held - half
    unfilled = trading.submit_order(
        LimitOrderRequest(
            symbol="SOL/USD", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.IOC, limit_price=1
        )
    )
    assert unfilled.status == OrderStatus.CANCELED  # ioc: whatever does not fill at once is canceled


def test_crypto_rules(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    base = {"symbol": "BTC/USD", "side": "buy", "qty": "0.001"}
    cases = [
        ({**base, "type": "market", "time_in_force": "day"}, "gtc or ioc"),
        ({**base, "type": "stop", "stop_price": "1", "time_in_force": "gtc"}, "not supported for crypto"),
        (
            {**base, "type": "trailing_stop", "trail_percent": "1", "time_in_force": "gtc"},
            "not supported for crypto",
        ),
    ]
    for body, text in cases:
        answer = client.post("/v2/orders", json=body)
        assert answer.status_code == 422 and text in answer.json()["message"], body
    client.close()
