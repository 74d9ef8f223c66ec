"""Rotation and migration of keys, batch by batch, resumable.

Three jobs, each safe to interrupt (every batch is its own transaction) and
to run again (each finds what is left without decrypting anything):

* ``migrate_old_form``: credential values still sealed directly under the
  master key (``data_key_id`` NULL, ``v1`` tokens) are re-sealed under their
  user's data key. Both forms open meanwhile. ``old_form_report`` counts
  what is left (for ``alpaca-vault doctor``, issue #11).
* ``rewrap`` (master-key rotation): every data key not wrapped under the
  primary master key is re-wrapped. It touches ``data_keys`` rows only, one
  small row per user, never a credential.
* ``rotate_data_keys`` (for a data key that may have leaked): each user gets
  a new data key, their values are re-sealed under it, and the old key is
  destroyed once nothing uses it.

``rotate`` is what ``alpaca-vault keys rotate`` runs: the migration first
(values under a master key must move before that key can be dropped), then
the re-wrap.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db import Credential, Database, User
from alpaca_vault.db.models import utcnow
from alpaca_vault.db.rls import maintenance_session
from alpaca_vault.db.sealed import TOKEN_VERSION
from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.datakeys import OpenDataKey, current_data_key, data_keys, new_data_key, unwrap
from alpaca_vault.vault.errors import SealedValueDamaged, UnsealError
from alpaca_vault.vault.keyring import KeyRing

credentials = cast(Table, Credential.__table__)
users = cast(Table, User.__table__)


@dataclass
class RotationProgress:
    """Counts so far in one phase; ``total`` is what needed work when the phase started."""

    phase: str  # "migrate", "rewrap", "new data keys", "reseal"
    total: int
    done: int = 0
    failed: int = 0


ProgressCallback = Callable[[RotationProgress], None]


@dataclass(frozen=True)
class DamagedRow:
    """A row no key can open (a stored value that is not a sealed token): skipped, reported, never fatal."""

    what: Literal["credential", "data key"]
    user_id: uuid.UUID
    credential: str | None  # the credential's name; None for a user's data key
    problem: str
    user_name: str | None = None  # filled in by name_damaged_users, for the fix the CLI prints


@dataclass
class MigrationResult:
    credentials_migrated: int = 0
    values_resealed: int = 0
    batches: int = 0
    failed: list[str] = field(default_factory=list)  # "credential 'name' (user id): reason", no secrets
    damaged: list[DamagedRow] = field(default_factory=list)


@dataclass
class RewrapResult:
    primary_kid: str
    data_keys_rewrapped: int = 0
    already_current: int = 0
    batches: int = 0
    failed: list[str] = field(default_factory=list)
    damaged: list[DamagedRow] = field(default_factory=list)


@dataclass
class RotationResult:
    """``keys rotate``: the old-form migration, then the re-wrap of data keys."""

    migration: MigrationResult
    rewrap: RewrapResult

    @property
    def failed(self) -> list[str]:
        return self.migration.failed + self.rewrap.failed

    @property
    def damaged(self) -> list[DamagedRow]:
        return self.migration.damaged + self.rewrap.damaged


@dataclass
class DataKeyRotationResult:
    migration: MigrationResult
    users_rotated: int = 0
    credentials_resealed: int = 0
    data_keys_destroyed: int = 0
    batches: int = 0
    failed: list[str] = field(default_factory=list)
    damaged: list[DamagedRow] = field(default_factory=list)

    @property
    def all_failed(self) -> list[str]:
        return self.migration.failed + self.failed


@dataclass(frozen=True)
class OldFormReport:
    """Credentials whose values are still sealed directly under the master key."""

    credentials: int
    users: int

    @property
    def done(self) -> bool:
        return self.credentials == 0


def _not_under(column: ColumnElement[Any], primary_kid: str) -> ColumnElement[bool]:
    # Compare the stored text's prefix (the kid) without decrypting or binding a SealedValue.
    prefix = f"{TOKEN_VERSION}.{primary_kid}."
    return func.substr(type_coerce(column, Text), 1, len(prefix)) != prefix


def _rewrap_pending(primary_kid: str) -> ColumnElement[bool]:
    return and_(data_keys.c.sealed_key.is_not(None), _not_under(data_keys.c.sealed_key, primary_kid))


async def _count(db: Database, query: Any) -> int:
    async with maintenance_session(db) as session:
        return int(await session.scalar(query) or 0)


async def old_form_report(db: Database) -> OldFormReport:
    """How many credentials (of how many users) are still in the old form: for ``doctor`` (#11)."""
    async with maintenance_session(db) as session:
        row = (
            await session.execute(
                select(func.count(), func.count(func.distinct(credentials.c.user_id))).where(
                    credentials.c.data_key_id.is_(None)
                )
            )
        ).one()
    return OldFormReport(credentials=int(row[0]), users=int(row[1]))


async def count_pending(db: Database, keyring: KeyRing) -> int:
    """What ``rotate`` still has to do: old-form credentials plus data keys not under the primary."""
    old_form = await _count(
        db, select(func.count()).select_from(credentials).where(credentials.c.data_key_id.is_(None))
    )
    rewrap = await _count(
        db, select(func.count()).select_from(data_keys).where(_rewrap_pending(keyring.primary_kid))
    )
    return old_form + rewrap


_RESEAL = (
    update(credentials)
    .where(credentials.c.id == bindparam("b_id"))
    .values(
        api_key=bindparam("b_api_key"),
        secret_key=bindparam("b_secret_key"),
        key_fingerprint=bindparam("b_key_fingerprint"),
        data_key_id=bindparam("b_data_key_id"),
        updated_at=bindparam("b_updated_at"),
    )
)


def _resealed(
    row: Any, data_key: OpenDataKey, api_plain: str, secret_plain: str, now: datetime
) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "b_api_key": data_key.seal(api_plain, AssociatedData.for_credential("api_key", row.id, row.user_id)),
        "b_secret_key": data_key.seal(
            secret_plain, AssociatedData.for_credential("secret_key", row.id, row.user_id)
        ),
        "b_key_fingerprint": data_key.fingerprint(api_plain),
        "b_data_key_id": data_key.id,
        "b_updated_at": now,
    }


