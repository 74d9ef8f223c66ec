"""Each asset class's order rules are checked before anything is sent: stocks, crypto pairs,
option contracts (by OCC symbol) and multi-leg option orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from alpaca_vault.broker import OptionSymbol, OrderRequest

CALL = "AAPL250620C00200000"
CALL_2 = "AAPL250620C00210000"
PUT = "AAPL250620P00180000"
PUT_2 = "AAPL250620P00170000"


def legs(*specs: tuple[str, str, int]) -> list[dict[str, Any]]:
    return [{"symbol": s, "side": side, "ratio_qty": ratio} for s, side, ratio in specs]


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    # crypto
    ("crypto day", {"symbol": "BTC/USD", "side": "buy", "qty": 1}, "need time_in_force 'gtc' or 'ioc'"),
    (
        "crypto trailing stop",
        {
            "symbol": "BTC/USD",
            "side": "sell",
            "qty": 1,
            "time_in_force": "gtc",
            "type": "trailing_stop",
            "trail_percent": 1,
        },
        "market, limit or stop_limit",
    ),
    (
        "crypto notional limit",
        {
            "symbol": "ETH/USD",
            "side": "buy",
            "notional": 50,
            "time_in_force": "gtc",
            "type": "limit",
            "limit_price": 10,
        },
        "notional (dollar amount) orders must be type='market' with time_in_force 'gtc' or 'ioc'",
    ),
    (
        "crypto extended hours",
        {
            "symbol": "BTC/USD",
            "side": "buy",
            "qty": 1,
            "time_in_force": "gtc",
            "type": "limit",
            "limit_price": 5,
            "extended_hours": True,
        },
        "trade around the clock",
    ),
    (
        "crypto bracket",
        {
            "symbol": "BTC/USD",
            "side": "buy",
            "qty": 1,
            "time_in_force": "gtc",
            "order_class": "bracket",
            "take_profit": {"limit_price": 9},
            "stop_loss": {"stop_price": 1},
        },
        "simple orders only",
    ),
    # a single option contract
    ("option fractional", {"symbol": CALL, "side": "buy", "qty": "1.5"}, "whole contracts (got 1.5)"),
    ("option notional", {"symbol": CALL, "side": "buy", "notional": 100}, "not notional"),
    (
        "option gtc",
        {"symbol": CALL, "side": "buy", "qty": 1, "time_in_force": "gtc"},
        "need time_in_force 'day'",
    ),
    (
        "option extended hours",
        {"symbol": CALL, "side": "buy", "qty": 1, "type": "limit", "limit_price": 2, "extended_hours": True},
        "regular hours only",
    ),
    (
        "option trailing stop",
        {"symbol": CALL, "side": "sell", "qty": 1, "type": "trailing_stop", "trail_price": 1},
        "market, limit, stop or stop_limit",
    ),
    (
        "option bracket",
        {
            "symbol": CALL,
            "side": "buy",
            "qty": 1,
            "order_class": "bracket",
            "take_profit": {"limit_price": 9},
            "stop_loss": {"stop_price": 1},
        },
        "order_class='mleg'",
    ),
    (
        "option intent against side",
        {"symbol": CALL, "side": "buy", "qty": 1, "position_intent": "sell_to_open"},
        "does not fit side 'buy'",
    ),
    (
        "stock intent",
        {"symbol": "AAPL", "side": "buy", "qty": 1, "position_intent": "buy_to_open"},
        "option contracts only",
    ),
    # multi-leg
    ("mleg one leg", {"order_class": "mleg", "qty": 1, "legs": legs((CALL, "buy", 1))}, "needs 2 to 4 legs"),
    (
        "mleg five legs",
        {
            "order_class": "mleg",
            "qty": 1,
            "legs": legs(*[(f"AAPL2506{20 + i}C00200000", "buy", 1) for i in range(5)]),
        },
        "at most 4 items",
    ),
    (
        "mleg same contract twice",
        {"order_class": "mleg", "qty": 1, "legs": legs((CALL, "buy", 1), (CALL, "sell", 1))},
        "different contract",
    ),
    (
        "mleg ratios not in lowest terms",
        {"order_class": "mleg", "qty": 1, "legs": legs((CALL, "buy", 2), (CALL_2, "sell", 4))},
        "lowest terms",
    ),
    (
        "mleg with a symbol",
        {
            "order_class": "mleg",
            "symbol": "AAPL",
            "qty": 1,
            "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1)),
        },
        "no symbol or side of its own",
    ),
    (
        "mleg stock leg",
        {"order_class": "mleg", "qty": 1, "legs": legs(("AAPL", "buy", 1), (CALL_2, "sell", 1))},
        "is an option contract",
    ),
    (
        "mleg fractional qty",
        {"order_class": "mleg", "qty": "0.5", "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1))},
        "whole number",
    ),
    (
        "mleg notional",
        {"order_class": "mleg", "notional": 100, "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1))},
        "takes qty",
    ),
    (
        "mleg limit without price",
        {
            "order_class": "mleg",
            "qty": 1,
            "type": "limit",
            "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1)),
        },
        "limit_price exactly when type='limit'",
    ),
    (
        "mleg stop",
        {
            "order_class": "mleg",
            "qty": 1,
            "type": "stop",
            "stop_price": 1,
            "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1)),
        },
        "type 'market' or 'limit'",
    ),
    (
        "mleg gtc",
        {
            "order_class": "mleg",
            "qty": 1,
            "time_in_force": "gtc",
            "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1)),
        },
        "time_in_force 'day'",
    ),
    (
        "mleg leg intent against side",
        {
            "order_class": "mleg",
            "qty": 1,
            "legs": [
                {"symbol": CALL, "side": "buy", "position_intent": "sell_to_close"},
                {"symbol": CALL_2, "side": "sell"},
            ],
        },
        "does not fit side 'buy'",
    ),
    (
        "legs on a simple order",
        {"symbol": "AAPL", "side": "buy", "qty": 1, "legs": legs((CALL, "buy", 1))},
        "mleg",
    ),
    ("no symbol", {"side": "buy", "qty": 1}, "give symbol and side"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), [(a, f) for _, a, f in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_asset_class_rules_refuse(args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderRequest(**args)
    assert fragment in str(caught.value)


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    (
        "crypto notional gtc",
        {"symbol": "BTC/USD", "side": "buy", "notional": "25.50", "time_in_force": "gtc"},
    ),
    ("crypto notional ioc", {"symbol": "BTC/USD", "side": "buy", "notional": 10, "time_in_force": "ioc"}),
    (
        "crypto fractional",
        {"symbol": "ETH/USD", "side": "sell", "qty": "0.000123456", "time_in_force": "gtc"},
    ),
    (
        "crypto gtc limit sell",
        {
            "symbol": "BTC/USD",
            "side": "sell",
            "qty": "0.01",
            "time_in_force": "gtc",
            "type": "limit",
            "limit_price": "99999.99",
        },
    ),
    (
        "crypto stop limit",
        {
            "symbol": "BTC/USD",
            "side": "sell",
            "qty": "0.01",
            "time_in_force": "gtc",
            "type": "stop_limit",
            "stop_price": 100,
            "limit_price": 99,
        },
    ),
    ("option market", {"symbol": CALL.lower(), "side": "buy", "qty": 2}),
    (
        "option limit to close",
        {
            "symbol": PUT,
            "side": "sell",
            "qty": 1,
            "type": "limit",
            "limit_price": "1.25",
            "position_intent": "sell_to_close",
        },
    ),
    (
        "vertical spread",
        {
            "order_class": "mleg",
            "qty": 1,
            "type": "limit",
            "limit_price": "1.10",
            "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 1)),
        },
    ),
    (
        "iron condor",
        {
            "order_class": "mleg",
            "qty": 3,
            "legs": legs((PUT_2, "buy", 1), (PUT, "sell", 1), (CALL, "sell", 1), (CALL_2, "buy", 1)),
        },
    ),
    ("ratio spread", {"order_class": "mleg", "qty": 1, "legs": legs((CALL, "buy", 1), (CALL_2, "sell", 2))}),
]


@pytest.mark.parametrize("args", [a for _, a in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_asset_class_rules_accept(args: dict[str, Any]) -> None:
    order = OrderRequest(**args)
    body = order.to_alpaca("coid-1")
    assert body["client_order_id"] == "coid-1"
    assert all(not isinstance(v, float) for v in body.values())
    if order.order_class == "mleg":
        assert "symbol" not in body and "side" not in body
        assert [leg["ratio_qty"] for leg in body["legs"]] == [str(leg.ratio_qty) for leg in order.legs or []]
        assert order.asset_kind == "mleg"


def test_occ_symbols_parse() -> None:
    parsed = OptionSymbol.parse("spy251219p00450500")
    assert (parsed.underlying, parsed.type, parsed.strike) == ("SPY", "put", Decimal("450.5"))
    assert parsed.expiration.isoformat() == "2025-12-19"
    with pytest.raises(ValueError, match="no valid expiration"):
        OptionSymbol.parse("SPY251319P00450000")
    with pytest.raises(ValueError, match="not an OCC option symbol"):
        OptionSymbol.parse("SPY")
