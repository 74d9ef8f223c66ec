"""Reading and changing trading policies in the database (always within one user's session).

``PolicyStore`` is what the CLI (and later the console) uses; ``load_policy``
is what the guard's hook calls inside its own transaction, after
``lock_credential`` has serialized the credential's orders.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

if TYPE_CHECKING:
    from alpaca_vault.audit.log import AuditLog

from alpaca_vault.audit.chain import CLI, Actor
from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import Credential, TradingPolicy
from alpaca_vault.guard.policy import (
    SETTING_FIELDS,
    Policy,
    PolicySettings,
    apply_changes,
    default_settings,
)
from alpaca_vault.vault.errors import CredentialNotFound


@dataclass(frozen=True)
class CredentialRef:
    """The little the guard needs to know about a credential (never its keys)."""

    id: uuid.UUID
    name: str
    environment: str


# One Core statement for the policy read, run inline on SQLite (Database.read_inline) or in a session.
POLICY_ROW = select(*(getattr(TradingPolicy, f) for f in SETTING_FIELDS), TradingPolicy.updated_at).where(
    TradingPolicy.user_id == bindparam("user_id"), TradingPolicy.credential_id == bindparam("credential_id")
)


def policy_from_row(credential: CredentialRef, row: Any | None) -> Policy:
    """The policy for ``credential`` from its row (None: its environment's defaults).

    The guard reads the row on every order (twice: before the market reads and under the lock), and
    validating it was most of that cost; a row seen before is not validated again. The key is every
    value of the row, so any change to the policy is a new key."""
    if row is None:
        return _policy_of(credential, None)
    values = tuple(getattr(row, f) for f in _ROW_FIELDS)
    return _policy_of(credential, tuple(tuple(v) if isinstance(v, list) else v for v in values))


_ROW_FIELDS = (*SETTING_FIELDS, "updated_at")


@functools.lru_cache(maxsize=256)
def _policy_of(credential: CredentialRef, values: tuple[Any, ...] | None) -> Policy:
    if values is None:
        settings = default_settings(credential.environment)
        updated_at = None
    else:
        row = {f: list(v) if isinstance(v, tuple) else v for f, v in zip(_ROW_FIELDS, values, strict=True)}
        updated_at = row.pop("updated_at")
        settings = PolicySettings.model_validate(row)
    return Policy(
        **settings.model_dump(),
        credential=credential.name,
        credential_id=credential.id,
        environment=credential.environment,
        is_default=values is None,
        updated_at=updated_at,
    )


async def load_policy(
    session: AsyncSession | AsyncConnection, user_id: uuid.UUID, credential: CredentialRef
) -> Policy:
    """The policy in force for ``credential`` (its stored row, else its environment's defaults)."""
    row = (await session.execute(POLICY_ROW, {"user_id": user_id, "credential_id": credential.id})).first()
    return policy_from_row(credential, row)


def load_policy_inline(db: Database, user_id: uuid.UUID, credential: CredentialRef) -> Policy | None:
    """``load_policy`` on the calling thread (SQLite files); None: use a session instead."""
    rows = db.read_inline(POLICY_ROW, {"user_id": user_id, "credential_id": credential.id})
    if rows is None:
        return None
    return policy_from_row(credential, rows[0] if rows else None)


async def lock_credential(
    session: AsyncSession | AsyncConnection, user_id: uuid.UUID, credential_id: uuid.UUID
) -> None:
    """Serialize this credential's guarded calls until the transaction ends.

    PostgreSQL: a row lock on the credential (every replica waits on the same row;
    FOR NO KEY UPDATE still lets order intents reference it). SQLite: the session's
    BEGIN IMMEDIATE already holds the database's write lock.
    """
    # A connection (async, or db/inline.py's on SQLite) knows its dialect; a session asks its bind.
    dialect = session.get_bind().dialect if isinstance(session, AsyncSession) else session.dialect
    if dialect.name == "postgresql":
        await session.execute(
            text("SELECT id FROM credentials WHERE id = :id AND user_id = :user_id FOR NO KEY UPDATE"),
            {"id": credential_id, "user_id": user_id},
        )


async def find_credential(session: AsyncSession, user_id: uuid.UUID, ref: str) -> CredentialRef:
    """A credential of ``user_id`` by name or id; another user's behaves exactly like an unknown one."""
    ref = ref.strip()
    try:
        by_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        by_id = None
    mine = select(Credential.id, Credential.name, Credential.environment).where(Credential.user_id == user_id)
    row = (
        await session.execute(mine.where(Credential.id == by_id if by_id else Credential.name == ref))
    ).one_or_none()
    if row is None:
        names = list(await session.scalars(select(Credential.name).where(Credential.user_id == user_id)))
        available = f" Available: {', '.join(sorted(names))}." if names else " This user has no credentials."
        raise CredentialNotFound(f"Credential '{ref[:64]}' not found.{available}")
    return CredentialRef(row.id, row.name, row.environment)


class PolicyStore:
    """The owner's view: show, change, halt and resume policies of one user's credentials."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def show(self, user_id: uuid.UUID, ref: str) -> Policy:
        async with self._db.session(user_id, readonly=True) as session:
            return await load_policy(session, user_id, await find_credential(session, user_id, ref))

    async def show_all(self, user_id: uuid.UUID) -> list[Policy]:
        async with self._db.session(user_id, readonly=True) as session:
            rows = (
                await session.execute(
                    select(Credential.id, Credential.name, Credential.environment)
                    .where(Credential.user_id == user_id)
                    .order_by(Credential.name)
                )
            ).all()
            return [await load_policy(session, user_id, CredentialRef(*row)) for row in rows]

    async def update(
        self, user_id: uuid.UUID, ref: str, changes: dict[str, Any], *, audit: AuditLog | None = None,
        actor: Actor | None = None,
    ) -> Policy:  # fmt: skip
        """Apply ``changes`` (validated as a whole first: a bad value changes nothing).

        With ``audit``, a ``policy.change`` event is written in the same transaction (fail closed).
        """
        async with self._db.session(user_id) as session:
            credential = await find_credential(session, user_id, ref)
            await lock_credential(session, user_id, credential.id)
            current = await load_policy(session, user_id, credential)
            settings = apply_changes(current.settings, changes)
            await _save(session, user_id, credential, settings)
            await _audit_change(session, audit, actor, user_id, credential, sorted(changes))
            return await load_policy(session, user_id, credential)

    async def set_halted(
        self, user_id: uuid.UUID, ref: str | None, halted: bool, *, audit: AuditLog | None = None,
        actor: Actor | None = None,
    ) -> list[Policy]:  # fmt: skip
        """Halt (or resume) one credential, or every credential of the user when ``ref`` is None."""
        async with self._db.session(user_id) as session:
            if ref is None:
                rows = (
                    await session.execute(
                        select(Credential.id, Credential.name, Credential.environment)
                        .where(Credential.user_id == user_id)
                        .order_by(Credential.name)
                    )
                ).all()
                credentials = [CredentialRef(*row) for row in rows]
            else:
                credentials = [await find_credential(session, user_id, ref)]
            changed = []
            for credential in credentials:
                await lock_credential(session, user_id, credential.id)
                current = await load_policy(session, user_id, credential)
                await _save(session, user_id, credential, apply_changes(current.settings, {"halted": halted}))
                await _audit_change(
                    session, audit, actor, user_id, credential, ["halted" if halted else "resumed"]
                )
                changed.append(await load_policy(session, user_id, credential))
            return changed


async def _audit_change(
    session: AsyncSession,
    audit: AuditLog | None,
    actor: Actor | None,
    user_id: uuid.UUID,
    credential: CredentialRef,
    changes: list[str],
) -> None:
    if audit is None:
        return
    await audit.append(
        user_id,
        "policy.change",
        actor or CLI,
        credential_id=credential.id,
        credential_name=credential.name,
        details={"changes": changes, "environment": credential.environment},
        session=session,
    )


async def _save(
    session: AsyncSession, user_id: uuid.UUID, credential: CredentialRef, settings: PolicySettings
) -> None:
    values = {f: getattr(settings, f) for f in SETTING_FIELDS}
    row = await session.scalar(
        select(TradingPolicy).where(
            TradingPolicy.user_id == user_id, TradingPolicy.credential_id == credential.id
        )
    )
    if row is None:
        session.add(TradingPolicy(user_id=user_id, credential_id=credential.id, **values))
    else:
        for field, value in values.items():
            setattr(row, field, value)
    await session.flush()
