"""The ``/_simulator`` admin routes (no auth; tests and demos only): accounts, faults, clock, prices."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator.assets import UNIVERSE, find_asset
from alpaca_vault.simulator.books import new_key_pair
from alpaca_vault.simulator.config import AccountSpec
from alpaca_vault.simulator.errors import invalid, not_found
from alpaca_vault.simulator.faults import parse_fault
from alpaca_vault.simulator.routes.common import admin, json_body, json_response, simulator
from alpaca_vault.simulator.views import admin_account_json


def _cash(value: Any) -> Decimal:
    try:
        cash = Decimal(str(value))
    except InvalidOperation:
        raise invalid('cash must be a decimal amount such as "100000"') from None
    if not cash.is_finite() or not 0 <= cash < 10**12:
        raise invalid("cash must be >= 0 and below 1,000,000,000,000")
    return cash


@admin
async def health(request: Request) -> Response:
    return json_response({"status": "ok", "assets": len(UNIVERSE)})


@admin
async def create_account(request: Request) -> Response:
    body = await json_body(request)
    api_key, secret_key = new_key_pair()
    spec = AccountSpec(
        api_key=body.get("api_key") or api_key,
        secret_key=body.get("secret_key") or secret_key,
        cash=_cash(body.get("cash", "100000")),
        account_number=body.get("account_number"),
        status=body.get("status") or "ACTIVE",
    )
    account = simulator(request).broker.add_account(spec)
    return json_response(admin_account_json(account, secret=True), 201)


@admin
async def list_accounts(request: Request) -> Response:
    return json_response(simulator(request).broker.admin_accounts())


@admin
async def update_account(request: Request) -> Response:
    broker = simulator(request).broker
    account = broker.admin_account(request.path_params["api_key"])
    body = await json_body(request)
    status = str(body["status"]) if "status" in body else None
    cash = _cash(body["cash"]) if "cash" in body else None
    return json_response(broker.admin_update_account(account, status, cash))


@admin
async def account_orders(request: Request) -> Response:
    broker = simulator(request).broker
    account = broker.admin_account(request.path_params.get("api_key") or request.query_params.get("api_key"))
    return json_response(broker.admin_orders(account))


@admin
async def add_fault(request: Request) -> Response:
    fault = simulator(request).faults.add(parse_fault(await json_body(request)))
    return json_response(fault.to_json(), 201)


@admin
async def list_faults(request: Request) -> Response:
    return json_response(simulator(request).faults.list())


@admin
async def clear_faults(request: Request) -> Response:
    simulator(request).faults.clear()
    return Response(status_code=204)


@admin
async def remove_fault(request: Request) -> Response:
    if not simulator(request).faults.remove(request.path_params["fault_id"]):
        raise not_found("fault not found")
    return Response(status_code=204)


@admin
async def reset(request: Request) -> Response:
    simulator(request).reset()
    return Response(status_code=204)


@admin
async def get_clock(request: Request) -> Response:
    return json_response(simulator(request).broker.clock_state())


@admin
async def set_clock(request: Request) -> Response:
    body = await json_body(request)
    advance = body.get("advance_seconds")
    mode = body.get("mode")
    state = simulator(request).broker.set_clock(
        float(advance) if advance is not None else None, str(mode) if mode is not None else None
    )
    return json_response(state)


@admin
async def pin_price(request: Request) -> Response:
    body = await json_body(request)
    asset = find_asset(str(body.get("symbol", "")))
    if asset is None:
        raise not_found("symbol not in the simulator's universe")
    price = body.get("price")
    return json_response(
        simulator(request).broker.pin_price(asset, Decimal(str(price)) if price is not None else None)
    )


@admin
async def plant_news(request: Request) -> Response:
    sim = simulator(request)
    article = sim.news.plant(await json_body(request), sim.broker.clock.now())
    return json_response(article.to_json(include_content=True), 201)


@admin
async def request_arrivals(request: Request) -> Response:
    arrivals = simulator(request).requests.arrivals(request.path_params["api_key"])
    return json_response({"count": len(arrivals), "arrivals": arrivals})


@admin
async def forget_requests(request: Request) -> Response:
    simulator(request).requests.clear()
    return Response(status_code=204)


routes = [
    Route("/_simulator/health", health, methods=["GET"]),
    Route("/_simulator/accounts", create_account, methods=["POST"]),
    Route("/_simulator/accounts", list_accounts, methods=["GET"]),
    Route("/_simulator/accounts/{api_key}", update_account, methods=["PATCH"]),
    Route("/_simulator/accounts/{api_key}/orders", account_orders, methods=["GET"]),
    Route("/_simulator/orders", account_orders, methods=["GET"]),
    Route("/_simulator/faults", add_fault, methods=["POST"]),
    Route("/_simulator/faults", list_faults, methods=["GET"]),
    Route("/_simulator/faults", clear_faults, methods=["DELETE"]),
    Route("/_simulator/faults/{fault_id}", remove_fault, methods=["DELETE"]),
    Route("/_simulator/reset", reset, methods=["POST"]),
    Route("/_simulator/clock", get_clock, methods=["GET"]),
    Route("/_simulator/clock", set_clock, methods=["POST"]),
    Route("/_simulator/prices", pin_price, methods=["POST"]),
    Route("/_simulator/news", plant_news, methods=["POST"]),
    Route("/_simulator/requests/{api_key}", request_arrivals, methods=["GET"]),
    Route("/_simulator/requests", forget_requests, methods=["DELETE"]),
]