def _failure(row: Any, exc: Exception) -> str:
    return f"credential '{row.name}' (user {row.user_id}): {exc}"


def _problem(exc: Exception) -> str:
    return str(exc).removeprefix("the stored value is damaged ").strip("()") or "damaged"


def _damaged_credential(row: Any, exc: Exception) -> DamagedRow:
    return DamagedRow("credential", row.user_id, row.name, str(exc))


async def name_damaged_users(db: Database, damaged: list[DamagedRow]) -> list[DamagedRow]:
    """The same rows with their users' names (for the commands that fix them)."""
    if not damaged:
        return []
    async with maintenance_session(db) as session:
        names = dict(
            (
                await session.execute(
                    select(users.c.id, users.c.name).where(users.c.id.in_({d.user_id for d in damaged}))
                )
            ).all()
        )
    return [replace(d, user_name=names.get(d.user_id)) for d in damaged]


async def migrate_old_form(
    db: Database,
    keyring: KeyRing,
    *,
    batch_size: int = 500,
    user_id: uuid.UUID | None = None,
    progress: ProgressCallback | None = None,
) -> MigrationResult:
    """Move every old-form credential (sealed under a master key) to its user's data key."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pending: ColumnElement[bool] = credentials.c.data_key_id.is_(None)
    if user_id is not None:
        pending = and_(pending, credentials.c.user_id == user_id)
    state = RotationProgress(
        "migrate", await _count(db, select(func.count()).select_from(credentials).where(pending))
    )
    result = MigrationResult()
    last_id: uuid.UUID | None = None
    while True:
        async with maintenance_session(db) as session:
            query = (
                select(
                    credentials.c.id,
                    credentials.c.user_id,
                    credentials.c.name,
                    credentials.c.api_key,
                    credentials.c.secret_key,
                )
                .where(pending)
                .order_by(credentials.c.id)
                .limit(batch_size)
                .with_for_update()  # a concurrent key replacement waits for this batch (PostgreSQL)
            )
            if last_id is not None:
                query = query.where(credentials.c.id > last_id)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            last_id = rows[-1].id
            opened: dict[uuid.UUID, OpenDataKey] = {}  # this batch only
            changes: list[dict[str, Any]] = []
            now = utcnow()
            for row in rows:
                try:
                    api_plain = keyring.open(
                        row.api_key, AssociatedData.for_credential("api_key", row.id, row.user_id)
                    )
                    secret_plain = keyring.open(
                        row.secret_key, AssociatedData.for_credential("secret_key", row.id, row.user_id)
                    )
                    # Only once a value opened: a ring missing the old key must not make data keys.
                    data_key = opened.get(row.user_id)
                    if data_key is None:
                        data_key = await current_data_key(session, keyring, row.user_id, create=True)
                        assert data_key is not None
                        opened[row.user_id] = data_key
                    changes.append(_resealed(row, data_key, api_plain, secret_plain, now))
                    del api_plain, secret_plain
                except SealedValueDamaged as exc:
                    state.failed += 1
                    result.damaged.append(_damaged_credential(row, exc))
                except UnsealError as exc:
                    state.failed += 1
                    result.failed.append(_failure(row, exc))
            opened.clear()
            if changes:
                await (await session.connection()).execute(_RESEAL, changes)
            result.batches += 1
            result.credentials_migrated += len(changes)
            result.values_resealed += 2 * len(changes)
            state.done += len(rows)
        if progress is not None:
            progress(state)  # after the commit: whatever progress reports is durable
    return result


async def rewrap(
    db: Database, keyring: KeyRing, *, batch_size: int = 500, progress: ProgressCallback | None = None
) -> RewrapResult:
    """Re-wrap every data key not under ``keyring.primary_kid`` (master-key rotation). Touches data_keys only."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    primary = keyring.primary_kid
    pending = _rewrap_pending(primary)
    live = await _count(
        db, select(func.count()).select_from(data_keys).where(data_keys.c.sealed_key.is_not(None))
    )
    state = RotationProgress(
        "rewrap", await _count(db, select(func.count()).select_from(data_keys).where(pending))
    )
    result = RewrapResult(primary_kid=primary, already_current=live - state.total)
    statement = (
        update(data_keys)
        .where(data_keys.c.id == bindparam("b_id"))
        .values(sealed_key=bindparam("b_sealed_key"))
    )
    last_id: uuid.UUID | None = None
    while True:
        async with maintenance_session(db) as session:
            query = (
                select(data_keys.c.id, data_keys.c.user_id, data_keys.c.sealed_key)
                .where(pending)
                .order_by(data_keys.c.id)
                .limit(batch_size)
                .with_for_update()
            )
            if last_id is not None:
                query = query.where(data_keys.c.id > last_id)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            last_id = rows[-1].id
            changes: list[dict[str, Any]] = []
            for row in rows:
                aad = AssociatedData.for_data_key(row.id, row.user_id)
                try:
                    raw = keyring.unwrap(row.sealed_key, aad)
                except SealedValueDamaged as exc:
                    state.failed += 1
                    result.damaged.append(DamagedRow("data key", row.user_id, None, _problem(exc)))
                    continue
                except UnsealError as exc:
                    state.failed += 1
                    result.failed.append(f"data key of user {row.user_id}: {exc}")
                    continue
                changes.append({"b_id": row.id, "b_sealed_key": keyring.wrap(raw, aad)})
                del raw
            if changes:
                await (await session.connection()).execute(statement, changes)
            result.batches += 1
            result.data_keys_rewrapped += len(changes)
            state.done += len(rows)
        if progress is not None:
            progress(state)
    return result


