"""alpaca-py against the deeper market data: historical quotes and trades, feeds, order books, screener."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed, MarketType, MostActivesBy
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.historical.screener import ScreenerClient
from alpaca.data.models import Orderbook, Quote, QuoteSet, Trade, TradeSet
from alpaca.data.requests import (
    CryptoLatestOrderbookRequest,
    CryptoQuoteRequest,
    CryptoTradesRequest,
    MarketMoversRequest,
    MostActivesRequest,
    StockLatestQuoteRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)

from tests.fixtures.simulator import SimAccount, SimulatorHandle
from tests.simulator.conftest import sdk_client


@pytest.fixture
def screener(simulator: SimulatorHandle, sim_account: SimAccount) -> ScreenerClient:
    return sdk_client(ScreenerClient, simulator, sim_account)


def _recent(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_historical_quotes_for_several_symbols_in_order(stock_data: StockHistoricalDataClient) -> None:
    start = _recent(2)
    quotes = stock_data.get_stock_quotes(
        StockQuotesRequest(symbol_or_symbols=["AAPL", "MSFT", "NOPE"], start=start, feed=DataFeed.IEX)
    )
    assert isinstance(quotes, QuoteSet)
    assert set(quotes.data) == {"AAPL", "MSFT"}
    rows = quotes.data["AAPL"]
    assert len(rows) >= 50  # one quote every two seconds
    assert all(isinstance(q, Quote) and 0 < q.bid_price < q.ask_price for q in rows)
    assert all(q.bid_exchange == "V" for q in rows)  # IEX
    times = [q.timestamp for q in rows]
    assert times == sorted(times) and times[0] >= start


def test_historical_trades_paginate_with_next_page_token(
    simulator: SimulatorHandle, sim_account: SimAccount, stock_data: StockHistoricalDataClient
) -> None:
    start = _recent(10)
    end = start + timedelta(minutes=5)
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    params = {"symbols": "AAPL,SPY", "start": start.isoformat(), "end": end.isoformat(), "limit": 50}
    first = client.get("/v2/stocks/trades", params=params).json()
    assert sum(len(v) for v in first["trades"].values()) == 50
    assert first["next_page_token"]
    collected = {s: len(v) for s, v in first["trades"].items()}
    token = first["next_page_token"]
    pages = 1
    while token:
        page = client.get("/v2/stocks/trades", params={**params, "page_token": token}).json()
        for symbol, rows in page["trades"].items():
            collected[symbol] = collected.get(symbol, 0) + len(rows)
        token = page["next_page_token"]
        pages += 1
    client.close()
    assert collected == {"AAPL": 60, "SPY": 60}  # one trade every five seconds for five minutes
    assert pages == 3
    # alpaca-py follows the tokens itself and gets the same rows.
    trades = stock_data.get_stock_trades(
        StockTradesRequest(symbol_or_symbols=["AAPL", "SPY"], start=start, end=end)
    )
    assert isinstance(trades, TradeSet)
    assert {s: len(v) for s, v in trades.data.items()} == collected
    assert all(isinstance(t, Trade) and t.price > 0 for t in trades.data["SPY"])


def test_single_symbol_history_and_descending_sort(
    simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    body = client.get(
        "/v2/stocks/AAPL/quotes", params={"start": _recent(1).isoformat(), "limit": 5, "sort": "desc"}
    ).json()
    client.close()
    assert body["symbol"] == "AAPL" and len(body["quotes"]) == 5 and body["next_page_token"]
    times = [Quote("AAPL", q).timestamp for q in body["quotes"]]
    assert times == sorted(times, reverse=True)


def test_feed_sip_reports_consolidated_exchanges_and_bad_feed_is_refused(
    stock_data: StockHistoricalDataClient,
) -> None:
    iex = stock_data.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols="NVDA", feed=DataFeed.IEX)
    )
    sip = stock_data.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols="NVDA", feed=DataFeed.SIP)
    )
    assert iex["NVDA"].ask_exchange == "V"
    assert sip["NVDA"].ask_size >= 3  # the consolidated book is deeper
    delayed = stock_data.get_stock_snapshot(
        StockSnapshotRequest(symbol_or_symbols="NVDA", feed=DataFeed.DELAYED_SIP)
    )["NVDA"]
    assert delayed.latest_quote is not None
    assert delayed.latest_quote.timestamp < datetime.now(UTC) - timedelta(minutes=14)
    with pytest.raises(APIError) as caught:
        stock_data._get_marketdata(path="/stocks/quotes/latest", params={"symbols": "NVDA", "feed": "nasdaq"})
    assert caught.value.status_code == 422
    assert "feed must be" in str(caught.value)


def test_crypto_history_and_latest_orderbooks(crypto_data: CryptoHistoricalDataClient) -> None:
    quotes = crypto_data.get_crypto_quotes(CryptoQuoteRequest(symbol_or_symbols="BTC/USD", start=_recent(1)))
    assert len(quotes.data["BTC/USD"]) >= 55  # one a second
    trades = crypto_data.get_crypto_trades(
        CryptoTradesRequest(symbol_or_symbols=["ETH/USD"], start=_recent(1))
    )
    assert all(t.size > 0 for t in trades.data["ETH/USD"])
    books = crypto_data.get_crypto_latest_orderbook(
        CryptoLatestOrderbookRequest(symbol_or_symbols=["BTC/USD", "ETH/USD", "NOPE/USD"])
    )
    assert set(books) == {"BTC/USD", "ETH/USD"}
    book = books["BTC/USD"]
    assert isinstance(book, Orderbook) and len(book.bids) == len(book.asks) == 20
    assert book.bids[0].price < book.asks[0].price
    assert [b.price for b in book.bids] == sorted((b.price for b in book.bids), reverse=True)
    assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)


def test_screener_most_actives_and_movers(screener: ScreenerClient) -> None:
    actives = screener.get_most_actives(MostActivesRequest(top=5, by=MostActivesBy.TRADES))
    assert len(actives.most_actives) == 5
    counts = [a.trade_count for a in actives.most_actives]
    assert counts == sorted(counts, reverse=True)
    movers = screener.get_market_movers(MarketMoversRequest(top=3))
    assert movers.market_type == MarketType.STOCKS
    assert 0 < len(movers.gainers) + len(movers.losers) <= 6
    assert all(m.percent_change > 0 for m in movers.gainers)
    assert all(m.percent_change < 0 for m in movers.losers)
    crypto = screener.get_market_movers(MarketMoversRequest(top=3, market_type=MarketType.CRYPTO))
    assert {m.symbol for m in crypto.gainers + crypto.losers} <= {"BTC/USD", "ETH/USD", "SOL/USD"}
