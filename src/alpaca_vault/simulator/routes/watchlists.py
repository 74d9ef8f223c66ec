"""Watchlists (Trading API v2), by id and by name."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.routes.common import authenticated, json_body, json_response, simulator


def _name(request: Request) -> str:
    name = request.query_params.get("name")
    if not name:
        raise invalid("name is required")
    return name


async def _act(request: Request, account: Account, action: str, by_name: bool = False) -> Response:
    body = await json_body(request) if action in ("create", "update", "add") else None
    result = simulator(request).broker.watchlist(
        account,
        action,
        watchlist_id=None if by_name else request.path_params.get("watchlist_id"),
        name=_name(request) if by_name else None,
        body=body,
        symbol=request.path_params.get("symbol"),
    )
    return Response(status_code=204) if result is None else json_response(result)


@authenticated
async def list_watchlists(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.watchlists(account))


@authenticated
async def create_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "create")


@authenticated
async def get_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "get")


@authenticated
async def update_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "update")


@authenticated
async def add_to_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "add")


@authenticated
async def remove_from_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "remove")


@authenticated
async def delete_watchlist(request: Request, account: Account) -> Response:
    return await _act(request, account, "delete")


@authenticated
async def get_watchlist_by_name(request: Request, account: Account) -> Response:
    return await _act(request, account, "get", by_name=True)


@authenticated
async def update_watchlist_by_name(request: Request, account: Account) -> Response:
    return await _act(request, account, "update", by_name=True)


@authenticated
async def add_to_watchlist_by_name(request: Request, account: Account) -> Response:
    return await _act(request, account, "add", by_name=True)


@authenticated
async def delete_watchlist_by_name(request: Request, account: Account) -> Response:
    return await _act(request, account, "delete", by_name=True)


routes = [
    Route("/v2/watchlists", list_watchlists, methods=["GET"]),
    Route("/v2/watchlists", create_watchlist, methods=["POST"]),
    Route("/v2/watchlists:by_name", get_watchlist_by_name, methods=["GET"]),
    Route("/v2/watchlists:by_name", update_watchlist_by_name, methods=["PUT"]),
    Route("/v2/watchlists:by_name", add_to_watchlist_by_name, methods=["POST"]),
    Route("/v2/watchlists:by_name", delete_watchlist_by_name, methods=["DELETE"]),
    Route("/v2/watchlists/{watchlist_id}", get_watchlist, methods=["GET"]),
    Route("/v2/watchlists/{watchlist_id}", update_watchlist, methods=["PUT"]),
    Route("/v2/watchlists/{watchlist_id}", add_to_watchlist, methods=["POST"]),
    Route("/v2/watchlists/{watchlist_id}", delete_watchlist, methods=["DELETE"]),
    Route("/v2/watchlists/{watchlist_id}/{symbol:path}", remove_from_watchlist, methods=["DELETE"]),
]
