"""Market tools (clock, calendar, assets, market data) through the MCP protocol."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import paper_session, text_of
from tests.tools.test_trading_tools import data


async def test_clock_and_calendar(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        clock = data(await paper_client.call_tool("alpaca_get_clock", {}))["clock"]
        assert clock["is_open"] is True  # the simulator's default clock is always open
        assert "Market is OPEN" in text_of(await paper_client.call_tool("alpaca_get_clock", {}))
        calendar = data(
            await paper_client.call_tool("alpaca_get_calendar", {"start": "2026-11-23", "end": "2026-11-27"})
        )
        assert calendar["days"]
        assert all("2026-11-23" <= d["date"] <= "2026-11-27" for d in calendar["days"])


async def test_asset_lookup(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        asset = data(await paper_client.call_tool("alpaca_get_asset", {"symbol": "aapl"}))["asset"]
        assert asset["symbol"] == "AAPL"
        assert asset["tradable"] is True
        missing = await paper_client.call_tool("alpaca_get_asset", {"symbol": "NOSUCH"})
        assert missing.is_error
        assert "404" in text_of(missing)


async def test_quotes_trades_bars_snapshots(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        quote = data(await paper_client.call_tool("alpaca_get_latest_quote", {"symbols": "AAPL"}))["quotes"][
            "AAPL"
        ]
        assert Decimal(str(quote["ask_price"])) >= Decimal(str(quote["bid_price"])) > 0
        trade = data(await paper_client.call_tool("alpaca_get_latest_trade", {"symbols": "BTC/USD"}))[
            "trades"
        ]["BTC/USD"]
        assert Decimal(str(trade["price"])) > 0
        bars = data(
            await paper_client.call_tool(
                "alpaca_get_bars", {"symbol": "MSFT", "timeframe": "1Hour", "limit": 5}
            )
        )
        assert 1 <= len(bars["bars"]) <= 5
        assert all(Decimal(str(b["high"])) >= Decimal(str(b["low"])) for b in bars["bars"])
        snapshot = data(await paper_client.call_tool("alpaca_get_snapshot", {"symbols": "SPY"}))["snapshots"][
            "SPY"
        ]
        assert snapshot["latest_trade"] and snapshot["daily_bar"]


async def test_bad_timeframe_is_refused_by_the_schema(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        result = await paper_client.call_tool("alpaca_get_bars", {"symbol": "MSFT", "timeframe": "7Sec"})
        assert result.is_error
        assert "timeframe" in text_of(result)


async def test_a_time_without_a_zone_is_read_as_utc_not_a_crash(
    server_settings: Settings, sim_account: Any
) -> None:
    """Comparing a zone-less end with a zoned start raised TypeError ("internal error" to the agent)."""
    async with paper_session(server_settings, sim_account) as paper_client:
        swapped = await paper_client.call_tool(
            "alpaca_get_bars",
            {
                "symbol": "MSFT",
                "timeframe": "1Day",
                "start": "2026-03-02T00:00:00Z",
                "end": "2026-03-01T00:00:00",
            },
        )
        assert swapped.is_error and "is before start" in text_of(swapped) and "swap them" in text_of(swapped)
        bars = await paper_client.call_tool(
            "alpaca_get_bars",
            {
                "symbol": "MSFT",
                "timeframe": "1Day",
                "start": "2026-03-01T00:00:00Z",
                "end": "2026-03-06T00:00:00",
            },
        )
        assert not bars.is_error, text_of(bars)
