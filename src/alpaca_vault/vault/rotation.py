"""Re-seal every credential value under the primary key, batch by batch.

Each batch is its own transaction, so an interrupted rotation keeps the
batches it finished; running it again skips values already under the
primary key (found by the kid in the token, without decrypting) and finishes
the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Text, bindparam, func, or_, select, type_coerce, update

from alpaca_vault.db import Credential, Database
from alpaca_vault.db.models import utcnow
from alpaca_vault.db.rls import maintenance_session
from alpaca_vault.db.sealed import TOKEN_VERSION
from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.errors import UnsealError
from alpaca_vault.vault.keyring import KeyRing


@dataclass
class RotationProgress:
    """Counts so far; ``total`` is the number of credentials that needed work at the start."""

    total: int
    done: int = 0
    resealed_values: int = 0
    failed: int = 0


@dataclass
class RotationResult:
    primary_kid: str
    credentials_rotated: int = 0
    values_resealed: int = 0
    already_current: int = 0
    batches: int = 0
    failed: list[str] = field(default_factory=list)  # "user_id/name: reason", no secrets


def _needs_rotation(primary_kid: str) -> ColumnElement[bool]:
    token_prefix = f"{TOKEN_VERSION}.{primary_kid}."
    fingerprint_prefix = f"{primary_kid}:"

    def differs(column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        # Compare the stored text's prefix (the kid) without decrypting or binding a SealedValue.
        text_column = type_coerce(column, Text)
        return func.substr(text_column, 1, len(prefix)) != prefix

    return or_(
        differs(Credential.__table__.c.api_key, token_prefix),
        differs(Credential.__table__.c.secret_key, token_prefix),
        differs(Credential.__table__.c.key_fingerprint, fingerprint_prefix),
    )


async def count_pending(db: Database, keyring: KeyRing) -> int:
    """Credentials with a value or fingerprint not under the primary key."""
    async with maintenance_session(db) as session:
        total = await session.scalar(
            select(func.count()).select_from(Credential).where(_needs_rotation(keyring.primary_kid))
        )
    return int(total or 0)


async def rotate(
    db: Database,
    keyring: KeyRing,
    *,
    batch_size: int = 500,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RotationResult:
    """Re-seal everything not under ``keyring.primary_kid``; safe to run again after a crash."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    primary = keyring.primary_kid
    pending = _needs_rotation(primary)
    async with maintenance_session(db) as session:
        total_rows = int(await session.scalar(select(func.count()).select_from(Credential)) or 0)
    state = RotationProgress(total=await count_pending(db, keyring))
    result = RotationResult(primary_kid=primary, already_current=total_rows - state.total)
    table = cast(Table, Credential.__table__)
    # Core statements (no ORM objects): rotation touches every row, so per-row overhead counts.
    resealed = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            api_key=bindparam("b_api_key"),
            secret_key=bindparam("b_secret_key"),
            key_fingerprint=bindparam("b_key_fingerprint"),
            updated_at=bindparam("b_updated_at"),
        )
    )
    last_id: uuid.UUID | None = None
    while True:
        # Rotation spans every user: on PostgreSQL this needs the tables' owner (row-level security).
        async with maintenance_session(db) as session:
            query = (
                select(
                    table.c.id,
                    table.c.user_id,
                    table.c.name,
                    table.c.api_key,
                    table.c.secret_key,
                    table.c.key_fingerprint,
                )
                .where(pending)
                .order_by(table.c.id)
                .limit(batch_size)
            )
            if last_id is not None:
                query = query.where(table.c.id > last_id)
            rows = (await session.execute(query)).all()
            if not rows:
                break
            last_id = rows[-1].id
            changes: list[dict[str, object]] = []
            now = utcnow()
            for row in rows:
                try:
                    api_aad = AssociatedData.for_credential("api_key", row.id, row.user_id)
                    secret_aad = AssociatedData.for_credential("secret_key", row.id, row.user_id)
                    api_plain = keyring.open(row.api_key, api_aad)
                    api_token, secret_token = row.api_key, row.secret_key
                    if api_token.kid != primary:
                        api_token = keyring.seal(api_plain, api_aad)
                        state.resealed_values += 1
                    if secret_token.kid != primary:
                        secret_token = keyring.seal(keyring.open(secret_token, secret_aad), secret_aad)
                        state.resealed_values += 1
                    fingerprint = keyring.fingerprint(api_plain)
                    del api_plain
                except UnsealError as exc:
                    state.failed += 1
                    result.failed.append(f"credential '{row.name}' (user {row.user_id}): {exc}")
                    continue
                changes.append(
                    {
                        "b_id": row.id,
                        "b_api_key": api_token,
                        "b_secret_key": secret_token,
                        "b_key_fingerprint": fingerprint,
                        "b_updated_at": now,
                    }
                )
            if changes:
                # One executemany per batch.
                await (await session.connection()).execute(resealed, changes)
            result.batches += 1
            result.credentials_rotated += len(changes)
            state.done += len(rows)
        if progress is not None:
            # After the commit: whatever progress reports is durable.
            progress(state)
    result.values_resealed = state.resealed_values
    return result
