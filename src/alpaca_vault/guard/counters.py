"""What a credential already did today, counted from ``order_intents`` (so every replica sees the same).

Read inside the guard's per-credential transaction, after the lock: two replicas
then count each other's intents and cannot together pass a daily limit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, bindparam, case, null, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.checks import Counters
from alpaca_vault.guard.orders import NormalisedOrder, essence_of

NEW_YORK = ZoneInfo("America/New_York")
# Everything that is or may become an order counts; a rejected one never reached the book.
COUNTED_STATES = ("pending", "accepted", "unknown", "reconciled")


def start_of_trading_day(now: datetime) -> datetime:
    """Midnight in New York (the exchange's day, with its daylight saving), as UTC."""
    local = now.astimezone(NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# Module-level statement: compiled once, and run inline on SQLite (Database.read_inline). One read gives
# the span's intents (today, or the duplicate window if longer) and, whatever its age, the intent under
# this client_order_id. Only intents inside the duplicate window bring their body (JSON decoding is most
# of a row's cost); a replace's is flagged in SQL.
INTENTS_SINCE = (
    select(
        OrderIntent.client_order_id,
        type_coerce(
            case((OrderIntent.created_at >= bindparam("window_start"), OrderIntent.request), else_=null()),
            JSON,
        ).label("request"),
        OrderIntent.request["replaces"].as_string().is_not(None).label("is_replace"),
        OrderIntent.state,
        OrderIntent.notional_estimate,
        OrderIntent.created_at,
    )
    .where(
        OrderIntent.user_id == bindparam("user_id"),
        OrderIntent.credential_id == bindparam("credential_id"),
        or_(
            OrderIntent.created_at >= bindparam("since"),
            OrderIntent.client_order_id == bindparam("client_order_id"),
        ),
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


def _params(
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    now: datetime,
    duplicate_window_seconds: int,
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "credential_id": credential_id,
        "since": min(start_of_trading_day(now), now - timedelta(seconds=max(duplicate_window_seconds, 60))),
        "window_start": now - timedelta(seconds=duplicate_window_seconds),
        "client_order_id": order.client_order_id,
    }


async def count_activity(
    session: AsyncSession,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
) -> Counters:
    params = _params(user_id, credential_id, order, now, duplicate_window_seconds)
    rows = (await session.execute(INTENTS_SINCE, params)).all()
    return tally(rows, order, now=now, duplicate_window_seconds=duplicate_window_seconds)


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
    rows = db.read_inline(
        INTENTS_SINCE, _params(user_id, credential_id, order, now, duplicate_window_seconds)
    )
    if rows is None:
        return None
    return tally(rows, order, now=now, duplicate_window_seconds=duplicate_window_seconds)


def tally(rows: Any, order: NormalisedOrder, *, now: datetime, duplicate_window_seconds: int) -> Counters:
    """Today's orders and notional, the last minute's orders, a duplicate, this id: from the intents' rows."""
    day_start = start_of_trading_day(now)
    minute_ago = now - timedelta(seconds=60)
    window_start = now - timedelta(seconds=duplicate_window_seconds)
    essence: list[Any] | None = None  # ours, computed when a stored order first looks alike
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
        is_replace = bool(row.is_replace)
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
        ):
            if essence is None:
                essence = order.essence()
            if essence_of(row.request) != essence:
                continue
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
