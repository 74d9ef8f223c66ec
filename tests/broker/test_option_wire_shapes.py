"""Option, multi-leg and crypto order bodies, and other request bodies, say what alpaca-py would send."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading import requests as sdk

from alpaca_vault.broker import OptionContractsQuery, OrderRequest, WatchlistRequest

CALL, CALL_2 = "AAPL250620C00200000", "AAPL250620C00210000"


def normalized(value: Any) -> Any:
    """Enums as their values, numbers as normalized Decimals, at any depth; "simple" class dropped."""
    if isinstance(value, dict):
        return {
            k: normalized(v)
            for k, v in value.items()
            if v is not None and not (k == "order_class" and v == "simple")
        }
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, enum.Enum):
        return normalized(value.value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) or (
        isinstance(value, str) and value.replace(".", "").isdigit()
    ):
        return Decimal(str(value)).normalize()
    return value


CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "option-limit",
        {
            "symbol": CALL,
            "side": "buy",
            "qty": 1,
            "type": "limit",
            "limit_price": "1.25",
            "position_intent": "buy_to_open",
        },
        lambda: sdk.LimitOrderRequest(
            symbol=CALL,
            qty=1,
            side="buy",
            time_in_force="day",
            limit_price=1.25,
            position_intent="buy_to_open",
        ),
    ),
    (
        "mleg-market",
        {
            "order_class": "mleg",
            "qty": 1,
            "legs": [
                {"symbol": CALL, "side": "buy"},
                {"symbol": CALL_2, "side": "sell", "position_intent": "sell_to_open"},
            ],
        },
        lambda: sdk.MarketOrderRequest(
            qty=1,
            order_class="mleg",
            time_in_force="day",
            legs=[
                sdk.OptionLegRequest(symbol=CALL, ratio_qty=1, side="buy"),
                sdk.OptionLegRequest(symbol=CALL_2, ratio_qty=1, side="sell", position_intent="sell_to_open"),
            ],
        ),
    ),
    (
        "mleg-limit-ratio",
        {
            "order_class": "mleg",
            "qty": 2,
            "type": "limit",
            "limit_price": "0.80",
            "legs": [
                {"symbol": CALL, "side": "buy", "ratio_qty": 1},
                {"symbol": CALL_2, "side": "sell", "ratio_qty": 2},
            ],
        },
        lambda: sdk.LimitOrderRequest(
            qty=2,
            order_class="mleg",
            time_in_force="day",
            limit_price=0.8,
            legs=[
                sdk.OptionLegRequest(symbol=CALL, ratio_qty=1, side="buy"),
                sdk.OptionLegRequest(symbol=CALL_2, ratio_qty=2, side="sell"),
            ],
        ),
    ),
    (
        "crypto-notional",
        {"symbol": "BTC/USD", "side": "buy", "notional": "25", "time_in_force": "gtc"},
        lambda: sdk.MarketOrderRequest(symbol="BTC/USD", side="buy", notional=25, time_in_force="gtc"),
    ),
    (
        "crypto-gtc-limit",
        {
            "symbol": "ETH/USD",
            "side": "sell",
            "qty": "0.5",
            "time_in_force": "gtc",
            "type": "limit",
            "limit_price": "4000",
        },
        lambda: sdk.LimitOrderRequest(
            symbol="ETH/USD", side="sell", qty=0.5, time_in_force="gtc", limit_price=4000
        ),
    ),
]


@pytest.mark.parametrize(("ours", "theirs"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_order_body_matches_the_sdk(ours: dict[str, Any], theirs: Any) -> None:
    body = OrderRequest(**ours).to_alpaca("coid-9")
    expected = theirs().to_request_fields()
    expected["client_order_id"] = "coid-9"
    assert normalized(body) == normalized(expected)


def test_watchlist_body_matches_the_sdk() -> None:
    ours = WatchlistRequest(name="Tech", symbols=["aapl", "MSFT"]).to_alpaca()
    theirs = sdk.CreateWatchlistRequest(name="Tech", symbols=["AAPL", "MSFT"]).to_request_fields()
    assert ours == theirs


def test_option_contracts_query_matches_the_sdk() -> None:
    ours = OptionContractsQuery(
        underlying_symbols=["aapl", "SPY"],
        status="active",
        type="call",
        strike_price_gte="150",
        strike_price_lte="200.5",
        expiration_date_gte="2025-06-01",
        limit=50,
    ).to_params()
    theirs = sdk.GetOptionContractsRequest(
        underlying_symbols=["AAPL", "SPY"],
        type="call",
        strike_price_gte="150",
        strike_price_lte="200.5",
        expiration_date_gte="2025-06-01",
        limit=50,
    ).to_request_fields()
    theirs["underlying_symbols"] = ",".join(theirs["underlying_symbols"])
    assert normalized(ours) == normalized(
        {k: v if isinstance(v, int | enum.Enum) else str(v) for k, v in theirs.items()}
    )
