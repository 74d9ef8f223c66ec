"""The HTTP transport's 401: say why the token was refused and how to get one; advertise no OAuth.

Tokens come from ``alpaca-vault tokens create``; there is no OAuth authorization server (yet).
The SDK's own refusal says only "Authentication required" and points at protected-resource
metadata naming an authorization server, so a client without a token goes looking for an OAuth
flow that does not exist and ends in a 404. Here the 401 names no metadata and its
``error_description`` tells the person what to do.

What a caller can learn from the reason: "missing" is about their own request; a malformed
token and a well-formed one that matches nothing get the same "not valid here", so guessing
learns nothing; "expired", "revoked" and "user inactive" are said only for a token whose hash
matched a real one, i.e. to someone who already holds that token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("alpaca_vault.server.auth")

Refusal = Literal["missing", "unknown", "wrong_kind", "expired", "revoked", "user_inactive"]

# Written for the person at the client, who asks the server's operator: no path of this machine in it.
HOW_TO_GET_ONE = (
    "This server takes its own bearer tokens, not OAuth: its operator creates one with "
    "`alpaca-vault tokens create --user NAME`; send it as the header Authorization: Bearer <token>."
)
_REASONS: dict[Refusal, str] = {
    "missing": "No bearer token was sent.",
    "unknown": "This bearer token is not valid for this server.",
    "wrong_kind": (
        "This is a console sign-in token (avc_...): it signs in to the web console only, never an MCP "
        "connection. An MCP client needs an agent token (avt_...)."
    ),
    "expired": "This bearer token has expired.",
    "revoked": "This bearer token was revoked.",
    "user_inactive": "The user this bearer token belongs to is inactive.",
}


def description(refusal: Refusal) -> str:
    return f"{_REASONS[refusal]} {HOW_TO_GET_ONE}"


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, else None (as the SDK's backend reads it)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"authorization":
            text = value.decode("latin-1")
            return text[7:] if text.lower().startswith("bearer ") and text[7:] else None
    return None


class ExplainedRequireAuth(RequireAuthMiddleware):
    """The SDK's RequireAuthMiddleware (same checks), with a 401 that says why and what to do."""

    def __init__(
        self,
        app: ASGIApp,
        required_scopes: list[str],
        refusal_of: Callable[[str | None], Awaitable[Refusal]],
        operator_hint: str,
    ) -> None:
        super().__init__(app, required_scopes, resource_metadata_url=None)
        self._refusal_of = refusal_of
        self._operator_hint = operator_hint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if isinstance(scope.get("user"), AuthenticatedUser):
            await super().__call__(scope, receive, send)  # scope checks as the SDK does them
            return
        try:
            refusal = await self._refusal_of(bearer_token(scope))
        except Exception:  # the database is down: still refuse, and say what can be said
            logger.warning("Could not look up why a bearer token was refused", exc_info=True)
            refusal = "unknown"
        client = scope.get("client") or ("?", 0)
        logger.info(
            "HTTP 401 for %s %s from %s: %s %s",
            scope.get("method", "?"),
            scope.get("path", "?"),
            client[0],
            _REASONS[refusal],
            self._operator_hint,
        )
        await _send_401(send, refusal)


async def _send_401(send: Send, refusal: Refusal) -> None:
    text = description(refusal)
    # RFC 6750 3.1: a request without credentials gets a challenge without an error code.
    error = None if refusal == "missing" else "invalid_token"
    parts = ['realm="alpaca-vault"']
    if error:
        parts.append(f'error="{error}"')
    parts.append(f'error_description="{text}"')
    body = json.dumps({"error": error or "unauthorized", "error_description": text}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def explain_refusals(app: Any, verifier: Any, operator_hint: str, path: str = "/mcp") -> None:
    """Swap the SDK's RequireAuthMiddleware on ``path`` for :class:`ExplainedRequireAuth`.

    Raises RuntimeError when the route is not shaped as expected (a changed SDK): better to stop
    at start-up than to serve the unexplained 401.
    """
    for route in app.router.routes:
        if getattr(route, "path", None) != path:
            continue
        guard = route.app
        if not isinstance(guard, RequireAuthMiddleware) or isinstance(guard, ExplainedRequireAuth):
            break
        route.app = ExplainedRequireAuth(guard.app, guard.required_scopes, verifier.refusal, operator_hint)
        return
    raise RuntimeError(f"No bearer-token guard found on {path}; the mcp SDK changed its routes.")
