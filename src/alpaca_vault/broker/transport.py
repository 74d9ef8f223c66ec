"""The transport under every Alpaca call: auth, the HTTP exchange, timeouts, retries, rate limits, errors.

One ``httpx2.AsyncClient`` per :class:`AlpacaTransport` (the server makes one per
process) pools connections for every credential. The key pair is never set
on that client: each request gets its auth headers built from the caller's
:class:`AlpacaKeys` at the moment it is sent, and the request and response
objects are dropped before any error is raised, so no exception, log record
or client attribute can lead back to them.

Idempotent requests (GET, and cancelling orders) are retried with backoff and
jitter (stamina) on connection errors, timeouts, 429 (honouring ``Retry-After``)
and 5xx. Requests that create something (orders, closing positions) are retried
only when Alpaca surely did not act on them (connection never made, 429);
otherwise orders are reconciled by ``client_order_id`` (see ``orders.py``).
Alpaca's error bodies become the typed errors of ``errors.py``.

The endpoint methods live in their own modules (``account.py``, ``trading.py``,
``market_data.py``, ...), each a subclass of :class:`AlpacaTransport`;
``client.AlpacaClient`` combines them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import functools
import http
import json
import logging
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal, Protocol, Self, TypeVar

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
    AlpacaRequestError,
    AlpacaTimeout,
    AlpacaUnavailable,
    LiveTradingDisabled,
    OrderOutcomeUnknown,
    RequestBudgetExhausted,
    error_for_status,
)

logger = logging.getLogger("alpaca_vault.broker")

Environment = Literal["paper", "live"]
M = TypeVar("M", bound=BaseModel)

_USER_AGENT = f"alpaca-vault/{__version__}"


class SharedRequestBudget(Protocol):
    """A request budget kept outside this process (db/request_budget.py: PostgreSQL, every replica)."""

    async def reserve(self, key: str) -> float:
        """Take the key's next slot; the seconds to wait before sending."""
        ...

    async def give_back(self, key: str) -> None:
        """Return a slot that will not be used."""
        ...


@dataclass(frozen=True, repr=False)
class AlpacaKeys:
    """One credential's key pair, as unsealed for a single call. Built by tools/ per call."""

    api_key: SecretStr
    secret_key: SecretStr
    environment: Environment
    #: Whose request budget the call spends: a credential id, or a key the server built from ids (never a
    #: string a caller chose, or one user could spend another credential's budget: issue #10, point 6).
    limiter_key: str

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
            "or non-ASCII), so it was not sent",
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


# Alpaca's messages are short; a longer one is cut (after scrubbing: see error_from_reply).
ALPACA_MESSAGE_LIMIT = 500
# Bound on what is scanned at all, so a hostile upstream's megabyte message costs little.
_ALPACA_MESSAGE_SCAN = 16_384


def error_from_reply(reply: _Reply, keys: AlpacaKeys | None = None) -> AlpacaError:
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
            # run-of-eight rule, since the part inside still holds eight or more of its characters.
            message = scrub_then_cut(raw_message[:_ALPACA_MESSAGE_SCAN], secrets, ALPACA_MESSAGE_LIMIT)
    alpaca_text = bool(message)
    if not message:
        try:
            message = http.HTTPStatus(reply.status).phrase
        except ValueError:
            message = "Alpaca returned an error"
    body = payload if isinstance(payload, dict) else None
    secrets = (keys.api_key.get_secret_value(), keys.secret_key.get_secret_value()) if keys else ()
    error = error_for_status(
        reply.status, code, message, retry_after=reply.retry_after, body=body, secrets=secrets
    )
    error.alpaca_text = alpaca_text  # third-party words: the tools quote them, never say them
    return error


@functools.cache
def verified_tls_context() -> ssl.SSLContext:
    """The TLS context every Alpaca client in this process uses: the system's CA bundle, loaded once.

    httpx builds the same context afresh for each client, and loading the bundle costs ~50 ms of CPU:
    once per server built, or per test. A context is safe to share between clients and connections;
    the only thing httpcore sets on it per connection is the ALPN list, the same (HTTP/1.1) for every
    client here. trust_env=False: no SSL_CERT_FILE/SSL_CERT_DIR.
    """
    return httpx2.create_ssl_context(trust_env=False)


