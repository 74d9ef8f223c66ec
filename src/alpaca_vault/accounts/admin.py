"""Users and their API tokens, across users: what the ``users`` and ``tokens`` commands run.

On PostgreSQL every method runs in a maintenance transaction, which only the tables' owner may open
(the application role gets a clear error).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.accounts.tokens import (
    DISPLAY_PREFIX_LENGTH,
    MAX_EXPIRY_DAYS,
    TOKEN_PREFIXES,
    TokenKind,
    generate_token,
    hash_token,
)
from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import ApiToken, Credential, User, utcnow
from alpaca_vault.db.rls import maintenance_session

if TYPE_CHECKING:
    from alpaca_vault.audit.log import AuditLog

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_NAME_RULE = "1-64 characters: letters, digits and . _ @ + - (starting with a letter or digit)"


class AccountError(Exception):
    """A users/tokens request cannot be done; the message says why and never contains a token."""


class UserNotFound(AccountError):
    pass


class UserExists(AccountError):
    pass


class TokenNotFound(AccountError):
    pass


@dataclass(frozen=True)
class UserRecord:
    id: uuid.UUID
    name: str
    is_active: bool
    created_at: datetime
    credentials: int
    tokens: int


@dataclass(frozen=True)
class TokenRecord:
    """What ``tokens list`` shows. There is deliberately no field for the token itself."""

    id: uuid.UUID
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    token: SecretStr  # the only copy there will ever be


def check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise AccountError(f"Invalid user name: use {_NAME_RULE}.")
    return name


def _record(token: ApiToken, user_name: str) -> TokenRecord:
    return TokenRecord(
        id=token.id,
        user=user_name,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


class AccountAdmin:
    """Users and their tokens, across users (maintenance sessions on PostgreSQL).

    With ``audit``, each change writes its event (``user.add``, ``user.remove``, ``token.create``,
    ``token.revoke``, actor ``cli``) in the change's own transaction: an event that cannot be written
    rolls the change back (fail closed), and no change is ever left without its record.
    """

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self._db = db
        self._audit = audit

    async def _record(
        self, session: AsyncSession, user_id: uuid.UUID, action: str, details: dict[str, Any]
    ) -> None:
        if self._audit is None:
            return
        from alpaca_vault.audit.chain import CLI

        await self._audit.append(user_id, action, CLI, details=details, session=session)

    @property
    def db(self) -> Database:
        return self._db

    async def user_id(self, name: str) -> uuid.UUID | None:
        """The id of the user called ``name``, or None (#16: shredding needs it before removal)."""
        async with maintenance_session(self._db) as session:
            return await session.scalar(select(User.id).where(User.name == name))

    async def _user(self, session: AsyncSession, name: str) -> User:
        user = await session.scalar(select(User).where(User.name == name))
        if user is None:
            names = (await session.scalars(select(User.name).order_by(User.name))).all()
            known = ", ".join(names) if names else "none yet"
            raise UserNotFound(
                f"User '{name}' not found. Known users: {known}. `alpaca-vault users add {name}` creates it."
            )
        return user

    async def add_user(self, name: str) -> UserRecord:
        check_user_name(name)
        async with maintenance_session(self._db) as session:
            if await session.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserExists(f"User '{name}' already exists. `alpaca-vault users list` shows every user.")
            user = User(id=uuid.uuid4(), name=name, is_active=True, created_at=utcnow())
            session.add(user)
            await session.flush()
            await self._record(session, user.id, "user.add", {"user_name": user.name})
            return UserRecord(user.id, user.name, user.is_active, user.created_at, 0, 0)

    async def list_users(self) -> list[UserRecord]:
        async with maintenance_session(self._db) as session:
            credentials = (
                select(func.count()).where(Credential.user_id == User.id).correlate(User).scalar_subquery()
            )
            tokens = select(func.count()).where(ApiToken.user_id == User.id).correlate(User).scalar_subquery()
            rows = (await session.execute(select(User, credentials, tokens).order_by(User.name))).all()
            return [UserRecord(u.id, u.name, u.is_active, u.created_at, int(c), int(t)) for u, c, t in rows]

    async def remove_user(self, name: str) -> UserRecord:
        """Delete the user; its credentials and tokens go with it (ON DELETE CASCADE)."""
        async with maintenance_session(self._db) as session:
            user = await self._user(session, name)
            credentials = await session.scalar(
                select(func.count()).select_from(Credential).where(Credential.user_id == user.id)
            )
            tokens = await session.scalar(
                select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id)
            )
            record = UserRecord(
                user.id, user.name, user.is_active, user.created_at, int(credentials or 0), int(tokens or 0)
            )
            # The last entry of the removed user's chain (the record outlives the user), in the same
            # transaction as the delete.
            await self._record(
                session, user.id, "user.remove", {"user_name": user.name, "count": record.credentials}
            )
            await session.execute(delete(User).where(User.id == user.id))
            return record

    async def create_token(
        self,
        user: str,
        *,
        name: str = "default",
        expires_in: timedelta | None = None,
        kind: TokenKind = "agent",
    ) -> IssuedToken:
        if not 1 <= len(name) <= 64:
            raise AccountError("Token name must be 1-64 characters.")
        if expires_in is not None and not timedelta(0) < expires_in <= timedelta(days=MAX_EXPIRY_DAYS):
            raise AccountError(f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days.")
        token = generate_token(kind)
        now = utcnow()
        async with maintenance_session(self._db) as session:
            owner = await self._user(session, user)
            if not owner.is_active:
                raise AccountError(f"User '{user}' is inactive; a token for it would be refused.")
            row = ApiToken(
                id=uuid.uuid4(),
                user_id=owner.id,
                name=name,
                token_hash=hash_token(token),
                prefix=token[:DISPLAY_PREFIX_LENGTH],
                created_at=now,
                expires_at=None if expires_in is None else now + expires_in,
            )
            session.add(row)
            await session.flush()
            await self._record(
                session,
                owner.id,
                "token.create",
                {"token_id": row.id, "token_name": row.name, "token_kind": kind},
            )
            return IssuedToken(record=_record(row, owner.name), token=SecretStr(token))

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        async with maintenance_session(self._db) as session:
            query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
            if user is not None:
                query = query.where(ApiToken.user_id == (await self._user(session, user)).id)
            rows = (await session.execute(query.order_by(User.name, ApiToken.created_at))).all()
            return [_record(token, user_name) for token, user_name in rows]

    async def revoke_token(self, ref: str) -> tuple[TokenRecord, bool]:
        """Revoke a token by id or display prefix; returns (record, whether it was revoked just now)."""
        async with maintenance_session(self._db) as session:
            token = await self._find_token(session, ref)
            revoked_now = token.revoked_at is None
            if revoked_now:
                token.revoked_at = utcnow()
                await session.flush()
                await self._record(
                    session, token.user_id, "token.revoke", {"token_id": token.id, "token_name": token.name}
                )
            user_name = await session.scalar(select(User.name).where(User.id == token.user_id))
            return _record(token, user_name or "?"), revoked_now

    async def _find_token(self, session: AsyncSession, ref: str) -> ApiToken:
        matches: Sequence[ApiToken] = []
        try:
            token_id = uuid.UUID(ref)
        except ValueError:
            is_token_text = ref.startswith(tuple(TOKEN_PREFIXES.values()))
            if is_token_text and len(ref) == DISPLAY_PREFIX_LENGTH:
                matches = (await session.scalars(select(ApiToken).where(ApiToken.prefix == ref))).all()
            elif is_token_text:
                # Never echo it: this may be a whole token pasted by mistake.
                raise TokenNotFound(
                    "Pass a token's id or its 12-character prefix (from `alpaca-vault tokens list`), "
                    "never the token itself."
                ) from None
        else:
            matches = (await session.scalars(select(ApiToken).where(ApiToken.id == token_id))).all()
        if len(matches) > 1:
            raise TokenNotFound(
                f"Several tokens start with '{ref}'; revoke by id (`alpaca-vault tokens list`)."
            )
        if not matches:
            raise TokenNotFound(
                f"Token '{ref[:40]}' not found. `alpaca-vault tokens list` shows ids and prefixes."
            )
        return matches[0]
