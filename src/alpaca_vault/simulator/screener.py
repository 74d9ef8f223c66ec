"""Screener (v1beta1): most active stocks and top movers, computed from the price path."""

from __future__ import annotations

from typing import Any

from alpaca_vault.simulator.assets import UNIVERSE
from alpaca_vault.simulator.clock import iso_nanos
from alpaca_vault.simulator.market_data import MarketData


def most_actives(market: MarketData, now: float, by: str, top: int) -> dict[str, Any]:
    """Stocks by today's volume (or trade count), most active first."""
    today = market.day_start(now)
    rows: list[dict[str, Any]] = []
    for asset in UNIVERSE.values():
        if asset.asset_class != "us_equity":
            continue
        volume = market.prices.volume(asset.symbol, today, max(60.0, now - today))
        rows.append({"symbol": asset.symbol, "trade_count": max(1, volume // 40), "volume": volume})
    rows.sort(key=lambda r: (r["trade_count"] if by == "trades" else r["volume"], r["symbol"]), reverse=True)
    return {"most_actives": rows[:top], "last_updated": iso_nanos(now)}


def movers(market: MarketData, now: float, market_type: str, top: int) -> dict[str, Any]:
    """Gainers and losers: stocks against the last close, crypto against 24 hours ago."""
    asset_class = "crypto" if market_type == "crypto" else "us_equity"
    reference = now - 86400 if asset_class == "crypto" else market.clock.last_close(now)
    rows: list[dict[str, Any]] = []
    for asset in UNIVERSE.values():
        if asset.asset_class != asset_class:
            continue
        price = float(market.prices.price(asset.symbol, now))
        before = float(market.prices.price(asset.symbol, reference))
        change = price - before
        rows.append(
            {
                "symbol": asset.symbol,
                "percent_change": round(100 * change / before, 2) if before else 0.0,
                "change": round(change, 2),
                "price": price,
            }
        )
    rows.sort(key=lambda r: r["percent_change"], reverse=True)
    gainers = [r for r in rows if r["percent_change"] > 0][:top]
    losers = [r for r in reversed(rows) if r["percent_change"] < 0][:top]
    return {"gainers": gainers, "losers": losers, "market_type": market_type, "last_updated": iso_nanos(now)}
