"""Order submission that never makes the same order twice, and the checks that tell orders apart.

Every order carries a ``client_order_id``, which Alpaca keeps unique per
account. When a submission's outcome is unknown (timeout, dropped
connection, 5xx), we look the order up by that id before anything else:

* found: the order exists; return it (if it is the order we meant: see the matchers below).
* definitely not found (404): nothing was created, so submitting once more
  with the *same* id is safe (if the first request lands late after all,
  Alpaca refuses the second with "client_order_id must be unique", and we
  look the order up again).
* the lookup itself fails: raise :class:`OrderOutcomeUnknown` carrying the
  id. Never resubmit blindly.

An order found under our id that is not the one we meant (someone reused the id) raises
:class:`ClientOrderIdConflict`: Alpaca refused our request, so nothing new happened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import (
    AlpacaBadResponse,
    AlpacaConnectionError,
    AlpacaError,
    AlpacaNotFound,
    AlpacaRejected,
    AlpacaRequestError,
    AlpacaTimeout,
    AlpacaUnavailable,
    ClientOrderIdConflict,
    OrderOutcomeUnknown,
    is_duplicate_client_order_id,
)
from .models import Order, OrderRequest

logger = logging.getLogger("alpaca_vault.broker.orders")

Submit = Callable[[], Awaitable[Order]]
Lookup = Callable[[], Awaitable[Order]]


@dataclass(frozen=True)
class Placement:
    """An order as submitted once: ``new_order_placed`` is False when Alpaca already had it under its id.

    That is a retry of an earlier, identical request (same client_order_id): Alpaca refused the
    repeat as a duplicate and the lookup found the order the earlier request made.
    """

    order: Order
    new_order_placed: bool = True


@dataclass(frozen=True)
class Mismatch:
    """Why an order found under our client_order_id is not the one we asked for."""

    differences: list[str] = field(default_factory=list)


#: Decides whether an order found under our client_order_id is the one we meant (None) or not.
Matcher = Callable[[Order], "Mismatch | None"]


def new_client_order_id() -> str:
    """A fresh id for an order the caller did not name."""
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- "same order?"


def order_differences(order: OrderRequest, found: Order) -> list[str]:
    """Fields in which the order found under a client_order_id differs from the request (none: same order)."""
    differences: list[str] = []
    if order.order_class == "mleg":
        if _legs(order) != _found_legs(found):
            differences.append("legs")
    else:
        if (found.symbol or "").upper().replace("/", "") != (order.symbol or "").replace("/", ""):
            differences.append("symbol")
        if found.side != order.side:
            differences.append("side")
    if (found.type or found.order_type) != order.type:
        differences.append("type")
    if found.time_in_force != order.time_in_force:
        differences.append("time_in_force")
    if (found.order_class or "simple") != order.order_class:
        differences.append("order_class")
    amounts: list[tuple[str, Decimal | None, Decimal | None]] = [
        ("qty", order.qty, found.qty),
        ("notional", order.notional, found.notional),
        ("limit_price", order.limit_price, found.limit_price),
        ("trail_price", order.trail_price, found.trail_price),
        ("trail_percent", order.trail_percent, found.trail_percent),
    ]
    # A trailing stop's stop_price is set by Alpaca and moves with the market: not part of the request.
    if order.type != "trailing_stop":
        amounts.append(("stop_price", order.stop_price, found.stop_price))
    # Decimal equality ignores scale: Alpaca echoes qty "1" for a request of Decimal("1.0").
    differences.extend(name for name, wanted, echoed in amounts if wanted != echoed)
    return differences


def _legs(order: OrderRequest) -> dict[str, tuple[str, Decimal]]:
    return {leg.symbol: (leg.side, Decimal(leg.ratio_qty)) for leg in order.legs or []}


def _found_legs(found: Order) -> dict[str, tuple[str | None, Decimal | None]]:
    return {(leg.symbol or "").upper(): (leg.side, _ratio(leg)) for leg in found.legs or []}


def _ratio(leg: Order) -> Decimal | None:
    """A leg's ratio_qty (an extra field of Alpaca's order: it exists on mleg legs only)."""
    raw = (leg.model_extra or {}).get("ratio_qty")
    try:
        return Decimal(str(raw)) if raw is not None else None
    except ArithmeticError:
        return None


def describe(order: Order) -> str:
    """A one-line account of an order: side, amount, symbol (or legs), type, prices, tif, status."""
    amount = f"${order.notional}" if order.notional is not None else f"{order.qty}"
    if order.order_class == "mleg":
        legs = ", ".join(f"{leg.side} {_ratio(leg)} {leg.symbol}" for leg in order.legs or [])
        parts = [f"mleg {amount} x [{legs}] {order.type or order.order_type}"]
    else:
        parts = [f"{order.side} {amount} {order.symbol} {order.type or order.order_type}"]
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        value = getattr(order, name)
        if value is not None:
            parts.append(f"{name}={value}")
    parts.append(f"time_in_force={order.time_in_force}")
    if order.order_class not in (None, "", "simple", "mleg"):
        parts.append(f"order_class={order.order_class}")
    parts.append(f"status={order.status}")
    return " ".join(parts)


def same_new_order(order: OrderRequest) -> Matcher:
    """The order found under the id is ours when it asks for the same thing as ``order``."""

    def match(found: Order) -> Mismatch | None:
        differences = order_differences(order, found)
        return Mismatch(differences) if differences else None

    return match


def replacement_of(order_id: str) -> Matcher:
    """Only an order that replaced ``order_id`` is our replacement. Any other order under the id (an
    ordinary order, or one that replaced something else) means Alpaca refused the PATCH: the id was taken."""

    def match(found: Order) -> Mismatch | None:
        return None if found.replaces == order_id else Mismatch()

    return match


# --------------------------------------------------------------------------- submitting once


def _outcome_unknown(error: AlpacaError) -> bool:
    """True when the request may have reached Alpaca and taken effect."""
    if isinstance(error, AlpacaTimeout | AlpacaConnectionError | AlpacaRequestError):
        return error.request_sent
    # A 2xx we could not read still means Alpaca took the order.
    return isinstance(error, AlpacaUnavailable | AlpacaBadResponse)


async def _find(lookup: Lookup, client_order_id: str) -> Order | None:
    """The order under ``client_order_id``; None when Alpaca says it does not exist."""
    try:
        return await lookup()
    except AlpacaNotFound:
        return None
    except AlpacaError as exc:
        raise OrderOutcomeUnknown(
            f"The order request was sent but its outcome is unknown, "
            f"and looking it up by client_order_id failed ({type(exc).__name__})",
            client_order_id=client_order_id,
        ) from None


def _conflict(
    client_order_id: str, found: Order, mismatch: Mismatch, untouched: str
) -> ClientOrderIdConflict:
    existing = describe(found)
    if found.replaces is not None:
        existing += f", which replaced order {found.replaces}"
    return ClientOrderIdConflict(
        client_order_id,
        existing_order_id=found.id,
        differences=mismatch.differences,
        existing=existing,
        untouched=untouched,
    )


async def submit_once(
    submit: Submit,
    lookup: Lookup,
    client_order_id: str,
    matcher: Matcher,
    *,
    what: str = "order",
    untouched: str = "nothing new was placed",
) -> Placement:
    """Submit, reconciling by ``client_order_id`` so at most one order results.

    ``untouched`` tells the caller what did not happen when the id turns out to belong to a
    different order (Alpaca refuses a reused id, so the request took no effect).
    """
    for attempt in (1, 2):
        try:
            return Placement(await submit())
        except AlpacaRejected as exc:
            if not is_duplicate_client_order_id(exc):
                raise
            duplicate = True
        except AlpacaError as exc:
            if not _outcome_unknown(exc):
                raise
            duplicate = False
            logger.warning(
                "%s outcome unknown (%s); looking it up by client_order_id %s",
                what,
                type(exc).__name__,
                client_order_id,
            )

        found = await _find(lookup, client_order_id)
        if found is not None:
            mismatch = matcher(found)
            if mismatch is not None:
                raise _conflict(client_order_id, found, mismatch, untouched)
            # A duplicate on the first attempt: the order predates this call. On the second attempt
            # it is our own first attempt, which landed late.
            return Placement(found, new_order_placed=not (duplicate and attempt == 1))
        if duplicate:
            # Alpaca says the id is taken yet cannot show the order: do not guess.
            raise OrderOutcomeUnknown(
                f"Alpaca reports client_order_id {client_order_id!r} as used "
                "but the order could not be found",
                client_order_id=client_order_id,
            )
        if attempt == 2:
            raise AlpacaUnavailable(
                None,
                None,
                f"Alpaca failed twice to take the {what} and a lookup confirms it was NOT placed "
                f"(client_order_id {client_order_id!r}); the same request with the same "
                "client_order_id can safely be sent again later",
            )
        logger.info("%s %s confirmed absent; submitting once more with the same id", what, client_order_id)
    raise AssertionError("unreachable")  # pragma: no cover