async def rotate(
    db: Database, keyring: KeyRing, *, batch_size: int = 500, progress: ProgressCallback | None = None
) -> RotationResult:
    """``keys rotate``: move old-form values to data keys, then re-wrap data keys under the primary."""
    migration = await migrate_old_form(db, keyring, batch_size=batch_size, progress=progress)
    return RotationResult(migration, await rewrap(db, keyring, batch_size=batch_size, progress=progress))


async def rotate_data_keys(
    db: Database,
    keyring: KeyRing,
    *,
    user_id: uuid.UUID | None = None,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
) -> DataKeyRotationResult:
    """Give each user (or just ``user_id``) a new data key, re-seal their values, destroy the old key.

    Phases, each in batches: new keys (the old one is retired: it still opens what it sealed),
    re-seal values under retired keys, then destroy every retired key nothing uses any more (one
    statement). Interrupted, the next run finishes users left half-way and starts only the users
    whose key is older than the interrupted run's first new key, so nobody is rotated twice.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    result = DataKeyRotationResult(
        migration=await migrate_old_form(
            db, keyring, batch_size=batch_size, user_id=user_id, progress=progress
        )
    )

    def mine(column: ColumnElement[Any]) -> ColumnElement[bool]:
        return column == user_id if user_id is not None else true()

    in_progress = and_(data_keys.c.retired_at.is_not(None), data_keys.c.destroyed_at.is_(None))

    # Phase 1: new keys for the users whose current key predates this run (or the interrupted one).
    async with maintenance_session(db) as session:
        resumed_users = select(data_keys.c.user_id).where(in_progress)
        cutoff = await session.scalar(
            select(func.min(data_keys.c.created_at)).where(
                data_keys.c.retired_at.is_(None), data_keys.c.user_id.in_(resumed_users)
            )
        )
        cutoff = cutoff or utcnow()
        due = (
            await session.execute(
                select(data_keys.c.id, data_keys.c.user_id)
                .where(
                    data_keys.c.retired_at.is_(None),
                    data_keys.c.created_at < cutoff,
                    mine(data_keys.c.user_id),
                )
                .order_by(data_keys.c.user_id)
            )
        ).all()
    state = RotationProgress("new data keys", len(due))
    for start in range(0, len(due), batch_size):
        chunk = due[start : start + batch_size]
        async with maintenance_session(db) as session:
            now = utcnow()
            for old in chunk:
                # Retire first: the index allows one current key per user.
                await session.execute(
                    update(data_keys).where(data_keys.c.id == old.id).values(retired_at=now)
                )
                values, fresh = new_data_key(keyring, old.user_id)
                del fresh
                await session.execute(data_keys.insert().values(**values))
        result.users_rotated += len(chunk)
        state.done += len(chunk)
        if progress is not None:
            progress(state)

    # Phase 2: re-seal every value still under a retired (not yet destroyed) key.
    under_retired = and_(
        credentials.c.data_key_id.in_(select(data_keys.c.id).where(in_progress)), mine(credentials.c.user_id)
    )
    state = RotationProgress(
        "reseal", await _count(db, select(func.count()).select_from(credentials).where(under_retired))
    )
    last_id: uuid.UUID | None = None
    while True:
        async with maintenance_session(db) as session:
            query = (
                select(
                    credentials.c.id,
                    credentials.c.user_id,
                    credentials.c.name,
                    credentials.c.api_key,
                    credentials.c.secret_key,
                    credentials.c.data_key_id,
                )
                .where(under_retired)
                .order_by(credentials.c.id)
                .limit(batch_size)
                .with_for_update()
            )
            if last_id is not None:
                query = query.where(credentials.c.id > last_id)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            last_id = rows[-1].id
            changes = await _reseal_batch(session, keyring, rows, result, state)
            if changes:
                await (await session.connection()).execute(_RESEAL, changes)
            result.batches += 1
            result.credentials_resealed += len(changes)
            state.done += len(rows)
        if progress is not None:
            progress(state)

    # Phase 3: destroy the retired keys nothing uses any more. Lock them first, then look for users
    # in a statement of its own: under READ COMMITTED it sees every write that committed while we
    # waited for the locks, so a value sealed under a key meanwhile keeps that key alive.
    async with maintenance_session(db) as session:
        retired_ids = select(data_keys.c.id).where(in_progress, mine(data_keys.c.user_id))
        locked = list((await session.execute(retired_ids.with_for_update())).scalars())
        if locked:
            destroyed = await session.execute(
                update(data_keys)
                .where(
                    data_keys.c.id.in_(locked),
                    ~exists().where(credentials.c.data_key_id == data_keys.c.id),
                )
                .values(sealed_key=None, destroyed_at=utcnow())
            )
            result.data_keys_destroyed = int(destroyed.rowcount or 0)  # type: ignore[attr-defined]
    return result


async def _reseal_batch(
    session: AsyncSession,
    keyring: KeyRing,
    rows: Any,
    result: DataKeyRotationResult,
    state: RotationProgress,
) -> list[dict[str, Any]]:
    """One batch of phase 2: open under the old key, seal under the user's current key."""
    retired: dict[uuid.UUID, OpenDataKey] = {}  # this batch only
    current: dict[uuid.UUID, OpenDataKey | None] = {}
    changes: list[dict[str, Any]] = []
    now = utcnow()
    try:
        for row in rows:
            try:
                old = retired.get(row.data_key_id)
                if old is None:
                    sealed = await session.scalar(
                        select(data_keys.c.sealed_key).where(data_keys.c.id == row.data_key_id)
                    )
                    if sealed is None:
                        raise UnsealError("its data key is missing")
                    old = retired[row.data_key_id] = unwrap(keyring, row.data_key_id, row.user_id, sealed)
                if row.user_id not in current:
                    current[row.user_id] = await current_data_key(session, keyring, row.user_id, create=False)
                new = current[row.user_id]
                if new is None:  # the user was shredded meanwhile: nothing to seal under
                    continue
                api_plain = old.open(
                    row.api_key, AssociatedData.for_credential("api_key", row.id, row.user_id)
                )
                secret_plain = old.open(
                    row.secret_key, AssociatedData.for_credential("secret_key", row.id, row.user_id)
                )
                changes.append(_resealed(row, new, api_plain, secret_plain, now))
                del api_plain, secret_plain
            except SealedValueDamaged as exc:
                state.failed += 1
                result.damaged.append(_damaged_credential(row, exc))
            except UnsealError as exc:
                state.failed += 1
                result.failed.append(_failure(row, exc))
    finally:
        retired.clear()
        current.clear()
    return changes
