"""Short-sale locates (``/v1/locates``): quotes, requests and the account's locates, with Alpaca's errors.

Alpaca does not offer locates in its paper environment; the simulator does, so tools and tests can
exercise them. Hard-to-borrow names (``HARD_TO_BORROW``) have a fixed inventory and fee per share; every
other stock is easy to borrow and needs no locate (422 ``easy_to_borrow``, as Alpaca answers).
A locate is active until 8 pm New York time of its locate trading day; its fee is taken from cash.
Locate errors carry a string ``code`` (``LocateError`` in Alpaca's reference), unlike the rest of the API.
"""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca_vault.simulator.assets import HARD_TO_BORROW, find_asset
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.clock import NEW_YORK, iso
from alpaca_vault.simulator.errors import BrokerError

LOT = 100
MAX_QUOTE_SYMBOLS = 100
_ROLL = time(20, 0)  # the locate trading day rolls at 8 pm New York time


def locate_error(status: int, code: str, message: str) -> BrokerError:
    return BrokerError(status, code, message)


def _trading_day(t: float) -> date:
    local = datetime.fromtimestamp(t, NEW_YORK)
    return local.date() + timedelta(days=1) if local.time() >= _ROLL else local.date()


def _expires(day: date) -> float:
    return datetime.combine(day, _ROLL, NEW_YORK).timestamp()


def _status(locate: dict[str, Any], now: float) -> dict[str, Any]:
    if locate["status"] == "active" and now >= locate["_expires"]:
        locate = {**locate, "status": "expired"}
    return {k: v for k, v in locate.items() if not k.startswith("_")}


def _located_today(account: Account, symbol: str, now: float) -> int:
    day = _trading_day(now).isoformat()
    return sum(
        int(loc.get("located_qty") or 0)
        for loc in account.locates
        if loc["symbol"] == symbol and loc["_day"] == day and loc["status"] == "active"
    )


def _unquotable(symbol: str) -> tuple[str, str] | None:
    asset = find_asset(symbol)
    if asset is None or asset.asset_class != "us_equity":
        return "symbol_not_found", "symbol not found"
    if asset.symbol not in HARD_TO_BORROW:
        return "easy_to_borrow", "security is easy-to-borrow and does not require a locate"
    return None


def quotes(account: Account, symbols: list[str], now: float) -> dict[str, Any]:
    if not symbols or len(set(symbols)) > MAX_QUOTE_SYMBOLS:
        raise locate_error(400, "invalid_symbols", "symbols must contain at most 100 unique symbols")
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for symbol in dict.fromkeys(s.upper() for s in symbols):
        problem = _unquotable(symbol)
        if problem is not None:
            errors.append({"symbol": symbol, "code": problem[0], "message": problem[1]})
            continue
        inventory, fee = HARD_TO_BORROW[symbol]
        available = max(0, inventory - _located_today(account, symbol, now))
        quote: dict[str, Any] = {"symbol": symbol, "available_qty": available, "quoted_at": iso(now)}
        if available:
            quote["price"] = str(fee)
        found.append(quote)
    return {"quotes": found, **({"errors": errors} if errors else {})}


def _request(body: dict[str, Any]) -> tuple[str, int, Decimal | None, bool]:
    symbol, qty = body.get("symbol"), body.get("qty")
    all_or_none = body.get("all_or_none", False)
    if not isinstance(symbol, str) or not symbol or not isinstance(all_or_none, bool):
        raise locate_error(400, "invalid_request_body", "invalid request body")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1 or qty % LOT:
        raise locate_error(400, "invalid_input", "invalid input: quantity must be in round lots of 100")
    limit: Decimal | None = None
    if body.get("limit_price") is not None:
        try:
            limit = Decimal(str(body["limit_price"]))
        except InvalidOperation:
            raise locate_error(400, "invalid_limit_price", "invalid limit_price") from None
        if not limit.is_finite() or limit <= 0:
            raise locate_error(400, "invalid_limit_price", "invalid limit_price")
    return symbol.upper(), qty, limit, all_or_none


