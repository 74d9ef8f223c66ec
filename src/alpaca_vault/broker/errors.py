"""Typed errors for Alpaca calls: facts only.

Every error carries the HTTP status, Alpaca's numeric ``code`` and Alpaca's
``message`` (or our own description of what happened when Alpaca never
answered), and nothing of the request: no headers, no body, no reference to the
HTTP library's request object. The client raises them outside any ``except``
block, so ``__cause__`` and ``__context__`` never lead back to an ``httpx2``
exception (whose ``.request`` holds the auth headers).

What an agent should do next is not written here: the tools layer keeps one
table of advice keyed by these classes, so no text in broker/ names an MCP tool.

Argument errors found before anything is sent are ``ValueError`` s:
``pydantic.ValidationError`` from the request models and
:class:`InvalidRequestError` from the client's own checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca_vault.secret_text import redact_secret_runs


class AlpacaError(Exception):
    """An Alpaca call failed. ``status`` is None when no HTTP answer arrived.

    ``alpaca_text`` is True when ``message`` is Alpaca's own words (from its error body): third-party
    text, which the tools quote as data and never say as their own. Otherwise the message is ours.
    """

    alpaca_text: bool = False

    def __init__(self, status: int | None, code: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.code is not None:
            where.append(f"Alpaca code {self.code}")
        text = self.message.rstrip(".")
        if where:
            text += f" ({', '.join(where)})"
        return text + "."

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later without any change."""
        return False

    def as_dict(self) -> dict[str, Any]:
        """A plain, secret-free summary for structured tool errors."""
        return {
            "error": type(self).__name__,
            "status": self.status,
            "code": self.code,
            "message": self.message,
        }


class AlpacaBadRequest(AlpacaError):
    """400: Alpaca could not parse the request."""


class AlpacaAuthError(AlpacaError):
    """401: the key pair was refused (or is malformed and was never sent: ``status`` None)."""


class AlpacaForbidden(AlpacaError):
    """403: understood but not allowed (e.g. insufficient buying power, trading blocked)."""


