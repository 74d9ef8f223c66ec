"""Every decimal and string a request carries is bounded before anything formats it (issue #10 item 1).

The attack: qty "1e80000000" is a 13-byte argument; formatted as plain digits for Alpaca's JSON it
becomes an 80 MB string (and a slightly larger exponent could take the whole process down).
"""

from __future__ import annotations

import tracemalloc
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from alpaca_vault.broker import (
    AlpacaClient,
    AssetsQuery,
    InvalidRequestError,
    NewsQuery,
    OptionContractsQuery,
    OrderRequest,
    ReplaceOrderRequest,
    WatchlistRequest,
)

from .test_validation import unreachable_client  # noqa: F401  (fixture)

BOMBS = ["1e80000000", "-1e80000000", "1e-80000000", "9" * 41, "NaN", "Infinity", "-0"]


def _refusal(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))


def test_exponent_bomb_qty_is_refused_before_any_formatting() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as caught:
            OrderRequest(symbol="AAPL", side="buy", qty="1e80000000")  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The refusal says what is allowed, and nothing near the 80 MB expansion was ever allocated.
    assert "must be greater than 0 and at most 1,000,000,000, with at most 9 decimal places" in _refusal(
        caught.value
    )
    assert "about 10^80000000" in _refusal(caught.value)
    assert peak < 2_000_000, peak


FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("qty", {"symbol": "AAPL", "side": "buy"}, "at most 1,000,000,000"),
    ("notional", {"symbol": "AAPL", "side": "buy"}, "at most 1,000,000,000, with at most 2 decimal places"),
    ("limit_price", {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit"}, "at most 1,000,000,000"),
    ("stop_price", {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "stop"}, "at most 1,000,000,000"),
    ("trail_price", {"symbol": "AAPL", "side": "sell", "qty": 1, "type": "trailing_stop"}, "at most"),
    ("trail_percent", {"symbol": "AAPL", "side": "sell", "qty": 1, "type": "trailing_stop"}, "at most 99"),
]


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize(("field", "base", "allowed"), FIELDS, ids=[f[0] for f in FIELDS])
def test_every_order_decimal_is_bounded(field: str, base: dict[str, Any], allowed: str, bomb: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderRequest(**base, **{field: bomb})
    refusal = _refusal(caught.value)
    assert allowed in refusal or "at most 40 characters" in refusal, refusal


@pytest.mark.parametrize("bomb", BOMBS)
def test_bracket_legs_and_replacements_are_bounded(bomb: str) -> None:
    with pytest.raises(ValidationError, match="at most"):
        OrderRequest(
            symbol="AAPL",
            side="buy",
            qty=1,
            order_class="bracket",
            take_profit={"limit_price": bomb},
            stop_loss={"stop_price": "1"},
        )
    for field in ("qty", "limit_price", "stop_price", "trail"):
        with pytest.raises(ValidationError, match="at most"):
            ReplaceOrderRequest(**{field: bomb})


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("0.000000001", Decimal("0.000000001")),
        ("1000000000", Decimal("1000000000")),
        ("1.50000000000000", Decimal("1.5")),  # trailing zeros past the scale are only zeros
        (2.5, Decimal("2.5")),
    ],
)
def test_sane_amounts_pass_unchanged(value: Any, kept: Decimal) -> None:
    order = OrderRequest(symbol="AAPL", side="buy", qty=value)
    assert order.qty == kept
    assert order.to_alpaca("c")["qty"] == format(kept, "f")


@pytest.mark.parametrize("value", ["1000000000.5", "0.0000000001", "1.0000000001"])
def test_amounts_just_past_the_bounds_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="with at most 9 decimal places"):
        OrderRequest(symbol="AAPL", side="buy", qty=value)


async def test_close_position_amounts_are_bounded_before_sending(unreachable_client: AlpacaClient) -> None:  # noqa: F811
    from .conftest import keys_for

    class _Account:
        api_key, secret_key, id = "PKTEST", "secret", "credential-1"

    for qty, percentage in (("1e80000000", None), (None, "1e80000000"), (None, "100.5")):
        with pytest.raises(InvalidRequestError, match="at most"):
            await unreachable_client.close_position(
                keys_for(_Account()), "AAPL", qty=qty, percentage=percentage
            )


def test_strings_and_lists_in_requests_are_bounded() -> None:
    with pytest.raises(ValidationError, match="at most 128"):
        OrderRequest(symbol="AAPL", side="buy", qty=1, client_order_id="x" * 129)
    with pytest.raises(ValidationError, match="at most 32 characters"):
        OrderRequest(symbol="A" * 100_000, side="buy", qty=1)
    with pytest.raises(ValidationError, match="at most 4 items"):
        OrderRequest(
            order_class="mleg",
            qty=1,
            legs=[{"symbol": f"AAPL2506{20 + i}C00200000", "side": "buy"} for i in range(5)],
        )
    with pytest.raises(ValidationError, match="at most 100 items"):
        OptionContractsQuery(underlying_symbols=["AAPL"] * 101)
    with pytest.raises(ValidationError, match="at most 100 items"):
        NewsQuery(symbols=["AAPL"] * 101)
    with pytest.raises(ValidationError, match="at most 64 characters"):
        WatchlistRequest(name="x" * 65)
    with pytest.raises(ValidationError, match="at most 1000 items"):
        WatchlistRequest(name="big", symbols=["AAPL"] * 1001)
    with pytest.raises(ValidationError, match="at most 64 characters"):
        AssetsQuery(name_contains="x" * 65)
    with pytest.raises(ValidationError, match="at most"):
        OptionContractsQuery(strike_price_gte="1e80000000")
