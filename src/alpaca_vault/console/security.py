"""What every console and key entry response carries, and the checks every request passes.

* Headers: a Content-Security-Policy with no script at all (the pages need none), framing refused,
  no Referer (a link's URL never leaks to another site), nothing cached.
* Host and Origin: pages answer only to the names the server was told about (DNS rebinding), and a
  form post must come from one of our own origins (a foreign page cannot post into a signed-in
  console or an open key entry page).
* CSRF tokens: a keyed MAC (the vault's key ring) over what the form acts on (the link, or the console
  session), so a token is useless anywhere else and nothing needs to be stored for it.
* Console sessions: a cookie carrying the user id and an expiry under the same kind of MAC; HttpOnly,
  SameSite=Strict, Secure behind TLS, never renewed.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alpaca_vault.vault.keyring import KeyRing

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
SESSION_COOKIE = "alpaca_vault_console"
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class PageGuard:
    """ASGI middleware for the pages: Host/Origin checks in, security headers out.

    ``allowed_hosts`` are exact Host header values (``127.0.0.1:8000``); ``allowed_origins`` exact
    origins (``http://127.0.0.1:8000``). A foreign Host gets 421, a foreign or missing Origin on a
    form post gets 403, before the page's own code runs.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.allowed_origins = frozenset(o.lower().rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if host not in self.allowed_hosts:
            response = PlainTextResponse("Unknown host name: this page is not served under that name.", 421)
            await response(scope, receive, send_with_headers)
            return
        if scope["method"] in _STATE_CHANGING and not self._same_origin(headers):
            response = PlainTextResponse(
                "This form can only be sent from the page the server showed you (the request came from another "
                "site or carried no Origin).",
                403,
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _same_origin(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            return origin.lower().rstrip("/") in self.allowed_origins
        # Our own Referrer-Policy (no-referrer) makes browsers send "Origin: null" on form posts, and
        # some send none: then the browser's Sec-Fetch-Site (which no page can forge) must say same-origin.
        return headers.get("sec-fetch-site") == "same-origin"


# --- CSRF --------------------------------------------------------------------------------------------

_CSRF_CONTEXT = "alpaca-vault csrf v1\0"
_SESSION_CONTEXT = "alpaca-vault console-session v1\0"


def _mac(keyring: KeyRing, context: str, message: str) -> str:
    kid, digest = keyring.fingerprint(context + message).split(":", 1)
    return f"{kid}.{digest}"


def _mac_matches(keyring: KeyRing, context: str, message: str, presented: str) -> bool:
    ok = False
    for candidate in keyring.fingerprints(context + message):  # every key of the ring: survives rotation
        kid, digest = candidate.split(":", 1)
        ok |= hmac.compare_digest(f"{kid}.{digest}", presented)
    return ok


def csrf_token(keyring: KeyRing, scope: str) -> str:
    """The form token for ``scope`` (a link's hash, or a console session id)."""
    return _mac(keyring, _CSRF_CONTEXT, scope)


def csrf_ok(keyring: KeyRing, scope: str, presented: str | None) -> bool:
    if not presented or len(presented) > 200:
        return False
    return _mac_matches(keyring, _CSRF_CONTEXT, scope, presented)


# --- console sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleSession:
    session_id: str
    user_id: uuid.UUID
    expires_at: int  # unix seconds
    #: The console token it was opened with (None: a one-time link). The session ends when that token is
    #: revoked or expires, so a leaked token used once does not keep its holder signed in.
    token_id: uuid.UUID | None = None


# v2 binds the session to the token that opened it; v1 cookies (before that) are no longer accepted, so
# a session an agent's token may have opened before console tokens existed ends at the upgrade.
_SESSION_VERSION = "v2"
_NO_TOKEN = "-"  # noqa: S105 - a placeholder: the session came from a one-time link


def issue_session(
    keyring: KeyRing, user_id: uuid.UUID, minutes: int, token_id: uuid.UUID | None = None
) -> tuple[str, ConsoleSession]:
    session = ConsoleSession(secrets.token_hex(16), user_id, int(time.time()) + minutes * 60, token_id)
    token = _NO_TOKEN if token_id is None else token_id.hex
    payload = f"{_SESSION_VERSION}.{session.session_id}.{user_id.hex}.{session.expires_at}.{token}"
    return f"{payload}.{_mac(keyring, _SESSION_CONTEXT, payload)}", session


def read_session(keyring: KeyRing, cookie: str | None) -> ConsoleSession | None:
    """The session a cookie proves, or None (missing, malformed, forged, or expired)."""
    if not cookie or len(cookie) > 300:
        return None
    parts = cookie.split(".")
    if len(parts) != 7 or parts[0] != _SESSION_VERSION:
        return None
    payload = ".".join(parts[:5])
    if not _mac_matches(keyring, _SESSION_CONTEXT, payload, ".".join(parts[5:])):
        return None
    try:
        user_id = uuid.UUID(hex=parts[2])
        expires_at = int(parts[3])
        token_id = None if parts[4] == _NO_TOKEN else uuid.UUID(hex=parts[4])
    except ValueError:
        return None
    if expires_at <= time.time():
        return None
    return ConsoleSession(parts[1], user_id, expires_at, token_id)
