"""The HTTP auth edge: bearer tokens for the Streamable HTTP transport.

``BearerTokenVerifier`` is the MCP SDK ``TokenVerifier`` the transport uses. The check itself is
``accounts.TokenAuthenticator`` (users and tokens live in ``accounts/``); here its answer becomes an
``AccessToken`` whose ``subject`` is the token's user, which ``server.app`` turns into the principal
of every tool call, and whose claims name the token (id and name) as the call's actor.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from alpaca_vault.accounts.tokens import LAST_USED_RESOLUTION, TOKEN_PREFIX, TokenAuthenticator
from alpaca_vault.db.engine import Database

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken

TOKEN_SCOPE = "alpaca-vault"  # noqa: S105 - a scope name


class BearerTokenVerifier:
    """The mcp ``TokenVerifier`` for our tokens: valid, unexpired, unrevoked, active user -> AccessToken.

    It takes agent tokens (``avt_``) only; ``console_sign_in`` checks the console's kind (``avc_``) on
    the same database, for the console's sign-in form (accounts/tokens.py says why the two differ).
    """

    def __init__(self, db: Database, *, last_used_resolution: timedelta = LAST_USED_RESOLUTION) -> None:
        self._tokens = TokenAuthenticator(db, kind="agent", last_used_resolution=last_used_resolution)
        self._console = TokenAuthenticator(db, kind="console", last_used_resolution=last_used_resolution)

    async def console_sign_in(self, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(user id, token id) of a console token, or None (unknown, revoked, expired, or not a console
        token). The session it opens lasts only as long as the token stays valid."""
        found = await self._console.authenticate(token)
        return None if found is None else (found.user_id, found.token_id)

    async def verify_token(self, token: str) -> AccessToken | None:
        # Imported here: the users/tokens commands use the accounts room and should not pay for the SDK.
        from mcp.server.auth.provider import AccessToken

        found = await self._tokens.authenticate(token)
        if found is None:
            return None
        return AccessToken(
            # The SDK keeps this object for the whole request; it needs no copy of the secret.
            token=f"{TOKEN_PREFIX}id:{found.token_id}",
            client_id=f"token:{found.token_id}",
            scopes=[TOKEN_SCOPE],
            expires_at=None if found.expires_at is None else int(found.expires_at.timestamp()),
            subject=str(found.user_id),
            # The audit trail's actor (#13): which token acted, by id and name.
            claims={"token_id": str(found.token_id), "token_name": found.name},
        )

    async def refusal(self, token: str | None) -> str:
        """Why ``token`` is refused, for the 401 (server/bearer.py); see ``TokenAuthenticator.refusal``."""
        return await self._tokens.refusal(token)

    async def aclose(self) -> None:
        await self._tokens.aclose()  # the database both authenticators share
