"""Fair sharing of the HTTP transport between users (issue #10, point 2).

Without these, one token holder could open sessions until the SDK's global cap (every other user
then gets 503) and send requests as fast as the machine answers. Here every limit is keyed by the
user a verified bearer token belongs to (the ``subject`` our verifier sets), never by anything the
caller picks, and answered with HTTP 429 *for that user only*:

* a quota of open stateful sessions per user (``ALPACA_VAULT_SESSIONS_PER_USER``), decided under the
  SDK's session-creation lock so concurrent opens cannot overshoot it;
* a request rate per user (``ALPACA_VAULT_REQUESTS_PER_MINUTE``), a token bucket with
  ``Retry-After``.

Memory stays bounded: session counts exist only for open sessions (which the SDK caps), and the
rate buckets are an LRU of at most ``MAX_TRACKED_USERS`` entries (a user pushed out simply starts
again with a full bucket; tokens are per user, so one principal cannot fill the table).

Both limits are per replica, on purpose (#10 item 10): what they protect (this process's memory, CPU
and connections) is per replica, and a session lives in one process anyway. The limit replicas must
share, the per-credential Alpaca budget, is kept in PostgreSQL (db/request_budget.py).
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager, _error_response
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MAX_TRACKED_USERS = 10_000


def user_of(scope: Scope) -> str | None:
    """The user a verified bearer token belongs to (None without one: the auth layer refuses those)."""
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return user.access_token.subject or user.access_token.client_id
    return None


def with_lower_case_host(scope: Scope) -> Scope:
    """The scope with its Host header lower-cased: host names are case-insensitive (RFC 9110 4.2.3),
    and the SDK's DNS-rebinding check compares them exactly, so ``VAULT.example.com`` was refused."""
    headers = scope.get("headers") or []
    if not any(name == b"host" and value != value.lower() for name, value in headers):
        return scope
    return {**scope, "headers": [(n, v.lower() if n == b"host" else v) for n, v in headers]}


def too_many(message: str, retry_after: float | None = None) -> Response:
    """A 429 with a JSON-RPC error body that says which limit was hit and what to do."""
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message))
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True),
        status_code=429,
        media_type="application/json",
        headers=headers,
    )


class RequestRate:
    """Token buckets per user: ``per_minute`` requests a minute, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, *, max_users: int = MAX_TRACKED_USERS) -> None:
        self.per_minute = per_minute
        self._refill_per_second = per_minute / 60.0
        self._max_users = max_users
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # user -> (tokens, at)

    def take(self, user: str) -> float | None:
        """Spend one request for ``user``; None if allowed, else the seconds until one is."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(user, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self._refill_per_second)
        wait: float | None = None
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self._refill_per_second
        self._buckets[user] = (tokens, now)  # most recently used last
        while len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class FairSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with a per-user session quota and request rate.

    The SDK builds its manager inside ``streamable_http_app`` and offers no factory, so
    ``install_fair_limits`` re-classes that instance (same state, these overrides on top).
    """

    sessions_per_user: int
    request_rate: RequestRate
    _open_by_user: Counter[str]
    _session_user: dict[str, str]

    async def _handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every request to /mcp (stateful, stateless or the SDK's newer protocol path) spends from
        # its user's bucket first.
        if await self._rate_limited(scope, receive, send):
            return
        await super()._handle_request(with_lower_case_host(scope), receive, send)

    async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = user_of(scope)
        if user is None or Request(scope).headers.get(MCP_SESSION_ID_HEADER) is not None:
            await super()._handle_stateful_request(scope, receive, send)
            return
        # A new session: the quota is checked, and the session admitted, under the SDK's session-creation
        # lock, so concurrent opens by one user cannot overshoot the quota.
        authenticated = scope.get("user")
        requestor = (
            authorization_context(authenticated) if isinstance(authenticated, AuthenticatedUser) else None
        )
        async with self._session_creation_lock:
            over_quota = self._open_by_user[user] >= self.sessions_per_user
            transport = None if over_quota else self._admit_session(requestor)
        if over_quota:
            await too_many(
                f"This user already has {self.sessions_per_user} open MCP sessions, the most allowed "
                f"(ALPACA_VAULT_SESSIONS_PER_USER). Close one (HTTP DELETE with its Mcp-Session-Id) "
                f"or let an idle one expire after {self.session_idle_timeout:g} seconds, then retry.",
                retry_after=None,
            )(scope, receive, send)
            return
        if transport is None:  # the server-wide cap (the SDK's max_sessions), as the SDK answers it
            await _error_response("Too many open sessions", 503, INTERNAL_ERROR)(scope, receive, send)
            return
        await self._serve_opening_request(transport, scope, receive, send)

    def _admit_session(self, requestor: Any) -> Any:
        transport = super()._admit_session(requestor)
        if transport is not None and requestor is not None:
            user = requestor.get("subject") or requestor.get("client_id")
            session_id = transport.mcp_session_id
            if user is not None and session_id is not None:
                self._open_by_user[user] += 1
                self._session_user[session_id] = user
        return transport

    async def _discard_session(self, session_id: str, transport: Any) -> None:
        user = self._session_user.pop(session_id, None)
        if user is not None:
            self._open_by_user[user] -= 1
            if self._open_by_user[user] <= 0:
                del self._open_by_user[user]
        await super()._discard_session(session_id, transport)

    async def _rate_limited(self, scope: Scope, receive: Receive, send: Send) -> bool:
        user = user_of(scope)
        if user is None:
            return False
        wait = self.request_rate.take(user)
        if wait is None:
            return False
        await too_many(
            f"Too many requests from this user: at most {self.request_rate.per_minute} a minute "
            f"(ALPACA_VAULT_REQUESTS_PER_MINUTE). Retry after {math.ceil(wait)} seconds.",
            retry_after=wait,
        )(scope, receive, send)
        return True

    def open_sessions(self, user: str) -> int:
        return self._open_by_user.get(user, 0)


def install_fair_limits(
    manager: StreamableHTTPSessionManager, *, sessions_per_user: int, requests_per_minute: int
) -> FairSessionManager:
    """Turn the SDK-built ``manager`` into a :class:`FairSessionManager` in place (before it serves)."""
    manager.__class__ = FairSessionManager
    fair: FairSessionManager = manager  # type: ignore[assignment]
    fair.sessions_per_user = sessions_per_user
    fair.request_rate = RequestRate(requests_per_minute)
    fair._open_by_user = Counter()
    fair._session_user = {}
    # The SDK bound its request entry point at construction; bind it again so the override above runs.
    fair.asgi_app = RequestBodyLimitMiddleware(fair._handle_request, fair.max_request_body_size)
    return fair
