"""What a credential already did today, counted from ``order_intents`` (so every replica sees the same).

Read inside the guard's per-credential transaction, after the lock: two replicas
then count each other's intents and cannot together pass a daily limit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.broker.models import OrderRequest
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.checks import Counters
from alpaca_vault.guard.orders import NormalisedOrder

NEW_YORK = ZoneInfo("America/New_York")
# Everything that is or may become an order counts; a rejected one never reached the book.
COUNTED_STATES = ("pending", "accepted", "unknown", "reconciled")


def start_of_trading_day(now: datetime) -> datetime:
    """Midnight in New York (the exchange's day, with its daylight saving), as UTC."""
    local = now.astimezone(NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def fingerprint_of_request(request: dict[str, object]) -> str | None:
    """The duplicate fingerprint of a stored order body (None when it is not a new order's body)."""
    body = {k: v for k, v in request.items() if k != "client_order_id"}
    try:
        return NormalisedOrder.from_request(OrderRequest.model_validate(body)).fingerprint()
    except (ValidationError, ValueError, TypeError):
        return None


async def count_activity(
    session: AsyncSession,
    user_id: uuid.UUID,
    credential_id: uuid.UUID,
    order: NormalisedOrder,
    *,
    now: datetime,
    duplicate_window_seconds: int,
) -> Counters:
    since = min(start_of_trading_day(now), now - timedelta(seconds=max(duplicate_window_seconds, 60)))
    rows = (
        await session.execute(
            select(
                OrderIntent.client_order_id,
                OrderIntent.request,
                OrderIntent.state,
                OrderIntent.notional_estimate,
                OrderIntent.created_at,
            )
            .where(
                OrderIntent.user_id == user_id,
                OrderIntent.credential_id == credential_id,
                OrderIntent.created_at >= since,
            )
            .order_by(OrderIntent.created_at.desc())
        )
    ).all()
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
        if row.created_at >= day_start:
            orders_today += 1
            notional_today += row.notional_estimate or Decimal(0)
        if row.created_at >= minute_ago:
            last_minute += 1
        if (
            duplicate_of is None
            and duplicate_window_seconds > 0
            and row.created_at >= window_start
            and row.client_order_id != order.client_order_id
            and isinstance(row.request, dict)
            and fingerprint_of_request(row.request) == fingerprint
        ):
            duplicate_of = row.client_order_id
            duplicate_age = max(int((now - row.created_at).total_seconds()), 0)
    if not same_id and order.client_order_id is not None:
        # An older intent under this id (outside the counted span) is still the same order.
        same_id = (
            await session.scalar(
                select(OrderIntent.id).where(
                    OrderIntent.credential_id == credential_id,
                    OrderIntent.client_order_id == order.client_order_id,
                )
            )
        ) is not None
    return Counters(
        orders_today=orders_today,
        notional_today=notional_today,
        orders_last_minute=last_minute,
        duplicate_of=duplicate_of,
        duplicate_age_seconds=duplicate_age,
        same_id_exists=same_id,
    )
