"""The signed-in user's own API tokens: list, create (shown once), revoke.

Per-user transactions (``Database.session(user_id)``), so on PostgreSQL row-level security holds
here too: the console never needs the owner's maintenance path. Tokens have the format of
``alpaca-vault tokens create`` (``avt_`` + 256 random bits; only the SHA-256 is stored). The console
makes agent tokens only; console sign-in tokens (``avc_``) come from the CLI's ``--console``
(accounts/tokens.py says why the kinds differ).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import ApiToken, utcnow

TOKEN_PREFIX = AGENT_TOKEN_PREFIX = "avt_"  # noqa: S105 - a marker, not a secret
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# What the sign-in form says to someone who pastes an agent's token.
AGENT_TOKEN_REFUSED = (
    "That is an agent's token (avt_…): it opens MCP connections only, never the console, so an agent "  # noqa: S105
    "that holds it cannot change its own limits here. Sign in with a console token (avc_…, from "
    "`alpaca-vault tokens create --user NAME --console`) or a one-time link "
    "(`alpaca-vault console --no-serve --url URL --user NAME`)."
)
MAX_EXPIRY_DAYS = 3650


class TokenRequestError(ValueError):
    """The request cannot be done; the message says why (never containing a token)."""


@dataclass(frozen=True)
class TokenRow:
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def kind(self) -> str:
        """What the token opens, told by its prefix: MCP connections (an agent's) or the console."""
        return "agent (MCP)" if self.prefix.startswith(AGENT_TOKEN_PREFIX) else "console sign-in"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


def _row(token: ApiToken) -> TokenRow:
    return TokenRow(
        token.id,
        token.name,
        token.prefix,
        token.created_at,
        token.last_used_at,
        token.expires_at,
        token.revoked_at,
    )


class UserTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, user_id: uuid.UUID) -> list[TokenRow]:
        async with self._db.session(user_id, readonly=True) as session:
            rows = await session.scalars(
                select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
            )
            return [_row(t) for t in rows]

    async def create(self, user_id: uuid.UUID, name: str, expires_in_days: int) -> tuple[TokenRow, str]:
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise TokenRequestError("A token name is 1-64 characters.")
        if not 0 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise TokenRequestError(f"Expiry is 0 (never) to {MAX_EXPIRY_DAYS} days.")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiToken(
            id=uuid.uuid4(),
            user_id=user_id,
            name=name,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            prefix=token[:DISPLAY_PREFIX_LENGTH],
            created_at=now,
            expires_at=None if expires_in_days == 0 else now + timedelta(days=expires_in_days),
        )
        async with self._db.session(user_id) as session:
            session.add(row)
            await session.flush()
            return _row(row), token

    async def still_valid(self, user_id: uuid.UUID, token_id: uuid.UUID) -> bool:
        """Whether the user's token is neither revoked nor expired (a console session it opened lives
        only as long as it does)."""
        async with self._db.session(user_id, readonly=True) as session:
            token = (
                await session.scalars(
                    select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
                )
            ).one_or_none()
        return token is not None and _row(token).status == "active"

    async def revoke(self, user_id: uuid.UUID, token_id: uuid.UUID) -> TokenRow | None:
        """Revoke one of the user's tokens; None when the id is not one of theirs (indistinguishable)."""
        async with self._db.session(user_id) as session:
            token = (
                await session.scalars(
                    select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
                )
            ).one_or_none()
            if token is None:
                return None
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                await session.flush()
            return _row(token)
