"""The async Alpaca REST client.

One ``httpx2.AsyncClient`` per :class:`AlpacaClient` (the server makes one per
process) pools connections for every credential. The key pair is never set
on that client: each request gets its auth headers built from the caller's
:class:`AlpacaKeys` at the moment it is sent, and the request and response
objects are dropped before any error is raised, so no exception, log record
or client attribute can lead back to them.

Idempotent requests (GET, and cancelling orders) are retried with backoff and
jitter on connection errors, timeouts, 429 (honouring ``Retry-After``) and
5xx. Requests that create something (orders, closing positions) are retried
only when Alpaca surely did not act on them (connection never made, 429);
otherwise orders are reconciled by ``client_order_id`` (see ``orders.py``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import http
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx2
import stamina
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from .. import __version__
from ..secret_text import scrub_then_cut
from .errors import (
    AlpacaAuthError,
    AlpacaBadResponse,
    AlpacaConnectionError,
    AlpacaError,
    AlpacaRateLimited,
    AlpacaRejected,
    AlpacaTimeout,
    AlpacaUnavailable,
    InvalidRequestError,
    LiveTradingDisabled,
    OrderOutcomeUnknown,
    error_for_status,
)
from .models import (
    Account,
    Activity,
    Asset,
    BarsPage,
    CalendarDay,
    CancelOrderResult,
    Clock,
    ClosePositionResult,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatusFilter,
    PortfolioHistory,
    Position,
    Quote,
    ReplaceOrderRequest,
    Snapshot,
    SortDirection,
    StockFeed,
    Trade,
    is_crypto_symbol,
    normalize_symbol,
)
from .orders import new_client_order_id, submit_once

logger = logging.getLogger("alpaca_vault.broker")

Environment = Literal["paper", "live"]
M = TypeVar("M", bound=BaseModel)

_USER_AGENT = f"alpaca-vault/{__version__}"
_CRYPTO_PREFIX = "/v1beta3/crypto/us"
_TIMEFRAME = re.compile(
    r"^(?:([1-9]|[1-5][0-9])Min|([1-9]|1[0-9]|2[0-3])Hour|1Day|1Week|(1|2|3|4|6|12)Month)$"
)
_PERIOD = re.compile(r"^[1-9][0-9]{0,3}[DWMA]$")
_HISTORY_TIMEFRAME = ("1Min", "5Min", "15Min", "1H", "1D")


@dataclass(frozen=True, repr=False)
class AlpacaKeys:
    """One credential's key pair, as unsealed for a single call. Built by tools/ per call."""

    api_key: SecretStr
    secret_key: SecretStr
    environment: Environment
    limiter_key: str  # the credential id: each credential has its own request budget

    def __post_init__(self) -> None:
        if self.environment not in ("paper", "live"):
            raise ValueError("environment must be 'paper' or 'live'")
        if not isinstance(self.api_key, SecretStr) or not isinstance(self.secret_key, SecretStr):
            raise TypeError("api_key and secret_key must be pydantic.SecretStr")

    def __repr__(self) -> str:
        return f"AlpacaKeys(environment={self.environment!r}, limiter_key={self.limiter_key!r})"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard idempotent requests are retried. Bounded in attempts and in total time."""

    attempts: int = 4
    total_timeout: float = 30.0
    wait_initial: float = 0.25
    wait_max: float = 4.0
    wait_jitter: float = 0.5
    #: A 429 asking us to wait longer than this is not waited out; the error goes to the caller.
    retry_after_cap: float = 10.0


@dataclass(frozen=True, slots=True)
class _Reply:
    """What we keep of an HTTP answer: never the request, never its headers."""

    status: int
    body: bytes
    retry_after: float | None = field(default=None)


# Alpaca key ids and secrets are printable ASCII without spaces. Anything else must never reach the
# HTTP stack: h11 and the str codec quote an illegal header value in full in their errors, and
# httpcore2 logs those errors at DEBUG.
_KEY_CHARS = re.compile(r"[\x21-\x7e]{1,256}")


def _auth_headers(keys: AlpacaKeys) -> dict[str, str]:
    # The only place the secret is revealed: straight into the outgoing request. No local
    # variable holds it, so no traceback frame of ours can show it.
    if not (
        _KEY_CHARS.fullmatch(keys.api_key.get_secret_value())
        and _KEY_CHARS.fullmatch(keys.secret_key.get_secret_value())
    ):
        raise AlpacaAuthError(
            None,
            None,
            "The credential's key id or secret contains characters no Alpaca key has (spaces, line breaks "
            "or non-ASCII), so it was not sent; store the key pair again",
        )
    return {
        "APCA-API-KEY-ID": keys.api_key.get_secret_value(),
        "APCA-API-SECRET-KEY": keys.secret_key.get_secret_value(),
        "Accept": "application/json",
        "User-Agent": _USER_AGENT,
    }


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _wait_hint(headers: httpx2.Headers) -> float | None:
    """Seconds to wait before retrying: Retry-After, else Alpaca's X-RateLimit-Reset (epoch seconds)."""
    retry_after = _parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    reset = headers.get("X-RateLimit-Reset")
    if reset is None:
        return None
    try:
        return max(0.0, float(reset) - time.time())
    except ValueError:
        return None


