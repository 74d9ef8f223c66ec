"""How orders read in a summary: side, size, symbol, type, prices, status, and a bracket's exit legs.

Alpaca's strings appear only as known words, symbols and ids of a strict shape (tools/voice.py).
"""

from __future__ import annotations

from alpaca_vault.broker.models import Order
from alpaca_vault.broker.trading import is_live
from alpaca_vault.tools import voice
from alpaca_vault.tools.results import counted


def _exit_role(leg: Order) -> str:
    kind = leg.type or leg.order_type
    return "take-profit" if kind == "limit" else "stop-loss" if kind in ("stop", "stop_limit") else "exit"


def _leg_price(leg: Order) -> str:
    kind = leg.type or leg.order_type
    if kind == "stop_limit":
        return f"stop {leg.stop_price} limit {leg.limit_price}"
    if kind == "stop":
        return f"stop {leg.stop_price}"
    if kind == "trailing_stop":
        return f"trail {leg.trail_price}" if leg.trail_price is not None else f"trail {leg.trail_percent}%"
    kind = voice.word(kind, voice.ORDER_TYPES)
    return f"{kind} {leg.limit_price}" if leg.limit_price is not None else f"{kind}"


def _describe_exits(order: Order) -> str:
    """``2 exit legs: take-profit limit 110 (new, id ..), stop-loss stop 90 (held, id ..)``."""
    legs = order.legs or []
    if not legs or order.order_class == "mleg":
        return ""
    parts = [
        f"{_exit_role(leg)} {'limit ' if (leg.type or leg.order_type) == 'limit' else ''}"
        f"{_leg_price(leg).removeprefix('limit ')} "
        f"({voice.word(leg.status, voice.ORDER_STATUSES)}, id {voice.ident(leg.id)})"
        for leg in legs
    ]
    return f"; {counted(len(legs), 'exit leg')}: " + ", ".join(parts)


def live_count(order: Order) -> int:
    """How many orders of this group are still live: the order itself and each exit leg."""
    legs = [] if order.order_class == "mleg" else order.legs or []
    return int(is_live(order)) + sum(1 for leg in legs if is_live(leg))


def describe_order(order: Order) -> str:
    size = f"{order.qty}" if order.qty is not None else f"${order.notional}"
    prices = []
    if order.stop_price is not None:
        prices.append(f"stop {order.stop_price}")
    if order.limit_price is not None:
        prices.append(f"limit {order.limit_price}")
    if order.trail_price is not None or order.trail_percent is not None:
        prices.append(
            f"trail {order.trail_price}" if order.trail_price is not None else f"trail {order.trail_percent}%"
        )
    price = f" @ {', '.join(prices)}" if prices else ""
    filled = f", filled {order.filled_qty} @ {order.filled_avg_price}" if order.filled_qty else ""
    kind = voice.word(order.type or order.order_type, voice.ORDER_TYPES)
    what = f"{voice.word(order.side, voice.ORDER_SIDES)} {size} {voice.symbol(order.symbol)}"
    if order.order_class == "mleg":
        legs = ", ".join(
            f"{voice.word(leg.side, voice.ORDER_SIDES)} {voice.symbol(leg.symbol)}"
            for leg in (order.legs or [])[:4]
        )
        what = f"mleg {size} x [{legs}]"
    return (
        f"{what} {kind}{price} {voice.word(order.time_in_force, voice.TIMES_IN_FORCE)}: "
        f"{voice.word(order.status, voice.ORDER_STATUSES)}{filled} "
        f"(id {voice.ident(order.id)}, client_order_id {voice.ident(order.client_order_id)})"
        f"{_describe_exits(order)}"
    )


def flatten_live(groups: list[Order]) -> list[Order]:
    """Each live order on its own: a live entry, then each live exit leg (without its siblings)."""
    flat: list[Order] = []
    for group in groups:
        if is_live(group):
            flat.append(group.model_copy(update={"legs": None}) if group.order_class != "mleg" else group)
        if group.order_class != "mleg":
            flat.extend(leg for leg in group.legs or [] if is_live(leg))
    return flat
