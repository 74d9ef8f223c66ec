"""Durable order intents: an order is on record before it is sent, and its outcome after.

``record`` writes the intent (state pending) and its ``order.intent`` audit event
in one transaction, before the POST; if that fails the order must not be sent.
``settle`` records the outcome (accepted, rejected, unknown; or reconciled by the
reconciler) with its audit event. Unique per (credential, client_order_id): the
same id can never stand for two orders, across restarts and replicas; a retry
under the same id finds its earlier intent instead of making a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from alpaca_vault.audit.chain import Actor
from alpaca_vault.audit.log import AuditLog, AuditUnavailable
from alpaca_vault.db.engine import Database
from alpaca_vault.db.inline import write_transaction
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.db.rls import maintenance_session
from alpaca_vault.guard.orders import fingerprint_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Outcome = Literal["accepted", "rejected", "unknown", "reconciled"]
OPEN_STATES = ("pending", "unknown")
# States whose notional counts toward a daily limit: everything that is or may become an order.
COUNTED_STATES = ("pending", "accepted", "unknown", "reconciled")
_ORDER_FIELDS = (
    "symbol",
    "side",
    "qty",
    "notional",
    "type",
    "time_in_force",
    "order_class",
    "limit_price",
    "stop_price",
    "trail",
    "replaces",
)


@dataclass(frozen=True)
class OrderIntentInfo:
    id: uuid.UUID
    user_id: uuid.UUID
    credential_id: uuid.UUID
    client_order_id: str
    request: dict[str, Any]
    state: str
    alpaca_order_id: str | None
    alpaca_status: str | None
    notional_estimate: Decimal | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    repeat: bool = False  # record() found an earlier intent under the same client_order_id


def _info(row: OrderIntent, *, repeat: bool = False) -> OrderIntentInfo:
    return OrderIntentInfo(
        id=row.id,
        user_id=row.user_id,
        credential_id=row.credential_id,
        client_order_id=row.client_order_id,
        request=dict(row.request),
        state=row.state,
        alpaca_order_id=row.alpaca_order_id,
        alpaca_status=row.alpaca_status,
        notional_estimate=row.notional_estimate,
        error=None if row.error is None else dict(row.error),
        created_at=row.created_at,
        updated_at=row.updated_at,
        repeat=repeat,
    )


def order_details(request: dict[str, Any]) -> dict[str, Any]:
    """The audit details of an order request: what was asked, never anything else."""
    details = {k: request[k] for k in _ORDER_FIELDS if request.get(k) is not None}
    legs = request.get("legs")
    if isinstance(legs, list):  # a multi-leg order: each leg as "buy 1 AAPL261218C00190000 buy_to_open"
        details["legs"] = leg_lines(legs)
    return details


def leg_lines(legs: list[Any]) -> list[str]:
    """A multi-leg order's legs for the audit trail: short strings (its details hold scalars and strings)."""
    return [
        " ".join(
            str(leg[k]) for k in ("side", "ratio_qty", "symbol", "position_intent") if leg.get(k) is not None
        )
        for leg in legs[:4]
        if isinstance(leg, dict)
    ]


