"""Typed errors for Alpaca calls.

Every error carries the HTTP status, Alpaca's numeric ``code`` and Alpaca's
``message`` (or our own description when Alpaca never answered), and nothing
of the request: no headers, no body, no reference to the HTTP library's
request object. The client raises them outside any ``except`` block, so
``__cause__`` and ``__context__`` never lead back to an ``httpx2`` exception
(whose ``.request`` holds the auth headers).

Argument errors found before anything is sent are ``ValueError`` s:
``pydantic.ValidationError`` from the request models and
:class:`InvalidRequestError` from the client's own checks.
"""

from __future__ import annotations

from typing import Any


class AlpacaError(Exception):
    """An Alpaca call failed. ``status`` is None when no HTTP answer arrived."""

    #: What the caller (often an agent) can do next; appended to ``str(error)``.
    hint: str = ""

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
        text += "."
        if self.hint:
            text += " " + self.hint
        return text

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
            "hint": self.hint or None,
        }


class AlpacaBadRequest(AlpacaError):
    """400: Alpaca could not parse the request."""

    hint = "Check the arguments' names and formats."


class AlpacaAuthError(AlpacaError):
    """401: the key pair was refused."""

    hint = (
        "The credential's keys were refused: they may be revoked, mistyped, or belong to the other "
        "environment (paper vs live). Validate the credential or store a fresh key pair."
    )


class AlpacaForbidden(AlpacaError):
    """403: understood but not allowed (e.g. insufficient buying power, trading blocked)."""

    hint = "The account does not allow this request as sent; read Alpaca's message for the reason."


class AlpacaNotFound(AlpacaError):
    """404: no such order, position, asset or symbol."""

    hint = "Check the id or symbol; list the account's orders or positions to see what exists."


class AlpacaRejected(AlpacaError):
    """422: Alpaca refused the request's content (an order's fields, a non-cancelable order...)."""

    hint = "Change the request as Alpaca's message says and try again."


class AlpacaRateLimited(AlpacaError):
    """429: over Alpaca's request budget. ``retry_after`` is in seconds when Alpaca said."""

    hint = "Too many requests for this credential; wait a moment and retry."

    def __init__(
        self, status: int | None, code: int | None, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return True


class AlpacaUnavailable(AlpacaError):
    """5xx: Alpaca (or a proxy in front of it) failed."""

    hint = "Alpaca is having trouble; retry later."

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


class AlpacaTimeout(_NoAnswer):
    """No answer within the configured timeout."""

    hint = "Alpaca did not answer in time; retry later."


class AlpacaConnectionError(_NoAnswer):
    """The connection could not be made or broke before an answer arrived."""

    hint = "Could not reach Alpaca; check the network and the configured Alpaca URLs."


class AlpacaBadResponse(AlpacaError):
    """Alpaca answered 2xx with a body we could not read."""

    hint = "Alpaca's answer had an unexpected shape; retry, and report it if it persists."


class OrderOutcomeUnknown(AlpacaError):
    """An order request was sent but whether it took effect could not be established.

    Never resubmit blindly: look the order up first (the ``alpaca_get_order`` tool with
    ``client_order_id`` when it is set, otherwise ``alpaca_list_orders`` and ``alpaca_get_positions``).
    """

    def __init__(self, message: str, *, client_order_id: str | None) -> None:
        super().__init__(None, None, message)
        self.client_order_id = client_order_id
        if client_order_id is not None:
            self.hint = (
                f"Do not place it again blindly: look it up with alpaca_get_order"
                f"(client_order_id={client_order_id!r}); placing it again with the same "
                f"client_order_id can never create a second order."
            )
        else:
            self.hint = (
                "Do not repeat it blindly: check alpaca_list_orders(status='all') and alpaca_get_positions "
                "to see what happened."
            )

    def __repr__(self) -> str:
        return f"OrderOutcomeUnknown(client_order_id={self.client_order_id!r}, message={self.message!r})"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "client_order_id": self.client_order_id}


class LiveTradingDisabled(AlpacaError):
    """A live-environment credential asked to change something while live trading is off."""

    hint = (
        "Live trading is disabled on this server; use a paper credential, or ask the operator to set "
        "ALPACA_VAULT_ALLOW_LIVE_TRADING=true."
    )

    def __init__(self, action: str) -> None:
        super().__init__(None, None, f"Refused to {action} with a live-environment credential")


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
    status: int, code: int | None, message: str, *, retry_after: float | None = None
) -> AlpacaError:
    """Map an HTTP error answer to its typed error."""
    if status == 429:
        return AlpacaRateLimited(status, code, message, retry_after=retry_after)
    if status >= 500:
        return AlpacaUnavailable(status, code, message)
    return _BY_STATUS.get(status, AlpacaError)(status, code, message)


def is_duplicate_client_order_id(error: AlpacaError) -> bool:
    """Alpaca's 422 for a reused client_order_id ("client_order_id must be unique")."""
    text = error.message.lower()
    return error.status == 422 and "client_order_id" in text and "unique" in text
