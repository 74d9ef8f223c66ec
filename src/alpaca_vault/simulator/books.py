"""The books of a paper account: orders, positions, fills, and what open orders reserve.

Plain data plus the arithmetic every other part reads (cash reserved by open buys, quantity
held for open sells, equity at an instant). Nothing here locks: :class:`~.broker.Broker` does.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from alpaca_vault.simulator.assets import Asset
from alpaca_vault.simulator.prices import PricePath

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")  # Alpaca accepts up to 9 decimal places of quantity
ZERO = Decimal(0)

OPEN_STATUSES = frozenset(
    {"new", "accepted", "partially_filled", "held", "pending_new", "accepted_for_bidding", "pending_replace"}
)
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected", "done_for_day"})


def money(value: Decimal) -> str:
    """Alpaca's money strings: plain decimal text, never exponent notation."""
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


def number(value: Decimal) -> str:
    """Quantities and prices as Alpaca writes them: no trailing zeros ("10", "0.5", "187.8")."""
    return format(value.normalize(), "f")


def new_key_pair() -> tuple[str, str]:
    """A key pair shaped like Alpaca's paper keys: ``PK`` + 18 upper alphanumerics, 40-char secret."""
    upper = string.ascii_uppercase + string.digits
    key = "PK" + "".join(secrets.choice(upper) for _ in range(18))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    return key, secret


@dataclass
class Order:
    id: str
    client_order_id: str
    asset: Asset
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_price: Decimal | None
    trail_percent: Decimal | None
    order_class: str
    extended_hours: bool
    created_at: float
    status: str = "new"
    updated_at: float = 0.0
    filled_at: float | None = None
    expired_at: float | None = None
    expires_at: float | None = None
    canceled_at: float | None = None
    failed_at: float | None = None
    replaced_at: float | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    hwm: Decimal | None = None
    position_intent: str | None = None
    ratio_qty: Decimal | None = None  # a multi-leg order's leg: contracts per spread unit
    opens_short: bool = False  # an option sold to open (written): may take the position below zero
    legs: list[Order] = field(default_factory=list)
    parent: Order | None = None
    last_eval: float = 0.0
    triggered: bool = False  # a stop_limit whose stop has been hit now works as a limit
    crossed_since: float | None = None  # when a resting order first became executable

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def working(self) -> bool:
        """Open and eligible to fill (a held leg waits for its parent)."""
        return self.is_open and self.status != "held"

    @property
    def listed_open(self) -> bool:
        """Whether ``GET /v2/orders?status=open`` lists it: Alpaca counts a held leg as closed there
        (alpaca-trade-api-python#322, alpaca-trade-api-js#80/#87) though it is live and cancelable."""
        return self.is_open and self.status != "held"

    @property
    def watching_stop(self) -> bool:
        """A held stop-loss whose OCO partner is working: Alpaca's engine triggers it at its stop.

        That is the stop-loss of an OCO order, or of a bracket whose entry has filled; before the
        entry fills both bracket exits only wait."""
        parent = self.parent
        if self.status != "held" or self.stop_price is None or parent is None:
            return False
        if parent.order_class == "oco":
            return parent.is_open
        return parent.order_class == "bracket" and parent.status == "filled"

    def remaining_qty(self) -> Decimal:
        return (self.qty - self.filled_qty) if self.qty is not None else ZERO


@dataclass
class Position:
    asset: Asset
    qty: Decimal = ZERO  # negative for a short (written) option
    cost_basis: Decimal = ZERO  # what was paid (or, short, received) for what is still held

    @property
    def avg_entry_price(self) -> Decimal:
        return self.cost_basis / self.qty / self.asset.multiplier if self.qty else ZERO


@dataclass
class Fill:
    """One execution: the source of FILL activities and of portfolio history."""

    id: str
    order: Order
    t: float
    qty: Decimal
    price: Decimal
    cash_delta: Decimal
    leaves_qty: Decimal
    cum_qty: Decimal
    order_status: str
    activity_type: str = "FILL"  # also OPEXC / OPASN / OPEXP for option exercise and expiry


