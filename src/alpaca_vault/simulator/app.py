"""The simulator's ASGI app: the route modules, fault injection, and Alpaca-shaped HTTP errors."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from alpaca_vault.simulator.config import SimulatorConfig
from alpaca_vault.simulator.faults import FaultMiddleware
from alpaca_vault.simulator.instance import Simulator
from alpaca_vault.simulator.request_log import RequestLogMiddleware
from alpaca_vault.simulator.routes import (
    admin,
    locates,
    market_data,
    options,
    reference_data,
    trading,
    watchlists,
)
from alpaca_vault.simulator.routes.common import json_response


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return json_response({"code": 40410000, "message": "endpoint not found"}, 404)
    if status == 405:
        return json_response({"code": 40510000, "message": "method not allowed"}, 405)
    return json_response({"code": status * 100000, "message": "request failed"}, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    # A simulator bug still answers in Alpaca's shape; the traceback goes to stderr via uvicorn.
    return json_response({"code": 50010000, "message": "internal server error occurred"}, 500)


class PersistMiddleware:
    """With a state file, write the books after every request that may have changed them."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            self.simulator.broker.persist()


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """An Alpaca-compatible paper broker as a Starlette app (trading and market data on one base URL)."""
    sim = Simulator(config or SimulatorConfig())
    app = Starlette(
        routes=[
            *trading.routes,
            *watchlists.routes,
            *locates.routes,
            *market_data.routes,
            *options.routes,
            *reference_data.routes,
            *admin.routes,
        ],
        middleware=[
            Middleware(RequestLogMiddleware, log=sim.requests),
            Middleware(FaultMiddleware, injector=sim.faults),
            *([Middleware(PersistMiddleware, simulator=sim)] if sim.config.state_file else []),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.simulator = sim
    return app


__all__ = ["Simulator", "create_app"]
