"""Alpaca-shaped errors: an HTTP status plus Alpaca's JSON body ``{"code": ..., "message": ...}``."""

from __future__ import annotations

from typing import Any


class BrokerError(Exception):
    def __init__(self, status: int, code: int | str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def unauthorized() -> BrokerError:
    return BrokerError(401, 40110000, "request is not authorized")


def invalid(message: str) -> BrokerError:
    """Malformed or missing input: Alpaca answers 422 with code 40010001."""
    return BrokerError(422, 40010001, message)


def unprocessable(message: str) -> BrokerError:
    """Well-formed input the broker refuses (state or business rule)."""
    return BrokerError(422, 42210000, message)


def forbidden(message: str, **extra: Any) -> BrokerError:
    return BrokerError(403, 40310000, message, **extra)


def not_found(message: str) -> BrokerError:
    return BrokerError(404, 40410000, message)
