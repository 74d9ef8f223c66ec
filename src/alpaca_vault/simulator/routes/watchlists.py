"""Watchlists (Trading API v2), by id and by name."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.routes.common import Handler, authenticated, json_body, json_response, simulator


def _name(request: Request) -> str:
    name = request.query_params.get("name")
    if not name:
        raise invalid("name is required")
    return name


def _action(action: str, *, by_name: bool = False) -> Handler:
    """The endpoint of one watchlist action, the list named by id in the path or by ``?name=``."""

    async def endpoint(request: Request, account: Account) -> Response:
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

    endpoint.__name__ = f"{action}_watchlist" + ("_by_name" if by_name else "")
    return authenticated(endpoint)


@authenticated
async def list_watchlists(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.watchlists(account))


routes = [
    Route("/v2/watchlists", list_watchlists, methods=["GET"]),
    Route("/v2/watchlists", _action("create"), methods=["POST"]),
    Route("/v2/watchlists:by_name", _action("get", by_name=True), methods=["GET"]),
    Route("/v2/watchlists:by_name", _action("update", by_name=True), methods=["PUT"]),
    Route("/v2/watchlists:by_name", _action("add", by_name=True), methods=["POST"]),
    Route("/v2/watchlists:by_name", _action("delete", by_name=True), methods=["DELETE"]),
    Route("/v2/watchlists/{watchlist_id}", _action("get"), methods=["GET"]),
    Route("/v2/watchlists/{watchlist_id}", _action("update"), methods=["PUT"]),
    Route("/v2/watchlists/{watchlist_id}", _action("add"), methods=["POST"]),
    Route("/v2/watchlists/{watchlist_id}", _action("delete"), methods=["DELETE"]),
    Route("/v2/watchlists/{watchlist_id}/{symbol:path}", _action("remove"), methods=["DELETE"]),
]
