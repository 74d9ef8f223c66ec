"""Issue #15 market data tools through the MCP protocol: several symbols per call, history with pages,
crypto order books, screeners and the asset listing, against the simulator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import paper_session, text_of, wire
from tests.tools.test_trading_tools import data


def error_text(result: Any) -> str:
    assert result.is_error, text_of(result)
    return text_of(result)


async def first_option_symbol(client: Any, underlying: str = "AAPL") -> str:
    # Near the money and a few weeks out: a contract deep in the money or close to expiry can have no time
    # value left to solve greeks from.
    trade = data(await client.call_tool("alpaca_get_latest_trade", {"symbols": underlying}))
    price = Decimal(str(trade["trades"][underlying]["price"]))
    soon = str(dt.date.today() + dt.timedelta(days=14))
    arguments = {
        "underlying": underlying, "type": "call", "limit": 1, "expiration_date_gte": soon,
        "strike_price_gte": str((price * Decimal("0.97")).quantize(Decimal("0.01"))),
        "strike_price_lte": str((price * Decimal("1.05")).quantize(Decimal("0.01"))),
    }  # fmt: skip
    found = data(await client.call_tool("alpaca_get_option_contracts", arguments))
    return str(found["contracts"][0]["symbol"])


async def test_latest_quote_trade_and_snapshot_take_several_markets(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        option = await first_option_symbol(client)
        symbols = f"aapl, BTC/USD,{option}"
        quotes = data(await client.call_tool("alpaca_get_latest_quote", {"symbols": symbols}))
        assert list(quotes["quotes"]) == ["AAPL", "BTC/USD", option]
        for quote in quotes["quotes"].values():
            assert Decimal(str(quote["ask_price"])) >= Decimal(str(quote["bid_price"])) > 0
        trades = data(await client.call_tool("alpaca_get_latest_trade", {"symbols": symbols, "feed": "sip"}))
        assert set(trades["trades"]) == {"AAPL", "BTC/USD", option}
        snapshots = data(await client.call_tool("alpaca_get_snapshot", {"symbols": f"SPY,{option}"}))
        spy, contract = snapshots["snapshots"]["SPY"], snapshots["snapshots"][option]
        assert spy["minute_bar"]["close"] and spy["daily_bar"]  # the latest bar rides in the snapshot
        assert contract["greeks"]["delta"] is not None and contract["implied_volatility"] is not None
        # One unknown among known symbols: an answer naming what is missing; all unknown: an error.
        partly = await client.call_tool("alpaca_get_latest_quote", {"symbols": "AAPL,NOSUCH"})
        assert data(partly)["missing"] == ["NOSUCH"] and "No data for 1: NOSUCH" in text_of(partly)
        assert "NOSUCH" in error_text(
            await client.call_tool("alpaca_get_latest_trade", {"symbols": "NOSUCH"})
        )
        # The old single-symbol argument name is answered with the new one.
        assert "symbols" in error_text(await client.call_tool("alpaca_get_latest_quote", {"symbol": "AAPL"}))
        too_many = ",".join(f"S{i}" for i in range(101))
        assert "at most 100" in error_text(
            await client.call_tool("alpaca_get_snapshot", {"symbols": too_many})
        )
        bad_feed = await client.call_tool("alpaca_get_latest_quote", {"symbols": "AAPL", "feed": "nasdaq"})
        assert "feed" in error_text(bad_feed)


async def test_historical_quotes_and_trades_page_through(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        start = "2026-11-30T15:00:00Z"
        first = data(
            await client.call_tool(
                "alpaca_get_quotes", {"symbols": "AAPL", "start": start, "limit": 5, "feed": "iex"}
            )
        )
        assert len(first["quotes"]["AAPL"]) == 5 and first["next_page_token"]
        second = data(
            await client.call_tool(
                "alpaca_get_quotes",
                {"symbols": "AAPL", "start": start, "limit": 5, "page_token": first["next_page_token"]},
            )
        )
        times = [q["timestamp"] for q in first["quotes"]["AAPL"] + second["quotes"]["AAPL"]]
        assert times == sorted(times) and len(set(times)) == 10  # the second page continues the first
        trades = await client.call_tool(
            "alpaca_get_trades", {"symbols": "BTC/USD", "start": start, "limit": 3, "sort": "desc"}
        )
        rows = data(trades)["trades"]["BTC/USD"]
        assert len(rows) == 3 and [r["timestamp"] for r in rows] == sorted(
            (r["timestamp"] for r in rows), reverse=True
        )
        assert "3 trade(s)" in text_of(trades) and "next_page_token" in text_of(trades)
        mixed = await client.call_tool("alpaca_get_quotes", {"symbols": "AAPL,BTC/USD", "start": start})
        assert "separate calls" in error_text(mixed)
        backwards = await client.call_tool(
            "alpaca_get_trades", {"symbols": "AAPL", "start": start, "end": "2026-11-01T00:00:00Z"}
        )
        assert "before start" in error_text(backwards)
        assert "limit" in error_text(
            await client.call_tool("alpaca_get_quotes", {"symbols": "AAPL", "start": start, "limit": 10_001})
        )


async def test_crypto_orderbook(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        result = await client.call_tool("alpaca_get_orderbook", {"symbols": "BTC/USD,eth/usd", "depth": 3})
        books = data(result)["orderbooks"]
        assert set(books) == {"BTC/USD", "ETH/USD"}
        for book in books.values():
            assert len(book["bids"]) == 3 and len(book["asks"]) == 3
            assert Decimal(str(book["asks"][0]["price"])) > Decimal(str(book["bids"][0]["price"]))
        assert "best bid" in text_of(result)
        assert "crypto" in error_text(await client.call_tool("alpaca_get_orderbook", {"symbols": "AAPL"}))


async def test_movers_and_most_actives(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        movers = data(await client.call_tool("alpaca_get_market_movers", {"top": 3}))["movers"]
        assert len(movers["gainers"]) == 3 and len(movers["losers"]) == 3
        crypto = data(await client.call_tool("alpaca_get_market_movers", {"market_type": "crypto", "top": 2}))
        assert all("/" in m["symbol"] for m in crypto["movers"]["gainers"])
        actives = await client.call_tool("alpaca_get_most_actives", {"by": "trades", "top": 4})
        assert len(data(actives)["most_actives"]["most_actives"]) == 4
        assert "by trades" in text_of(actives)
        assert "top" in error_text(await client.call_tool("alpaca_get_most_actives", {"top": 101}))


async def test_list_assets_filters_and_bounds(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        crypto = data(await client.call_tool("alpaca_list_assets", {"asset_class": "crypto", "limit": 1000}))
        assert crypto["assets"] and all(a["asset_class"] == "crypto" for a in crypto["assets"])
        limited = await client.call_tool("alpaca_list_assets", {"asset_class": "us_equity", "limit": 2})
        assert len(data(limited)["assets"]) == 2 and data(limited)["truncated"] is True
        assert "narrow the filters" in text_of(limited)
        apple = data(await client.call_tool("alpaca_list_assets", {"name_contains": "apple"}))["assets"]
        assert "AAPL" in [a["symbol"] for a in apple]
        # Company names are third-party text: in the data, never in our summary.
        summary = text_of(await client.call_tool("alpaca_list_assets", {"name_contains": "apple"})).split(
            "\n\n"
        )[0]
        assert "Apple" not in summary and "AAPL" in summary
        asset = await client.call_tool("alpaca_get_asset", {"symbol": "AAPL"})
        assert "Apple" not in text_of(asset).split("\n\n")[0] and "Apple" in str(
            wire(asset)["structuredContent"]
        )
        assert "exchange" in error_text(await client.call_tool("alpaca_list_assets", {"exchange": "NY SE"}))
        assert "limit" in error_text(await client.call_tool("alpaca_list_assets", {"limit": 0}))


async def test_bars_for_option_contracts_and_weekly_bars(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        option = await first_option_symbol(client)
        bars = data(
            await client.call_tool(
                "alpaca_get_bars",
                {"symbol": option, "timeframe": "1Hour", "start": "2026-11-30T14:00:00Z", "limit": 3},
            )
        )
        assert bars["symbol"] == option and 1 <= len(bars["bars"]) <= 3
        weekly = data(
            await client.call_tool("alpaca_get_bars", {"symbol": "AAPL", "timeframe": "1Week", "limit": 4})
        )
        assert len(weekly["bars"]) == 4
