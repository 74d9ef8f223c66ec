"""What a credential already did today, counted from ``order_intents`` (so every replica sees the same).

Read inside the guard's per-credential transaction, after the lock: two replicas
then count each other's intents and cannot together pass a daily limit.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.checks import Counters
from alpaca_vault.guard.orders import NormalisedOrder, fingerprint_of

NEW_YORK = ZoneInfo("America/New_York")
# Everything that is or may become an order counts; a rejected one never reached the book.
COUNTED_STATES = ("pending", "accepted", "unknown", "reconciled")


def start_of_trading_day(now: datetime) -> datetime:
    """Midnight in New York (the exchange's day, with its daylight saving), as UTC."""
    local = now.astimezone(NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def fingerprint_of_request(request: dict[str, object]) -> str:
    """The duplicate fingerprint of a stored order body (the same for the same order under any id)."""
    return fingerprint_of(request)


# Module-level statements: compiled once, and run inline on SQLite (Database.read_inline).
INTENTS_SINCE = (
    select(
        OrderIntent.client_order_id,
        OrderIntent.request,
        OrderIntent.state,
        OrderIntent.notional_estimate,
        OrderIntent.created_at,
    )
    .where(
        OrderIntent.user_id == bindparam("user_id"),
        OrderIntent.credential_id == bindparam("credential_id"),
        OrderIntent.created_at >= bindparam("since"),
    )
    .order_by(OrderIntent.created_at.desc())
)
INTENT_BY_CLIENT_ORDER_ID = select(OrderIntent.id).where(
    OrderIntent.credential_id == bindparam("credential_id"),
    OrderIntent.client_order_id == bindparam("client_order_id"),
)


async def client_order_id_taken(
    session: AsyncSession, credential_id: uuid.UUID, client_order_id: str
) -> bool:
    """True when this credential already has an intent under ``client_order_id``."""
    found = await session.scalar(
        INTENT_BY_CLIENT_ORDER_ID, {"credential_id": credential_id, "client_order_id": client_order_id}
    )
    return found is not None


def _since(now: datetime, duplicate_window_seconds: int) -> datetime:
    return min(start_of_trading_day(now), now - timedelta(seconds=max(duplicate_window_seconds, 60)))


async def count_activity(
    session: AsyncSession,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
) -> Counters:
    params = {
        "user_id": user_id,
        "credential_id": credential_id,
        "since": _since(now, duplicate_window_seconds),
    }
    rows = (await session.execute(INTENTS_SINCE, params)).all()
    counters = tally(rows, order, now=now, duplicate_window_seconds=duplicate_window_seconds)
    if not counters.same_id_exists and order.client_order_id is not None:
        # An older intent under this id (outside the counted span) is still the same order.
        found = await session.scalar(
            INTENT_BY_CLIENT_ORDER_ID,
            {"credential_id": credential_id, "client_order_id": order.client_order_id},
        )
        if found is not None:
            counters = replace(counters, same_id_exists=True)
    return counters


def count_activity_inline(
    db: Database,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
) -> Counters | None:
    """``count_activity`` on the calling thread (SQLite files); None: use a session instead."""
    params = {
        "user_id": user_id,
        "credential_id": credential_id,
        "since": _since(now, duplicate_window_seconds),
    }
    rows = db.read_inline(INTENTS_SINCE, params)
    if rows is None:
        return None
    counters = tally(rows, order, now=now, duplicate_window_seconds=duplicate_window_seconds)
    if not counters.same_id_exists and order.client_order_id is not None:
        found = db.read_inline(
            INTENT_BY_CLIENT_ORDER_ID,
            {"credential_id": credential_id, "client_order_id": order.client_order_id},
        )
        if found is None:
            return None
        if found:
            counters = replace(counters, same_id_exists=True)
    return counters


def tally(rows: Any, order: NormalisedOrder, *, now: datetime, duplicate_window_seconds: int) -> Counters:
    """Today's orders and notional, the last minute's orders, a duplicate, this id: from the intents' rows."""
    day_start = start_of_trading_day(now)
    minute_ago = now - timedelta(seconds=60)
    window_start = now - timedelta(seconds=duplicate_window_seconds)
    fingerprint = order.fingerprint()
    orders_today = 0
    notional_today = Decimal(0)
    last_minute = 0
    duplicate_of: str | None = None
    duplicate_age: int | None = None
    same_id = False
    for row in rows:
        if order.client_order_id is not None and row.client_order_id == order.client_order_id:
            same_id = True
        if row.state not in COUNTED_STATES:
            continue
        # A replace changes an order rather than adding one: its increase counts, not its number.
        is_replace = isinstance(row.request, dict) and row.request.get("replaces") is not None
        if row.created_at >= day_start:
            orders_today += 0 if is_replace else 1
            notional_today += row.notional_estimate or Decimal(0)
        if row.created_at >= minute_ago and not is_replace:
            last_minute += 1
        if (
            duplicate_of is None
            and duplicate_window_seconds > 0
            and row.created_at >= window_start
            and row.client_order_id != order.client_order_id
            and isinstance(row.request, dict)
            # Cheap comparisons first: most of a day's intents differ in symbol, side or type.
            and not is_replace
            and row.request.get("symbol") == order.wire_symbol
            and row.request.get("side") == order.side
            and row.request.get("type") == order.type
            and fingerprint_of_request(row.request) == fingerprint
        ):
            duplicate_of = row.client_order_id
            duplicate_age = max(int((now - row.created_at).total_seconds()), 0)
    return Counters(
        orders_today=orders_today,
        notional_today=notional_today,
        orders_last_minute=last_minute,
        duplicate_of=duplicate_of,
        duplicate_age_seconds=duplicate_age,
        same_id_exists=same_id,
    )