def create(account: Account, body: dict[str, Any], idempotency_key: str | None, now: float) -> dict[str, Any]:
    """A new locate (active or rejected), or the original one for a repeated Idempotency-Key."""
    if idempotency_key is not None:
        if len(idempotency_key) > 128:
            raise locate_error(
                400, "invalid_input", "invalid input: Idempotency-Key is at most 128 characters"
            )
        seen = account.locate_keys.get(idempotency_key)
        if seen is not None:
            if seen[0] != body:
                raise locate_error(
                    422,
                    "idempotency_key_conflict",
                    "idempotency key was already used with a different request",
                )
            return get(account, seen[1], now)
    symbol, qty, limit, all_or_none = _request(body)
    problem = _unquotable(symbol)
    if problem is not None:
        raise locate_error(422, *problem)
    inventory, fee = HARD_TO_BORROW[symbol]
    available = (max(0, inventory - _located_today(account, symbol, now)) // LOT) * LOT
    located = min(qty, available)
    day = _trading_day(now)
    locate: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "symbol": symbol,
        "requested_qty": qty,
        "all_or_none": all_or_none,
        "limit_price": None if limit is None else str(limit),
        "created_at": iso(now),
        "_day": day.isoformat(),
        "_expires": _expires(day),
    }
    reason = None
    if located == 0 or (all_or_none and located < qty):
        reason = "inventory_unavailable"
    elif limit is not None and fee > limit:
        reason = "price_above_limit"
    if reason is None:
        total = (fee * located).quantize(Decimal("0.01"))
        if total > account.cash:
            raise locate_error(
                422, "insufficient_buying_power", "insufficient buying power to cover locate fee"
            )
        account.cash -= total
        locate.update(
            status="active", located_qty=located, located_price=str(fee), total_fee=str(total),
            expires_at=iso(locate["_expires"]),
        )  # fmt: skip
    else:
        locate.update(status="rejected", rejection_reason=reason)
    account.locates.append(locate)
    if idempotency_key is not None:
        account.locate_keys[idempotency_key] = (body, locate["id"])
    return _status(locate, now)


def get(account: Account, locate_id: str, now: float) -> dict[str, Any]:
    try:
        wanted = str(uuid.UUID(locate_id))
    except ValueError:
        raise locate_error(400, "invalid_input", "invalid input") from None
    for locate in account.locates:
        if locate["id"] == wanted:
            return _status(locate, now)
    raise BrokerError(404, 40410000, "locate not found")


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.removeprefix("offset:")) if text.startswith("offset:") else -1
    except (ValueError, UnicodeDecodeError):
        return -1


def listing(
    account: Account,
    now: float,
    *,
    status: str | None,
    symbol: str | None,
    start: date | None,
    end: date | None,
    limit: int,
    page_token: str | None,
) -> dict[str, Any]:
    """The account's locates, newest first, filtered and paged (``next_page_token`` null on the last page)."""
    if status not in (None, "active", "expired", "rejected"):
        raise locate_error(400, "invalid_input", "invalid input: status is active, expired or rejected")
    offset = _offset(page_token)
    if offset < 0:
        raise locate_error(400, "invalid_input", "invalid input: page_token")
    shown = [_status(loc, now) for loc in reversed(account.locates)]
    shown = [
        loc
        for loc, raw in zip(shown, reversed(account.locates), strict=True)
        if (status is None or loc["status"] == status)
        and (symbol is None or loc["symbol"] == symbol.upper())
        and (start is None or raw["_day"] >= start.isoformat())
        and (end is None or raw["_day"] < end.isoformat())
    ]
    page = shown[offset : offset + limit]
    more = offset + limit < len(shown)
    return {"locates": page, "next_page_token": _token(offset + limit) if more else None}
