"""One-time links: issue, look up, consume. The store behind the key entry page and console sign-in.

A link is ``<base>/connect/<secret>`` (or ``/console/sign-in/<secret>``), where the secret is 256
random bits. Only its SHA-256 is stored. A link is bound to one user, one purpose and one object
(``bound_to``: a credential name or id), expires (10 minutes by default for key entry) and is
consumed atomically: two tabs submitting at once get one success and one "already used".

The person who opens a link has no other credential, so the lookup runs before the user is known:
on PostgreSQL through the SECURITY DEFINER function of migration 0006 (one row's deciding fields),
then everything else in a session for the link's user (row-level security applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import OneTimeLink, User, utcnow

Purpose = Literal["key_entry", "console_sign_in", "order_approval"]

# 32 bytes = 256 bits (the brief asks for at least 128); url-safe base64 without padding: 43 characters.
LINK_BYTES = 32
_LINK_SHAPE_LENGTH = 43
# A person may mistype keys; after this many refusals by Alpaca the link is burnt.
MAX_ATTEMPTS = 3
# How often a waiter on another replica looks at the row when no local wake-up arrives.
POLL_SECONDS = 1.0
STORING = "storing"


class LinkError(Exception):
    """A link cannot be used; ``reason`` is one of: unknown, expired, used, wrong_purpose, inactive_user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hash_link(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(secret: str) -> bool:
    """Cheap shape check before any database work (and before a hash of attacker-sized input)."""
    return len(secret) == _LINK_SHAPE_LENGTH and all(c.isalnum() or c in "-_" for c in secret)


@dataclass(frozen=True)
class IssuedLink:
    """A fresh link: ``secret`` goes into the URL shown to the person, once; nothing keeps it."""

    id: uuid.UUID
    user_id: uuid.UUID
    secret: str
    purpose: str
    bound_to: str | None
    expires_at: datetime

    def __repr__(self) -> str:  # the secret is a capability: never in a repr or a log line
        return f"IssuedLink(id={self.id}, purpose={self.purpose!r}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class LinkRecord:
    """A link's row, without its hash."""

    id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    purpose: str
    bound_to: str | None
    details: dict[str, Any]
    expires_at: datetime
    used_at: datetime | None
    attempts: int
    outcome: str | None
    outcome_ref: str | None

    @property
    def finished(self) -> bool:
        # "storing": claimed by a submission whose vault write is still running.
        return self.used_at is not None and self.outcome != STORING

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LinkStore:
    """Issue and redeem one-time links in the shared database (any replica can serve a link)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # In-process wake-ups for waiters (the tool call waiting for its key entry); other replicas poll.
        self._finished: dict[uuid.UUID, asyncio.Event] = {}

    async def issue(
        self,
        user_id: uuid.UUID,
        purpose: Purpose,
        *,
        lifetime: timedelta,
        bound_to: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> IssuedLink:
        secret = secrets.token_urlsafe(LINK_BYTES)
        now = utcnow()
        link_id, expires_at = uuid.uuid4(), now + lifetime
        link = OneTimeLink(
            id=link_id,
            user_id=user_id,
            token_hash=hash_link(secret),
            purpose=purpose,
            bound_to=bound_to,
            details=details or {},
            created_at=now,
            expires_at=expires_at,
            attempts=0,
        )
        async with self._db.session(user_id) as session:
            session.add(link)
        return IssuedLink(link_id, user_id, secret, purpose, bound_to, expires_at)

    async def find(self, secret: str, purpose: Purpose) -> LinkRecord:
        """The usable link behind ``secret`` for ``purpose``, or LinkError saying why not."""
        if not well_formed(secret):
            raise LinkError("unknown")
        digest = hash_link(secret)
        user_id = await self._owner_of(digest)
        if user_id is None:
            raise LinkError("unknown")
        async with self._db.session(user_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(OneTimeLink, User.name, User.is_active)
                    .join(User, User.id == OneTimeLink.user_id)
                    .where(OneTimeLink.token_hash == digest, OneTimeLink.user_id == user_id)
                )
            ).one_or_none()
        if row is None:
            raise LinkError("unknown")
        link, user_name, user_active = row
        # Constant-time: the row was found by its hash; compare anyway so timing says nothing more.
        if not hmac.compare_digest(link.token_hash, digest):  # pragma: no cover - found by equality
            raise LinkError("unknown")
        record = _record(link, user_name)
        if record.purpose != purpose:
            raise LinkError("wrong_purpose")
        if not user_active:
            raise LinkError("inactive_user")
        if record.used_at is not None:
            raise LinkError("used")
        if record.expired():
            raise LinkError("expired")
        return record

    async def _owner_of(self, digest: str) -> uuid.UUID | None:
        async with self._db.session(readonly=True) as session:
            if self._db.is_postgres:
                value = (
                    await session.execute(
                        text("SELECT user_id FROM alpaca_vault_link_lookup(:h)"), {"h": digest}
                    )
                ).scalar_one_or_none()
            else:
                value = (
                    await session.execute(select(OneTimeLink.user_id).where(OneTimeLink.token_hash == digest))
                ).scalar_one_or_none()
        if value is None:
            return None
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    async def get(self, user_id: uuid.UUID, link_id: uuid.UUID) -> LinkRecord | None:
        """A link of ``user_id`` by its id (another user's id finds nothing)."""
        async with self._db.session(user_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(OneTimeLink, User.name)
                    .join(User, User.id == OneTimeLink.user_id)
                    .where(OneTimeLink.id == link_id, OneTimeLink.user_id == user_id)
                )
            ).one_or_none()
        return None if row is None else _record(row[0], row[1])

    async def answers(self, user_id: uuid.UUID, purpose: Purpose, bound_to: str) -> list[LinkRecord]:
        """The answered links (an outcome recorded) of ``user_id`` for ``purpose`` bound to exactly
        ``bound_to``: a declined one first if there is any, then the newest. However many unanswered links
        an agent's retries opened for the same binding, they never push an answer out of the list."""
        async with self._db.session(user_id, readonly=True) as session:
            rows = (
                await session.execute(
                    select(OneTimeLink, User.name)
                    .join(User, User.id == OneTimeLink.user_id)
                    .where(
                        OneTimeLink.user_id == user_id,
                        OneTimeLink.purpose == purpose,
                        OneTimeLink.bound_to == bound_to,
                        OneTimeLink.outcome.is_not(None),
                    )
                    .order_by((OneTimeLink.outcome == "declined").desc(), OneTimeLink.created_at.desc())
                    .limit(50)
                )
            ).all()
        return [_record(link, name) for link, name in rows]

    async def consume(
        self,
        record: LinkRecord,
        outcome: str,
        outcome_ref: str | None = None,
        *,
        record_with: Callable[[AsyncSession], Awaitable[object]] | None = None,
    ) -> bool:
        """Mark the link used, once: False when another request used it first or it has expired.

        ``record_with`` writes the audit event in the same transaction, only for the request that
        wins the link: an error from it rolls the use back (and is raised), so the trail never holds
        an answer that did not count, nor an answer that counted without its record.
        """
        now = utcnow()
        async with self._db.session(record.user_id) as session:
            result = await session.execute(
                update(OneTimeLink)
                .where(
                    OneTimeLink.id == record.id,
                    OneTimeLink.user_id == record.user_id,
                    OneTimeLink.used_at.is_(None),
                    OneTimeLink.expires_at > now,
                )
                .values(used_at=now, outcome=outcome, outcome_ref=outcome_ref)
            )
            won = bool(getattr(result, "rowcount", 0) == 1)
            if won and record_with is not None:
                await record_with(session)
        if won and outcome != STORING:
            self._wake(record.id)
        return won

    async def finish(self, record: LinkRecord, outcome: str, outcome_ref: str | None = None) -> None:
        """Record how a claimed link ended (``stored`` with the credential id, or ``failed:<reason>``)."""
        async with self._db.session(record.user_id) as session:
            await session.execute(
                update(OneTimeLink)
                .where(OneTimeLink.id == record.id, OneTimeLink.user_id == record.user_id)
                .values(outcome=outcome[:32], outcome_ref=outcome_ref)
            )
        self._wake(record.id)

    async def withdraw(self, user_id: uuid.UUID, link_id: uuid.UUID, outcome: str) -> bool:
        """End an unused link early (the person declined): it cannot be used afterwards."""
        async with self._db.session(user_id) as session:
            result = await session.execute(
                update(OneTimeLink)
                .where(
                    OneTimeLink.id == link_id, OneTimeLink.user_id == user_id, OneTimeLink.used_at.is_(None)
                )
                .values(used_at=utcnow(), outcome=outcome[:32])
            )
            done = bool(getattr(result, "rowcount", 0) == 1)
        if done:
            self._wake(link_id)
        return done

    async def record_failure(self, record: LinkRecord, reason: str) -> int:
        """Count a refused submission; the link is burnt (outcome ``failed:<reason>``) at MAX_ATTEMPTS."""
        async with self._db.session(record.user_id) as session:
            link = await session.get(OneTimeLink, record.id, with_for_update=self._db.is_postgres)
            if link is None or link.user_id != record.user_id or link.used_at is not None:
                return MAX_ATTEMPTS
            link.attempts += 1
            link.outcome = f"refused:{reason}"[:32]
            attempts = link.attempts
            if attempts >= MAX_ATTEMPTS:
                link.used_at = utcnow()
                link.outcome = f"failed:{reason}"[:32]
        if attempts >= MAX_ATTEMPTS:
            self._wake(record.id)
        return attempts

    async def wait(self, user_id: uuid.UUID, link_id: uuid.UUID) -> LinkRecord | None:
        """Wait until the link is used or burnt (returns it) or has expired (returns it unfinished).

        Wakes at once when this process finished it; otherwise looks at the row every POLL_SECONDS,
        so a page served by another replica is seen too.
        """
        event = self._finished.setdefault(link_id, asyncio.Event())
        try:
            while True:
                record = await self.get(user_id, link_id)
                if record is None or record.finished or (record.used_at is None and record.expired()):
                    return record
                timeout = min(POLL_SECONDS, max(0.0, (record.expires_at - utcnow()).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=timeout + 0.01)
        finally:
            self._finished.pop(link_id, None)

    def _wake(self, link_id: uuid.UUID) -> None:
        event = self._finished.get(link_id)
        if event is not None:
            event.set()

    # Console sessions are MAC'd cookies (nothing stored while they live); signing out stores the
    # session's end, so a copy of the cookie stops working at once, on every replica. The row reuses the
    # sign-in purpose, born used (outcome ``signed_out``), so no link lookup can ever redeem it.

    async def end_session(self, user_id: uuid.UUID, session_id: str, until: datetime) -> None:
        """Record that console session ``session_id`` has ended (kept until the cookie would expire)."""
        now = utcnow()
        digest = _session_digest(session_id)
        async with self._db.session(user_id) as session:
            exists = await session.scalar(
                select(OneTimeLink.id).where(OneTimeLink.token_hash == digest, OneTimeLink.user_id == user_id)
            )
            if exists is None:
                session.add(
                    OneTimeLink(
                        id=uuid.uuid4(),
                        user_id=user_id,
                        token_hash=digest,
                        purpose="console_sign_in",
                        bound_to=None,
                        details={"kind": "console_session"},
                        created_at=now,
                        expires_at=max(until, now),
                        used_at=now,
                        attempts=0,
                        outcome="signed_out",
                    )
                )

    async def session_ended(self, user_id: uuid.UUID, session_id: str) -> bool:
        async with self._db.session(user_id, readonly=True) as session:
            found = await session.scalar(
                select(OneTimeLink.id).where(
                    OneTimeLink.token_hash == _session_digest(session_id), OneTimeLink.user_id == user_id
                )
            )
        return found is not None

    async def pending_until(self, user_id: uuid.UUID, link_id: uuid.UUID) -> datetime | None:
        record = await self.get(user_id, link_id)
        if record is None or record.finished or record.expired():
            return None
        return record.expires_at


def _session_digest(session_id: str) -> str:
    # A context prefix: a session's row can never share a hash with a link's secret.
    return hashlib.sha256(f"console-session\0{session_id}".encode()).hexdigest()


def _record(link: OneTimeLink, user_name: str) -> LinkRecord:
    return LinkRecord(
        id=link.id,
        user_id=link.user_id,
        user_name=user_name,
        purpose=link.purpose,
        bound_to=link.bound_to,
        details=dict(link.details or {}),
        expires_at=_utc(link.expires_at),
        used_at=_utc(link.used_at) if link.used_at else None,
        attempts=link.attempts,
        outcome=link.outcome,
        outcome_ref=link.outcome_ref,
    )
