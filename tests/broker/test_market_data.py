"""Market data methods: stocks on /v2/stocks/..., crypto pairs on /v1beta3/crypto/us/..."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, Bar, Quote, Snapshot, Trade


async def test_latest_quote_one_symbol(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    quotes = await broker.get_latest_quote(keys, "aapl")
    assert list(quotes) == ["AAPL"]
    quote = quotes["AAPL"]
    assert isinstance(quote, Quote)
    assert quote.symbol == "AAPL"
    assert quote.bid_price is not None and quote.ask_price is not None
    assert Decimal(0) < quote.bid_price <= quote.ask_price
    assert quote.timestamp is not None and quote.timestamp.tzinfo is not None


async def test_latest_quote_mixes_stocks_and_crypto(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    quotes = await broker.get_latest_quote(keys, ["MSFT", "btc/usd", "AAPL"])
    assert sorted(quotes) == ["AAPL", "BTC/USD", "MSFT"]
    assert quotes["BTC/USD"].ask_price is not None and quotes["BTC/USD"].ask_price > 1000


async def test_latest_trade(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    trades = await broker.get_latest_trade(keys, "SPY,ETH/USD")
    assert sorted(trades) == ["ETH/USD", "SPY"]
    assert all(isinstance(t, Trade) and t.price is not None and t.price > 0 for t in trades.values())
    assert trades["SPY"].symbol == "SPY"


async def test_snapshot_stock_and_crypto(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    snapshots = await broker.get_snapshot(keys, ["AAPL", "BTC/USD"])
    assert sorted(snapshots) == ["AAPL", "BTC/USD"]
    for symbol, snap in snapshots.items():
        assert isinstance(snap, Snapshot)
        assert snap.symbol == symbol
        assert snap.latest_trade is not None and snap.latest_quote is not None
        assert snap.daily_bar is not None and isinstance(snap.daily_bar, Bar)
        assert snap.daily_bar.low <= snap.daily_bar.high


async def test_bars_page_through_with_token(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    first = await broker.get_bars(keys, ["AAPL", "MSFT"], timeframe="1Day", start=start, limit=5)
    assert sum(len(v) for v in first.bars.values()) == 5
    assert first.next_page_token
    seen = [(sym, bar.timestamp) for sym, bars in first.bars.items() for bar in bars]
    page = first
    while page.next_page_token:
        page = await broker.get_bars(
            keys, ["AAPL", "MSFT"], timeframe="1Day", start=start, limit=5, page_token=page.next_page_token
        )
        seen += [(sym, bar.timestamp) for sym, bars in page.bars.items() for bar in bars]
    assert len(seen) == len(set(seen))  # pages never repeat a bar
    assert {sym for sym, _ in seen} == {"AAPL", "MSFT"}
    everything = await broker.get_bars(keys, ["AAPL", "MSFT"], timeframe="1Day", start=start)
    assert sum(len(v) for v in everything.bars.values()) == len(seen)
    for bars in everything.bars.values():
        assert [b.timestamp for b in bars] == sorted(b.timestamp for b in bars)
        assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


async def test_crypto_minute_bars(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    # An explicit start: without one the window opens at midnight New York time, so in the first 45
    # minutes of that day (05:00-05:45 UTC in winter) fewer than three 15-minute bars exist yet.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    page = await broker.get_bars(keys, "BTC/USD", timeframe="15Min", start=start, limit=3)
    assert list(page.bars) == ["BTC/USD"]
    assert len(page.bars["BTC/USD"]) == 3