class InsufficientQty(AlpacaForbidden):
    """403 "insufficient qty available": shares are missing or promised to open orders (their exits).

    Alpaca's body carries the facts: ``existing_qty`` held, ``held_for_orders`` promised to open
    orders (``related_orders``, e.g. a bracket's take-profit and stop-loss legs), ``available``.
    Each is None when Alpaca did not say; ids and symbol are kept only when they look like ids and
    symbols (they reach the agent's error text).
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        *,
        symbol: str | None = None,
        existing_qty: Decimal | None = None,
        held_for_orders: Decimal | None = None,
        available: Decimal | None = None,
        related_orders: list[str] | None = None,
    ) -> None:
        super().__init__(status, code, message)
        self.symbol = symbol
        self.existing_qty = existing_qty
        self.held_for_orders = held_for_orders
        self.available = available
        self.related_orders = related_orders or []

    @classmethod
    def from_body(
        cls, status: int, code: int | None, message: str, body: dict[str, Any], secrets: Sequence[str] = ()
    ) -> InsufficientQty:
        """The facts of Alpaca's body; an id or symbol holding any piece of the call's keys is dropped."""

        def clean(text: str) -> bool:
            return redact_secret_runs(text, secrets) == text

        related = body.get("related_orders")
        scanned = related[: _MAX_RELATED * 10] if isinstance(related, list) else []
        ids = [i for i in scanned if isinstance(i, str) and _ORDER_ID.fullmatch(i) and clean(i)][
            :_MAX_RELATED
        ]
        symbol = body.get("symbol")
        return cls(
            status,
            code,
            message,
            symbol=symbol
            if isinstance(symbol, str) and _SYMBOL.fullmatch(symbol) and clean(symbol)
            else None,
            existing_qty=_quantity(body.get("existing_qty")),
            held_for_orders=_quantity(body.get("held_for_orders")),
            available=_quantity(body.get("available")),
            related_orders=ids,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "symbol": self.symbol,
            "existing_qty": None if self.existing_qty is None else str(self.existing_qty),
            "held_for_orders": None if self.held_for_orders is None else str(self.held_for_orders),
            "available": None if self.available is None else str(self.available),
            "related_orders": self.related_orders,
        }


_ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_SYMBOL = re.compile(r"[A-Z0-9./]{1,32}")
_MAX_RELATED = 20


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or len(str(value)) > 32:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class AlpacaNotFound(AlpacaError):
    """404: no such order, position, asset, watchlist or symbol."""


class AlpacaRejected(AlpacaError):
    """422: Alpaca refused the request's content (an order's fields, a non-cancelable order...)."""


class ClientOrderIdConflict(AlpacaRejected):
    """A client_order_id given for a new order (or replacement) already names a different order.

    Nothing was placed or replaced. ``existing_order_id`` is the order that holds the id and
    ``differences`` the request fields in which it differs (empty when it is another kind of order).
    """

    def __init__(
        self,
        client_order_id: str,
        *,
        existing_order_id: str,
        differences: list[str],
        existing: str,
        untouched: str,
    ) -> None:
        differ = f"; differs in {', '.join(differences)}" if differences else ""
        super().__init__(
            422,
            None,
            f"client_order_id {client_order_id!r} already belongs to a different order "
            f"(order {existing_order_id}: {existing}{differ}); {untouched}",
        )
        self.client_order_id = client_order_id
        self.existing_order_id = existing_order_id
        self.differences = differences
        self.untouched = untouched

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "client_order_id": self.client_order_id,
            "existing_order_id": self.existing_order_id,
            "differences": self.differences,
        }


class AlpacaRateLimited(AlpacaError):
    """429: over Alpaca's request budget. ``retry_after`` is in seconds when Alpaca said."""

    def __init__(
        self, status: int | None, code: int | None, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return True

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": self.retry_after}


class AlpacaUnavailable(AlpacaError):
    """5xx: Alpaca (or a proxy in front of it) failed."""

    @property
    def retryable(self) -> bool:
        return True


class _NoAnswer(AlpacaError):
    """No HTTP answer arrived. ``request_sent`` is False only when the request surely never left."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(None, None, message)
        self.request_sent = request_sent

    @property
    def retryable(self) -> bool:
        return True

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "request_sent": self.request_sent}


class AlpacaTimeout(_NoAnswer):
    """No answer within the configured timeout."""


class AlpacaConnectionError(_NoAnswer):
    """The connection could not be made or broke before an answer arrived."""


class AlpacaRequestError(_NoAnswer):
    """The HTTP client failed in a way no Alpaca answer explains: a malformed configured URL
    (``httpx2.InvalidURL``), or an unexpected error inside the client. Not retried."""

    @property
    def retryable(self) -> bool:
        return False


class RequestBudgetExhausted(AlpacaError):
    """Our own per-credential request budget had no room within the longest wait allowed; nothing was sent.

    Not Alpaca's 429 (Alpaca never saw the request), and not retried: the caller hears at once.
    """

    def __init__(
        self, *, per_minute: int, waited: float, shared: bool = False, retry_after: float | None = None
    ) -> None:
        whose = "request budget shared by every server replica" if shared else "request budget"
        super().__init__(
            None,
            None,
            f"The credential's {whose} ({per_minute} Alpaca requests per window) had no room within "
            f"{waited:g}s, the longest a call may wait; nothing was sent",
        )
        self.per_minute = per_minute
        self.waited = waited
        self.shared = shared
        self.retry_after = retry_after
        self.request_sent = False

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "per_minute": self.per_minute, "waited": self.waited}


class AlpacaBadResponse(AlpacaError):
    """Alpaca answered 2xx with a body we could not read."""


class OrderOutcomeUnknown(AlpacaError):
    """An order request was sent but whether it took effect could not be established.

    ``client_order_id`` is the id to look the order up by (None for requests that create orders
    without one, such as closing a position). Never resubmit blindly.
    """

    def __init__(self, message: str, *, client_order_id: str | None) -> None:
        super().__init__(None, None, message)
        self.client_order_id = client_order_id

    def __str__(self) -> str:
        text = super().__str__()
        if self.client_order_id is not None:
            text += f" client_order_id={self.client_order_id!r}."
        return text

    def __repr__(self) -> str:
        return f"OrderOutcomeUnknown(client_order_id={self.client_order_id!r}, message={self.message!r})"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "client_order_id": self.client_order_id}


class LiveTradingDisabled(AlpacaError):
    """A live-environment credential asked to change something while live trading is off.

    The one class for this refusal in the codebase: the tools' gate raises it before anything is
    unsealed; the broker raises it too, as a backstop behind the gate.
    """

    def __init__(self, action: str) -> None:
        super().__init__(
            None, None, f"Refused to {action} with a live-environment credential: live trading is disabled"
        )
        self.action = action


class InvalidRequestError(ValueError):
    """The client refused the arguments before sending anything (bad symbol, order id, timeframe...)."""


_BY_STATUS: dict[int, type[AlpacaError]] = {
    400: AlpacaBadRequest,
    401: AlpacaAuthError,
    403: AlpacaForbidden,
    404: AlpacaNotFound,
    422: AlpacaRejected,
    429: AlpacaRateLimited,
}


def error_for_status(
    status: int,
    code: int | None,
    message: str,
    *,
    retry_after: float | None = None,
    body: dict[str, Any] | None = None,
    secrets: Sequence[str] = (),
) -> AlpacaError:
    """Map an HTTP error answer to its typed error (``body``: Alpaca's JSON, for the facts some carry)."""
    if status == 403 and message.lower().startswith("insufficient qty"):
        return InsufficientQty.from_body(status, code, message, body or {}, secrets)
    if status == 429:
        return AlpacaRateLimited(status, code, message, retry_after=retry_after)
    if status >= 500:
        return AlpacaUnavailable(status, code, message)
    return _BY_STATUS.get(status, AlpacaError)(status, code, message)


def is_duplicate_client_order_id(error: AlpacaError) -> bool:
    """Alpaca's 422 for a reused client_order_id ("client_order_id must be unique")."""
    text = error.message.lower()
    return (
        error.status == 422
        and not isinstance(error, ClientOrderIdConflict)
        and "client_order_id" in text
        and "unique" in text
    )
