"""Per-user data keys (envelope encryption): make, unwrap for one call, destroy.

Key hierarchy::

    master key ring (ALPACA_VAULT_ENCRYPTION_KEYS or DATA_DIR/master.key)
      └─ wraps each user's data key   data_keys.sealed_key   "v1.<kid>.…"   AAD: data_keys, row, user
           └─ seals that user's values  credentials.api_key / secret_key "v2.<data key id>.…"  AAD: row, user
                                        credentials.key_fingerprint "<data key id>:HMAC(key id)"

An unwrapped data key (:class:`OpenDataKey`) exists only inside the call that
needed it: it is made from the row, used, and dropped before the call returns.
Nothing caches it: not a global, not the service, not a session.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db import Credential, Database, DataKey
from alpaca_vault.db.engine import sqlite_path
from alpaca_vault.db.models import utcnow
from alpaca_vault.db.sealed import DATA_KEY_TOKEN_VERSION, SealedValue
from alpaca_vault.vault.aead import AssociatedData, DecryptFailed, open_with, seal_with
from alpaca_vault.vault.errors import DataKeyDamaged, SealedByNewerVersion, SealedValueDamaged, UnsealError
from alpaca_vault.vault.keyring import KeyRing

DATA_KEY_BYTES = 32

data_keys = cast(Table, DataKey.__table__)
credentials = cast(Table, Credential.__table__)


class OpenDataKey:
    """One user's unwrapped data key, for the duration of one call; never kept across calls."""

    __slots__ = ("_cipher", "_fingerprint_key", "id", "user_id")

    def __init__(self, data_key_id: uuid.UUID, user_id: uuid.UUID, raw: bytes, *, fingerprints: bool) -> None:
        self.id = data_key_id
        self.user_id = user_id
        self._cipher = AESGCM(raw)
        # Only storing and re-sealing need the fingerprint key; the open path skips the HKDF.
        self._fingerprint_key = (
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"alpaca-vault v2 key-fingerprint"
            ).derive(raw)
            if fingerprints
            else None
        )

    def seal(self, plaintext: str, aad: AssociatedData) -> SealedValue:
        return seal_with(self._cipher, self.id.hex, plaintext, aad, DATA_KEY_TOKEN_VERSION)

    def open(self, token: SealedValue, aad: AssociatedData) -> str:
        if token.damaged:
            raise SealedValueDamaged(f"the stored value is damaged ({token.problem})")
        if token.newer_format:
            raise SealedByNewerVersion(token.version)
        if not token.under_data_key or token.kid != self.id.hex:
            raise UnsealError("the value names a different data key than its row")
        try:
            return open_with(self._cipher, token, aad)
        except DecryptFailed:
            raise UnsealError(
                "authentication failed under the user's data key: the value was altered or moved "
                "from another row or user"
            ) from None

    def fingerprint(self, api_key: str) -> str:
        """``<data key id>:hex`` keyed hash of an Alpaca key id: finds a user's duplicates without decrypting."""
        if self._fingerprint_key is None:
            raise RuntimeError("this data key was opened without its fingerprint key")
        digest = hmac.new(self._fingerprint_key, api_key.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.id.hex}:{digest}"

    def __repr__(self) -> str:
        return f"OpenDataKey(id={self.id}, user_id={self.user_id})"


def unwrap(
    keyring: KeyRing,
    data_key_id: uuid.UUID,
    user_id: uuid.UUID,
    sealed_key: SealedValue,
    *,
    fingerprints: bool = False,
) -> OpenDataKey:
    """The data key in a ``data_keys`` row, opened with the master key ring (UnsealError if it cannot be)."""
    try:
        raw = keyring.unwrap(sealed_key, AssociatedData.for_data_key(data_key_id, user_id))
    except SealedByNewerVersion as exc:
        # Not damage: its own class, so no caller sorts it with damaged keys and puts it out of use.
        raise SealedByNewerVersion(exc.version, what="the user's data key") from None
    except UnsealError as exc:
        # The same class: a damaged data key stays "damaged" for callers that sort failures.
        raise type(exc)(f"the user's data key could not be unwrapped: {exc}") from None
    if len(raw) != DATA_KEY_BYTES:
        raise UnsealError("the user's data key has the wrong length")
    try:
        return OpenDataKey(data_key_id, user_id, raw, fingerprints=fingerprints)
    finally:
        del raw


def new_data_key(keyring: KeyRing, user_id: uuid.UUID) -> tuple[dict[str, Any], OpenDataKey]:
    """A fresh random data key: the ``data_keys`` row to insert (wrapped under the primary) and the open key."""
    data_key_id = uuid.uuid4()
    raw = os.urandom(DATA_KEY_BYTES)
    try:
        row = {
            "id": data_key_id,
            "user_id": user_id,
            "sealed_key": keyring.wrap(raw, AssociatedData.for_data_key(data_key_id, user_id)),
            "created_at": utcnow(),
            "retired_at": None,
            "destroyed_at": None,
        }
        return row, OpenDataKey(data_key_id, user_id, raw, fingerprints=True)
    finally:
        del raw


