"""API tokens: how they look, how they are stored, and how a presented token is checked.

A token is ``avt_`` + 43 url-safe characters (256 bits from ``secrets``). It is shown once, when
created; the database keeps only its SHA-256 hex digest and a short display prefix.

Two kinds, told apart by the prefix (which the stored hash covers, so one kind cannot be turned into
the other): an **agent** token (``avt_``) opens MCP connections and nothing else; a **console** token
(``avc_``) signs its user in to the web console and opens no MCP connection. Why: an agent's token sits
in its MCP client's configuration, where the agent may read it; if it also opened the console, the agent
could sign in there and loosen its own trading policy, resume a halted credential or mint more tokens.
Only the owner, through the CLI, creates console tokens. Checking hashes
the presented token, looks the digest up (on PostgreSQL through a SECURITY DEFINER function, because
no user is known yet: see ``db/rls.py``) and compares digests in constant time.

``TokenAuthenticator`` is the check itself, free of any transport: the HTTP edge
(``server/auth.py``) turns its answer into the MCP SDK's ``AccessToken``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import bindparam, or_, select, update

from alpaca_vault.db.engine import Database
from alpaca_vault.db.inline import write_in_passing
from alpaca_vault.db.models import ApiToken, utcnow
from alpaca_vault.db.rls import TokenLookup, lookup_token, lookup_token_inline

logger = logging.getLogger("alpaca_vault.accounts.tokens")

TokenKind = Literal["agent", "console"]
TOKEN_PREFIX = "avt_"  # noqa: S105 - a marker, not a secret: an agent's (MCP) token
CONSOLE_TOKEN_PREFIX = "avc_"  # noqa: S105 - a console sign-in token
TOKEN_PREFIXES: dict[TokenKind, str] = {"agent": TOKEN_PREFIX, "console": CONSOLE_TOKEN_PREFIX}
# "avt_" + 8 characters: enough to tell tokens apart in a list, far too little to guess the rest.
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# last_used_at is a "roughly when" field: one write per token per minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3650
_TOKEN_SHAPES: dict[TokenKind, re.Pattern[str]] = {
    kind: re.compile(re.escape(prefix) + r"[A-Za-z0-9_-]{43}") for kind, prefix in TOKEN_PREFIXES.items()
}
# Last use, unless a newer one is on record (another replica, or this one in the same minute).
_TOUCH = (
    update(ApiToken)
    .where(
        ApiToken.id == bindparam("b_id"),
        ApiToken.user_id == bindparam("b_user_id"),
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < bindparam("b_cutoff")),
    )
    .values(last_used_at=bindparam("b_now"))
)


def generate_token(kind: TokenKind = "agent") -> str:
    return TOKEN_PREFIXES[kind] + secrets.token_urlsafe(32)


def token_kind(token: str) -> TokenKind | None:
    """The kind a presented token has the shape of, or None when it is no token of ours."""
    for kind, shape in _TOKEN_SHAPES.items():
        if shape.fullmatch(token):
            return kind
    return None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AuthenticatedToken:
    """A presented token that is valid, unexpired, unrevoked and whose user is active."""

    token_id: uuid.UUID
    name: str
    user_id: uuid.UUID
    expires_at: datetime | None


class TokenAuthenticator:
    """Checks presented tokens of one kind (``agent`` for MCP, ``console`` for the console's sign-in);
    records their last use (at most once a minute per token). A token of the other kind is refused."""

    def __init__(
        self,
        db: Database,
        *,
        kind: TokenKind = "agent",
        last_used_resolution: timedelta = LAST_USED_RESOLUTION,
    ) -> None:
        self._db = db
        self.kind: TokenKind = kind
        self._shape = _TOKEN_SHAPES[kind]
        self._resolution = last_used_resolution
        # token id -> when this process last wrote last_used_at (bounds writes under bursts).
        self._touched: dict[uuid.UUID, datetime] = {}
        # token id -> its name (names never change); read once per token and process.
        self._names: dict[uuid.UUID, str] = {}

    async def authenticate(self, token: str) -> AuthenticatedToken | None:
        """The token's identity, or None (logged with the reason, never with the token)."""
        if not self._shape.fullmatch(token):
            kind = token_kind(token)
            if kind is not None:
                logger.info("Token refused: a %s token where only %s tokens are taken", kind, self.kind)
            else:
                logger.debug("Bearer token refused: not an alpaca-vault token")
            return None
        digest = hash_token(token)
        found = await self._lookup(digest)
        if found is None or not hmac.compare_digest(found.token_hash, digest):
            logger.info("Bearer token refused: unknown token")
            return None
        now = utcnow()
        if found.revoked_at is not None:
            logger.info("Bearer token %s refused: revoked", found.token_id)
            return None
        if found.expires_at is not None and found.expires_at <= now:
            logger.info("Bearer token %s refused: expired", found.token_id)
            return None
        if not found.user_active:
            logger.info("Bearer token %s refused: its user is inactive", found.token_id)
            return None
        await self._touch(found.token_id, found.user_id, found.last_used_at, now)
        name = await self._name(found.token_id, found.user_id)
        return AuthenticatedToken(found.token_id, name, found.user_id, found.expires_at)

    async def refusal(self, token: str | None) -> str:
        """Why ``token`` is refused: missing, unknown, wrong_kind, expired, revoked or user_inactive.

        A malformed token is "unknown" like any unmatched one: only the holder of a real token learns
        more about it, so the answer helps nobody probe for tokens. "wrong_kind" is said from the
        token's shape alone (its prefix, which the caller sent), before any lookup.
        """
        if not token:
            return "missing"
        if not self._shape.fullmatch(token):
            return "wrong_kind" if token_kind(token) is not None else "unknown"
        digest = hash_token(token)
        found = await self._lookup(digest)
        if found is None or not hmac.compare_digest(found.token_hash, digest):
            return "unknown"
        if found.revoked_at is not None:
            return "revoked"
        if found.expires_at is not None and found.expires_at <= utcnow():
            return "expired"
        if not found.user_active:
            return "user_inactive"
        return "unknown"  # valid now: it was created or changed after this request was refused

    async def _lookup(self, digest: str) -> TokenLookup | None:
        inline = lookup_token_inline(self._db, digest)  # SQLite: no worker-thread hops on every request
        if inline is not None:
            return inline[0] if inline else None
        if self._db.is_postgres:
            # Autocommit: the definer lookup alone, without BEGIN/set_config/COMMIT round trips.
            async with self._db.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await lookup_token(conn, digest)
        async with self._db.session(readonly=True) as session:
            return await lookup_token(session, digest)

    async def _touch(
        self, token_id: uuid.UUID, user_id: uuid.UUID, last_used_at: datetime | None, now: datetime
    ) -> None:
        cutoff = now - self._resolution
        if last_used_at is not None and last_used_at > cutoff:
            return
        previous = self._touched.get(token_id)
        if previous is not None and previous > cutoff:
            return
        self._touched[token_id] = now  # before the write: concurrent requests do not write it too
        try:
            written = await write_in_passing(
                self._db,
                user_id,
                _TOUCH,
                {"b_id": token_id, "b_user_id": user_id, "b_cutoff": cutoff, "b_now": now},
            )
        except Exception:  # bookkeeping only: never refuse a valid token over it
            logger.warning("Could not record last use of token %s", token_id, exc_info=True)
            return
        if not written:  # the vault file was busy: a later request records it
            if previous is None:
                del self._touched[token_id]
            else:
                self._touched[token_id] = previous

    async def _name(self, token_id: uuid.UUID, user_id: uuid.UUID) -> str:
        name = self._names.get(token_id)
        if name is None:
            async with self._db.session(user_id, readonly=True) as session:
                name = await session.scalar(select(ApiToken.name).where(ApiToken.id == token_id)) or ""
            self._names[token_id] = name
        return name

    async def aclose(self) -> None:
        await self._db.dispose()
