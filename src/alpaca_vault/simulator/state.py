"""The broker's books: accounts, orders, positions, fills and the matching of resting orders.

Every public method of :class:`Broker` runs under one lock and never awaits, so concurrent
requests (from any thread or event loop) see consistent state. Resting orders are matched lazily:
before an account is read or changed, its open orders are checked against the price path from
the last check up to now, so the outcome depends only on the seed and the clock.
"""

from __future__ import annotations

import bisect
import secrets
import string
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from alpaca_vault.simulator.clock import NEW_YORK, MarketClock, iso
from alpaca_vault.simulator.config import AccountSpec, SimulatorConfig
from alpaca_vault.simulator.errors import (
    BrokerError,
    forbidden,
    invalid,
    not_found,
    unprocessable,
)
from alpaca_vault.simulator.prices import UNIVERSE, Asset, PricePath, find_asset

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")  # Alpaca accepts up to 9 decimal places of quantity
ZERO = Decimal(0)

OPEN_STATUSES = frozenset(
    {"new", "accepted", "partially_filled", "held", "pending_new", "accepted_for_bidding", "pending_replace"}
)
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected", "done_for_day"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIME_IN_FORCE = frozenset({"day", "gtc", "ioc", "fok", "opg", "cls"})
ORDER_CLASSES = frozenset({"simple", "bracket", "oco", "oto"})
_MAX_SAMPLES = 2000
_MAX_AMOUNT = Decimal(10) ** 12  # beyond any real order; keeps Decimal arithmetic in range


def money(value: Decimal) -> str:
    """Alpaca's money strings: plain decimal text, never exponent notation."""
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


