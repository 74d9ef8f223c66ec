"""Short-sale locates (Trading API ``/v1/locates``); see ``simulator/locates.py`` for the rules."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator import locates
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import BrokerError
from alpaca_vault.simulator.routes.common import (
    authenticated,
    int_param,
    json_body,
    json_response,
    list_param,
    simulator,
)


def _date(request: Request, name: str) -> date | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise locates.locate_error(400, "invalid_input", f"invalid input: {name} is YYYY-MM-DD") from None


@authenticated
async def locate_quotes(request: Request, account: Account) -> Response:
    broker = simulator(request).broker
    with broker.lock:
        return json_response(locates.quotes(account, list_param(request, "symbols"), broker.clock.now()))


@authenticated
async def create_locate(request: Request, account: Account) -> Response:
    try:
        body = await json_body(request)
    except BrokerError:  # Alpaca's locate errors have their own shape
        raise locates.locate_error(400, "invalid_request_body", "invalid request body") from None
    broker = simulator(request).broker
    with broker.lock:
        created = locates.create(account, body, request.headers.get("idempotency-key"), broker.clock.now())
    return json_response(created, 201)


@authenticated
async def list_locates(request: Request, account: Account) -> Response:
    broker = simulator(request).broker
    limit = int_param(request, "limit", 1000, 1, 10_000)
    with broker.lock:
        page = locates.listing(
            account, broker.clock.now(), status=request.query_params.get("status") or None,
            symbol=request.query_params.get("symbol") or None, start=_date(request, "start"),
            end=_date(request, "end"), limit=limit, page_token=request.query_params.get("page_token"),
        )  # fmt: skip
    return json_response(page)


@authenticated
async def get_locate(request: Request, account: Account) -> Response:
    broker = simulator(request).broker
    with broker.lock:
        return json_response(locates.get(account, request.path_params["locate_id"], broker.clock.now()))


routes = [
    Route("/v1/locates/quotes", locate_quotes, methods=["GET"]),
    Route("/v1/locates", create_locate, methods=["POST"]),
    Route("/v1/locates", list_locates, methods=["GET"]),
    Route("/v1/locates/{locate_id}", get_locate, methods=["GET"]),
]
