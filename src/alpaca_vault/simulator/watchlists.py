"""Watchlists: named lists of assets per account, with Alpaca's rules and errors."""

from __future__ import annotations

import uuid
from typing import Any

from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import Account, Watchlist
from alpaca_vault.simulator.clock import iso
from alpaca_vault.simulator.errors import invalid, not_found, unprocessable
from alpaca_vault.simulator.views import asset_json

MAX_NAME = 64
MAX_SYMBOLS = 1000
MAX_WATCHLISTS = 200


def watchlist_json(account: Account, watchlist: Watchlist, with_assets: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": watchlist.id,
        "account_id": account.id,
        "created_at": iso(watchlist.created_at),
        "updated_at": iso(watchlist.updated_at),
        "name": watchlist.name,
    }
    if with_assets:
        data["assets"] = [asset_json(a) for a in watchlist.assets]
    return data


def find(account: Account, *, watchlist_id: str | None = None, name: str | None = None) -> Watchlist:
    for watchlist in account.watchlists:
        if (watchlist_id is not None and watchlist.id == watchlist_id) or (
            name is not None and watchlist.name == name
        ):
            return watchlist
    raise not_found("watchlist not found")


def _name(account: Account, value: Any, current: Watchlist | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("name is required")
    if len(value) > MAX_NAME:
        raise invalid(f"name must be at most {MAX_NAME} characters")
    if any(w.name == value and w is not current for w in account.watchlists):
        raise unprocessable("watchlist name must be unique")
    return value


def _asset(symbol: Any) -> Asset:
    if not isinstance(symbol, str) or not symbol:
        raise invalid("symbol is required")
    asset = find_asset(symbol)
    if asset is None:
        raise unprocessable(f'asset "{symbol}" not found')
    return asset


def _assets(symbols: Any) -> list[Asset]:
    if not isinstance(symbols, list):
        raise invalid("symbols must be a list of symbols")
    if len(symbols) > MAX_SYMBOLS:
        raise invalid(f"a watchlist holds at most {MAX_SYMBOLS} symbols")
    assets: list[Asset] = []
    for symbol in symbols:
        asset = _asset(symbol)
        if asset not in assets:
            assets.append(asset)
    return assets


def create(account: Account, body: dict[str, Any], now: float) -> Watchlist:
    if len(account.watchlists) >= MAX_WATCHLISTS:
        raise unprocessable(f"an account holds at most {MAX_WATCHLISTS} watchlists")
    name = _name(account, body.get("name"))
    assets = _assets(body.get("symbols") or [])
    watchlist = Watchlist(id=str(uuid.uuid4()), name=name, created_at=now, updated_at=now, assets=assets)
    account.watchlists.append(watchlist)
    return watchlist


def update(account: Account, watchlist: Watchlist, body: dict[str, Any], now: float) -> Watchlist:
    """``PUT``: a new name, new symbols, or both (the symbols replace the list)."""
    if body.get("name") is None and body.get("symbols") is None:
        raise invalid("name or symbols is required")
    name = _name(account, body["name"], current=watchlist) if body.get("name") is not None else watchlist.name
    assets = _assets(body["symbols"]) if body.get("symbols") is not None else watchlist.assets
    watchlist.name, watchlist.assets, watchlist.updated_at = name, assets, now
    return watchlist


def add(watchlist: Watchlist, body: dict[str, Any], now: float) -> Watchlist:
    asset = _asset(body.get("symbol"))
    if asset in watchlist.assets:
        raise unprocessable(f"{asset.symbol} is already in watchlist {watchlist.name!r}")
    if len(watchlist.assets) >= MAX_SYMBOLS:
        raise unprocessable(f"a watchlist holds at most {MAX_SYMBOLS} symbols")
    watchlist.assets.append(asset)
    watchlist.updated_at = now
    return watchlist


def remove(watchlist: Watchlist, symbol: str, now: float) -> Watchlist:
    asset = find_asset(symbol)
    if asset is None or asset not in watchlist.assets:
        raise not_found(f"symbol not found in watchlist: {symbol}")
    watchlist.assets.remove(asset)
    watchlist.updated_at = now
    return watchlist


def delete(account: Account, watchlist: Watchlist) -> None:
    account.watchlists.remove(watchlist)