# Alpaca's messages are short; a longer one is cut (after scrubbing: see _error_from_reply).
ALPACA_MESSAGE_LIMIT = 500
# Bound on what is scanned at all, so a hostile upstream's megabyte message costs little.
_ALPACA_MESSAGE_SCAN = 16_384


def _error_from_reply(reply: _Reply, keys: AlpacaKeys | None = None) -> AlpacaError:
    """The typed error for a failed reply; its message is scrubbed of the call's keys *before* it is cut.

    Cutting first would leave the head of a key echoed across the cut (issue #10, point 5).
    """
    code: int | None = None
    message = ""
    try:
        payload = json.loads(reply.body) if reply.body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        raw_code = payload.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        elif isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        raw_message = payload.get("message")
        if isinstance(raw_message, str):
            secrets = (keys.api_key.get_secret_value(), keys.secret_key.get_secret_value()) if keys else ()
            # Scanned up to a bound, scrubbed, then cut: a key straddling either bound is caught by the
            # run-of-eight rule, since its first part still contains eight characters of it.
            message = scrub_then_cut(raw_message[:_ALPACA_MESSAGE_SCAN], secrets, ALPACA_MESSAGE_LIMIT)
    if not message:
        try:
            message = http.HTTPStatus(reply.status).phrase
        except ValueError:
            message = "Alpaca returned an error"
    return error_for_status(reply.status, code, message, retry_after=reply.retry_after)


