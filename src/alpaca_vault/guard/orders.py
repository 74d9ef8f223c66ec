"""The order as the guard sees it: normalised, classified, priced, and fingerprinted for duplicates."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any, Literal

from alpaca_vault.broker.models import OrderRequest, Quote, is_crypto_symbol
from alpaca_vault.guard.errors import GuardError
from alpaca_vault.guard.policy import AssetClass

# OCC option symbol: root (1-6), expiry YYMMDD, C/P, strike x1000 (8 digits), e.g. AAPL250117C00150000.
OCC_SYMBOL = re.compile(r"^[A-Z]{1,6}\d{6}[CP]\d{8}$")
OPTION_MULTIPLIER = 100


def asset_class_of(symbol: str) -> AssetClass:
    if is_crypto_symbol(symbol):
        return "crypto"
    if OCC_SYMBOL.match(symbol):
        return "us_option"
    return "us_equity"


@dataclass(frozen=True)
class NormalisedOrder:
    """A new order after the broker model's checks: what the policy is checked against."""

    symbol: str
    side: Literal["buy", "sell"]
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_price: Decimal | None
    trail_percent: Decimal | None
    extended_hours: bool
    order_class: str
    client_order_id: str | None
    asset_class: AssetClass

    @classmethod
    def from_request(cls, request: OrderRequest, client_order_id: str | None = None) -> NormalisedOrder:
        symbol, side = request.symbol, request.side
        if symbol is None or side is None:
            # An mleg order (#15) names its contracts in its legs; until the policy checks legs, refuse it
            # here (fail closed) rather than let it pass unchecked.
            raise GuardError(
                "multi-leg (mleg) orders are not checked by the trading guard yet; nothing was sent"
            )
        return cls(
            symbol=symbol,
            side=side,
            type=request.type,
            time_in_force=request.time_in_force,
            qty=request.qty,
            notional=request.notional,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            trail_price=request.trail_price,
            trail_percent=request.trail_percent,
            extended_hours=request.extended_hours,
            order_class=request.order_class,
            client_order_id=client_order_id or request.client_order_id,
            asset_class=asset_class_of(symbol),
        )

    @property
    def multiplier(self) -> int:
        return OPTION_MULTIPLIER if self.asset_class == "us_option" else 1

    def fingerprint(self) -> str:
        """The same order whatever its client_order_id: symbol, side, size, type and prices."""
        return fingerprint_of(self.as_json())

    def describe(self) -> str:
        """'buy 10 AAPL limit @ 150' in the words a person would use."""
        size = f"{_plain(self.qty)}" if self.qty is not None else f"${_plain(self.notional)} of"
        unit = " contract(s) of" if self.asset_class == "us_option" else ""
        prices = []
        if self.limit_price is not None:
            prices.append(f"limit {_plain(self.limit_price)}")
        if self.stop_price is not None:
            prices.append(f"stop {_plain(self.stop_price)}")
        if self.trail_price is not None:
            prices.append(f"trail ${_plain(self.trail_price)}")
        if self.trail_percent is not None:
            prices.append(f"trail {_plain(self.trail_percent)}%")
        price = f" @ {', '.join(prices)}" if prices else ""
        return f"{self.side} {size}{unit} {self.symbol} {self.type}{price}"

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "time_in_force": self.time_in_force,
            "qty": _plain(self.qty),
            "notional": _plain(self.notional),
            "limit_price": _plain(self.limit_price),
            "stop_price": _plain(self.stop_price),
            "trail_price": _plain(self.trail_price),
            "trail_percent": _plain(self.trail_percent),
            "extended_hours": self.extended_hours,
            "order_class": self.order_class,
            "asset_class": self.asset_class,
            "client_order_id": self.client_order_id,
        }


FINGERPRINT_FIELDS = (
    "symbol", "side", "type", "qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent",
)  # fmt: skip
_PRICE_FIELDS = frozenset(FINGERPRINT_FIELDS[3:])