class AlpacaTransport:
    """Sends one credential's requests to Alpaca's trading and market data APIs; holds no key.

    Every endpoint method takes the credential's :class:`AlpacaKeys` as its first argument.
    Errors are :mod:`alpaca_vault.broker.errors` types; argument errors found before sending are
    ``ValueError`` (``pydantic.ValidationError`` or ``InvalidRequestError``).
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
        stock_feed: str | None = None,
        rate_limit_max_wait: float = 10.0,
        shared_budget: SharedRequestBudget | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        if rate_limit_max_wait < 0:
            raise ValueError("rate_limit_max_wait must not be negative")
        self._base = {"paper": paper_url.rstrip("/"), "live": live_url.rstrip("/")}
        self._data_url = data_url.rstrip("/")
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._rate = rate_limit_per_minute
        self._rate_period = rate_limit_period
        self._max_limiters = max(1, max_rate_limiters)
        # A call waits at most this long for room in its budget, then is refused (nothing sent).
        self._max_wait = rate_limit_max_wait
        # A second wall behind tools/' own check: with False, live keys can only read.
        self._allow_live_trading = allow_live_trading
        # The stock data feed (iex, sip, ...) used when a call names none; None lets Alpaca choose.
        self._stock_feed = stock_feed
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()
        # With replicas on PostgreSQL: the budget they share; the in-process limiter stays as well.
        self._shared_budget = shared_budget
        # Slots being returned by cancelled calls: a reference keeps each task alive until it ends.
        self._giving_back: set[asyncio.Future[None]] = set()
        # No default auth, no event hooks. Cookies are refused: one pooled client serves many
        # credentials, and a cookie set for one must never ride along with another's request.
        # trust_env=False: no proxy or netrc from the environment gets to see our requests.
        self._http = httpx2.AsyncClient(
            transport=transport,
            verify=verified_tls_context(),
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

    @contextlib.asynccontextmanager
    async def _budget(self, limiter_key: str) -> AsyncIterator[None]:
        """One request from the credential's budget, waiting at most ``rate_limit_max_wait`` for room.

        With replicas on PostgreSQL the slot comes first from the budget they share (kept in the
        database), then from this process's own limiter as before.
        """
        shared_slot = False
        try:
            if self._shared_budget is not None:
                await self._wait_for_shared_slot(limiter_key)
                shared_slot = True
            limiter = self.rate_limiter(limiter_key)
            if not limiter.has_capacity():
                try:
                    await asyncio.wait_for(limiter.acquire(), self._max_wait)
                except TimeoutError:
                    failure = RequestBudgetExhausted(per_minute=self._rate, waited=self._max_wait)
                    raise failure from None
            else:
                await limiter.acquire()
        except BaseException:
            # Nothing was sent (a local timeout, or the order deadline cancelling the call while it
            # waited): a slot kept here would be lost to every replica until the bucket refills.
            if shared_slot:
                await self._give_back_shared_slot(limiter_key)
            raise
        yield

    async def _wait_for_shared_slot(self, limiter_key: str) -> None:
        """Queue for the credential's slot in the budget every replica shares (bounded wait)."""
        assert self._shared_budget is not None
        wait = await self._shared_budget.reserve(limiter_key)
        if wait > self._max_wait:
            await self._give_back_shared_slot(limiter_key)
            raise RequestBudgetExhausted(
                per_minute=self._rate, waited=self._max_wait, shared=True, retry_after=round(wait, 1)
            )
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except BaseException:
                await self._give_back_shared_slot(limiter_key)
                raise

    async def _give_back_shared_slot(self, limiter_key: str) -> None:
        """Return an unused shared slot, even from a call being cancelled (a failure is only logged)."""
        assert self._shared_budget is not None
        # Shielded: under a cancelled scope (anyio cancels at every await) the return still happens;
        # the cancellation itself propagates (the caller is being cancelled anyway).
        task = asyncio.ensure_future(self._shared_budget.give_back(limiter_key))
        self._giving_back.add(task)
        task.add_done_callback(self._slot_given_back)
        with contextlib.suppress(Exception):  # logged by _slot_given_back
            await asyncio.shield(task)

    def _slot_given_back(self, task: asyncio.Future[None]) -> None:
        self._giving_back.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The slot stays taken until its bucket refills: slower, never over the budget.
            logger.warning("could not return a shared request slot: %s", type(task.exception()).__name__)

    def _check_may_trade(self, keys: AlpacaKeys, action: str) -> None:
        if keys.environment == "live" and not self._allow_live_trading:
            raise LiveTradingDisabled(action)

    def _trading(self, keys: AlpacaKeys, path: str) -> str:
        return self._base[keys.environment] + path

    def _data(self, path: str) -> str:
        return self._data_url + path

    async def _exchange(
        self,
        keys: AlpacaKeys,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> _Reply:
        """One HTTP exchange under the credential's rate limit. Raises only our own errors."""
        async with self._budget(keys.limiter_key):
            started = time.perf_counter()
            failure: AlpacaError | None = None
            reply: _Reply | None = None
            request: httpx2.Request | None = None
            sending = False
            try:
                request = self._http.build_request(
                    method,
                    url,
                    params=_drop_none(params or {}),
                    json=body,
                    headers={**_auth_headers(keys), **(headers or {})},
                )
                sending = True
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
            except AlpacaError:
                raise  # ours (a malformed key pair, refused before anything was built)
            except httpx2.InvalidURL:
                failure = AlpacaRequestError(
                    "The configured Alpaca URL is not a valid URL, so nothing was sent", request_sent=False
                )
            except Exception as exc:
                # Anything else from inside the HTTP client is a bug or a misuse, never Alpaca's answer.
                # Only its type is kept: its text may quote a header value (h11 does).
                logger.error("unexpected %s from the HTTP client on %s", type(exc).__name__, method)
                failure = AlpacaRequestError(
                    f"The HTTP client failed unexpectedly ({type(exc).__name__})", request_sent=sending
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
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send with the retry policy; return the decoded JSON of a 2xx answer or raise a typed error.

        ``headers`` are extra, non-secret request headers (an ``Idempotency-Key``); auth is added per request.
        """
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
                reply = await self._exchange(keys, method, url, params, body, headers)
                if reply.status >= 400:
                    raise error_from_reply(reply, keys)
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

    async def _unrepeatable(
        self, keys: AlpacaKeys, method: str, url: str, *, params: Mapping[str, Any], what: str
    ) -> Any:
        """A request that creates orders without our client_order_id: an unknown outcome is said plainly."""
        try:
            return await self._call(keys, method, url, params=params, idempotent=False)
        except (AlpacaTimeout, AlpacaConnectionError, AlpacaUnavailable) as exc:
            if isinstance(exc, AlpacaTimeout | AlpacaConnectionError) and not exc.request_sent:
                raise
            # Our words and the error's class only: Alpaca's text stays out of what we say.
            message = f"The request ({what}) was sent but its outcome is unknown ({type(exc).__name__})"
        raise OrderOutcomeUnknown(message, client_order_id=None)


@functools.cache
def _list_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}