def _format_time(value: dt.datetime | dt.date | str) -> str:
    """RFC 3339 for Alpaca; naive datetimes are taken as UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _order_id(value: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise InvalidRequestError(
            f"{value!r} is not an Alpaca order id (a UUID like 61e69015-8549-4bfd-b9c3-01e75843f47d); "
            "alpaca_list_orders shows the ids, and alpaca_get_order(client_order_id=...) finds an order "
            "by your own id."
        ) from None


def _order_differences(order: OrderRequest, found: Order) -> list[str]:
    """Fields in which the order found under a client_order_id differs from the request (none: same order)."""
    differences: list[str] = []
    if (found.symbol or "").upper().replace("/", "") != order.symbol.replace("/", ""):
        differences.append("symbol")
    if found.side != order.side:
        differences.append("side")
    if (found.type or found.order_type) != order.type:
        differences.append("type")
    if found.time_in_force != order.time_in_force:
        differences.append("time_in_force")
    if (found.order_class or "simple") != order.order_class:
        differences.append("order_class")
    amounts: list[tuple[str, Decimal | None, Decimal | None]] = [
        ("qty", order.qty, found.qty),
        ("notional", order.notional, found.notional),
        ("limit_price", order.limit_price, found.limit_price),
        ("trail_price", order.trail_price, found.trail_price),
        ("trail_percent", order.trail_percent, found.trail_percent),
    ]
    # A trailing stop's stop_price is set by Alpaca and moves with the market: not part of the request.
    if order.type != "trailing_stop":
        amounts.append(("stop_price", order.stop_price, found.stop_price))
    # Decimal equality ignores scale: Alpaca echoes qty "1" for a request of Decimal("1.0").
    differences.extend(name for name, wanted, echoed in amounts if wanted != echoed)
    return differences


def _describe(order: Order) -> str:
    """A one-line account of an order for error messages: side, amount, symbol, type, prices, tif."""
    amount = f"${order.notional}" if order.notional is not None else f"{order.qty}"
    parts = [f"{order.side} {amount} {order.symbol} {order.type or order.order_type}"]
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        value = getattr(order, name)
        if value is not None:
            parts.append(f"{name}={value}")
    parts.append(f"time_in_force={order.time_in_force}")
    if order.order_class not in (None, "", "simple"):
        parts.append(f"order_class={order.order_class}")
    parts.append(f"status={order.status}")
    return " ".join(parts)


def _symbols(value: str | Sequence[str]) -> list[str]:
    raw = [value] if isinstance(value, str) else list(value)
    if isinstance(value, str) and "," in value:
        raw = value.split(",")
    try:
        symbols = list(dict.fromkeys(normalize_symbol(s) for s in raw if s.strip()))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    if not symbols:
        raise InvalidRequestError("give at least one symbol, e.g. 'AAPL' or 'BTC/USD'.")
    return symbols


def _path_symbol(symbol: str) -> str:
    """A symbol as one path segment; crypto pairs drop the slash (BTC/USD -> BTCUSD), as Alpaca accepts."""
    try:
        clean = normalize_symbol(symbol)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    return quote(clean.replace("/", ""), safe="")


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class AlpacaClient:
    """Async client for Alpaca's trading and market data REST APIs; one method per MCP tool.

    Every method takes the credential's :class:`AlpacaKeys` as its first argument; the client
    holds no key. Errors are :mod:`alpaca_vault.broker.errors` types; argument errors found
    before sending are ``ValueError`` (``pydantic.ValidationError`` or ``InvalidRequestError``).
    """

    def __init__(
        self,
        *,
        paper_url: str,
        live_url: str,
        data_url: str,
        timeout: float = 10.0,
        rate_limit_per_minute: int = 200,
        transport: httpx2.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limiters: int = 1024,
        rate_limit_period: float = 60.0,
        allow_live_trading: bool = True,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        self._base = {"paper": paper_url.rstrip("/"), "live": live_url.rstrip("/")}
        self._data_url = data_url.rstrip("/")
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._rate = rate_limit_per_minute
        self._rate_period = rate_limit_period
        self._max_limiters = max(1, max_rate_limiters)
        # A second wall behind tools/' own check: with False, live keys can only read.
        self._allow_live_trading = allow_live_trading
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()
        # No default auth, no event hooks. Cookies are refused: one pooled client serves many
        # credentials, and a cookie set for one must never ride along with another's request.
        # trust_env=False: no proxy or netrc from the environment gets to see our requests.
        self._http = httpx2.AsyncClient(
            transport=transport,
            timeout=httpx2.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            cookies=httpx2.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))),
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ plumbing

    def rate_limiter(self, limiter_key: str) -> AsyncLimiter:
        """The request budget of one credential (created on first use, least recently used evicted)."""
        limiter = self._limiters.get(limiter_key)
        if limiter is None:
            limiter = AsyncLimiter(self._rate, self._rate_period)
            self._limiters[limiter_key] = limiter
            while len(self._limiters) > self._max_limiters:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(limiter_key)
        return limiter

    def _check_may_trade(self, keys: AlpacaKeys, action: str) -> None:
        if keys.environment == "live" and not self._allow_live_trading:
            raise LiveTradingDisabled(action)

    def _trading(self, keys: AlpacaKeys, path: str) -> str:
        return self._base[keys.environment] + path

    def _data(self, path: str) -> str:
        return self._data_url + path

    async def _exchange(
        self, keys: AlpacaKeys, method: str, url: str, params: Mapping[str, Any] | None, body: Any
    ) -> _Reply:
        """One HTTP exchange under the credential's rate limit. Raises only our own errors."""
        async with self.rate_limiter(keys.limiter_key):
            started = time.perf_counter()
            failure: AlpacaError | None = None
            reply: _Reply | None = None
            request: httpx2.Request | None = None
            try:
                request = self._http.build_request(
                    method, url, params=_drop_none(params or {}), json=body, headers=_auth_headers(keys)
                )
                response = await self._http.send(request)
                try:
                    reply = _Reply(response.status_code, response.content, _wait_hint(response.headers))
                finally:
                    await response.aclose()
                    del response
            except (httpx2.ConnectTimeout, httpx2.PoolTimeout):
                failure = AlpacaTimeout(
                    f"Could not connect to Alpaca within {self._timeout:g}s", request_sent=False
                )
            except httpx2.TimeoutException:
                failure = AlpacaTimeout(f"Alpaca did not answer within {self._timeout:g}s", request_sent=True)
            except (httpx2.ConnectError, httpx2.UnsupportedProtocol):
                failure = AlpacaConnectionError("Could not connect to Alpaca", request_sent=False)
            except httpx2.TransportError as exc:
                failure = AlpacaConnectionError(
                    f"The connection to Alpaca broke before an answer arrived ({type(exc).__name__})",
                    request_sent=True,
                )
            except httpx2.RequestError as exc:
                # e.g. an undecodable body: the request may well have taken effect.
                failure = AlpacaConnectionError(
                    f"Alpaca's answer could not be read ({type(exc).__name__})", request_sent=True
                )
            finally:
                # Drop the request (it holds the auth headers) before anything is raised.
                del request
            elapsed_ms = (time.perf_counter() - started) * 1000
            path = url.split("://", 1)[-1].partition("/")[2]
            if failure is not None:
                logger.debug(
                    "alpaca %s /%s failed after %.1f ms: %s", method, path, elapsed_ms, type(failure).__name__
                )
                raise failure
            assert reply is not None
            logger.debug("alpaca %s /%s -> %d in %.1f ms", method, path, reply.status, elapsed_ms)
            return reply

    def _retry_hook(self, *, idempotent: bool) -> Callable[[Exception], bool | float]:
        cap = self._retry.retry_after_cap
        floor = self._retry.wait_initial  # "Retry-After: 0" still gets a breath, not a hammering

        def should_retry(exc: Exception) -> bool | float:
            if isinstance(exc, AlpacaRateLimited):
                # Alpaca did not act on a 429, so any request may wait it out.
                if exc.retry_after is None:
                    return True
                return False if exc.retry_after > cap else max(exc.retry_after, floor)
            if isinstance(exc, AlpacaTimeout | AlpacaConnectionError):
                return idempotent or not exc.request_sent
            if isinstance(exc, AlpacaUnavailable):
                return idempotent
            return False

        return should_retry

    async def _call(
        self,
        keys: AlpacaKeys,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool,
    ) -> Any:
        """Send with the retry policy; return the decoded JSON of a 2xx answer or raise a typed error."""
        policy = self._retry
        reply: _Reply | None = None
        async for attempt in stamina.retry_context(
            on=self._retry_hook(idempotent=idempotent),
            attempts=policy.attempts,
            timeout=policy.total_timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                reply = await self._exchange(keys, method, url, params, body)
                if reply.status >= 400:
                    raise _error_from_reply(reply, keys)
        assert reply is not None
        if not reply.body:
            return None
        try:
            return json.loads(reply.body)
        except ValueError:
            failure = AlpacaBadResponse(reply.status, None, "Alpaca's answer was not valid JSON")
        raise failure

    async def _get(self, keys: AlpacaKeys, url: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call(keys, "GET", url, params=params, idempotent=True)

    @staticmethod
    def _parse(model: type[M], payload: Any) -> M:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            failure = AlpacaBadResponse(
                200,
                None,
                f"Alpaca's answer did not match the {model.__name__} shape ({exc.error_count()} problems)",
            )
        raise failure

    @staticmethod
    def _parse_list(model: type[M], payload: Any) -> list[M]:
        try:
            return _list_adapter(model).validate_python(payload or [])
        except ValidationError as exc:
            failure = AlpacaBadResponse(
                200,
                None,
                f"Alpaca's answer did not match a list of {model.__name__} ({exc.error_count()} problems)",
            )
        raise failure

    # ------------------------------------------------------------------ account & positions

    async def get_account(self, keys: AlpacaKeys) -> Account:
        return self._parse(Account, await self._get(keys, self._trading(keys, "/v2/account")))

    async def get_positions(self, keys: AlpacaKeys) -> list[Position]:
        return self._parse_list(Position, await self._get(keys, self._trading(keys, "/v2/positions")))

    async def get_position(self, keys: AlpacaKeys, symbol: str) -> Position:
        url = self._trading(keys, f"/v2/positions/{_path_symbol(symbol)}")
        return self._parse(Position, await self._get(keys, url))

    async def close_position(
        self,
        keys: AlpacaKeys,
        symbol: str,
        *,
        qty: str | float | None = None,
        percentage: str | float | None = None,
    ) -> Order:
        """Place the order that closes all or part of a position (qty shares, or percentage of it)."""
        self._check_may_trade(keys, "close a position")
        if qty is not None and percentage is not None:
            raise InvalidRequestError("give qty or percentage to close part of a position, not both.")
        params: dict[str, Any] = {}
        if qty is not None:
            params["qty"] = _positive_number(qty, "qty")
        if percentage is not None:
            pct = _positive_number(percentage, "percentage")
            if float(pct) > 100:
                raise InvalidRequestError("percentage must be between 0 and 100.")
            params["percentage"] = pct
        url = self._trading(keys, f"/v2/positions/{_path_symbol(symbol)}")
        payload = await self._unrepeatable(keys, "DELETE", url, params=params, what=f"closing {symbol}")
        return self._parse(Order, payload)

    async def close_all_positions(
        self, keys: AlpacaKeys, *, cancel_orders: bool = False
    ) -> list[ClosePositionResult]:
        """Liquidate every position (optionally cancelling open orders first); one result per position."""
        self._check_may_trade(keys, "close all positions")
        params = {"cancel_orders": "true"} if cancel_orders else {}
        payload = await self._unrepeatable(
            keys, "DELETE", self._trading(keys, "/v2/positions"), params=params, what="closing all positions"
        )
        return self._parse_list(ClosePositionResult, payload)

    async def _unrepeatable(
        self, keys: AlpacaKeys, method: str, url: str, *, params: Mapping[str, Any], what: str
    ) -> Any:
        """A request that creates orders without our client_order_id: an unknown outcome is said plainly."""
        try:
            return await self._call(keys, method, url, params=params, idempotent=False)
        except (AlpacaTimeout, AlpacaConnectionError, AlpacaUnavailable) as exc:
            if isinstance(exc, AlpacaTimeout | AlpacaConnectionError) and not exc.request_sent:
                raise
            message = f"The request ({what}) was sent but its outcome is unknown ({exc.message})"
        raise OrderOutcomeUnknown(message, client_order_id=None)

    # ------------------------------------------------------------------ orders

    async def list_orders(
        self,
        keys: AlpacaKeys,
        *,
        status: OrderStatusFilter = "open",
        limit: int | None = None,
        after: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        direction: SortDirection | None = None,
        symbols: str | Sequence[str] | None = None,
        nested: bool | None = None,
        side: OrderSide | None = None,
    ) -> list[Order]:
        if limit is not None and not 1 <= limit <= 500:
            raise InvalidRequestError("limit must be between 1 and 500.")
        params = {
            "status": status,
            "limit": limit,
            "after": _format_time(after) if after is not None else None,
            "until": _format_time(until) if until is not None else None,
            "direction": direction,
            "symbols": ",".join(_symbols(symbols)) if symbols else None,
            "nested": _bool(nested),
            "side": side,
        }
        return self._parse_list(Order, await self._get(keys, self._trading(keys, "/v2/orders"), params))

    async def get_order(self, keys: AlpacaKeys, order_id: str, *, nested: bool | None = None) -> Order:
        url = self._trading(keys, f"/v2/orders/{_order_id(order_id)}")
        return self._parse(Order, await self._get(keys, url, {"nested": _bool(nested)}))

    async def get_order_by_client_id(self, keys: AlpacaKeys, client_order_id: str) -> Order:
        client_order_id = _client_order_id(client_order_id)
        url = self._trading(keys, "/v2/orders:by_client_order_id")
        return self._parse(Order, await self._get(keys, url, {"client_order_id": client_order_id}))

    async def place_order(self, keys: AlpacaKeys, order: OrderRequest) -> Order:
        """Submit an order exactly once. Its client_order_id (given or generated) is on the result.

        Calling again with the same client_order_id and the same request returns the existing
        order and creates none; the same id with a different request is refused (AlpacaRejected).
        Raises OrderOutcomeUnknown (with the client_order_id) when it cannot tell whether the
        order exists; look it up with get_order_by_client_id before anything else.
        """
        self._check_may_trade(keys, "place an order")
        client_order_id = order.client_order_id or new_client_order_id()
        body = order.to_alpaca(client_order_id)
        url = self._trading(keys, "/v2/orders")

        async def submit() -> Order:
            return self._parse(Order, await self._call(keys, "POST", url, body=body, idempotent=False))

        async def lookup() -> Order:
            return await self.get_order_by_client_id(keys, client_order_id)

        def mismatch(found: Order) -> str | None:
            differences = _order_differences(order, found)
            if not differences:
                return None
            return f"order {found.id}: {_describe(found)}; differs in {', '.join(differences)}"

        return await submit_once(
            submit, lookup, client_order_id, mismatch, untouched="nothing new was placed"
        )

    async def replace_order(self, keys: AlpacaKeys, order_id: str, changes: ReplaceOrderRequest) -> Order:
        """Replace an open order; the result is the new order (its client_order_id given or generated)."""
        self._check_may_trade(keys, "replace an order")
        oid = _order_id(order_id)
        url = self._trading(keys, f"/v2/orders/{oid}")
        client_order_id = changes.client_order_id or new_client_order_id()
        body = changes.to_alpaca(client_order_id)

        async def submit() -> Order:
            return self._parse(Order, await self._call(keys, "PATCH", url, body=body, idempotent=False))

        async def lookup() -> Order:
            return await self.get_order_by_client_id(keys, client_order_id)

        def mismatch(found: Order) -> str | None:
            # Only an order that replaced this very one is our replacement. Any other order under
            # the id (an ordinary order, or one that replaced something else) means Alpaca refused
            # the PATCH because the id was taken.
            if found.replaces == oid:
                return None
            if found.replaces is None:
                return f"order {found.id}: {_describe(found)}"
            return f"order {found.id}, which replaced order {found.replaces}"

        return await submit_once(
            submit,
            lookup,
            client_order_id,
            mismatch,
            what="order replacement",
            untouched=f"order {oid} was NOT replaced",
        )

    async def cancel_order(self, keys: AlpacaKeys, order_id: str) -> None:
        """Request cancellation of an open order (Alpaca answers 204; the order turns canceled)."""
        self._check_may_trade(keys, "cancel an order")
        oid = _order_id(order_id)
        url = self._trading(keys, f"/v2/orders/{oid}")
        try:
            await self._call(keys, "DELETE", url, idempotent=True)
            return
        except AlpacaRejected:
            # A retried cancel can find its own earlier success: the order is already canceled.
            current = await self.get_order(keys, oid)
            if current.status not in ("canceled", "pending_cancel"):
                raise
        return

    async def cancel_all_orders(self, keys: AlpacaKeys) -> list[CancelOrderResult]:
        """Cancel every open order; one result per order (status 200 cancelled, else why not)."""
        self._check_may_trade(keys, "cancel all orders")
        payload = await self._call(keys, "DELETE", self._trading(keys, "/v2/orders"), idempotent=True)
        return self._parse_list(CancelOrderResult, payload)

    # ------------------------------------------------------------------ market info

    async def get_clock(self, keys: AlpacaKeys) -> Clock:
        return self._parse(Clock, await self._get(keys, self._trading(keys, "/v2/clock")))

    async def get_calendar(
        self, keys: AlpacaKeys, *, start: dt.date | str | None = None, end: dt.date | str | None = None
    ) -> list[CalendarDay]:
        params = {
            "start": _format_time(start) if start is not None else None,
            "end": _format_time(end) if end is not None else None,
        }
        return self._parse_list(
            CalendarDay, await self._get(keys, self._trading(keys, "/v2/calendar"), params)
        )

    async def get_asset(self, keys: AlpacaKeys, symbol: str) -> Asset:
        url = self._trading(keys, f"/v2/assets/{_path_symbol(symbol)}")
        return self._parse(Asset, await self._get(keys, url))

    async def get_portfolio_history(
        self,
        keys: AlpacaKeys,
        *,
        period: str | None = None,
        timeframe: str | None = None,
        start: dt.datetime | dt.date | str | None = None,
        end: dt.datetime | dt.date | str | None = None,
        intraday_reporting: Literal["market_hours", "extended_hours", "continuous"] | None = None,
        pnl_reset: Literal["per_day", "no_reset"] | None = None,
    ) -> PortfolioHistory:
        if period is not None and not _PERIOD.match(period):
            raise InvalidRequestError(
                "period must look like 1D, 7D, 1W, 1M, 3M or 1A (a number and D, W, M or A)."
            )
        if timeframe is not None and timeframe not in _HISTORY_TIMEFRAME:
            raise InvalidRequestError(f"timeframe must be one of {', '.join(_HISTORY_TIMEFRAME)}.")
        params = {
            "period": period,
            "timeframe": timeframe,
            "start": _format_time(start) if start is not None else None,
            "end": _format_time(end) if end is not None else None,
            "intraday_reporting": intraday_reporting,
            "pnl_reset": pnl_reset,
        }
        url = self._trading(keys, "/v2/account/portfolio/history")
        return self._parse(PortfolioHistory, await self._get(keys, url, params))

    async def get_activities(
        self,
        keys: AlpacaKeys,
        *,
        activity_types: Sequence[str] | None = None,
        date: dt.date | str | None = None,
        after: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        direction: SortDirection | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> list[Activity]:
        if page_size is not None and not 1 <= page_size <= 100:
            raise InvalidRequestError("page_size must be between 1 and 100.")
        types = [t.strip().upper() for t in activity_types or [] if t.strip()]
        if any(not t.replace("_", "").isalnum() for t in types):
            raise InvalidRequestError("activity_types are words like FILL, DIV, FEE, CSD, TRANS.")
        params = {
            "activity_types": ",".join(types) or None,
            "date": _format_time(date) if date is not None else None,
            "after": _format_time(after) if after is not None else None,
            "until": _format_time(until) if until is not None else None,
            "direction": direction,
            "page_size": page_size,
            "page_token": page_token,
        }
        url = self._trading(keys, "/v2/account/activities")
        return self._parse_list(Activity, await self._get(keys, url, params))

    # ------------------------------------------------------------------ market data

    async def _latest(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        kind: Literal["quotes", "trades"],
        feed: StockFeed | None,
    ) -> dict[str, Any]:
        stocks, crypto = _split(symbols)
        merged: dict[str, Any] = {}
        if stocks:
            payload = await self._get(
                keys, self._data(f"/v2/stocks/{kind}/latest"), {"symbols": ",".join(stocks), "feed": feed}
            )
            merged.update(_section(payload, kind))
        if crypto:
            payload = await self._get(
                keys, self._data(f"{_CRYPTO_PREFIX}/latest/{kind}"), {"symbols": ",".join(crypto)}
            )
            merged.update(_section(payload, kind))
        return merged

    async def get_latest_quote(
        self, keys: AlpacaKeys, symbols: str | Sequence[str], *, feed: StockFeed | None = None
    ) -> dict[str, Quote]:
        """Latest quote per symbol (stocks and crypto pairs like BTC/USD may be mixed)."""
        raw = await self._latest(keys, symbols, "quotes", feed)
        return {
            sym: self._parse(Quote, {**q, "symbol": sym}) for sym, q in raw.items() if isinstance(q, dict)
        }

    async def get_latest_trade(
        self, keys: AlpacaKeys, symbols: str | Sequence[str], *, feed: StockFeed | None = None
    ) -> dict[str, Trade]:
        """Latest trade per symbol (stocks and crypto pairs may be mixed)."""
        raw = await self._latest(keys, symbols, "trades", feed)
        return {
            sym: self._parse(Trade, {**t, "symbol": sym}) for sym, t in raw.items() if isinstance(t, dict)
        }

    async def get_snapshot(
        self, keys: AlpacaKeys, symbols: str | Sequence[str], *, feed: StockFeed | None = None
    ) -> dict[str, Snapshot]:
        """Latest trade, quote, minute bar, daily and previous daily bar per symbol."""
        stocks, crypto = _split(symbols)
        merged: dict[str, Any] = {}
        if stocks:
            payload = await self._get(
                keys, self._data("/v2/stocks/snapshots"), {"symbols": ",".join(stocks), "feed": feed}
            )
            # Stock snapshots come keyed by symbol at the top level; crypto's under "snapshots".
            merged.update(_section(payload, "snapshots", top_level_ok=True))
        if crypto:
            payload = await self._get(
                keys, self._data(f"{_CRYPTO_PREFIX}/snapshots"), {"symbols": ",".join(crypto)}
            )
            merged.update(_section(payload, "snapshots", top_level_ok=True))
        return {
            sym: self._parse(Snapshot, {**s, "symbol": sym})
            for sym, s in merged.items()
            if isinstance(s, dict)
        }

    async def get_bars(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        timeframe: str = "1Day",
        start: dt.datetime | dt.date | str | None = None,
        end: dt.datetime | dt.date | str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        feed: StockFeed | None = None,
        adjustment: Literal["raw", "split", "dividend", "all"] | None = None,
        sort: SortDirection | None = None,
    ) -> BarsPage:
        """One page of bars per symbol; pass next_page_token back as page_token for more."""
        if not _TIMEFRAME.match(timeframe):
            raise InvalidRequestError(
                f"timeframe {timeframe!r} is not one Alpaca knows: use 1Min..59Min, 1Hour..23Hour, "
                "1Day, 1Week, or 1, 2, 3, 4, 6, 12Month."
            )
        if limit is not None and not 1 <= limit <= 10_000:
            raise InvalidRequestError("limit must be between 1 and 10000.")
        stocks, crypto = _split(symbols)
        if stocks and crypto:
            raise InvalidRequestError("ask for stock bars and crypto bars in separate calls (pages differ).")
        params: dict[str, Any] = {
            "symbols": ",".join(stocks or crypto),
            "timeframe": timeframe,
            "start": _format_time(start) if start is not None else None,
            "end": _format_time(end) if end is not None else None,
            "limit": limit,
            "page_token": page_token,
            "sort": sort,
        }
        if stocks:
            params.update(feed=feed, adjustment=adjustment)
            url = self._data("/v2/stocks/bars")
        else:
            url = self._data(f"{_CRYPTO_PREFIX}/bars")
        payload = await self._get(keys, url, params)
        if not isinstance(payload, dict):
            raise AlpacaBadResponse(200, None, "Alpaca's bars answer was not an object")
        return self._parse(
            BarsPage, {"bars": payload.get("bars") or {}, "next_page_token": payload.get("next_page_token")}
        )


@functools.cache
def _list_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _positive_number(value: str | float, name: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{name} must be a number, got {value!r}.") from None
    if not number > 0:
        raise InvalidRequestError(f"{name} must be greater than 0.")
    try:
        return format(Decimal(str(value)), "f")  # plain digits: "10", never "1E+1"
    except ArithmeticError:
        raise InvalidRequestError(f"{name} must be a number, got {value!r}.") from None


def _client_order_id(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 128:
        raise InvalidRequestError("client_order_id must be 1 to 128 characters.")
    return value


def _split(symbols: str | Sequence[str]) -> tuple[list[str], list[str]]:
    clean = _symbols(symbols)
    return [s for s in clean if not is_crypto_symbol(s)], [s for s in clean if is_crypto_symbol(s)]


def _section(payload: Any, key: str, *, top_level_ok: bool = False) -> dict[str, Any]:
    if isinstance(payload, dict):
        inner = payload.get(key)
        if isinstance(inner, dict):
            return inner
        if top_level_ok:
            return {k: v for k, v in payload.items() if isinstance(v, dict)}
    raise AlpacaBadResponse(200, None, f"Alpaca's market data answer had no {key!r}")