def fingerprint_of(body: Mapping[str, Any]) -> str:
    """The duplicate fingerprint of an order body (ours, or one stored in an intent): no pydantic, so a day's
    intents are compared in microseconds."""
    essence = []
    for name in FINGERPRINT_FIELDS:
        value = body.get(name)
        if name in _PRICE_FIELDS and value is not None:
            try:
                value = _plain(Decimal(str(value)))
            except ArithmeticError:
                value = str(value)
        essence.append(value)
    return hashlib.sha256(json.dumps(essence).encode()).hexdigest()[:32]


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


# ---------------------------------------------------------------------------- notional


@dataclass(frozen=True)
class NotionalEstimate:
    """The order's estimated dollar value, the unit price it used and where that price came from."""

    amount: Decimal | None
    unit_price: Decimal | None
    source: str

    @property
    def known(self) -> bool:
        return self.amount is not None


def needs_quote(order: NormalisedOrder) -> bool:
    """Only a qty order priced by the market (market, trailing stop) needs the latest quote."""
    return order.notional is None and order.type in ("market", "trailing_stop")


def estimate_notional(order: NormalisedOrder, quote: Quote | None = None) -> NotionalEstimate:
    """A notional order is its notional; limit/stop orders use their price; market orders the latest
    quote (ask for buys, bid for sells), times 100 for options."""
    if order.notional is not None:
        return NotionalEstimate(order.notional, None, "the order's notional (dollar amount)")
    assert order.qty is not None  # the broker model requires qty or notional
    price: Decimal | None
    if order.type in ("limit", "stop_limit"):
        price, source = order.limit_price, "the order's limit price"
    elif order.type == "stop":
        price, source = order.stop_price, "the order's stop price"
    else:
        price, source = _quote_price(order.side, quote)
    if price is None:
        return NotionalEstimate(None, None, source)
    unit = price * order.multiplier
    times = f" x{order.multiplier} (option contract multiplier)" if order.multiplier != 1 else ""
    return NotionalEstimate((order.qty * unit).quantize(Decimal("0.01")), unit, source + times)


def _quote_price(side: str, quote: Quote | None) -> tuple[Decimal | None, str]:
    if quote is None:
        return None, "no latest quote was available"
    first, second = ("ask", "bid") if side == "buy" else ("bid", "ask")
    for which in (first, second):
        price = quote.ask_price if which == "ask" else quote.bid_price
        if price is not None and price > 0:
            when = f" at {quote.timestamp.isoformat()}" if quote.timestamp else ""
            fallback = "" if which == first else f" (no {first} was quoted)"
            return Decimal(price), f"the latest quote's {which} price {format(price, 'f')}{when}{fallback}"
    return None, "the latest quote had neither an ask nor a bid"


def units_that_fit(budget: Decimal, order: NormalisedOrder, estimate: NotionalEstimate) -> str | None:
    """'38 shares' that fit in ``budget`` at the estimate's unit price (None when it cannot say)."""
    if estimate.unit_price is None or estimate.unit_price <= 0 or budget <= 0:
        return None
    raw = budget / estimate.unit_price
    if order.asset_class == "crypto":
        fit = raw.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        return f"{format(fit.normalize(), 'f')} {order.symbol.split('/')[0]}"
    whole = int(raw.to_integral_value(rounding=ROUND_DOWN))
    noun = "contract" if order.asset_class == "us_option" else "share"
    return f"{whole} {noun}{'' if whole == 1 else 's'}"


_NICE_STEPS = (Decimal(1), Decimal("1.5"), Decimal(2), Decimal("2.5"), Decimal(3), Decimal(4), Decimal(5))


def round_up_nicely(amount: Decimal) -> Decimal:
    """A round figure at or above ``amount``: 12,400 -> 15,000; 730 -> 800 (for 'raise it to ...')."""
    if amount <= 0:
        return Decimal(1)
    exponent = amount.adjusted()
    scale = Decimal(10) ** exponent
    for step in (*_NICE_STEPS, Decimal(6), Decimal(8), Decimal(10)):
        if step * scale >= amount:
            return (step * scale).quantize(Decimal(1), rounding=ROUND_CEILING)
    return (Decimal(10) * scale).quantize(Decimal(1))  # pragma: no cover - 10 x scale always fits


def dollars(amount: Decimal) -> str:
    """$12,400 or $12,400.50: whole dollars without cents."""
    if amount == amount.to_integral_value():
        return f"${amount:,.0f}"
    return f"${amount:,.2f}"
