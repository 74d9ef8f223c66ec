"""The order as the guard sees it: normalised, classified, priced, and fingerprinted for duplicates."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any, Literal

from alpaca_vault.broker.models import OrderRequest, Quote, is_crypto_symbol
from alpaca_vault.guard.errors import GuardError
from alpaca_vault.guard.policy import AssetClass

# OCC option symbol: root (1-6), expiry YYMMDD, C/P, strike x1000 (8 digits), e.g. AAPL250117C00150000.
OCC_SYMBOL = re.compile(r"^[A-Z]{1,6}\d{6}[CP]\d{8}$")
# What an order read back from Alpaca may hold before its words reach a confirmation or a refusal (#10
# point 4): symbols of a strict shape and known words, never free text an upstream chose.
_READ_BACK_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9./]{0,31}")
_READ_BACK_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
_READ_BACK_TIMES_IN_FORCE = frozenset({"day", "gtc", "ioc", "fok", "opg", "cls"})
_READ_BACK_CLASSES = frozenset({"simple", "bracket", "oco", "oto", "mleg", ""})


class UnreadableOrder(ValueError):
    """An order Alpaca reported holds a symbol or word no real order has: it is not described."""


def _read_back(value: Any, allowed: frozenset[str] | re.Pattern[str], default: str) -> str:
    text = default if value is None or value == "" else str(value)
    ok = text in allowed if isinstance(allowed, frozenset) else allowed.fullmatch(text) is not None
    if not ok:
        raise UnreadableOrder("the order Alpaca reported holds a value no order has")
    return text


OPTION_MULTIPLIER = 100


def underlying_of(symbol: str) -> str | None:
    """The root of an OCC option symbol (AAPL for AAPL261218C00190000); None for anything else.

    The root is the underlying's ticker except for adjusted contracts (AAPL1...), which keep theirs."""
    return symbol[:-15] if OCC_SYMBOL.match(symbol) else None


def asset_class_of(symbol: str) -> AssetClass:
    if is_crypto_symbol(symbol):
        return "crypto"
    if OCC_SYMBOL.match(symbol):
        return "us_option"
    return "us_equity"


@dataclass(frozen=True)
class NormalisedLeg:
    """One leg of a multi-leg (mleg) option order: ``ratio_qty`` contracts per unit of the order's qty."""

    symbol: str
    side: Literal["buy", "sell"]
    ratio_qty: int
    position_intent: str | None = None

    @property
    def right(self) -> str:
        """C (call) or P (put), from the OCC symbol."""
        return self.symbol[-9]

    @property
    def expiry(self) -> str:
        """YYMMDD from the OCC symbol (compares in date order)."""
        return self.symbol[-15:-9]

    @property
    def underlying(self) -> str:
        return self.symbol[:-15]

    def as_json(self) -> dict[str, Any]:
        # The wire form of a leg (broker/models OrderRequest.to_alpaca), so a stored intent compares equal.
        body: dict[str, Any] = {"symbol": self.symbol, "side": self.side, "ratio_qty": str(self.ratio_qty)}
        if self.position_intent is not None:
            body["position_intent"] = self.position_intent
        return body