async def current_data_key(
    session: AsyncSession, keyring: KeyRing, user_id: uuid.UUID, *, create: bool
) -> OpenDataKey | None:
    """The user's current data key (made when missing and ``create``), opened for this call.

    Everyone who calls this seals under the key, so its row is share-locked (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers) until the caller's transaction ends: a data-key
    rotation cannot retire, and then destroy, a key while a value is being sealed under it.
    """
    row = (
        await session.execute(
            select(data_keys.c.id, data_keys.c.sealed_key)
            .where(data_keys.c.user_id == user_id, data_keys.c.retired_at.is_(None))
            .with_for_update(read=True)
        )
    ).one_or_none()
    if row is not None and row.sealed_key is not None and row.sealed_key.damaged and create:
        # Never destroy key material on a read path. A damaged key opens nothing, but a backup of its
        # row may: while any credential is sealed under it, refuse and name them (the owner decides:
        # restore the row, or remove those credentials). Once none is left, nothing can be lost by
        # putting it out of use, so the user can store again under a new one.
        sealed_under = (
            (
                await session.execute(
                    select(credentials.c.name)
                    .where(credentials.c.user_id == user_id, credentials.c.data_key_id == row.id)
                    .order_by(credentials.c.name)
                )
            )
            .scalars()
            .all()
        )
        if sealed_under:
            raise DataKeyDamaged(list(sealed_under), row.sealed_key.problem or "damaged")
        await session.execute(
            update(data_keys)
            .where(data_keys.c.id == row.id)
            .values(sealed_key=None, retired_at=utcnow(), destroyed_at=utcnow())
        )
        row = None
    if row is not None:
        return unwrap(keyring, row.id, user_id, row.sealed_key, fingerprints=True)
    if not create:
        return None
    values, opened = new_data_key(keyring, user_id)
    await session.execute(data_keys.insert().values(**values))
    return opened


async def undestroyed_data_keys(
    session: AsyncSession, keyring: KeyRing, user_id: uuid.UUID
) -> list[OpenDataKey]:
    """Every data key of the user that can still open values (current and retired), for duplicate checks."""
    rows = (
        await session.execute(
            select(data_keys.c.id, data_keys.c.sealed_key).where(
                data_keys.c.user_id == user_id, data_keys.c.destroyed_at.is_(None)
            )
        )
    ).all()
    # A damaged key holds no value anyone could find a duplicate of.
    return [
        unwrap(keyring, r.id, user_id, r.sealed_key, fingerprints=True)
        for r in rows
        if r.sealed_key is not None and not r.sealed_key.damaged
    ]


@dataclass(frozen=True)
class ShredResult:
    """What shredding one user did (counts only)."""

    data_keys_destroyed: int
    old_form_credentials_deleted: int
    destroyed_at: datetime


async def shred_user(db: Database, user_id: uuid.UUID) -> ShredResult:
    """Crypto-shred a user: destroy every data key of theirs, in one committed transaction.

    The wrapped key is overwritten with NULL and ``destroyed_at`` set, so every value sealed
    under it is unrecoverable from this database and from any backup of it taken afterwards.
    Values still in the old form (sealed directly under the master key) cannot be shredded by
    destroying a data key, so they are deleted in the same transaction. What backups taken
    *before* still hold is described in docs/vault.md.
    """
    now = utcnow()
    async with db.session(user_id) as session:
        destroyed = await session.execute(
            update(data_keys)
            .where(data_keys.c.user_id == user_id, data_keys.c.destroyed_at.is_(None))
            .values(sealed_key=None, destroyed_at=now)
        )
        # A destroyed key is never current: a later store for this user makes a new one.
        await session.execute(
            update(data_keys)
            .where(data_keys.c.user_id == user_id, data_keys.c.retired_at.is_(None))
            .values(retired_at=now)
        )
        old_form = await session.execute(
            delete(credentials).where(credentials.c.user_id == user_id, credentials.c.data_key_id.is_(None))
        )
    return ShredResult(
        data_keys_destroyed=int(destroyed.rowcount or 0),  # type: ignore[attr-defined]
        old_form_credentials_deleted=int(old_form.rowcount or 0),  # type: ignore[attr-defined]
        destroyed_at=now,
    )


async def erase_freed_space(db: Database) -> None:
    """Make the database files forget deleted rows now, not when their space is reused.

    SQLite: VACUUM rebuilds the file from live rows only, and a TRUNCATE checkpoint empties the WAL.
    PostgreSQL: VACUUM FULL rewrites ``data_keys`` (small: one row per user) without its dead row
    versions; the table's owner must run it. Neither reaches WAL archives, replicas' lag, or the
    file system's own copies: docs/vault.md says what stays.
    """
    if db.is_sqlite:
        path = sqlite_path(db.url)
        if path is not None:
            await asyncio.to_thread(_vacuum_sqlite, path)
        return
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM (FULL) data_keys")


def _vacuum_sqlite(path: Path) -> None:
    # A plain connection with no transaction of its own: VACUUM cannot run inside one.
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
