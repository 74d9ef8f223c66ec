"""Market Data API: stocks (v2) and crypto (v1beta3), latest values, bars and snapshots."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid, not_found
from alpaca_vault.simulator.prices import Asset, find_asset
from alpaca_vault.simulator.routes.common import (
    authenticated,
    int_param,
    json_response,
    keyless,
    simulator,
    symbols_param,
    time_param,
)


def _asset_or_404(symbol: str, crypto: bool = False) -> Asset:
    asset = find_asset(symbol)
    if asset is None or asset.is_crypto != crypto:
        raise not_found(f"symbol not found: {symbol}")
    return asset


def _many(symbols: list[str], crypto: bool = False) -> list[Asset]:
    """The symbols that are in the universe; Alpaca leaves unknown ones out of multi-symbol answers."""
    assets = []
    for symbol in symbols:
        asset = find_asset(symbol)
        if asset is not None and asset.is_crypto == crypto:
            assets.append(asset)
    return assets


def _bars_args(request: Request) -> dict[str, Any]:
    timeframe = request.query_params.get("timeframe")
    if not timeframe:
        raise invalid("timeframe is required")
    sort = request.query_params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise invalid("sort must be asc or desc")
    return {
        "timeframe": timeframe,
        "start": time_param(request, "start"),
        "end": time_param(request, "end"),
        "limit": int_param(request, "limit", 1000, 1, 10000),
        "page_token": request.query_params.get("page_token") or None,
        "descending": sort == "desc",
    }


# ---------------------------------------------------------------- one stock


@authenticated
async def stock_latest_quote(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = _asset_or_404(request.path_params["symbol"])
    return json_response({"symbol": asset.symbol, "quote": sim.market.quote(asset, sim.broker.clock.now())})


@authenticated
async def stock_latest_trade(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = _asset_or_404(request.path_params["symbol"])
    return json_response({"symbol": asset.symbol, "trade": sim.market.trade(asset, sim.broker.clock.now())})


@authenticated
async def stock_latest_bar(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = _asset_or_404(request.path_params["symbol"])
    return json_response(
        {"symbol": asset.symbol, "bar": sim.market.latest_bar(asset, sim.broker.clock.now())}
    )


@authenticated
async def stock_bars(request: Request, account: Account) -> Response:
    asset = _asset_or_404(request.path_params["symbol"])
    bars, token = simulator(request).market.bars([asset], **_bars_args(request))
    return json_response(
        {"bars": bars.get(asset.symbol, []), "symbol": asset.symbol, "next_page_token": token}
    )


@authenticated
async def stock_snapshot(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = _asset_or_404(request.path_params["symbol"])
    return json_response({"symbol": asset.symbol, **sim.market.snapshot(asset, sim.broker.clock.now())})


# ---------------------------------------------------------------- several symbols (stocks or crypto)


def _latest(request: Request, kind: str, crypto: bool) -> Response:
    sim = simulator(request)
    now = sim.broker.clock.now()
    make = {"quotes": sim.market.quote, "trades": sim.market.trade, "bars": sim.market.latest_bar}[kind]
    return json_response({kind: {a.symbol: make(a, now) for a in _many(symbols_param(request), crypto)}})


def _bars(request: Request, crypto: bool) -> Response:
    assets = _many(symbols_param(request), crypto)
    bars, token = simulator(request).market.bars(assets, **_bars_args(request))
    return json_response({"bars": bars, "next_page_token": token})


def _snapshots(request: Request, crypto: bool) -> Response:
    sim = simulator(request)
    now = sim.broker.clock.now()
    snapshots = {a.symbol: sim.market.snapshot(a, now) for a in _many(symbols_param(request), crypto)}
    # Stocks answer with symbols at the top level; crypto wraps them in "snapshots".
    return json_response({"snapshots": snapshots} if crypto else snapshots)


@authenticated
async def stock_latest_quotes(request: Request, account: Account) -> Response:
    return _latest(request, "quotes", crypto=False)


@authenticated
async def stock_latest_trades(request: Request, account: Account) -> Response:
    return _latest(request, "trades", crypto=False)


@authenticated
async def stock_latest_bars(request: Request, account: Account) -> Response:
    return _latest(request, "bars", crypto=False)


@authenticated
async def stock_bars_many(request: Request, account: Account) -> Response:
    return _bars(request, crypto=False)


@authenticated
async def stock_snapshots(request: Request, account: Account) -> Response:
    return _snapshots(request, crypto=False)


@keyless
async def crypto_latest_quotes(request: Request, account: Account) -> Response:
    return _latest(request, "quotes", crypto=True)


@keyless
async def crypto_latest_trades(request: Request, account: Account) -> Response:
    return _latest(request, "trades", crypto=True)


@keyless
async def crypto_latest_bars(request: Request, account: Account) -> Response:
    return _latest(request, "bars", crypto=True)


@keyless
async def crypto_bars(request: Request, account: Account) -> Response:
    return _bars(request, crypto=True)


@keyless
async def crypto_snapshots(request: Request, account: Account) -> Response:
    return _snapshots(request, crypto=True)


routes = [
    # Multi-symbol forms first, so "quotes" is never read as a symbol.
    Route("/v2/stocks/quotes/latest", stock_latest_quotes, methods=["GET"]),
    Route("/v2/stocks/trades/latest", stock_latest_trades, methods=["GET"]),
    Route("/v2/stocks/bars/latest", stock_latest_bars, methods=["GET"]),
    Route("/v2/stocks/bars", stock_bars_many, methods=["GET"]),
    Route("/v2/stocks/snapshots", stock_snapshots, methods=["GET"]),
    Route("/v2/stocks/{symbol}/quotes/latest", stock_latest_quote, methods=["GET"]),
    Route("/v2/stocks/{symbol}/trades/latest", stock_latest_trade, methods=["GET"]),
    Route("/v2/stocks/{symbol}/bars/latest", stock_latest_bar, methods=["GET"]),
    Route("/v2/stocks/{symbol}/bars", stock_bars, methods=["GET"]),
    Route("/v2/stocks/{symbol}/snapshot", stock_snapshot, methods=["GET"]),
    Route("/v1beta3/crypto/us/latest/quotes", crypto_latest_quotes, methods=["GET"]),
    Route("/v1beta3/crypto/us/latest/trades", crypto_latest_trades, methods=["GET"]),
    Route("/v1beta3/crypto/us/latest/bars", crypto_latest_bars, methods=["GET"]),
    Route("/v1beta3/crypto/us/bars", crypto_bars, methods=["GET"]),
    Route("/v1beta3/crypto/us/snapshots", crypto_snapshots, methods=["GET"]),
]
