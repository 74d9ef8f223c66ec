"""What a credential already did today, counted from ``order_intents`` (so every replica sees the same).

Read inside the guard's per-credential transaction, after the lock: two replicas
then count each other's intents and cannot together pass a daily limit.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    not_,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.checks import Counters
from alpaca_vault.guard.orders import NormalisedOrder, essence_of
from alpaca_vault.guard.policy import Policy

NEW_YORK = ZoneInfo("America/New_York")
# Everything that is or may become an order counts; a rejected one never reached the book.
COUNTED_STATES = ("pending", "accepted", "unknown", "reconciled")


def start_of_trading_day(now: datetime) -> datetime:
    """Midnight in New York (the exchange's day, with its daylight saving), as UTC."""
    # New York's offsets are whole hours, so its day changes on a UTC hour: one conversion per hour.
    return _start_of_day_for_hour(now.astimezone(UTC).replace(minute=0, second=0, microsecond=0))


@functools.lru_cache(maxsize=64)
def _start_of_day_for_hour(hour: datetime) -> datetime:
    local = hour.astimezone(NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# Module-level statements: compiled once, and run inline on SQLite (Database.read_inline, db/inline.py).
# SAME_ID: whether this client_order_id already has an intent, whatever its age (a retry: one index seek).
# DAY_TOTALS aggregates in SQL over the day's intents (read only when a rule counts the day): today's and
# the last minute's orders (a replace changes an order rather than adding one: its notional counts, not
# its number), and today's notional estimates as one exact decimal text list (summed here: the column is
# decimal text on both backends, and a float sum would round money).
# Equalities, not IN: an IN list is an expanding parameter, which read_inline cannot compile once.
_COUNTED = or_(*(OrderIntent.state == state for state in COUNTED_STATES))
# A replace is written without a fingerprint; testing the column first spares the JSON parse of every
# other intent of the day (SQLite parses the whole body for each json_extract). Intents written
# before the column existed have none either, and the body decides.
_IS_REPLACE = and_(
    OrderIntent.fingerprint.is_(None), OrderIntent.request["replaces"].as_string().is_not(None)
)
_TODAY = OrderIntent.created_at >= bindparam("day_start")
_MINE = (OrderIntent.user_id == bindparam("user_id"), OrderIntent.credential_id == bindparam("credential_id"))


def _number_of(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# Whether this id is taken rides along with the day's totals (one statement, its own index seek), or
# alone when no rule counts the day.
_SAME_ID = (
    select(func.count())
    .where(*_MINE, OrderIntent.client_order_id == bindparam("client_order_id"))
    .scalar_subquery()
    .label("same_id")
)
SAME_ID = select(_SAME_ID)
DAY_TOTALS = select(
    _SAME_ID,
    _number_of(and_(_TODAY, not_(_IS_REPLACE))).label("orders_today"),
    _number_of(and_(OrderIntent.created_at >= bindparam("minute_ago"), not_(_IS_REPLACE))).label(
        "orders_last_minute"
    ),
    func.aggregate_strings(
        type_coerce(case((_TODAY, OrderIntent.notional_estimate), else_=null()), String), ","
    ).label("notionals_today"),
).where(*_MINE, OrderIntent.created_at >= bindparam("since"), _COUNTED)
# The duplicate window: the intents with this order's fingerprint (one index seek, however many orders
# the window holds), and the few without one (replaces, which it skips, and intents written before the
# column existed), whose bodies tally compares. A UNION, not an OR: with the OR neither backend's
# planner seeks the fingerprint index.
_WINDOW_COLUMNS = (OrderIntent.client_order_id, OrderIntent.request, OrderIntent.created_at)
_IN_WINDOW = (*_MINE, OrderIntent.created_at >= bindparam("window_start"), _COUNTED)
WINDOW = union_all(
    select(*_WINDOW_COLUMNS).where(OrderIntent.fingerprint == bindparam("fingerprint"), *_IN_WINDOW),
    select(*_WINDOW_COLUMNS).where(OrderIntent.fingerprint.is_(None), *_IN_WINDOW, not_(_IS_REPLACE)),
)
INTENT_BY_CLIENT_ORDER_ID = select(OrderIntent.id).where(
    OrderIntent.credential_id == bindparam("credential_id"),
    OrderIntent.client_order_id == bindparam("client_order_id"),
)


async def client_order_id_taken(
    session: AsyncSession | AsyncConnection, credential_id: uuid.UUID, client_order_id: str
) -> bool:
    """True when this credential already has an intent under ``client_order_id``."""
    found = await session.scalar(
        INTENT_BY_CLIENT_ORDER_ID, {"credential_id": credential_id, "client_order_id": client_order_id}
    )
    return found is not None


def _params(
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    now: datetime,
    duplicate_window_seconds: int,
) -> dict[str, Any]:
    day_start = start_of_trading_day(now)
    return {
        "user_id": user_id,
        "credential_id": credential_id,
        "day_start": day_start,
        "minute_ago": now - timedelta(seconds=60),
        "since": min(day_start, now - timedelta(seconds=60)),
        "window_start": now - timedelta(seconds=duplicate_window_seconds),
        "client_order_id": order.client_order_id,
        "fingerprint": order.fingerprint() if duplicate_window_seconds > 0 else None,
    }


def counts_the_day(policy: Policy) -> bool:
    """Whether a rule of ``policy`` reads today's totals (else the day's intents need not be read)."""
    return any(
        limit is not None
        for limit in (policy.max_daily_notional, policy.max_orders_per_day, policy.max_orders_per_minute)
    )


def _reads(duplicate_window_seconds: int, day_totals: bool) -> list[Select[Any] | CompoundSelect[Any]]:
    """The statements a count runs, in the order ``tally`` takes their rows."""
    return [DAY_TOTALS if day_totals else SAME_ID, *((WINDOW,) if duplicate_window_seconds > 0 else ())]


async def count_activity(
    session: AsyncSession | AsyncConnection,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
    day_totals: bool = True,
) -> Counters:
    """What the credential did (``day_totals`` False: the day's totals stay 0, for a policy without them)."""
    params = _params(user_id, credential_id, order, now, duplicate_window_seconds)
    reads = _reads(duplicate_window_seconds, day_totals)
    return tally([(await session.execute(read, params)).all() for read in reads], order, day_totals, now=now)


def count_activity_inline(
    db: Database,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
    day_totals: bool = True,
) -> Counters | None:
    """``count_activity`` on the calling thread (SQLite files); None: use a session instead."""
    params = _params(user_id, credential_id, order, now, duplicate_window_seconds)
    results = []
    for read in _reads(duplicate_window_seconds, day_totals):
        rows = db.read_inline(read, params)
        if rows is None:
            return None
        results.append(rows)
    return tally(results, order, day_totals, now=now)


def tally(
    results: Sequence[Sequence[Any]], order: NormalisedOrder, day_totals: bool, *, now: datetime
) -> Counters:
    """The counters from the rows of ``_reads``' statements (the duplicate: the newest intent alike, under
    another id)."""
    first, *rest = results
    same_id = first[0].same_id
    totals = first[0] if day_totals else None
    notionals = (totals.notionals_today if totals is not None else None) or ""
    window = sorted((row for rows in rest for row in rows), key=lambda row: row.created_at, reverse=True)
    essence: list[Any] | None = None  # ours, computed when a stored order first looks alike
    duplicate_of: str | None = None
    duplicate_age: int | None = None
    for row in window:
        if (
            row.client_order_id != order.client_order_id
            and isinstance(row.request, dict)
            # Cheap comparisons first: most intents differ in symbol, side or type.
            and row.request.get("symbol") == order.wire_symbol
            and row.request.get("side") == order.side
            and row.request.get("type") == order.type
        ):
            if essence is None:
                essence = order.essence()
            if essence_of(row.request) == essence:
                duplicate_of = row.client_order_id
                duplicate_age = max(int((now - row.created_at).total_seconds()), 0)
                break
    return Counters(
        orders_today=int(totals.orders_today) if totals is not None else 0,
        notional_today=sum(map(Decimal, filter(None, notionals.split(","))), Decimal(0)),
        orders_last_minute=int(totals.orders_last_minute) if totals is not None else 0,
        duplicate_of=duplicate_of,
        duplicate_age_seconds=duplicate_age,
        same_id_exists=bool(order.client_order_id is not None and same_id),
    )
