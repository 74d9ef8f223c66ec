"""Our order bodies say what alpaca-py (the official SDK, used here only as an oracle) would send."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading import requests as sdk

from alpaca_vault.broker import OrderRequest, ReplaceOrderRequest


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if value is None or (key == "order_class" and value == "simple"):
            continue
        if isinstance(value, dict):
            out[key] = normalized(value)
        elif isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int | float | Decimal) or (
            isinstance(value, str) and value.replace(".", "").isdigit()
        ):
            out[key] = Decimal(str(value)).normalize()
        else:
            out[key] = value
    return out


CASES: list[tuple[dict[str, Any], Any]] = [
    (
        {"symbol": "AAPL", "side": "buy", "qty": 3},
        lambda: sdk.MarketOrderRequest(symbol="AAPL", side="buy", qty=3, time_in_force="day"),
    ),
    (
        {"symbol": "AAPL", "side": "buy", "notional": Decimal("250.5")},
        lambda: sdk.MarketOrderRequest(symbol="AAPL", side="buy", notional=250.5, time_in_force="day"),
    ),
    (
        {
            "symbol": "MSFT",
            "side": "sell",
            "qty": 2,
            "type": "limit",
            "limit_price": Decimal("401.25"),
            "time_in_force": "gtc",
            "extended_hours": True,
        },
        lambda: sdk.LimitOrderRequest(
            symbol="MSFT", side="sell", qty=2, limit_price=401.25, time_in_force="gtc", extended_hours=True
        ),
    ),
    (
        {"symbol": "NVDA", "side": "sell", "qty": 1, "type": "stop", "stop_price": 100},
        lambda: sdk.StopOrderRequest(symbol="NVDA", side="sell", qty=1, stop_price=100, time_in_force="day"),
    ),
    (
        {
            "symbol": "NVDA",
            "side": "buy",
            "qty": 1,
            "type": "stop_limit",
            "stop_price": 130,
            "limit_price": 131,
        },
        lambda: sdk.StopLimitOrderRequest(
            symbol="NVDA", side="buy", qty=1, stop_price=130, limit_price=131, time_in_force="day"
        ),
    ),
    (
        {
            "symbol": "TSLA",
            "side": "sell",
            "qty": 1,
            "type": "trailing_stop",
            "trail_percent": Decimal("2.5"),
        },
        lambda: sdk.TrailingStopOrderRequest(
            symbol="TSLA", side="sell", qty=1, trail_percent=2.5, time_in_force="day"
        ),
    ),
    (
        {
            "symbol": "SPY",
            "side": "buy",
            "qty": 1,
            "order_class": "bracket",
            "time_in_force": "gtc",
            "take_profit": {"limit_price": 600},
            "stop_loss": {"stop_price": 480, "limit_price": 479},
        },
        lambda: sdk.MarketOrderRequest(
            symbol="SPY",
            side="buy",
            qty=1,
            time_in_force="gtc",
            order_class="bracket",
            take_profit=sdk.TakeProfitRequest(limit_price=600),
            stop_loss=sdk.StopLossRequest(stop_price=480, limit_price=479),
        ),
    ),
    (
        {"symbol": "BTC/USD", "side": "buy", "qty": Decimal("0.01"), "time_in_force": "gtc"},
        lambda: sdk.MarketOrderRequest(symbol="BTC/USD", side="buy", qty=0.01, time_in_force="gtc"),
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), CASES, ids=[c[0].get("type", "market") + "-" + c[0]["symbol"] for c in CASES]
)
def test_order_body_matches_the_sdk(ours: dict[str, Any], theirs: Any) -> None:
    body = OrderRequest(**ours).to_alpaca("coid-7")
    expected = theirs().to_request_fields()
    expected["client_order_id"] = "coid-7"
    assert normalized(body) == normalized(expected)


def test_replace_body_matches_the_sdk() -> None:
    ours = ReplaceOrderRequest(qty=Decimal("5"), limit_price=Decimal("10.5")).to_alpaca("new-id")
    theirs = sdk.ReplaceOrderRequest(qty=5, limit_price=10.5, client_order_id="new-id").to_request_fields()
    assert normalized(ours) == normalized(theirs)
