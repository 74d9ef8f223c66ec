"""Turning a method's loose arguments into what a URL or query string may carry, or InvalidRequestError."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from .errors import AlpacaBadResponse, InvalidRequestError
from .models import AssetKind, asset_kind, format_time, normalize_symbol

TIMEFRAME = re.compile(
    r"^(?:([1-9]|[1-5][0-9])Min|([1-9]|1[0-9]|2[0-3])Hour|1Day|1Week|(1|2|3|4|6|12)Month)$"
)
#: Most symbols one market data request may name.
MAX_SYMBOLS = 200
#: Longest pagination token we pass back to Alpaca.
MAX_PAGE_TOKEN = 512

Time = dt.datetime | dt.date | str
_DATETIME = TypeAdapter(dt.datetime)


def time_param(value: Time | None, name: str = "time") -> str | None:
    """RFC 3339 for Alpaca; naive datetimes are taken as UTC; strings must parse as a date or time."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise InvalidRequestError(f"{name} must be a date (2024-07-01) or an RFC 3339 time.")
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return dt.date.fromisoformat(text).isoformat()  # a date: Alpaca reads it as that whole day
            return format_time(_DATETIME.validate_python(text))
        except (ValueError, ValidationError):
            raise InvalidRequestError(
                f"{name} must be a date (2024-07-01) or an RFC 3339 time (2024-07-01T13:30:00Z)."
            ) from None
    return format_time(value)


def order_id(value: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise InvalidRequestError(
            f"{str(value)[:60]!r} is not an Alpaca order id (a UUID like 61e69015-8549-4bfd-b9c3-01e75843f47d)."
        ) from None


def uuid_param(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise InvalidRequestError(f"{str(value)[:60]!r} is not a {what} (a UUID).") from None


def client_order_id(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 128:
        raise InvalidRequestError("client_order_id must be 1 to 128 characters.")
    return value


def symbols(value: str | Sequence[str]) -> list[str]:
    """One or several symbols (a list, or one comma-separated string), normalized and deduplicated."""
    raw = [value] if isinstance(value, str) else list(value)
    if isinstance(value, str) and "," in value:
        raw = value.split(",")
    if len(raw) > MAX_SYMBOLS:
        raise InvalidRequestError(f"give at most {MAX_SYMBOLS} symbols in one call.")
    try:
        clean = list(dict.fromkeys(normalize_symbol(s) for s in raw if s.strip()))
    except (ValueError, AttributeError) as exc:
        raise InvalidRequestError(str(exc)) from None
    if not clean:
        raise InvalidRequestError("give at least one symbol, e.g. 'AAPL' or 'BTC/USD'.")
    return clean


def by_kind(value: str | Sequence[str]) -> dict[AssetKind, list[str]]:
    """Symbols grouped by market (stock, crypto, option), each group in the caller's order."""
    groups: dict[AssetKind, list[str]] = {}
    for symbol in symbols(value):
        groups.setdefault(asset_kind(symbol), []).append(symbol)
    return groups


def path_symbol(symbol: str) -> str:
    """A symbol as one path segment; crypto pairs drop the slash (BTC/USD -> BTCUSD), as Alpaca accepts."""
    try:
        clean = normalize_symbol(symbol)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    return quote(clean.replace("/", ""), safe="")


def flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def limit_param(value: int | None, high: int, name: str = "limit") -> int | None:
    if value is not None and not 1 <= value <= high:
        raise InvalidRequestError(f"{name} must be between 1 and {high}.")
    return value


def page_token(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= MAX_PAGE_TOKEN:
        raise InvalidRequestError(
            f"page_token must be 1 to {MAX_PAGE_TOKEN} characters (pass back next_page_token)."
        )
    return value


def timeframe(value: str) -> str:
    if not TIMEFRAME.match(value):
        raise InvalidRequestError(
            f"timeframe {value[:20]!r} is not one Alpaca knows: use 1Min..59Min, 1Hour..23Hour, "
            "1Day, 1Week, or 1, 2, 3, 4, 6, 12Month."
        )
    return value


def section(payload: Any, key: str, *, top_level_ok: bool = False) -> dict[str, Any]:
    """The per-symbol mapping under ``key`` of a market data answer."""
    if isinstance(payload, dict):
        inner = payload.get(key)
        if isinstance(inner, dict):
            return inner
        if top_level_ok:
            return {k: v for k, v in payload.items() if isinstance(v, dict)}
    raise AlpacaBadResponse(200, None, f"Alpaca's market data answer had no {key!r}")
