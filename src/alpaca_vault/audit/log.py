"""Write, list, verify and export the audit trail.

Writes are fail closed: ``append`` either commits the event or raises
``AuditUnavailable``, and the caller must then not do what it was about to do.
Per-user ``seq`` is gap-free under concurrency: on PostgreSQL a transaction-scoped
advisory lock per user serialises appends of one user (other users never wait);
on SQLite every writer holds the file's write lock (BEGIN IMMEDIATE).

On an SQLite file the hot path (one event per tool call) runs inline on the
calling thread, on the connection ``Database.read_inline`` reads on
(``Database.write_inline``), and never waits for a lock: no aiosqlite thread hops.
After an append of its own for a user, the next one is a single INSERT of the next
seq on the tail it remembers; the primary key (user_id, seq) refuses it if anyone appended
since, and then the tail is read under the write lock (BEGIN IMMEDIATE). If the file
is busy it tries again shortly, letting the event loop run in between (``_append_inline``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from alpaca_vault.audit.chain import (
    GENESIS_HASH,
    Actor,
    ChainKeys,
    EventSigner,
    MiddleParts,
    clean_details,
    event_mac,
)
from alpaca_vault.audit.errors import AuditUnavailable as AuditUnavailable
from alpaca_vault.db.engine import SQLITE_BUSY_TIMEOUT_MS, Database, sqlite_busy, sqlite_path
from alpaca_vault.db.models import AUDIT_ACTIONS, SYSTEM_USER_ID, AuditEvent, User
from alpaca_vault.db.rls import maintenance_session

logger = logging.getLogger("alpaca_vault.audit")

_ADVISORY_NAMESPACE = 0x6175646974  # "audit": keeps our per-user locks apart from other advisory locks
_VERIFY_BATCH = 1000
MAX_LIST_LIMIT = 500


@dataclass(frozen=True)
class AuditEventInfo:
    """One event as listed and exported (everything stored; nothing in it is secret)."""

    user_id: uuid.UUID
    user_name: str | None
    seq: int
    at: datetime
    actor: str
    action: str
    credential_id: uuid.UUID | None
    credential_name: str | None
    tool: str | None
    details: dict[str, Any]
    kid: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "user": self.user_name,
            "seq": self.seq,
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "credential_id": None if self.credential_id is None else str(self.credential_id),
            "credential": self.credential_name,
            "tool": self.tool,
            "details": self.details,
            "kid": self.kid,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainProblem:
    user_id: uuid.UUID
    user_name: str | None
    seq: int
    problem: str
    #: The event names a key the ring does not hold: it cannot be checked (a retired key dropped from the
    #: ring), which is not proof of tampering; still a failed verification.
    unverifiable: bool = False

    def __str__(self) -> str:
        who = self.user_name or ("(system)" if self.user_id == SYSTEM_USER_ID else str(self.user_id))
        return f"user {who}: seq {self.seq}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    users: int
    events: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _advisory_key(user_id: uuid.UUID) -> int:
    return int.from_bytes(user_id.bytes[:8], "big", signed=True) ^ _ADVISORY_NAMESPACE


_LAST_EVENT = (
    select(AuditEvent.seq, AuditEvent.hash)
    .where(AuditEvent.user_id == bindparam("user_id"))
    .order_by(AuditEvent.seq.desc())
    .limit(1)
)


# The columns of an audit INSERT on SQLite, in the order ``_PendingEvent.sqlite_params`` gives them.
_SQLITE_COLUMNS = (
    "user_id",
    "seq",
    "at",
    "actor",
    "action",
    "credential_id",
    "credential_name",
    "tool",
    "details",
    "kid",
    "prev_hash",
    "hash",
    "id",
)


class _PendingEvent:
    """One event about to be appended: all of it but its place in the chain (seq, previous hash, time).

    ``row`` fills those in from the chain's tail and signs; ``sqlite_params`` gives the row as SQLite
    stores it (SQLAlchemy's forms: UUIDs as 32 hex digits, naive UTC time text, JSON text), so the
    inline append skips the generic per-column bind processors. ``tests/audit/test_append_encoding.py``
    holds these forms to SQLAlchemy's own.
    """

    __slots__ = ("at_text", "details", "parts", "signer", "user_id")

    def __init__(
        self, signer: EventSigner, user_id: uuid.UUID, parts: MiddleParts, details: dict[str, Any]
    ) -> None:
        self.signer, self.user_id, self.parts, self.details = signer, user_id, parts, details
        self.at_text = ""  # the last row's time as signed (canonical_time)

    def row(self, last: tuple[int, str] | None) -> dict[str, Any]:
        seq, prev_hash = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
        at = datetime.now(UTC)
        self.at_text = at.isoformat(timespec="microseconds")  # canonical_time(at), at being in UTC already
        digest = self.signer.sign(self.user_id, seq, self.at_text, self.parts, self.details, prev_hash)
        actor, action, credential_id, credential_name, tool, kid = self.parts
        return {
            "id": uuid.uuid4(),  # the legacy key, for a release: see the model
            "user_id": self.user_id,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "credential_id": credential_id,
            "credential_name": credential_name,
            "tool": tool,
            "details": self.details,
            "kid": kid,
            "prev_hash": prev_hash,
            "hash": digest,
        }

    def sqlite_params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """``row`` (the last one ``row`` made) as the INSERT's parameters on SQLite, in ``_SQLITE_COLUMNS``
        order."""
        at = self.at_text  # 2026-12-01T20:47:42.311317+00:00: SQLite keeps UTC naive, with a space
        credential_id: uuid.UUID | None = row["credential_id"]
        details = row["details"]
        return (
            row["user_id"].hex,
            row["seq"],
            f"{at[:10]} {at[11:26]}",
            row["actor"],
            row["action"],
            None if credential_id is None else credential_id.hex,
            row["credential_name"],
            row["tool"],
            json.dumps(details) if details else "{}",
            row["kid"],
            row["prev_hash"],
            row["hash"],
            row["id"].hex,
        )


class _InlineSqliteAppender:
    """Appends on the calling thread with plain sqlite3 (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # user id -> (seq, hash) of the last event this process committed for them: a hint, never trusted
        # alone (the primary key (user_id, seq) checks it). One small entry per user who acted.
        self._tails: dict[uuid.UUID, tuple[int, str]] = {}
        dialect = db.engine.dialect
        last = _LAST_EVENT.compile(dialect=dialect)
        self._last_sql = last.string
        self._last_defaults = dict(last.params)  # the LIMIT, compiled in as a parameter
        self._last_names = list(last.positiontup or [])
        self._last_binds = {
            n: last.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self._last_names
        }
        stmt = insert(AuditEvent).values({c: bindparam(c) for c in _SQLITE_COLUMNS})
        compiled = stmt.compile(dialect=dialect)
        self._insert_sql = compiled.string
        if tuple(compiled.positiontup or ()) != _SQLITE_COLUMNS:  # the model changed: keep them in step
            raise RuntimeError(f"audit INSERT columns {compiled.positiontup} are not {_SQLITE_COLUMNS}")
        # The hand-bound forms must be this engine's own (a JSON serializer of its own, say): checked once.
        binds = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in _SQLITE_COLUMNS
        ]
        sample_parts = ("cli", "credential.unseal", uuid.uuid4(), "name", "tool", "kid")
        sample = _PendingEvent(EventSigner(b"sample"), uuid.uuid4(), sample_parts, {"symbol": "é"})
        row = sample.row(None)
        expected = tuple(b(row[n]) if b else row[n] for n, b in zip(_SQLITE_COLUMNS, binds, strict=True))
        if sample.sqlite_params(row) != expected:
            raise RuntimeError("the audit row's SQLite forms differ from this engine's bind processors")

    def _bind(self, names: list[str], binds: Mapping[str, Any], values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in names:
            processor = binds[name]
            value = values[name]
            out.append(processor(value) if processor is not None else value)
        return out

    def append(self, event: _PendingEvent) -> dict[str, Any] | None:
        """The stored row, or None when the file is busy (then use the async path)."""
        # On the inline reader's connection: Database.write_inline says why.
        return self._db.write_inline(lambda connection: self._write(connection, event))

    def _write(self, connection: sqlite3.Connection, event: _PendingEvent) -> dict[str, Any] | None:
        user_id = event.user_id
        tail = self._tails.get(user_id)
        if tail is not None:
            # The tail this process wrote last: one INSERT, atomic on its own (no BEGIN, SELECT, COMMIT).
            # The primary key (user_id, seq) refuses it if anyone appended since: then read the tail under
            # the lock.
            row = event.row(tail)
            try:
                connection.execute(self._insert_sql, event.sqlite_params(row))
            except sqlite3.IntegrityError:
                pass
            except sqlite3.OperationalError as exc:
                if sqlite_busy(exc):
                    return None  # another writer has the file: the caller tries again shortly
                raise  # read-only, full, damaged: fail closed now
            else:
                self._tails[user_id] = (row["seq"], row["hash"])
                return row
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if sqlite_busy(exc):
                return None
            raise
        last = connection.execute(
            self._last_sql,
            self._bind(self._last_names, self._last_binds, {**self._last_defaults, "user_id": user_id}),
        ).fetchone()
        row = event.row(None if last is None else (int(last[0]), str(last[1])))
        connection.execute(self._insert_sql, event.sqlite_params(row))
        connection.execute("COMMIT")
        self._tails[user_id] = (row["seq"], row["hash"])
        return row


class AuditLog:
    """The audit trail of one database, signed with keys derived from the key ring."""

    def __init__(self, db: Database, keys: ChainKeys) -> None:
        self.db = db
        self.keys = keys
        self._inline = _InlineSqliteAppender(db) if sqlite_path(db.url) is not None else None
        self._signers: dict[str, EventSigner] = {}  # per kid

    def close(self) -> None:
        """Nothing of its own to close any more (the inline appends use the database's connection)."""

    def _pending(
        self,
        user_id: uuid.UUID,
        action: str,
        actor: Actor,
        credential_id: uuid.UUID | None,
        credential_name: str | None,
        tool: str | None,
        details: dict[str, Any],
    ) -> _PendingEvent:
        kid = self.keys.primary_kid
        signer = self._signers.get(kid)
        if signer is None:
            signer = self._signers[kid] = EventSigner(self.keys.keys[kid])
        parts = (str(actor), action, credential_id, credential_name, tool, kid)
        return _PendingEvent(signer, user_id, parts, details)

    async def append(
        self,
        user_id: uuid.UUID,
        action: str,
        actor: Actor,
        *,
        credential_id: uuid.UUID | None = None,
        credential_name: str | None = None,
        tool: str | None = None,
        details: Mapping[str, Any] | None = None,
        session: AsyncSession | AsyncConnection | None = None,
    ) -> dict[str, Any]:
        """Write one event and return its row; raises AuditUnavailable when it cannot be written.

        With ``session`` the event joins that transaction (it commits or rolls back with it).
        """
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        event = self._pending(
            user_id, action, actor, credential_id, credential_name, tool, clean_details(details)
        )
        try:
            if session is not None:
                return await self._append_in(session, event)
            if self._inline is not None:
                return await self._append_inline(event)
            async with self.db.connection(user_id) as conn:
                return await self._append_in(conn, event)
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            reason = type(exc).__name__
            logger.error("audit event %s for user %s could not be written: %s", action, user_id, reason)
            raise AuditUnavailable(action, "the audit table cannot be written") from None

    async def _append_inline(self, event: _PendingEvent) -> dict[str, Any]:
        """On an SQLite file: the inline append, tried again while another writer has the file.

        Between tries the event loop runs, so the writer that has the file (an async transaction of this
        process, most often) can finish. Waiting on an aiosqlite connection instead held a worker thread
        in SQLite's busy handler while that writer waited for the loop: under 32 concurrent HTTP
        clients such waits ran into the busy timeout and calls were refused for want of their audit event.
        """
        assert self._inline is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while (row := self._inline.append(event)) is None:
            if loop.time() >= deadline:
                raise sqlite3.OperationalError("database is locked")  # as the busy timeout would say
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        return row

    async def _append_in(self, conn: AsyncSession | AsyncConnection, event: _PendingEvent) -> dict[str, Any]:
        user_id = event.user_id
        if self.db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(user_id)})
        last = (await conn.execute(_LAST_EVENT, {"user_id": user_id})).one_or_none()
        row = event.row(None if last is None else (int(last.seq), str(last.hash)))
        await conn.execute(insert(AuditEvent), [row])
        return row

    # --- reading ---------------------------------------------------------------------------------

    async def events(
        self,
        user_id: uuid.UUID | None,
        *,
        credential: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        before_seq: int | None = None,
        limit: int | None = 50,
        newest_first: bool = True,
        by_seq: bool = False,
    ) -> list[AuditEventInfo]:
        """Events of ``user_id`` (None: every user, which needs the tables' owner on PostgreSQL)."""
        stmt = select(AuditEvent, User.name).outerjoin(User, User.id == AuditEvent.user_id)
        if user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == user_id)
        if credential is not None:
            try:
                as_id = uuid.UUID(credential)
            except ValueError:
                stmt = stmt.where(AuditEvent.credential_name == credential)
            else:
                stmt = stmt.where(AuditEvent.credential_id == as_id)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        if before_seq is not None:
            stmt = stmt.where(AuditEvent.seq < before_seq)
        if by_seq:  # one user's chain, newest first: the order page tokens (a seq) continue from
            stmt = stmt.order_by(AuditEvent.seq.desc())
        elif newest_first:
            stmt = stmt.order_by(AuditEvent.at.desc(), AuditEvent.user_id, AuditEvent.seq.desc())
        else:
            stmt = stmt.order_by(AuditEvent.user_id, AuditEvent.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._reading(user_id) as session:
            rows = (await session.execute(stmt)).all()
        return [_info(event, name) for event, name in rows]

    def _reading(self, user_id: uuid.UUID | None) -> Any:
        if user_id is None:
            return maintenance_session(self.db)
        return self.db.session(user_id, readonly=True)

    async def export(self, user_id: uuid.UUID | None) -> AsyncIterator[AuditEventInfo]:
        """Every event of ``user_id`` (or of every user), oldest first per user, in batches."""
        for uid in await self._chain_owners(user_id):
            after = 0
            while True:
                batch = await self._batch(uid, after)
                if not batch:
                    break
                for event in batch:
                    yield event
                after = batch[-1].seq

    async def _chain_owners(self, user_id: uuid.UUID | None) -> list[uuid.UUID]:
        if user_id is not None:
            return [user_id]
        async with maintenance_session(self.db) as session:
            rows = await session.execute(
                select(AuditEvent.user_id).group_by(AuditEvent.user_id).order_by(func.min(AuditEvent.at))
            )
            return [row[0] for row in rows]

    async def _batch(self, user_id: uuid.UUID, after_seq: int) -> list[AuditEventInfo]:
        stmt = (
            select(AuditEvent, User.name)
            .outerjoin(User, User.id == AuditEvent.user_id)
            .where(AuditEvent.user_id == user_id, AuditEvent.seq > after_seq)
            .order_by(AuditEvent.seq)
            .limit(_VERIFY_BATCH)
        )
        async with self._reading(user_id if not self._owner_reads else None) as session:
            rows = (await session.execute(stmt)).all()
        return [_info(event, name) for event, name in rows]

    # The CLI reads other users' chains as the tables' owner; the server reads its caller's own.
    _owner_reads = False

    def as_owner(self) -> AuditLog:
        """The same log, reading through maintenance sessions (admin CLI on PostgreSQL)."""
        clone = AuditLog.__new__(AuditLog)
        clone.db, clone.keys, clone._inline, clone._signers = self.db, self.keys, None, {}
        clone._owner_reads = True
        return clone

    async def verify(self, user_id: uuid.UUID | None = None) -> VerifyReport:
        """Walk each chain from seq 1; report the first broken event of each user."""
        problems: list[ChainProblem] = []
        users = events = 0
        for uid in await self._chain_owners(user_id):
            users += 1
            expected_seq, prev_hash, name = 1, GENESIS_HASH, None
            broken = False
            after = 0
            while not broken:
                batch = await self._batch(uid, after)
                if not batch:
                    break
                for event in batch:
                    events += 1
                    name = event.user_name
                    problem = self._check(event, expected_seq, prev_hash)
                    if problem is not None:
                        # An event whose links hold but whose key the ring lacks cannot be checked; the walk
                        # goes on past it, so a later break in the chain is still found and named.
                        unverifiable = (
                            event.seq == expected_seq
                            and event.prev_hash == prev_hash
                            and event.kid not in self.keys.keys
                        )
                        problems.append(
                            ChainProblem(uid, name, min(event.seq, expected_seq), problem, unverifiable)
                        )
                        if not unverifiable:
                            broken = True
                            break
                    expected_seq, prev_hash = event.seq + 1, event.hash
                after = batch[-1].seq
        return VerifyReport(users, events, problems)

    def _check(self, event: AuditEventInfo, expected_seq: int, prev_hash: str) -> str | None:
        if event.seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if event.seq == expected_seq + 1
                else f"seq {expected_seq}-{event.seq - 1}"
            )
            return f"{missing} missing: the next event present is seq {event.seq} (events were deleted or renumbered)"
        # The links first: they need no key, so an event given a made-up key id cannot hide a broken chain.
        if event.prev_hash != prev_hash:
            return (
                "prev_hash does not match the previous event's hash "
                "(an event before it was removed, replaced or moved)"
            )
        key = self.keys.keys.get(event.kid)
        if key is None:
            return (
                f"signed under key '{event.kid}', which is not in the key ring: add that key back (after the "
                "primary) to verify it; if no key of this vault ever had that id, the event was tampered with"
            )
        expected = event_mac(
            key,
            user_id=event.user_id,
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            credential_id=event.credential_id,
            credential_name=event.credential_name,
            tool=event.tool,
            details=event.details,
            kid=event.kid,
            prev_hash=event.prev_hash,
        )
        if expected != event.hash:
            return (
                "hash does not match the event's contents under the audit key (the event was edited, or the "
                "chain was recomputed without the master key)"
            )
        return None


def _info(event: AuditEvent, user_name: str | None) -> AuditEventInfo:
    details = event.details
    if isinstance(details, str):  # pragma: no cover - JSON columns load as dicts on both backends
        details = json.loads(details)
    return AuditEventInfo(
        user_id=event.user_id,
        user_name=user_name,
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        credential_id=event.credential_id,
        credential_name=event.credential_name,
        tool=event.tool,
        details=dict(details or {}),
        kid=event.kid,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