@dataclass
class Watchlist:
    id: str
    name: str
    created_at: float
    updated_at: float
    assets: list[Asset] = field(default_factory=list)


@dataclass
class Account:
    id: str
    api_key: str
    secret_key: str
    account_number: str
    status: str
    initial_cash: Decimal
    cash: Decimal
    created_at: float
    positions: dict[str, Position] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    orders_by_id: dict[str, Order] = field(default_factory=dict)
    orders_by_client_id: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    watchlists: list[Watchlist] = field(default_factory=list)
    configurations: dict[str, Any] = field(default_factory=dict)
    do_not_exercise: set[str] = field(default_factory=set)
    # Short-sale locates as Alpaca shows them (JSON-ready), newest last; idempotency key -> (body, locate id).
    locates: list[dict[str, Any]] = field(default_factory=list)
    locate_keys: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    last_sync: float = 0.0
    first_open: int = 0  # orders before this index are all closed: hot paths skip them

    def open_orders(self) -> list[Order]:
        """Open orders, oldest first, without rescanning the closed history each request."""
        orders = self.orders
        while self.first_open < len(orders) and not orders[self.first_open].is_open:
            self.first_open += 1
        return [o for o in orders[self.first_open :] if o.is_open]

    def add_order(self, order: Order) -> None:
        self.orders.append(order)
        self.orders_by_id[order.id] = order
        self.orders_by_client_id[order.client_order_id] = order


def order_price(order: Order, prices: PricePath, now: float) -> Decimal:
    """What one unit of an order is reckoned to cost: its limit, else its stop, else the market."""
    return order.limit_price or order.stop_price or prices.price(order.asset.symbol, now)


def reserved_buying_power(
    account: Account, prices: PricePath, now: float, exclude: Order | None = None
) -> Decimal:
    """Cash promised to open buy orders (held legs wait for their parent and promise nothing yet)."""
    reserved = ZERO
    for order in account.open_orders():
        if order is exclude or order.status == "held":
            continue
        if order.order_class == "mleg" and order.parent is None:
            if order.limit_price is not None and order.limit_price > 0:
                reserved += order.remaining_qty() * order.limit_price * 100
            continue
        if order.side != "buy" or order.order_class == "mleg":
            continue
        if order.notional is not None:
            reserved += order.notional
        else:
            reserved += order.remaining_qty() * order_price(order, prices, now) * order.asset.multiplier
    return reserved


def held_for_orders(account: Account, asset: Asset, exclude: Order | None = None) -> Decimal:
    """Quantity already promised to open sell orders (one leg counted per OCO pair)."""
    held = ZERO
    seen_groups: set[str] = set()
    for order in account.open_orders():
        if order.side != "sell" or order.asset is not asset or order.order_class == "mleg":
            continue
        if exclude is not None and (order is exclude or order.parent is exclude):
            continue
        if order.status == "held":
            continue
        group = order.parent.id if order.parent else (order.id if order.order_class == "oco" else None)
        if group is not None:
            if group in seen_groups:
                continue
            seen_groups.add(group)
        held += order.remaining_qty()
    return held


def equity_at(account: Account, prices: PricePath, t: float) -> Decimal:
    """Cash plus holdings valued at ``t``, rebuilt from the fills up to ``t``."""
    if t <= account.created_at:
        return account.initial_cash
    cash = account.initial_cash
    holdings: dict[str, tuple[Asset, Decimal]] = {}
    for fill in account.fills:
        if fill.t > t:
            break
        cash += fill.cash_delta
        signed = fill.qty if fill.order.side == "buy" else -fill.qty
        asset = fill.order.asset
        _, held = holdings.get(asset.symbol, (asset, ZERO))
        holdings[asset.symbol] = (asset, held + signed)
    value = sum((qty * prices.price(a.symbol, t) * a.multiplier for a, qty in holdings.values() if qty), ZERO)
    return cash + value
