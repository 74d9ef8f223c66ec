"""alpaca-py's StockHistoricalDataClient (and the crypto client) against the simulator's market data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.models import Bar, BarSet, Quote, Snapshot, Trade
from alpaca.data.requests import (
    CryptoBarsRequest,
    CryptoLatestQuoteRequest,
    CryptoLatestTradeRequest,
    CryptoSnapshotRequest,
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def test_latest_quote_one_and_many(stock_data: StockHistoricalDataClient) -> None:
    one = stock_data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert set(one) == {"AAPL"}
    quote = one["AAPL"]
    assert isinstance(quote, Quote)
    assert 0 < quote.bid_price < quote.ask_price
    many = stock_data.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols=["AAPL", "SPY", "NOPE"])
    )
    assert set(many) == {"AAPL", "SPY"}  # symbols outside the universe are simply absent, as on Alpaca


def test_single_symbol_paths(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    quote = client.get("/v2/stocks/AAPL/quotes/latest").json()
    assert quote["symbol"] == "AAPL"
    assert Quote("AAPL", quote["quote"]).ask_price > 0
    trade = client.get("/v2/stocks/AAPL/trades/latest").json()
    assert Trade("AAPL", trade["trade"]).price > 0
    bars = client.get("/v2/stocks/AAPL/bars", params={"timeframe": "1Hour", "limit": 5}).json()
    assert bars["symbol"] == "AAPL" and 1 <= len(bars["bars"]) <= 5
    assert all(Bar("AAPL", b).high >= Bar("AAPL", b).low for b in bars["bars"])
    snapshot = client.get("/v2/stocks/AAPL/snapshot").json()
    assert Snapshot("AAPL", snapshot).latest_trade is not None
    missing = client.get("/v2/stocks/NOPE/quotes/latest")
    assert missing.status_code == 404
    client.close()


def test_latest_trade_matches_position_price(stock_data: StockHistoricalDataClient, trading: object) -> None:
    trades = stock_data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["MSFT", "NVDA"]))
    assert set(trades) == {"MSFT", "NVDA"}
    assert all(isinstance(t, Trade) and t.price > 0 and t.size > 0 for t in trades.values())
    bars = stock_data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="MSFT"))
    assert isinstance(bars["MSFT"], Bar)


@pytest.mark.parametrize(
    ("timeframe", "days", "expected"),
    [
        (TimeFrame(1, TimeFrameUnit.Minute), 1, 60),
        (TimeFrame(5, TimeFrameUnit.Minute), 1, 12),
        (TimeFrame(15, TimeFrameUnit.Minute), 1, 4),
        (TimeFrame(1, TimeFrameUnit.Hour), 1, 1),
    ],
    ids=["1Min", "5Min", "15Min", "1Hour"],
)
def test_intraday_bars_cover_the_window(
    stock_data: StockHistoricalDataClient, timeframe: TimeFrame, days: int, expected: int
) -> None:
    start = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    bars = stock_data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="SPY", timeframe=timeframe, start=start, end=start + timedelta(hours=1)
        )
    )
    assert isinstance(bars, BarSet)
    spy = bars["SPY"]
    assert len(spy) == expected
    assert spy[0].timestamp == start
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in spy)


def test_daily_bars_skip_weekends_and_are_deterministic(stock_data: StockHistoricalDataClient) -> None:
    request = StockBarsRequest(
        symbol_or_symbols=["AAPL", "TSLA"],
        timeframe=TimeFrame.Day,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=datetime(2025, 2, 1, tzinfo=UTC),
    )
    first = stock_data.get_stock_bars(request)
    second = stock_data.get_stock_bars(request)
    assert set(first.data) == {"AAPL", "TSLA"}
    assert len(first["AAPL"]) == 21  # trading days of January 2025: weekdays less New Year and MLK Day
    # Daily bars are stamped at midnight New York time, 05:00 UTC in winter.
    assert all(b.timestamp.weekday() < 5 and b.timestamp.hour == 5 for b in first["AAPL"])
    assert [b.close for b in first["AAPL"]] == [b.close for b in second["AAPL"]]


def test_bars_paginate_with_page_token(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    params = {
        "symbols": "AAPL,MSFT",
        "timeframe": "1Min",
        "start": "2025-03-04T15:00:00Z",
        "end": "2025-03-04T15:10:00Z",
        "limit": 7,
    }
    seen: dict[str, list[str]] = {}
    token = None
    pages = 0
    while True:
        page = client.get(
            "/v2/stocks/bars", params={**params, **({"page_token": token} if token else {})}
        ).json()
        pages += 1
        assert sum(len(v) for v in page["bars"].values()) <= 7
        for symbol, bars in page["bars"].items():
            seen.setdefault(symbol, []).extend(b["t"] for b in bars)
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 3
    assert {s: len(ts) for s, ts in seen.items()} == {"AAPL": 10, "MSFT": 10}
    assert len(set(seen["AAPL"])) == 10
    client.close()


def test_sdk_follows_pages_to_the_limit(stock_data: StockHistoricalDataClient) -> None:
    bars = stock_data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["AAPL", "MSFT"],
            timeframe=TimeFrame.Minute,
            start=datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
            end=datetime(2025, 3, 4, 16, 0, tzinfo=UTC),
            limit=90,
        )
    )
    assert len(bars["AAPL"]) == 60
    assert len(bars["MSFT"]) == 30


def test_snapshots(stock_data: StockHistoricalDataClient) -> None:
    snapshots = stock_data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["AAPL", "QQQ"]))
    assert set(snapshots) == {"AAPL", "QQQ"}
    snap = snapshots["AAPL"]
    assert isinstance(snap, Snapshot)
    assert snap.latest_trade is not None and snap.latest_quote is not None
    assert snap.minute_bar is not None and snap.daily_bar is not None and snap.previous_daily_bar is not None


def test_invalid_timeframe_is_422(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    response = httpx2.get(
        simulator.base_url + "/v2/stocks/bars",
        headers=sim_account.headers,
        params={"symbols": "AAPL", "timeframe": "7Fortnight"},
    )
    assert response.status_code == 422
    assert "invalid timeframe" in response.json()["message"]


def test_stock_data_with_wrong_keys_is_401(simulator: SimulatorHandle) -> None:
    client = StockHistoricalDataClient("PKWRONG00000000000000", "nope" * 10, url_override=simulator.base_url)
    with pytest.raises(APIError) as caught:
        client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert caught.value.status_code == 401


def test_crypto_market_data(crypto_data: CryptoHistoricalDataClient) -> None:
    quotes = crypto_data.get_crypto_latest_quote(
        CryptoLatestQuoteRequest(symbol_or_symbols=["BTC/USD", "ETH/USD"])
    )
    assert set(quotes) == {"BTC/USD", "ETH/USD"}
    assert quotes["BTC/USD"].ask_price > quotes["BTC/USD"].bid_price > 1000
    trades = crypto_data.get_crypto_latest_trade(CryptoLatestTradeRequest(symbol_or_symbols="ETH/USD"))
    assert trades["ETH/USD"].price > 0
    bars = crypto_data.get_crypto_bars(
        CryptoBarsRequest(
            symbol_or_symbols="BTC/USD",
            timeframe=TimeFrame.Day,
            start=datetime(2025, 1, 1, tzinfo=UTC),
            end=datetime(2025, 1, 8, tzinfo=UTC),
        )
    )
    assert len(bars["BTC/USD"]) == 7  # crypto trades on weekends
    snapshots = crypto_data.get_crypto_snapshot(CryptoSnapshotRequest(symbol_or_symbols="BTC/USD"))
    assert snapshots["BTC/USD"].latest_quote is not None


def test_crypto_data_needs_no_keys(simulator: SimulatorHandle) -> None:
    client = CryptoHistoricalDataClient(url_override=simulator.base_url)
    quotes = client.get_crypto_latest_quote(CryptoLatestQuoteRequest(symbol_or_symbols="SOL/USD"))
    assert quotes["SOL/USD"].ask_price > 0
