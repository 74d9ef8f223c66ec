"""Order intake: a request body becomes a validated :class:`~.books.Order`, or Alpaca's error.

Validation reads the books (buying power, quantity held) but never changes them; the
:class:`~.broker.Broker` calls in here under its lock and then hands the order to matching.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import (
    CENT,
    QTY_STEP,
    ZERO,
    Account,
    Order,
    held_for_orders,
    money,
    number,
    reserved_buying_power,
)
from alpaca_vault.simulator.errors import forbidden, invalid, unprocessable
from alpaca_vault.simulator.prices import PricePath

ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIME_IN_FORCE = frozenset({"day", "gtc", "ioc", "fok", "opg", "cls"})
ORDER_CLASSES = frozenset({"simple", "bracket", "oco", "oto"})
_MAX_AMOUNT = Decimal(10) ** 12  # beyond any real order; keeps Decimal arithmetic in range


def decimal_field(value: Any, name: str) -> Decimal:
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


def text_field(body: dict[str, Any], name: str) -> str | None:
    """A string field, or None when absent; anything else is a clear 422 (never a 500)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    return value


def optional_decimal(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    return decimal_field(value, name)


def _prices(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise invalid(f'{name} must be an object such as {{"limit_price": "100"}}')
    return value


def check_increment(asset: Asset, name: str, price: Decimal | None) -> None:
    """US equities trade in cents from $1 up and in hundredths of a cent below, as Alpaca enforces."""
    if price is None or asset.is_crypto:
        return
    step = CENT if price >= 1 else Decimal("0.0001")
    if price != price.quantize(step, rounding=ROUND_DOWN):
        raise unprocessable(
            f"invalid {name} {number(price)}. sub-penny increment does not fulfill minimum pricing criteria"
        )


def client_order_id_field(account: Account, body: dict[str, Any]) -> str:
    client_order_id = body.get("client_order_id") or str(uuid.uuid4())
    if not isinstance(client_order_id, str) or len(client_order_id) > 128:
        raise invalid("client_order_id must be a string of at most 128 characters")
    if client_order_id in account.orders_by_client_id:
        raise invalid("client_order_id must be unique")
    return client_order_id


def build_order(account: Account, body: dict[str, Any], prices: PricePath, now: float) -> Order:
    """A new simple, bracket, OCO or OTO order from a ``POST /v2/orders`` body."""
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise invalid("symbol is required")
    asset = find_asset(symbol)
    if asset is None:
        raise unprocessable(f'asset "{symbol}" not found')
    side = text_field(body, "side")
    if side not in ("buy", "sell"):
        raise invalid("side must be buy or sell")
    order_type = text_field(body, "type") or text_field(body, "order_type")
    if order_type not in ORDER_TYPES:
        raise invalid(f"invalid order type: {order_type!r}")
    tif = text_field(body, "time_in_force")
    if tif not in TIME_IN_FORCE:
        raise invalid(f"invalid time_in_force: {tif!r}")
    order_class = text_field(body, "order_class") or "simple"
    if order_class not in ORDER_CLASSES:
        raise invalid(f"invalid order_class: {order_class!r}")
    qty = optional_decimal(body, "qty")
    notional = optional_decimal(body, "notional")
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
        if order_type not in ("market", "limit", "stop_limit"):
            raise unprocessable(
                f"{order_type} orders are not supported for crypto (use market, limit or stop_limit)"
            )
        if order_class != "simple":
            raise unprocessable("crypto orders must be simple orders")
    elif asset.is_option:
        if notional is not None:
            raise unprocessable("notional orders are not supported for options")
        if fractional:
            raise unprocessable("options orders require a whole-contract qty")
        if tif != "day":
            raise unprocessable("options orders must be DAY orders")
        if order_type not in ("market", "limit", "stop", "stop_limit"):
            raise unprocessable(f"{order_type} orders are not supported for options")
        if order_class != "simple":
            raise unprocessable("options orders must be simple orders")
    elif fractional:
        if not asset.fractionable:
            raise unprocessable(f"requested asset {asset.symbol} is not fractionable")
        if tif != "day":
            raise unprocessable("fractional orders must be DAY orders")
        if order_class != "simple":
            raise unprocessable("fractional orders must be simple orders")
    if notional is not None and order_type != "market" and not asset.is_crypto:
        raise unprocessable("notional orders are only supported for market orders")
    limit_price = optional_decimal(body, "limit_price")
    stop_price = optional_decimal(body, "stop_price")
    trail_price = optional_decimal(body, "trail_price")
    trail_percent = optional_decimal(body, "trail_percent")
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
        check_increment(asset, name, value)
    position_intent = text_field(body, "position_intent")
    if position_intent is not None and position_intent not in POSITION_INTENTS:
        raise invalid(f"invalid position_intent: {position_intent!r}")
    order = Order(
        id=str(uuid.uuid4()),
        client_order_id=client_order_id_field(account, body),
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
        position_intent=position_intent,
        last_eval=now,
    )
    _attach_legs(order, body, prices, now)
    return order


POSITION_INTENTS = frozenset({"buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"})


def _attach_legs(order: Order, body: dict[str, Any], prices: PricePath, now: float) -> None:
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
    if order.time_in_force not in ("day", "gtc"):
        raise unprocessable(f"{order.order_class} orders must be day or gtc")
    tp_price = (
        decimal_field(take_profit.get("limit_price"), "take_profit.limit_price") if take_profit else None
    )
    sl_stop = decimal_field(stop_loss.get("stop_price"), "stop_loss.stop_price") if stop_loss else None
    sl_limit = (
        decimal_field(stop_loss["limit_price"], "stop_loss.limit_price")
        if stop_loss and stop_loss.get("limit_price") is not None
        else None
    )
    check_increment(order.asset, "take_profit.limit_price", tp_price)
    check_increment(order.asset, "stop_loss.stop_price", sl_stop)
    check_increment(order.asset, "stop_loss.limit_price", sl_limit)
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
        # As on Alpaca the stop-loss waits "held" while the take-profit works; its stop is watched.
        order.legs.append(exit_leg(order, order.side, sl_stop, sl_limit, now, status="held"))
        return
    base = order.limit_price or order.stop_price or prices.price(order.asset.symbol, now)
    if tp_price is not None and (tp_price - base) * sign < CENT:
        raise unprocessable(f"take_profit.limit_price must be >= base_price + 0.01 (base_price {base})")
    if sl_stop is not None and (base - sl_stop) * sign < CENT:
        raise unprocessable(f"stop_loss.stop_price must be <= base_price - 0.01 (base_price {base})")
    if tp_price is not None:
        leg = exit_leg(order, exit_side, None, None, now, status="held")
        leg.type, leg.limit_price = "limit", tp_price
        order.legs.append(leg)
    if sl_stop is not None:
        order.legs.append(exit_leg(order, exit_side, sl_stop, sl_limit, now, status="held"))


def exit_leg(
    parent: Order, side: str, stop: Decimal | None, limit: Decimal | None, now: float, status: str
) -> Order:
    order_type = "stop_limit" if (stop is not None and limit is not None) else ("stop" if stop else "limit")
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


def build_replacement(account: Account, old: Order, body: dict[str, Any], now: float) -> Order:
    """The order that a ``PATCH /v2/orders/{id}`` would put in place of ``old`` (not yet booked)."""
    if not old.is_open:
        raise unprocessable(f'order is already in "{old.status}" state')
    if old.notional is not None:
        raise unprocessable("notional orders cannot be replaced")
    if old.type == "market":
        raise unprocessable("market orders cannot be replaced")
    if old.order_class == "mleg":
        raise unprocessable("multi-leg orders cannot be replaced")
    if not any(
        body.get(k) is not None for k in ("qty", "time_in_force", "limit_price", "stop_price", "trail")
    ):
        raise invalid("replace requires at least one of qty, time_in_force, limit_price, stop_price, trail")
    qty = optional_decimal(body, "qty")
    if qty is not None and (qty <= 0 or qty <= old.filled_qty):
        raise invalid("qty must be > 0 and greater than the filled quantity")
    tif = text_field(body, "time_in_force") or old.time_in_force
    if tif not in TIME_IN_FORCE:
        raise invalid(f"invalid time_in_force: {tif!r}")
    limit_price = optional_decimal(body, "limit_price")
    stop_price = optional_decimal(body, "stop_price")
    trail = optional_decimal(body, "trail")
    if limit_price is not None and old.type not in ("limit", "stop_limit"):
        raise invalid(f"limit_price cannot be set on a {old.type} order")
    if stop_price is not None and old.type not in ("stop", "stop_limit"):
        raise invalid(f"stop_price cannot be set on a {old.type} order")
    check_increment(old.asset, "limit_price", limit_price)
    check_increment(old.asset, "stop_price", stop_price)
    if trail is not None and old.type != "trailing_stop":
        raise invalid("trail can only be set on a trailing_stop order")
    client_order_id = text_field(body, "client_order_id") or str(uuid.uuid4())
    if client_order_id in account.orders_by_client_id:
        raise invalid("client_order_id must be unique")
    return Order(
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
        trail_price=(trail if old.trail_price is not None else old.trail_price) if trail else old.trail_price,
        trail_percent=(trail if old.trail_percent is not None else None) if trail else old.trail_percent,
        order_class=old.order_class,
        extended_hours=old.extended_hours,
        created_at=now,
        updated_at=now,
        status="new" if old.status != "held" else "held",
        replaces=old.id,
        parent=old.parent,
        last_eval=now,
        expires_at=old.expires_at,
        position_intent=old.position_intent,
    )


def check_funds(
    account: Account, order: Order, prices: PricePath, now: float, replacing: Order | None = None
) -> None:
    """Buying power for buys, held quantity for sells; ``replacing`` no longer counts."""
    if order.opens_short:
        return  # an option written: its cover was checked at intake
    if order.side == "buy":
        if order.notional is not None:
            cost = order.notional
        else:
            assert order.qty is not None
            _, ask = prices.quote(order.asset.symbol, now)
            price = order.limit_price or order.stop_price or ask
            cost = order.qty * price * order.asset.multiplier
        buying_power = account.cash - reserved_buying_power(account, prices, now, exclude=replacing)
        if cost > buying_power:
            raise forbidden(
                "insufficient buying power",
                buying_power=money(max(ZERO, buying_power)),
                cost_basis=money(cost),
            )
        return
    position = account.positions.get(order.asset.symbol)
    existing = position.qty if position else ZERO
    held = held_for_orders(account, order.asset, exclude=replacing)
    available = existing - held
    if order.notional is not None:
        requested = (order.notional / prices.quote(order.asset.symbol, now)[0]).quantize(
            QTY_STEP, rounding=ROUND_DOWN
        )
    else:
        assert order.qty is not None
        requested = order.qty
    if requested > available:
        related = [
            o.id
            for o in account.open_orders()
            if o.side == "sell" and o.asset is order.asset and o.status != "held" and o is not replacing
        ]
        raise forbidden(
            f"insufficient qty available for order (requested: {number(requested)}, "
            f"available: {number(max(ZERO, available))})",
            available=number(max(ZERO, available)),
            existing_qty=number(existing),
            held_for_orders=number(held),
            related_orders=related,
            symbol=order.asset.position_symbol,
        )
