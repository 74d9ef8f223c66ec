"""What every route module shares: the simulator of the app, auth, Alpaca's error answers, parameters."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alpaca_vault.simulator import options
from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.clock import NEW_YORK, parse_time
from alpaca_vault.simulator.errors import BrokerError, invalid, not_found, unauthorized
from alpaca_vault.simulator.instance import Simulator


class _Word(Convertor[str]):
    """A path segment that must be one of a few words (so ``/v2/stocks/{kind}`` never eats a symbol)."""

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _LatestKind(_Word):
    regex = "quotes|trades|bars"


class _TickKind(_Word):
    regex = "quotes|trades"


class _MarketType(_Word):
    regex = "stocks|crypto"


register_url_convertor("latest_kind", _LatestKind())
register_url_convertor("tick_kind", _TickKind())
register_url_convertor("market_type", _MarketType())

Handler = Callable[[Request], Awaitable[Response]]
AccountHandler = Callable[[Request, Account], Awaitable[Response]]

# Alpaca serves crypto market data without keys; those routes run on behalf of nobody.
ANONYMOUS = Account(
    id="00000000-0000-0000-0000-000000000000",
    api_key="",
    secret_key="",
    account_number="",
    status="ACTIVE",
    initial_cash=Decimal(0),
    cash=Decimal(0),
    created_at=0.0,
)


def simulator(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


def json_response(content: Any, status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


def error_response(error: BrokerError) -> Response:
    return JSONResponse(error.body(), status_code=error.status)


def authenticated(handler: AccountHandler) -> Handler:
    """An Alpaca route: the key pair in the headers names the account, else 401."""
    return _with_account(handler, keys_required=True)


def keyless(handler: AccountHandler) -> Handler:
    """A route that also answers without keys (crypto data); a wrong key pair is still 401."""
    return _with_account(handler, keys_required=False)


def _with_account(handler: AccountHandler, *, keys_required: bool) -> Handler:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        headers = request.headers
        key_id = headers.get("apca-api-key-id")
        account = simulator(request).broker.authenticate(key_id, headers.get("apca-api-secret-key"))
        try:
            if account is None:
                if keys_required or key_id is not None:
                    raise unauthorized()
                account = ANONYMOUS
            return await handler(request, account)
        except BrokerError as error:
            return error_response(error)

    return endpoint


def admin(handler: Handler) -> Handler:
    """A ``/_simulator`` route: no auth; bad input is a 422 in Alpaca's shape."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BrokerError as error:
            return error_response(error)
        except (ValueError, TypeError) as error:
            return json_response({"code": 42210000, "message": str(error)}, 422)

    return endpoint


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BrokerError(400, 40010000, "request body format is invalid") from None
    if not isinstance(body, dict):
        raise BrokerError(400, 40010000, "request body format is invalid")
    return body


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"invalid {name}: {text!r} is not an integer") from None
    if not low <= value <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return value


def time_param(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise invalid(f"invalid {name}: {text!r} (use RFC 3339, e.g. 2024-01-02T15:04:05Z)") from None


def date_param(request: Request, name: str, default: date | None = None) -> date | None:
    text = request.query_params.get(name)
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(f"invalid {name}: {text!r} (use YYYY-MM-DD)") from None


def trading_day(request: Request) -> date:
    """The simulator clock's date in New York (Alpaca's trading day)."""
    return datetime.fromtimestamp(simulator(request).broker.clock.now(), NEW_YORK).date()


def contract_or_404(symbol_or_id: str, today: date, missing: str = "option contract not found") -> Asset:
    """The option contract named by its OCC symbol or its id, else a 404 saying ``missing``."""
    contract = find_asset(symbol_or_id) or options.contract_by_id(symbol_or_id, today)
    if contract is None or not contract.is_option:
        raise not_found(missing)
    return contract


def bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1", "yes")


def list_param(request: Request, name: str) -> list[str]:
    text = request.query_params.get(name, "")
    return [s.strip() for s in text.split(",") if s.strip()]


def symbols_param(request: Request, required: bool = True) -> list[str]:
    symbols = list_param(request, "symbols")
    if required and not symbols:
        raise invalid("symbols is required")
    return symbols


def choice_param(request: Request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = request.query_params.get(name) or default
    if value is not None and value not in choices:
        raise invalid(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}")
    return value
