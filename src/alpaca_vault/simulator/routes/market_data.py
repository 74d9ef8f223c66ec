"""Market Data API: stocks (v2), crypto (v1beta3) and the screener (v1beta1)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator import fixed_income, screener
from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid, not_found
from alpaca_vault.simulator.market_data import STOCK_FEEDS
from alpaca_vault.simulator.routes.common import (
    authenticated,
    choice_param,
    int_param,
    json_response,
    keyless,
    list_param,
    simulator,
    symbols_param,
    time_param,
)


def asset_or_404(symbol: str, asset_class: str = "us_equity") -> Asset:
    asset = find_asset(symbol)
    if asset is None or asset.asset_class != asset_class:
        raise not_found(f"symbol not found: {symbol}")
    return asset


def assets_of(symbols: list[str], asset_class: str = "us_equity") -> list[Asset]:
    """The symbols that exist; Alpaca leaves unknown ones out of multi-symbol answers."""
    assets = []
    for symbol in symbols:
        asset = find_asset(symbol)
        if asset is not None and asset.asset_class == asset_class and asset not in assets:
            assets.append(asset)
    return assets


def feed_param(request: Request, asset_class: str) -> str | None:
    if asset_class != "us_equity":
        return None
    return choice_param(request, "feed", STOCK_FEEDS, None)


def series_args(request: Request, default_limit: int = 1000) -> dict[str, Any]:
    sort = choice_param(request, "sort", ("asc", "desc"), "asc")
    return {
        "start": time_param(request, "start"),
        "end": time_param(request, "end"),
        "limit": int_param(request, "limit", default_limit, 1, 10000),
        "page_token": request.query_params.get("page_token") or None,
        "descending": sort == "desc",
    }


def bars_args(request: Request) -> dict[str, Any]:
    timeframe = request.query_params.get("timeframe")
    if not timeframe:
        raise invalid("timeframe is required")
    return {"timeframe": timeframe, **series_args(request)}


# ---------------------------------------------------------------- shared by every asset class


def latest(request: Request, kind: str, asset_class: str) -> Response:
    sim = simulator(request)
    feed = feed_param(request, asset_class)
    now = sim.market.data_time(sim.broker.clock.now(), feed)
    make = {"quotes": sim.market.quote, "trades": sim.market.trade, "bars": sim.market.latest_bar}[kind]
    assets = assets_of(symbols_param(request), asset_class)
    return json_response({kind: {a.symbol: make(a, now, feed) for a in assets}})


def bars(request: Request, asset_class: str) -> Response:
    assets = assets_of(symbols_param(request), asset_class)
    feed_param(request, asset_class)
    found, token = simulator(request).market.bars(assets, **bars_args(request))
    return json_response({"bars": found, "next_page_token": token})


def ticks(request: Request, kind: str, asset_class: str) -> Response:
    assets = assets_of(symbols_param(request), asset_class)
    feed = feed_param(request, asset_class)
    found, token = simulator(request).market.ticks(kind, assets, feed=feed, **series_args(request))
    return json_response({kind: found, "next_page_token": token})


def snapshots(request: Request, asset_class: str) -> dict[str, Any]:
    sim = simulator(request)
    feed = feed_param(request, asset_class)
    now = sim.market.data_time(sim.broker.clock.now(), feed)
    return {
        a.symbol: sim.market.snapshot(a, now, feed) for a in assets_of(symbols_param(request), asset_class)
    }


# ---------------------------------------------------------------- one stock


@authenticated
async def stock_latest_one(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = asset_or_404(request.path_params["symbol"])
    feed = feed_param(request, "us_equity")
    now = sim.market.data_time(sim.broker.clock.now(), feed)
    kind = request.path_params["kind"]
    if kind == "quotes":
        return json_response({"symbol": asset.symbol, "quote": sim.market.quote(asset, now, feed)})
    if kind == "trades":
        return json_response({"symbol": asset.symbol, "trade": sim.market.trade(asset, now, feed)})
    return json_response({"symbol": asset.symbol, "bar": sim.market.latest_bar(asset, now)})


@authenticated
async def stock_bars_one(request: Request, account: Account) -> Response:
    asset = asset_or_404(request.path_params["symbol"])
    feed_param(request, "us_equity")
    found, token = simulator(request).market.bars([asset], **bars_args(request))
    return json_response(
        {"bars": found.get(asset.symbol, []), "symbol": asset.symbol, "next_page_token": token}
    )


@authenticated
async def stock_ticks_one(request: Request, account: Account) -> Response:
    asset = asset_or_404(request.path_params["symbol"])
    kind = request.path_params["kind"]
    feed = feed_param(request, "us_equity")
    found, token = simulator(request).market.ticks(kind, [asset], feed=feed, **series_args(request))
    return json_response(
        {kind: found.get(asset.symbol, []), "symbol": asset.symbol, "next_page_token": token}
    )


@authenticated
async def stock_snapshot_one(request: Request, account: Account) -> Response:
    sim = simulator(request)
    asset = asset_or_404(request.path_params["symbol"])
    feed = feed_param(request, "us_equity")
    now = sim.market.data_time(sim.broker.clock.now(), feed)
    return json_response({"symbol": asset.symbol, **sim.market.snapshot(asset, now, feed)})


# ---------------------------------------------------------------- several stocks


@authenticated
async def stock_latest(request: Request, account: Account) -> Response:
    return latest(request, request.path_params["kind"], "us_equity")


@authenticated
async def stock_bars(request: Request, account: Account) -> Response:
    return bars(request, "us_equity")


@authenticated
async def stock_ticks(request: Request, account: Account) -> Response:
    return ticks(request, request.path_params["kind"], "us_equity")


@authenticated
async def stock_snapshots(request: Request, account: Account) -> Response:
    # Stocks answer with symbols at the top level; crypto and options wrap them in "snapshots".
    return json_response(snapshots(request, "us_equity"))


# ---------------------------------------------------------------- crypto (keyless, as on Alpaca)


@keyless
async def crypto_latest(request: Request, account: Account) -> Response:
    return latest(request, request.path_params["kind"], "crypto")


@keyless
async def crypto_orderbooks(request: Request, account: Account) -> Response:
    sim = simulator(request)
    now = sim.broker.clock.now()
    books = {a.symbol: sim.market.orderbook(a, now) for a in assets_of(symbols_param(request), "crypto")}
    return json_response({"orderbooks": books})


@keyless
async def crypto_bars(request: Request, account: Account) -> Response:
    return bars(request, "crypto")


@keyless
async def crypto_ticks(request: Request, account: Account) -> Response:
    return ticks(request, request.path_params["kind"], "crypto")


@keyless
async def crypto_snapshots(request: Request, account: Account) -> Response:
    return json_response({"snapshots": snapshots(request, "crypto")})


# ---------------------------------------------------------------- screener


@authenticated
async def most_actives(request: Request, account: Account) -> Response:
    sim = simulator(request)
    by = choice_param(request, "by", ("volume", "trades"), "volume") or "volume"
    top = int_param(request, "top", 10, 1, 100)
    return json_response(screener.most_actives(sim.market, sim.broker.clock.now(), by, top))


@authenticated
async def movers(request: Request, account: Account) -> Response:
    sim = simulator(request)
    top = int_param(request, "top", 10, 1, 50)
    market_type = request.path_params["market_type"]
    return json_response(screener.movers(sim.market, sim.broker.clock.now(), market_type, top))


# ---------------------------------------------------------------- fixed income


@authenticated
async def fixed_income_quotes(request: Request, account: Account) -> Response:
    isins = list_param(request, "isins")
    return json_response(fixed_income.latest_quotes(isins, simulator(request).broker.clock.now()))


routes = [
    # Multi-symbol forms first, so "quotes" is never read as a symbol.
    Route("/v2/stocks/{kind:latest_kind}/latest", stock_latest, methods=["GET"]),
    Route("/v2/stocks/bars", stock_bars, methods=["GET"]),
    Route("/v2/stocks/{kind:tick_kind}", stock_ticks, methods=["GET"]),
    Route("/v2/stocks/snapshots", stock_snapshots, methods=["GET"]),
    Route("/v2/stocks/{symbol}/{kind:latest_kind}/latest", stock_latest_one, methods=["GET"]),
    Route("/v2/stocks/{symbol}/bars", stock_bars_one, methods=["GET"]),
    Route("/v2/stocks/{symbol}/{kind:tick_kind}", stock_ticks_one, methods=["GET"]),
    Route("/v2/stocks/{symbol}/snapshot", stock_snapshot_one, methods=["GET"]),
    Route("/v1beta3/crypto/us/latest/orderbooks", crypto_orderbooks, methods=["GET"]),
    Route("/v1beta3/crypto/us/latest/{kind:latest_kind}", crypto_latest, methods=["GET"]),
    Route("/v1beta3/crypto/us/bars", crypto_bars, methods=["GET"]),
    Route("/v1beta3/crypto/us/{kind:tick_kind}", crypto_ticks, methods=["GET"]),
    Route("/v1beta3/crypto/us/snapshots", crypto_snapshots, methods=["GET"]),
    Route("/v1beta1/screener/stocks/most-actives", most_actives, methods=["GET"]),
    Route("/v1beta1/screener/{market_type:market_type}/movers", movers, methods=["GET"]),
    Route("/v1beta1/fixed_income/latest/quotes", fixed_income_quotes, methods=["GET"]),
]