@dataclass(frozen=True)
class NormalisedOrder:
    """A new order after the broker model's checks: what the policy is checked against.

    A multi-leg order has ``legs`` and no side of its own; its ``symbol`` is the legs' symbols joined
    with '+' (a label for people; ``wire_symbol`` is None, as in the request sent to Alpaca).
    """

    symbol: str
    side: Literal["buy", "sell"] | None
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
    legs: tuple[NormalisedLeg, ...] = field(default=())

    @classmethod
    def from_request(cls, request: OrderRequest, client_order_id: str | None = None) -> NormalisedOrder:
        symbol, side = request.symbol, request.side
        if request.order_class == "mleg":
            if not request.legs:  # pragma: no cover - the broker model requires 2-4 legs
                raise GuardError("a multi-leg (mleg) order without legs cannot be checked; nothing was sent")
            legs = tuple(
                NormalisedLeg(leg.symbol, leg.side, leg.ratio_qty, leg.position_intent)
                for leg in request.legs
            )
            return cls(
                symbol="+".join(leg.symbol for leg in legs),
                side=None,
                type=request.type,
                time_in_force=request.time_in_force,
                qty=request.qty,
                notional=None,
                limit_price=request.limit_price,
                stop_price=None,
                trail_price=None,
                trail_percent=None,
                extended_hours=request.extended_hours,
                order_class="mleg",
                client_order_id=client_order_id or request.client_order_id,
                asset_class="us_option",
                legs=legs,
            )
        if symbol is None or side is None:  # pragma: no cover - the broker model requires both
            raise GuardError("an order without symbol or side cannot be checked; nothing was sent")
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

    @classmethod
    def from_alpaca(cls, order: Any) -> NormalisedOrder:
        """An order as Alpaca reports it (broker ``Order``): what a replace starts from."""
        qty = _decimal(order.qty)
        legs: tuple[NormalisedLeg, ...] = ()
        order_class = _read_back(order.order_class, _READ_BACK_CLASSES, "simple")
        if order_class == "mleg" and order.legs:
            legs = tuple(
                NormalisedLeg(
                    _read_back(leg.symbol, _READ_BACK_SYMBOL, ""),
                    "sell" if leg.side == "sell" else "buy",
                    _ratio(leg.qty, qty),
                )
                for leg in order.legs
            )
        symbol = (
            "+".join(leg.symbol for leg in legs) if legs else _read_back(order.symbol, _READ_BACK_SYMBOL, "")
        )
        return cls(
            symbol=symbol,
            side=None if legs else ("sell" if order.side == "sell" else "buy"),
            type=_read_back(order.type or order.order_type, _READ_BACK_TYPES, "market"),
            time_in_force=_read_back(order.time_in_force, _READ_BACK_TIMES_IN_FORCE, "day"),
            qty=qty,
            notional=_decimal(order.notional),
            limit_price=_decimal(order.limit_price),
            stop_price=_decimal(order.stop_price),
            trail_price=_decimal(order.trail_price),
            trail_percent=_decimal(order.trail_percent),
            extended_hours=bool(order.extended_hours),
            order_class=order_class or "simple",
            client_order_id=order.client_order_id,
            asset_class="us_option" if legs else asset_class_of(symbol),
            legs=legs,
        )

    def replaced_by(self, changes: Any, client_order_id: str | None) -> NormalisedOrder:
        """This order with a replace's changes (broker ``ReplaceOrderRequest``) applied, as Alpaca would."""
        trail = changes.trail
        return replace(
            self,
            qty=changes.qty if changes.qty is not None else self.qty,
            time_in_force=changes.time_in_force or self.time_in_force,
            limit_price=changes.limit_price if changes.limit_price is not None else self.limit_price,
            stop_price=changes.stop_price if changes.stop_price is not None else self.stop_price,
            trail_price=trail if trail is not None and self.trail_percent is None else self.trail_price,
            trail_percent=trail
            if trail is not None and self.trail_percent is not None
            else self.trail_percent,
            client_order_id=client_order_id,
        )

    @property
    def multiplier(self) -> int:
        return OPTION_MULTIPLIER if self.asset_class == "us_option" else 1

    @property
    def is_multileg(self) -> bool:
        return bool(self.legs)

    @property
    def wire_symbol(self) -> str | None:
        """The symbol as the request to Alpaca carries it (None for a multi-leg order)."""
        return None if self.legs else self.symbol

    @property
    def symbols(self) -> list[str]:
        """Every contract or instrument the order trades (the legs' symbols for a multi-leg order)."""
        return [leg.symbol for leg in self.legs] if self.legs else [self.symbol]

    def fingerprint(self) -> str:
        """The same order whatever its client_order_id: symbol, side, size, type and prices."""
        return fingerprint_of(self.as_json())

    def essence(self) -> list[Any]:
        """``essence_of`` this order (compared with stored intents' bodies for the duplicate window)."""
        return essence_of(self.as_json())

    def describe(self) -> str:
        """'buy 10 AAPL limit @ 150' in the words a person would use."""
        if self.legs:
            legs = ", ".join(f"{leg.side} {leg.ratio_qty} {leg.symbol}" for leg in self.legs)
            net = f" @ net limit {_plain(self.limit_price)}" if self.limit_price is not None else ""
            return f"{_plain(self.qty)} x option spread [{legs}] {self.type}{net}"
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
        body: dict[str, Any] = {
            "symbol": self.wire_symbol,
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
        if self.legs:
            body["legs"] = [leg.as_json() for leg in self.legs]
        return body


FINGERPRINT_FIELDS = (
    "symbol", "side", "type", "qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent",
)  # fmt: skip
_PRICE_FIELDS = frozenset(FINGERPRINT_FIELDS[3:])


def essence_of(body: Mapping[str, Any]) -> list[Any]:
    """What makes two order bodies the same order (ours, or one stored in an intent), whatever their ids:
    symbol, side, size, type, prices, and a multi-leg order's leg set in any order. Plain values, so a
    day's intents are compared in microseconds."""
    essence: list[Any] = []
    for name in FINGERPRINT_FIELDS:
        value = body.get(name)
        if name in _PRICE_FIELDS and value is not None:
            try:
                value = _plain(Decimal(str(value)))
            except ArithmeticError:
                value = str(value)
        essence.append(value)
    legs = body.get("legs")
    if isinstance(legs, list) and legs:
        essence.append(sorted(_leg_essence(leg) for leg in legs))
    return essence


def fingerprint_of(body: Mapping[str, Any]) -> str:
    """The duplicate fingerprint of an order body: a digest of ``essence_of``."""
    return hashlib.sha256(json.dumps(essence_of(body)).encode()).hexdigest()[:32]


def _ratio(leg_qty: Any, qty: Decimal | None) -> int:
    """A leg's ratio_qty from Alpaca's report (the leg's contracts over the order's qty)."""
    contracts = _decimal(leg_qty)
    return int(contracts / qty) if contracts and qty else 1


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _leg_essence(leg: Any) -> list[str]:
    if not isinstance(leg, Mapping):
        return [str(leg)]
    return [
        str(leg.get("symbol")),
        str(leg.get("side")),
        str(leg.get("ratio_qty") or 1),
        str(leg.get("position_intent")),
    ]


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


# ---------------------------------------------------------------------------- notional


@dataclass(frozen=True)
class NotionalEstimate:
    """The order's estimated dollar value, the unit price it used and where that price came from."""

    amount: Decimal | None
    unit_price: Decimal | None
    source: str
    # A multi-leg order whose legs bring in more premium than they pay (a net credit): cash comes in.
    credit: bool = False

    @property
    def known(self) -> bool:
        return self.amount is not None


def needs_quote(order: NormalisedOrder) -> bool:
    """Only a qty order priced by the market (market, trailing stop) needs the latest quote (for a
    multi-leg market order: every leg's)."""
    return order.notional is None and order.type in ("market", "trailing_stop")


def estimate_notional(
    order: NormalisedOrder, quote: Quote | None = None, leg_quotes: Mapping[str, Quote] | None = None
) -> NotionalEstimate:
    """A notional order is its notional; limit/stop orders use their price; market orders the latest
    quote (ask for buys, bid for sells), times 100 for options. A multi-leg order: see ``_spread_estimate``."""
    if order.legs:
        return _spread_estimate(order, leg_quotes or {})
    if order.notional is not None:
        return NotionalEstimate(order.notional, None, "the order's notional (dollar amount)")
    assert order.qty is not None  # the broker model requires qty or notional
    price: Decimal | None
    if order.type in ("limit", "stop_limit"):
        price, source = order.limit_price, "the order's limit price"
    elif order.type == "stop":
        price, source = order.stop_price, "the order's stop price"
    else:
        assert order.side is not None  # only a multi-leg order has none
        price, source = _quote_price(order.side, quote)
    if price is None:
        return NotionalEstimate(None, None, source)
    unit = price * order.multiplier
    times = f" x{order.multiplier} (option contract multiplier)" if order.multiplier != 1 else ""
    return NotionalEstimate((order.qty * unit).quantize(Decimal("0.01")), unit, source + times)


def _spread_estimate(order: NormalisedOrder, leg_quotes: Mapping[str, Quote]) -> NotionalEstimate:
    """The net debit or credit of a multi-leg order, x100 per contract, x qty.

    A limit order is its net limit price (per unit of the leg ratios) x100 x qty: the most it pays.
    A market order nets the legs' latest quotes, each leg at the price it trades at (a buy leg pays
    the ask, a sell leg receives the bid) x its ratio_qty; the absolute net x100 x qty is the estimate,
    and a negative net (more received than paid) is a credit. No quote for a leg: unknown.
    """
    assert order.qty is not None  # the broker model requires qty for mleg
    times = " x100 (option contract multiplier)"
    if order.type == "limit" and order.limit_price is not None:
        unit = abs(order.limit_price) * OPTION_MULTIPLIER
        return NotionalEstimate(
            (order.qty * unit).quantize(Decimal("0.01")),
            unit,
            "the order's net limit price per spread" + times,
        )
    net = Decimal(0)
    for leg in order.legs:
        price = _leg_price(leg, leg_quotes.get(leg.symbol))
        if price is None:
            return NotionalEstimate(None, None, f"no usable latest quote for the leg {leg.symbol}")
        net += (price if leg.side == "buy" else -price) * leg.ratio_qty
    unit = abs(net) * OPTION_MULTIPLIER
    kind = "credit" if net < 0 else "debit"
    return NotionalEstimate(
        (order.qty * unit).quantize(Decimal("0.01")),
        unit,
        f"the legs' latest quotes (buy legs at the ask, sell legs at the bid), a net {kind} of "
        f"{format(abs(net).normalize(), 'f')} per spread{times}",
        credit=net < 0,
    )


def _leg_price(leg: NormalisedLeg, quote: Quote | None) -> Decimal | None:
    if quote is None:
        return None
    price = quote.ask_price if leg.side == "buy" else quote.bid_price
    return Decimal(price) if price is not None and price > 0 else None


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
    noun = "spread" if order.legs else "contract" if order.asset_class == "us_option" else "share"
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