def number(value: Decimal) -> str:
    """Quantities and prices as Alpaca writes them: no trailing zeros ("10", "0.5", "187.8")."""
    return format(value.normalize(), "f")


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise invalid(f"invalid {name}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"invalid {name}: {value!r} is not a number") from None
    if not result.is_finite():
        raise invalid(f"invalid {name}")
    if abs(result) >= _MAX_AMOUNT:
        raise invalid(f"invalid {name}: {value} is too large")
    return result


def _text(body: dict[str, Any], name: str) -> str | None:
    """A string field, or None when absent; anything else is a clear 422 (never a 500)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    return value


def _prices(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise invalid(f'{name} must be an object such as {{"limit_price": "100"}}')
    return value


def _optional_decimal(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    return _decimal(value, name)


def _check_increment(asset: Asset, name: str, price: Decimal | None) -> None:
    """US equities trade in cents from $1 up and in hundredths of a cent below, as Alpaca enforces."""
    if price is None or asset.is_crypto:
        return
    step = CENT if price >= 1 else Decimal("0.0001")
    if price != price.quantize(step, rounding=ROUND_DOWN):
        raise unprocessable(
            f"invalid {name} {number(price)}. sub-penny increment does not fulfill minimum pricing criteria"
        )


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

    def remaining_qty(self) -> Decimal:
        return (self.qty - self.filled_qty) if self.qty is not None else ZERO

    def to_json(self, nested: bool = True) -> dict[str, Any]:
        def opt(v: float | None) -> str | None:
            return iso(v) if v is not None else None

        def dec(v: Decimal | None) -> str | None:
            return number(v) if v is not None else None

        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at or self.created_at),
            "submitted_at": iso(self.created_at),
            "filled_at": opt(self.filled_at),
            "expired_at": opt(self.expired_at),
            "canceled_at": opt(self.canceled_at),
            "failed_at": opt(self.failed_at),
            "replaced_at": opt(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": self.asset.id,
            "symbol": self.asset.symbol,
            "asset_class": self.asset.asset_class,
            "notional": dec(self.notional),
            "qty": dec(self.qty),
            "filled_qty": number(self.filled_qty),
            "filled_avg_price": dec(self.filled_avg_price),
            "order_class": "" if self.order_class == "simple" else self.order_class,  # Alpaca writes ""
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": dec(self.limit_price),
            "stop_price": dec(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": [leg.to_json(nested) for leg in self.legs] if (nested and self.legs) else None,
            "trail_percent": dec(self.trail_percent),
            "trail_price": dec(self.trail_price),
            "hwm": dec(self.hwm),
            "subtag": None,
            "source": None,
            "expires_at": opt(self.expires_at),
        }


@dataclass
class Position:
    asset: Asset
    qty: Decimal = ZERO
    cost_basis: Decimal = ZERO  # what was paid for the shares still held

    @property
    def avg_entry_price(self) -> Decimal:
        return self.cost_basis / self.qty if self.qty else ZERO


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
    last_sync: float = 0.0
    first_open: int = 0  # orders before this index are all closed: hot paths skip them

    def open_orders(self) -> list[Order]:
        """Open orders, oldest first, without rescanning the closed history each request."""
        orders = self.orders
        while self.first_open < len(orders) and not orders[self.first_open].is_open:
            self.first_open += 1
        return [o for o in orders[self.first_open :] if o.is_open]


class Broker:
    """All accounts of one simulator, their books and the market they trade in."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock = MarketClock(config.clock)
        self.prices = PricePath(config.seed)
        self.accounts: dict[str, Account] = {}
        self._account_seq = 0
        self._close_window = (0.0, 0.0)  # (a close, the next close): last_close's cache
        for spec in config.accounts:
            self.add_account(spec)

    # ------------------------------------------------------------------ accounts

    def add_account(self, spec: AccountSpec) -> Account:
        with self.lock:
            if spec.api_key in self.accounts:
                raise unprocessable(f"an account with api_key {spec.api_key} already exists")
            self._account_seq += 1
            now = self.clock.now()
            account = Account(
                id=str(uuid.uuid4()),
                api_key=spec.api_key,
                secret_key=spec.secret_key,
                account_number=spec.account_number
                or f"PA3{self._account_seq:04d}{secrets.randbelow(10**5):05d}",
                status=spec.status,
                initial_cash=spec.cash,
                cash=spec.cash,
                created_at=now,
                last_sync=now,
            )
            self.accounts[spec.api_key] = account
            return account

    def authenticate(self, api_key: str | None, secret_key: str | None) -> Account | None:
        if not api_key or not secret_key:
            return None
        account = self.accounts.get(api_key)
        if account is None or not secrets.compare_digest(account.secret_key, secret_key):
            return None
        return account

    # ------------------------------------------------------------------ valuation

    def price(self, asset: Asset, t: float | None = None) -> Decimal:
        return self.prices.price(asset.symbol, self.clock.now() if t is None else t)

    def last_close(self, t: float) -> float:
        """The most recent 16:00 New York close strictly before ``t``."""
        close, following = self._close_window
        if close < t <= following:  # hot path: GET /v2/account asks this on every request
            return close
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            candidate = datetime.combine(day, datetime.min.time().replace(hour=16), NEW_YORK)
            if day.weekday() < 5 and candidate.timestamp() < t:
                close = candidate.timestamp()
                self._close_window = (close, self.clock.next_close(close).timestamp())
                return close
            day -= timedelta(days=1)

    def _reserved_buying_power(self, account: Account, now: float, exclude: Order | None = None) -> Decimal:
        reserved = ZERO
        for order in account.open_orders():
            if order is exclude or order.side != "buy" or order.status == "held":
                continue
            if order.notional is not None:
                reserved += order.notional
            else:
                price = order.limit_price or order.stop_price or self.price(order.asset, now)
                reserved += order.remaining_qty() * price
        return reserved

    def _held_for_orders(self, account: Account, asset: Asset, exclude: Order | None = None) -> Decimal:
        """Quantity already promised to open sell orders (one leg counted per OCO pair)."""
        held = ZERO
        seen_groups: set[str] = set()
        for order in account.open_orders():
            if order.side != "sell" or order.asset is not asset:
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

    def account_json(self, account: Account) -> dict[str, Any]:
        now = self.clock.now()
        long_value = sum(
            (p.qty * self.price(p.asset, now) for p in account.positions.values() if p.qty > 0), ZERO
        )
        equity = account.cash + long_value
        last_equity = self._equity_at(account, self.last_close(now))
        buying_power = max(ZERO, account.cash - self._reserved_buying_power(account, now))
        blocked = account.status != "ACTIVE"
        return {
            "id": account.id,
            "admin_configurations": {},
            "user_configurations": None,
            "account_number": account.account_number,
            "status": account.status,
            "crypto_status": account.status,
            "options_approved_level": 0,
            "options_trading_level": 0,
            "currency": "USD",
            "buying_power": money(buying_power),
            "regt_buying_power": money(buying_power),
            "daytrading_buying_power": "0",
            "effective_buying_power": money(buying_power),
            "non_marginable_buying_power": money(buying_power),
            "options_buying_power": money(buying_power),
            "bod_dtbp": "0",
            "cash": money(account.cash),
            "accrued_fees": "0",
            "portfolio_value": money(equity),
            "pattern_day_trader": False,
            "trading_blocked": blocked,
            "transfers_blocked": blocked,
            "account_blocked": blocked,
            "created_at": iso(account.created_at),
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": False,
            "equity": money(equity),
            "last_equity": money(last_equity),
            "long_market_value": money(long_value),
            "short_market_value": "0",
            "position_market_value": money(long_value),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
            "balance_asof": datetime.fromtimestamp(self.last_close(now), NEW_YORK).date().isoformat(),
            "crypto_tier": 1,
            "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
        }

    def position_json(self, account: Account, position: Position) -> dict[str, Any]:
        now = self.clock.now()
        asset = position.asset
        current = self.price(asset, now)
        lastday = self.price(asset, self.last_close(now))
        market_value = position.qty * current
        unrealized = market_value - position.cost_basis
        plpc = unrealized / position.cost_basis if position.cost_basis else ZERO
        intraday = position.qty * (current - lastday)
        lastday_value = position.qty * lastday
        values = {
            "avg_entry_price": number(position.avg_entry_price.quantize(Decimal("0.0001"))),
            "market_value": money(market_value),
            "cost_basis": money(position.cost_basis),
            "unrealized_pl": money(unrealized),
            "unrealized_plpc": number(plpc.quantize(Decimal("0.0000000001"))),
            "unrealized_intraday_pl": money(intraday),
            "unrealized_intraday_plpc": number(
                (intraday / lastday_value if lastday_value else ZERO).quantize(Decimal("0.0000000001"))
            ),
            "current_price": number(current),
            "lastday_price": number(lastday),
            "change_today": number(((current - lastday) / lastday).quantize(Decimal("0.0000000001"))),
        }
        available = position.qty - self._held_for_orders(account, asset)
        return {
            "asset_id": asset.id,
            "symbol": asset.position_symbol,
            "exchange": asset.exchange,
            "asset_class": asset.asset_class,
            "asset_marginable": not asset.is_crypto,
            "qty": number(position.qty),
            "side": "long",
            **values,
            "qty_available": number(max(ZERO, available)),
        }

    def _equity_at(self, account: Account, t: float) -> Decimal:
        if t <= account.created_at:
            return account.initial_cash
        cash = account.initial_cash
        holdings: dict[str, Decimal] = {}
        for fill in account.fills:
            if fill.t > t:
                break
            cash += fill.cash_delta
            signed = fill.qty if fill.order.side == "buy" else -fill.qty
            holdings[fill.order.asset.symbol] = holdings.get(fill.order.asset.symbol, ZERO) + signed
        value = sum((qty * self.prices.price(sym, t) for sym, qty in holdings.items() if qty), ZERO)
        return cash + value

    # ------------------------------------------------------------------ orders: submit

    def submit_order(self, account: Account, body: dict[str, Any]) -> Order:
        with self.lock:
            now = self.clock.now()
            self.sync(account, now)
            if account.status != "ACTIVE":
                raise forbidden("account is not active for trading")
            order = self._build_order(account, body, now)
            self._check_funds(account, order, now)
            self._accept(account, order, now)
            self._evaluate(account, order, now, now, submitting=True)
            for leg in order.legs:
                self._evaluate(account, leg, now, now, submitting=True)
            return order

    def _build_order(self, account: Account, body: dict[str, Any], now: float) -> Order:
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise invalid("symbol is required")
        asset = find_asset(symbol)
        if asset is None:
            raise unprocessable(f'asset "{symbol}" not found')
        side = _text(body, "side")
        if side not in ("buy", "sell"):
            raise invalid("side must be buy or sell")
        order_type = _text(body, "type") or _text(body, "order_type")
        if order_type not in ORDER_TYPES:
            raise invalid(f"invalid order type: {order_type!r}")
        tif = _text(body, "time_in_force")
        if tif not in TIME_IN_FORCE:
            raise invalid(f"invalid time_in_force: {tif!r}")
        order_class = _text(body, "order_class") or "simple"
        if order_class not in ORDER_CLASSES:
            raise invalid(f"invalid order_class: {order_class!r}")
        qty = _optional_decimal(body, "qty")
        notional = _optional_decimal(body, "notional")
        if qty is None and notional is None:
            raise invalid("qty or notional is required")
        if qty is not None and notional is not None:
            raise invalid("only one of qty or notional may be specified")
        if qty is not None and qty <= 0:
            raise invalid("qty must be > 0")
        if notional is not None and notional <= 0:
            raise invalid("notional must be > 0")
        if qty is not None and qty != qty.quantize(QTY_STEP, rounding=ROUND_DOWN):
            raise invalid("qty must have at most 9 decimal places")
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if asset.is_crypto:
            if tif not in ("gtc", "ioc"):
                raise unprocessable("crypto orders only accept time_in_force gtc or ioc")
        elif fractional:
            if not asset.fractionable:
                raise unprocessable(f"requested asset {asset.symbol} is not fractionable")
            if tif != "day":
                raise unprocessable("fractional orders must be DAY orders")
            if order_class != "simple":
                raise unprocessable("fractional orders must be simple orders")
        if notional is not None and order_type != "market" and not asset.is_crypto:
            raise unprocessable("notional orders are only supported for market orders")
        limit_price = _optional_decimal(body, "limit_price")
        stop_price = _optional_decimal(body, "stop_price")
        trail_price = _optional_decimal(body, "trail_price")
        trail_percent = _optional_decimal(body, "trail_percent")
        # An OCO's limit price is its take_profit.limit_price (Alpaca's documented shape).
        if order_type in ("limit", "stop_limit") and limit_price is None and order_class != "oco":
            raise invalid(f"limit_price is required for {order_type} orders")
        if order_type in ("stop", "stop_limit") and stop_price is None:
            raise invalid(f"stop_price is required for {order_type} orders")
        if order_type == "market" and (limit_price is not None or stop_price is not None):
            raise invalid("market orders cannot have limit_price or stop_price")
        if order_type == "trailing_stop":
            if (trail_price is None) == (trail_percent is None):
                raise invalid("trailing_stop orders require exactly one of trail_price or trail_percent")
            if tif not in ("day", "gtc"):
                raise unprocessable("trailing_stop orders must be day or gtc")
        for name, value in (
            ("limit_price", limit_price),
            ("stop_price", stop_price),
            ("trail_price", trail_price),
            ("trail_percent", trail_percent),
        ):
            if value is not None and value <= 0:
                raise invalid(f"{name} must be > 0")
        if body.get("extended_hours") and not (order_type == "limit" and tif == "day"):
            raise unprocessable("extended hours orders must be DAY limit orders")
        for name, value in (("limit_price", limit_price), ("stop_price", stop_price)):
            _check_increment(asset, name, value)
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(client_order_id, str) or len(client_order_id) > 128:
            raise invalid("client_order_id must be a string of at most 128 characters")
        if client_order_id in account.orders_by_client_id:
            raise invalid("client_order_id must be unique")
        order = Order(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            asset=asset,
            side=side,
            type=order_type,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            trail_percent=trail_percent,
            order_class=order_class,
            extended_hours=bool(body.get("extended_hours", False)),
            created_at=now,
            updated_at=now,
            position_intent=_text(body, "position_intent"),
            last_eval=now,
        )
        self._attach_legs(order, body, now)
        return order

    def _attach_legs(self, order: Order, body: dict[str, Any], now: float) -> None:
        take_profit = _prices(body, "take_profit")
        stop_loss = _prices(body, "stop_loss")
        if order.order_class == "simple":
            if take_profit or stop_loss:
                raise invalid("take_profit and stop_loss require order_class bracket, oco or oto")
            return
        if order.qty is None or order.qty != order.qty.to_integral_value():
            raise unprocessable(f"{order.order_class} orders require a whole-share qty")
        if order.order_class == "bracket" and not (take_profit and stop_loss):
            raise invalid("bracket orders require take_profit and stop_loss")
        if order.order_class == "oco" and not (take_profit and stop_loss):
            raise invalid("oco orders require take_profit and stop_loss")
        if order.order_class == "oto" and bool(take_profit) == bool(stop_loss):
            raise invalid("oto orders require exactly one of take_profit or stop_loss")
        if order.order_class in ("bracket", "oto") and order.type not in (
            "market",
            "limit",
            "stop",
            "stop_limit",
        ):
            raise unprocessable(f"{order.order_class} entry must be market, limit, stop or stop_limit")
        if order.order_class in ("bracket", "oto", "oco") and order.time_in_force not in ("day", "gtc"):
            raise unprocessable(f"{order.order_class} orders must be day or gtc")
        tp_price = (
            _decimal(take_profit.get("limit_price"), "take_profit.limit_price") if take_profit else None
        )
        sl_stop = _decimal(stop_loss.get("stop_price"), "stop_loss.stop_price") if stop_loss else None
        sl_limit = (
            _decimal(stop_loss["limit_price"], "stop_loss.limit_price")
            if stop_loss and stop_loss.get("limit_price") is not None
            else None
        )
        _check_increment(order.asset, "take_profit.limit_price", tp_price)
        _check_increment(order.asset, "stop_loss.stop_price", sl_stop)
        _check_increment(order.asset, "stop_loss.limit_price", sl_limit)
        exit_side = "sell" if order.side == "buy" else "buy"
        sign = Decimal(1) if order.side == "buy" else Decimal(-1)
        if order.order_class == "oco":
            # OCO is exit-only: the order itself is the take-profit limit, its leg the stop-loss.
            if order.type != "limit":
                raise unprocessable("oco orders must be limit orders")
            assert tp_price is not None and sl_stop is not None
            order.limit_price = tp_price
            if (tp_price - sl_stop) * -sign <= 0:
                raise unprocessable(
                    "oco take_profit.limit_price must be on the other side of stop_loss.stop_price"
                )
            order.legs.append(self._leg(order, order.side, sl_stop, sl_limit, now, status="new"))
            return
        base = order.limit_price or order.stop_price or self.price(order.asset, now)
        if tp_price is not None and (tp_price - base) * sign < CENT:
            raise unprocessable(f"take_profit.limit_price must be >= base_price + 0.01 (base_price {base})")
        if sl_stop is not None and (base - sl_stop) * sign < CENT:
            raise unprocessable(f"stop_loss.stop_price must be <= base_price - 0.01 (base_price {base})")
        if tp_price is not None:
            leg = self._leg(order, exit_side, None, None, now, status="held")
            leg.type, leg.limit_price = "limit", tp_price
            order.legs.append(leg)
        if sl_stop is not None:
            order.legs.append(self._leg(order, exit_side, sl_stop, sl_limit, now, status="held"))

    def _leg(
        self, parent: Order, side: str, stop: Decimal | None, limit: Decimal | None, now: float, status: str
    ) -> Order:
        order_type = (
            "stop_limit" if (stop is not None and limit is not None) else ("stop" if stop else "limit")
        )
        return Order(
            id=str(uuid.uuid4()),
            client_order_id=str(uuid.uuid4()),
            asset=parent.asset,
            side=side,
            type=order_type,
            time_in_force=parent.time_in_force,
            qty=parent.qty,
            notional=None,
            limit_price=limit,
            stop_price=stop,
            trail_price=None,
            trail_percent=None,
            order_class=parent.order_class,
            extended_hours=False,
            created_at=now,
            updated_at=now,
            status=status,
            parent=parent,
            last_eval=now,
        )

    def _check_funds(
        self, account: Account, order: Order, now: float, replacing: Order | None = None
    ) -> None:
        """Buying power for buys, held quantity for sells; ``replacing`` no longer counts."""
        if order.side == "buy":
            if order.notional is not None:
                cost = order.notional
            else:
                assert order.qty is not None
                _, ask = self.prices.quote(order.asset.symbol, now)
                price = order.limit_price or order.stop_price or ask
                cost = order.qty * price
            buying_power = account.cash - self._reserved_buying_power(account, now, exclude=replacing)
            if cost > buying_power:
                raise forbidden(
                    "insufficient buying power",
                    buying_power=money(max(ZERO, buying_power)),
                    cost_basis=money(cost),
                )
            return
        position = account.positions.get(order.asset.symbol)
        existing = position.qty if position else ZERO
        held = self._held_for_orders(account, order.asset, exclude=replacing)
        available = existing - held
        if order.notional is not None:
            requested = (order.notional / self.prices.quote(order.asset.symbol, now)[0]).quantize(
                QTY_STEP, rounding=ROUND_DOWN
            )
        else:
            assert order.qty is not None
            requested = order.qty
        if requested > available:
            raise forbidden(
                f"insufficient qty available for order (requested: {number(requested)}, "
                f"available: {number(max(ZERO, available))})",
                available=number(max(ZERO, available)),
                existing_qty=number(existing),
                held_for_orders=number(held),
                symbol=order.asset.position_symbol,
            )

    def _accept(self, account: Account, order: Order, now: float) -> None:
        equity_day_order = not order.asset.is_crypto and order.time_in_force in ("day", "opg", "cls")
        if self.clock.mode == "exchange_hours" and equity_day_order:
            order.expires_at = self.clock.next_close(now).timestamp()
        if not order.asset.is_crypto and not self.clock.is_open(now):
            order.status = "accepted"
        for o in (order, *order.legs):
            account.orders.append(o)
            account.orders_by_id[o.id] = o
            account.orders_by_client_id[o.client_order_id] = o

    # ------------------------------------------------------------------ orders: matching

    def sync(self, account: Account, now: float | None = None) -> None:
        """Match every working order of the account against the path up to now."""
        with self.lock:
            now = self.clock.now() if now is None else now
            if now <= account.last_sync:
                return
            for order in account.open_orders():
                if order.is_open:
                    self._evaluate(account, order, order.last_eval, now)
            account.last_sync = now

    def _sample_times(self, start: float, end: float) -> list[float]:
        span = end - start
        if span <= 0:
            return []
        steps = min(_MAX_SAMPLES, max(1, int(span)))
        return [start + span * (i + 1) / steps for i in range(steps)]

    def _evaluate(
        self, account: Account, order: Order, start: float, end: float, submitting: bool = False
    ) -> None:
        if not order.working:
            order.last_eval = max(order.last_eval, end)
            return
        times = [end] if submitting else self._sample_times(start, end)
        equity_hours = not order.asset.is_crypto
        for t in times:
            if order.expires_at is not None and t >= order.expires_at:
                self._close(order, "expired", order.expires_at)
                return
            if equity_hours and not self.clock.is_open(t):
                continue
            if order.status == "accepted":
                order.status = "new"
            fill_price = self._crossing(order, t, immediate=submitting)
            if fill_price is not None:
                # Arriving orders take what they need; resting ones meet limited liquidity:
                # one second's worth at the first cross, then more with every second it lasts.
                cap: Decimal | None = None
                if not submitting:
                    if order.crossed_since is None:
                        order.crossed_since = t
                    seconds = Decimal(repr(1 + t - order.crossed_since))
                    whole = order.qty is not None and order.qty == order.qty.to_integral_value()
                    allowed = (self.config.liquidity * seconds).quantize(
                        Decimal(1) if whole else QTY_STEP, rounding=ROUND_DOWN
                    )
                    cap = allowed - order.filled_qty
                    if cap <= 0:
                        continue
                self._fill(account, order, fill_price, t, cap)
                if not order.is_open:
                    order.last_eval = end
                    return
        order.last_eval = end
        if submitting and order.time_in_force in ("ioc", "fok") and order.is_open:
            self._close(order, "canceled", end)

    def _crossing(self, order: Order, t: float, immediate: bool) -> Decimal | None:
        """The fill price if the order executes at time t, else None."""
        bid, ask = self.prices.quote(order.asset.symbol, t)
        buy = order.side == "buy"
        touch = ask if buy else bid
        if order.type == "trailing_stop":
            trade = self.prices.price(order.asset.symbol, t)
            if order.hwm is None:
                order.hwm = trade
            order.hwm = max(order.hwm, trade) if not buy else min(order.hwm, trade)
            if order.trail_price is not None:
                offset = order.trail_price
            else:
                assert order.trail_percent is not None
                offset = order.hwm * order.trail_percent / 100
            order.stop_price = (order.hwm + offset if buy else order.hwm - offset).quantize(CENT)
            hit = trade >= order.stop_price if buy else trade <= order.stop_price
            return touch if hit else None
        if order.type in ("stop", "stop_limit") and not order.triggered:
            trade = self.prices.price(order.asset.symbol, t)
            assert order.stop_price is not None
            if not (trade >= order.stop_price if buy else trade <= order.stop_price):
                return None
            order.triggered = True
            if order.type == "stop":
                return touch
        if order.type == "market" or (order.type == "stop" and order.triggered):
            return touch
        limit = order.limit_price
        assert limit is not None
        if buy and touch <= limit:
            # A resting order fills at its limit; one marketable on arrival gets the better touch.
            return touch if immediate else limit
        if not buy and touch >= limit:
            return touch if immediate else limit
        return None

    def _fill(
        self, account: Account, order: Order, price: Decimal, t: float, cap: Decimal | None = None
    ) -> None:
        if order.notional is not None:
            qty = (order.notional / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
        else:
            qty = order.remaining_qty()
            if cap is not None:
                qty = min(qty, cap)
        symbol = order.asset.symbol
        if order.side == "sell":
            held = account.positions.get(symbol)
            if qty > (held.qty if held else ZERO):
                self._reject(order, t)
                return
        cost = (qty * price).quantize(CENT, rounding=ROUND_HALF_UP)
        if order.side == "buy" and cost > account.cash:
            # A cash account: a stop that triggers above what was reserved, or a market order
            # that waited for the open, is rejected rather than overdrawing cash.
            self._reject(order, t)
            return
        position = account.positions.setdefault(symbol, Position(order.asset))
        if order.side == "buy":
            account.cash -= cost
            position.qty += qty
            position.cost_basis += cost
            cash_delta = -cost
        else:
            avg = position.avg_entry_price
            position.qty -= qty
            position.cost_basis = position.qty * avg if position.qty else ZERO
            account.cash += cost
            cash_delta = cost
        if position.qty == 0:
            del account.positions[symbol]
        previous = order.filled_qty
        order.filled_qty = previous + qty
        order.filled_avg_price = (
            price
            if order.filled_avg_price is None
            else ((order.filled_avg_price * previous + price * qty) / order.filled_qty).quantize(CENT)
        )
        if order.notional is not None:
            order.qty = None
        complete = order.notional is not None or order.filled_qty >= (order.qty or ZERO)
        order.status = "filled" if complete else "partially_filled"
        order.filled_at = t
        order.updated_at = t
        # Kept in time order: a sync pass matches order by order, not instant by instant.
        bisect.insort(
            account.fills,
            Fill(
                id=f"{datetime.fromtimestamp(t, NEW_YORK).strftime('%Y%m%d%H%M%S%f')[:17]}::{uuid.uuid4()}",
                order=order,
                t=t,
                qty=qty,
                price=price,
                cash_delta=cash_delta,
                leaves_qty=order.remaining_qty() if not complete else ZERO,
                cum_qty=order.filled_qty,
                order_status=order.status,
            ),
            key=lambda fill: fill.t,
        )
        if not complete:
            return
        # Brackets and OTOs arm their exit legs; a filled exit cancels its sibling.
        for leg in order.legs:
            if leg.status == "held":
                leg.status = "new"
                leg.updated_at = t
                leg.last_eval = t
        if order.order_class == "oco" and order.parent is None:
            for leg in order.legs:
                self._close(leg, "canceled", t)
        if order.parent is not None:
            siblings = [order.parent] if order.parent.order_class == "oco" else order.parent.legs
            for sibling in siblings:
                if sibling is not order and sibling.is_open:
                    self._close(sibling, "canceled", t)

    def _reject(self, order: Order, t: float) -> None:
        order.status = "rejected"
        order.failed_at = t
        order.updated_at = t
        for leg in order.legs:
            if leg.is_open:
                self._close(leg, "canceled", t)

    def _close(self, order: Order, status: str, t: float) -> None:
        order.status = status
        order.updated_at = t
        if status == "canceled":
            order.canceled_at = t
        elif status == "expired":
            order.expired_at = t
        for leg in order.legs:
            if leg.is_open:
                self._close(leg, status if status != "replaced" else "canceled", t)

    # ------------------------------------------------------------------ orders: read, cancel, replace

    def get_order(self, account: Account, order_id: str) -> Order:
        with self.lock:
            self.sync(account)
            order = account.orders_by_id.get(order_id)
            if order is None:
                raise not_found("order not found")
            return order

    def get_order_by_client_id(self, account: Account, client_order_id: str) -> Order:
        with self.lock:
            self.sync(account)
            order = account.orders_by_client_id.get(client_order_id)
            if order is None:
                raise not_found("order not found")
            return order

    def list_orders(
        self,
        account: Account,
        *,
        status: str = "open",
        limit: int = 50,
        after: float | None = None,
        until: float | None = None,
        direction: str = "desc",
        nested: bool = False,
        symbols: Iterable[str] | None = None,
        side: str | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            self.sync(account)
            wanted = {s.upper() for s in symbols} if symbols else None
            chosen = []
            for order in account.orders:
                if nested and order.parent is not None:
                    continue
                if status == "open" and not order.is_open:
                    continue
                if status == "closed" and order.is_open:
                    continue
                if (
                    wanted is not None
                    and order.asset.symbol not in wanted
                    and order.asset.position_symbol not in wanted
                ):
                    continue
                if side is not None and order.side != side:
                    continue
                if after is not None and order.created_at <= after:
                    continue
                if until is not None and order.created_at >= until:
                    continue
                chosen.append(order)
            chosen.sort(key=lambda o: o.created_at, reverse=direction == "desc")
            return [o.to_json(nested=nested) for o in chosen[:limit]]

    def cancel_order(self, account: Account, order_id: str) -> Order:
        with self.lock:
            now = self.clock.now()
            self.sync(account, now)
            order = account.orders_by_id.get(order_id)
            if order is None:
                raise not_found("order not found")
            if not order.is_open:
                raise unprocessable(f'order is already in "{order.status}" state')
            self._close(order, "canceled", now)
            return order

    def cancel_all(self, account: Account) -> list[Order]:
        with self.lock:
            now = self.clock.now()
            self.sync(account, now)
            canceled = []
            for order in account.open_orders():
                if order.is_open and order.parent is None:
                    self._close(order, "canceled", now)
                    canceled.append(order)
            return canceled

    def replace_order(self, account: Account, order_id: str, body: dict[str, Any]) -> Order:
        with self.lock:
            now = self.clock.now()
            self.sync(account, now)
            old = account.orders_by_id.get(order_id)
            if old is None:
                raise not_found("order not found")
            if not old.is_open:
                raise unprocessable(f'order is already in "{old.status}" state')
            if old.notional is not None:
                raise unprocessable("notional orders cannot be replaced")
            if old.type == "market":
                raise unprocessable("market orders cannot be replaced")
            if not any(
                body.get(k) is not None
                for k in ("qty", "time_in_force", "limit_price", "stop_price", "trail")
            ):
                raise invalid(
                    "replace requires at least one of qty, time_in_force, limit_price, stop_price, trail"
                )
            qty = _optional_decimal(body, "qty")
            if qty is not None and (qty <= 0 or qty <= old.filled_qty):
                raise invalid("qty must be > 0 and greater than the filled quantity")
            tif = _text(body, "time_in_force") or old.time_in_force
            if tif not in TIME_IN_FORCE:
                raise invalid(f"invalid time_in_force: {tif!r}")
            limit_price = _optional_decimal(body, "limit_price")
            stop_price = _optional_decimal(body, "stop_price")
            trail = _optional_decimal(body, "trail")
            if limit_price is not None and old.type not in ("limit", "stop_limit"):
                raise invalid(f"limit_price cannot be set on a {old.type} order")
            if stop_price is not None and old.type not in ("stop", "stop_limit"):
                raise invalid(f"stop_price cannot be set on a {old.type} order")
            _check_increment(old.asset, "limit_price", limit_price)
            _check_increment(old.asset, "stop_price", stop_price)
            if trail is not None and old.type != "trailing_stop":
                raise invalid("trail can only be set on a trailing_stop order")
            client_order_id = _text(body, "client_order_id") or str(uuid.uuid4())
            if client_order_id in account.orders_by_client_id:
                raise invalid("client_order_id must be unique")
            new = Order(
                id=str(uuid.uuid4()),
                client_order_id=client_order_id,
                asset=old.asset,
                side=old.side,
                type=old.type,
                time_in_force=tif,
                qty=qty if qty is not None else old.qty,
                notional=None,
                limit_price=limit_price if limit_price is not None else old.limit_price,
                stop_price=stop_price if stop_price is not None else old.stop_price,
                trail_price=(trail if old.trail_price is not None else old.trail_price)
                if trail
                else old.trail_price,
                trail_percent=(trail if old.trail_percent is not None else None)
                if trail
                else old.trail_percent,
                order_class=old.order_class,
                extended_hours=old.extended_hours,
                created_at=now,
                updated_at=now,
                status="new" if old.status != "held" else "held",
                replaces=old.id,
                parent=old.parent,
                last_eval=now,
                expires_at=old.expires_at,
            )
            if new.parent is None:
                self._check_funds(account, new, now, replacing=old)
            old.status = "replaced"
            old.replaced_at = now
            old.replaced_by = new.id
            old.updated_at = now
            new.legs = old.legs
            for leg in new.legs:
                leg.parent = new
            old.legs = []
            if old.parent is not None:
                siblings = old.parent.legs
                siblings[siblings.index(old)] = new
            account.orders.append(new)
            account.orders_by_id[new.id] = new
            account.orders_by_client_id[new.client_order_id] = new
            self._evaluate(account, new, now, now, submitting=True)
            return new

    # ------------------------------------------------------------------ positions

    def get_position(self, account: Account, symbol: str) -> Position:
        with self.lock:
            self.sync(account)
            asset = find_asset(symbol)
            position = account.positions.get(asset.symbol) if asset else None
            if position is None:
                raise not_found("position does not exist")
            return position

    def close_position(
        self, account: Account, symbol: str, qty: str | None = None, percentage: str | None = None
    ) -> Order:
        with self.lock:
            position = self.get_position(account, symbol)
            if qty is not None and percentage is not None:
                raise invalid("only one of qty or percentage may be specified")
            amount = position.qty
            if qty is not None:
                amount = _decimal(qty, "qty")
                if amount <= 0 or amount > position.qty:
                    raise forbidden(
                        f"insufficient qty available for order (requested: {qty}, "
                        f"available: {number(position.qty)})"
                    )
            elif percentage is not None:
                pct = _decimal(percentage, "percentage")
                if not ZERO < pct <= 100:
                    raise invalid("percentage must be > 0 and <= 100")
                amount = (position.qty * pct / 100).quantize(QTY_STEP, rounding=ROUND_DOWN)
                if not position.asset.fractionable:
                    amount = amount.to_integral_value(rounding=ROUND_DOWN)
            # Closing first releases shares promised to open sell orders, as Alpaca does.
            for order in account.open_orders():
                if order.is_open and order.side == "sell" and order.asset is position.asset:
                    self._close(order, "canceled", self.clock.now())
            tif = "gtc" if position.asset.is_crypto else "day"
            return self.submit_order(
                account,
                {
                    "symbol": position.asset.symbol,
                    "qty": str(amount),
                    "side": "sell",
                    "type": "market",
                    "time_in_force": tif,
                },
            )

    def close_all_positions(self, account: Account, cancel_orders: bool) -> list[dict[str, Any]]:
        with self.lock:
            self.sync(account)
            if cancel_orders:
                self.cancel_all(account)
            results = []
            for position in list(account.positions.values()):
                try:
                    order = self.close_position(account, position.asset.symbol)
                except BrokerError as error:
                    results.append(
                        {
                            "symbol": position.asset.position_symbol,
                            "status": error.status,
                            "body": error.body(),
                        }
                    )
                else:
                    results.append(
                        {
                            "order_id": order.id,
                            "symbol": position.asset.position_symbol,
                            "status": 200,
                            "body": order.to_json(),
                        }
                    )
            return results

    # ------------------------------------------------------------------ history

    def activities(self, account: Account) -> list[dict[str, Any]]:
        with self.lock:
            self.sync(account)
            return [
                {
                    "id": fill.id,
                    "account_id": account.id,
                    "activity_type": "FILL",
                    "transaction_time": iso(fill.t),
                    "type": "fill" if fill.leaves_qty == 0 else "partial_fill",
                    "price": number(fill.price),
                    "qty": number(fill.qty),
                    "side": fill.order.side,
                    "symbol": fill.order.asset.symbol,
                    "leaves_qty": number(fill.leaves_qty),
                    "order_id": fill.order.id,
                    "cum_qty": number(fill.cum_qty),
                    "order_status": fill.order_status,
                    "_t": fill.t,
                }
                for fill in account.fills
            ]

    def equity_at(self, account: Account, t: float) -> Decimal:
        with self.lock:
            return self._equity_at(account, t)

    def universe(self) -> list[Asset]:
        return list(UNIVERSE.values())