class OrderIntents:
    """The order_intents table, each change audited in the same transaction."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def record_in(
        self,
        session: AsyncSession | AsyncConnection,
        user_id: uuid.UUID,
        credential_id: uuid.UUID,
        credential_name: str,
        client_order_id: str,
        request: dict[str, Any],
        *,
        actor: Actor,
        tool: str | None = None,
        notional_estimate: Decimal | None = None,
        details: dict[str, Any] | None = None,
        action: str = "order.intent",
    ) -> OrderIntentInfo:
        """Write the intent and its ``order.intent`` event (a replace's: ``order.replace``) inside the
        caller's transaction.

        The trading guard uses this under its per-credential lock, so the intent counts toward the
        daily limits in the same transaction that checked them. A repeated client_order_id raises
        IntegrityError here (the caller's transaction is then lost); ``record`` handles that case.
        """
        now = datetime.now(UTC)
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "credential_id": credential_id,
            "client_order_id": client_order_id,
            "request": request,
            "state": "pending",
            "notional_estimate": notional_estimate,
            "created_at": now,
            "updated_at": now,
        }
        # The duplicate window's index key; a replace has none (it changes an order, adds none: counters.py).
        stored = {
            **row,
            "fingerprint": None if request.get("replaces") is not None else fingerprint_of(request),
        }
        # A Core insert (the guard runs this on its locked Core connection; a session takes it too).
        await session.execute(insert(OrderIntent), [stored])
        await self.audit.append(
            user_id,
            action,
            actor,
            credential_id=credential_id,
            credential_name=credential_name,
            tool=tool,
            details={**order_details(request), "client_order_id": client_order_id, **(details or {})},
            session=session,
        )
        return OrderIntentInfo(**row, alpaca_order_id=None, alpaca_status=None, error=None)

    async def record(
        self,
        user_id: uuid.UUID,
        credential_id: uuid.UUID,
        credential_name: str,
        client_order_id: str,
        request: dict[str, Any],
        *,
        actor: Actor,
        tool: str | None = None,
        notional_estimate: Decimal | None = None,
        action: str = "order.intent",
    ) -> OrderIntentInfo:
        """Write the intent (pending) and its ``order.intent`` event; raises AuditUnavailable if not written.

        A second call with the same (credential, client_order_id) returns the first intent with
        ``repeat=True`` (and audits the repeat): the broker then finds the existing order instead of
        placing another.
        """
        details = {**order_details(request), "client_order_id": client_order_id}
        try:

            async def write(connection: AsyncConnection) -> OrderIntentInfo:
                return await self.record_in(
                    connection,
                    user_id,
                    credential_id,
                    credential_name,
                    client_order_id,
                    request,
                    actor=actor,
                    tool=tool,
                    notional_estimate=notional_estimate,
                    action=action,
                )

            try:
                # Inline on an SQLite file (db/inline.py): no thread hops for the intent and its event.
                return await write_transaction(self.db, user_id, write)
            except IntegrityError:
                pass
            async with self.db.session(user_id) as session:
                existing = (
                    await session.execute(
                        select(OrderIntent).where(
                            OrderIntent.credential_id == credential_id,
                            OrderIntent.client_order_id == client_order_id,
                        )
                    )
                ).scalar_one()
                await self.audit.append(
                    user_id,
                    action,
                    actor,
                    credential_id=credential_id,
                    credential_name=credential_name,
                    tool=tool,
                    details={**details, "repeat": True},
                    session=session,
                )
                return _info(existing, repeat=True)
        except SQLAlchemyError:
            raise AuditUnavailable("order.intent", "the order intent cannot be recorded") from None

    async def settle(
        self,
        intent: OrderIntentInfo,
        outcome: Outcome,
        *,
        actor: Actor,
        credential_name: str | None,
        tool: str | None = None,
        alpaca_order_id: str | None = None,
        alpaca_status: str | None = None,
        error: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        state: str | None = None,
    ) -> None:
        """Record the outcome and its ``order.<outcome>`` event in one transaction.

        ``state`` overrides the stored state (the reconciler records a confirmed absence as
        ``order.reconciled`` with state rejected).
        """
        values: dict[str, Any] = {"state": state or outcome, "updated_at": datetime.now(UTC)}
        if alpaca_order_id is not None:
            values["alpaca_order_id"] = alpaca_order_id
        if alpaca_status is not None:
            values["alpaca_status"] = alpaca_status
        if error is not None:
            values["error"] = error
        event = {
            "client_order_id": intent.client_order_id,
            "alpaca_order_id": alpaca_order_id,
            "status": alpaca_status,
            **({"error_status": error.get("status"), "error_code": error.get("code")} if error else {}),
            **(details or {}),
        }
        try:
            async with self.db.session(intent.user_id) as session:
                await session.execute(
                    update(OrderIntent)
                    .where(OrderIntent.id == intent.id, OrderIntent.user_id == intent.user_id)
                    .values(**values)
                )
                await self.audit.append(
                    intent.user_id,
                    f"order.{outcome}",
                    actor,
                    credential_id=intent.credential_id,
                    credential_name=credential_name,
                    tool=tool,
                    details={k: v for k, v in event.items() if v is not None},
                    session=session,
                )
        except SQLAlchemyError:
            raise AuditUnavailable(f"order.{outcome}", "the order outcome cannot be recorded") from None

    async def get(self, user_id: uuid.UUID, intent_id: uuid.UUID) -> OrderIntentInfo | None:
        async with self.db.session(user_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(OrderIntent).where(OrderIntent.id == intent_id, OrderIntent.user_id == user_id)
                )
            ).scalar_one_or_none()
            return None if row is None else _info(row)

    async def by_client_order_id(
        self, user_id: uuid.UUID, credential_id: uuid.UUID, client_order_id: str
    ) -> OrderIntentInfo | None:
        async with self.db.session(user_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(OrderIntent).where(
                        OrderIntent.user_id == user_id,
                        OrderIntent.credential_id == credential_id,
                        OrderIntent.client_order_id == client_order_id,
                    )
                )
            ).scalar_one_or_none()
            return None if row is None else _info(row)

    async def list(
        self, user_id: uuid.UUID | None, *, states: tuple[str, ...] | None = None, owner: bool = False
    ) -> list[OrderIntentInfo]:
        """Intents of ``user_id`` (None with ``owner``: every user's, as the tables' owner), oldest first."""
        stmt = select(OrderIntent).order_by(OrderIntent.created_at)
        if user_id is not None:
            stmt = stmt.where(OrderIntent.user_id == user_id)
        if states is not None:
            stmt = stmt.where(OrderIntent.state.in_(states))
        context = maintenance_session(self.db) if owner else self.db.session(user_id, readonly=True)
        async with context as session:
            return [_info(row) for row in (await session.execute(stmt)).scalars()]

    async def daily_notional(self, user_id: uuid.UUID, credential_id: uuid.UUID, since: datetime) -> Decimal:
        """Sum of notional estimates of this credential's intents since ``since`` that are or may be orders.

        Summed here, not in SQL: the column is exact decimal text on both backends.
        """
        stmt = select(OrderIntent.notional_estimate).where(
            OrderIntent.user_id == user_id,
            OrderIntent.credential_id == credential_id,
            OrderIntent.created_at >= since,
            OrderIntent.state.in_(COUNTED_STATES),
        )
        async with self.db.session(user_id, readonly=True) as session:
            values = (await session.execute(stmt)).scalars().all()
        return sum((v for v in values if v is not None), Decimal(0))


async def open_intent_ids(db: Database, created_before: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(intent id, user id) of every user's pending or unknown intent created before ``created_before``.

    On PostgreSQL through a definer function (the application role sees one user at a time).
    """
    async with db.session(readonly=True) as session:
        if db.is_postgres:
            rows = await session.execute(
                text("SELECT intent_id, user_id FROM alpaca_vault_open_order_intents(:before)"),
                {"before": created_before},
            )
        else:
            rows = await session.execute(
                select(OrderIntent.id, OrderIntent.user_id)
                .where(OrderIntent.state.in_(OPEN_STATES), OrderIntent.created_at < created_before)
                .order_by(OrderIntent.created_at)
            )
        return [(row[0], row[1]) for row in rows]
