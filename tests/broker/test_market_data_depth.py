"""Deeper market data against the simulator: history with pages, the feed, order books, screeners,
and one call that mixes stocks, crypto pairs and option contracts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    InvalidRequestError,
    MostActives,
    Movers,
    OptionContractsQuery,
    Orderbook,
    Quote,
    Trade,
)

from .conftest import make_client


async def an_option(broker: AlpacaClient, keys: AlpacaKeys, underlying: str = "AAPL") -> str:
    """A call near the money (deep in- or out-of-the-money quotes can have no implied volatility)."""
    spot = (await broker.get_latest_trade(keys, underlying))[underlying].price
    assert spot is not None
    page = await broker.get_option_contracts(
        keys,
        OptionContractsQuery(
            underlying_symbols=[underlying],
            type="call",
            strike_price_gte=(spot * Decimal("0.97")).quantize(Decimal(1)),
            expiration_date_gte=dt.date.today() + dt.timedelta(days=20),
            limit=1,
        ),
    )
    return page.option_contracts[0].symbol


async def test_historical_quotes_page_through(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    first = await broker.get_quotes(keys, ["AAPL", "MSFT"], start=start, limit=7)
    assert sum(len(q) for q in first.quotes.values()) == 7
    assert first.next_page_token
    seen = [(sym, q.timestamp) for sym, quotes in first.quotes.items() for q in quotes]
    page, pages = first, 1
    while page.next_page_token and pages < 50:
        page = await broker.get_quotes(
            keys, ["AAPL", "MSFT"], start=start, limit=7, page_token=page.next_page_token
        )
        seen += [(sym, q.timestamp) for sym, quotes in page.quotes.items() for q in quotes]
        pages += 1
    assert pages > 1 and len(seen) == len(set(seen))  # pages never repeat a quote
    quote = first.quotes["AAPL"][0]
    assert isinstance(quote, Quote) and quote.symbol == "AAPL"
    assert quote.bid_price is not None and quote.ask_price is not None and quote.bid_price <= quote.ask_price


async def test_historical_trades_for_stocks_crypto_and_options(
    broker: AlpacaClient, keys: AlpacaKeys
) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    stocks = await broker.get_trades(keys, "SPY", start=start, limit=5)
    assert len(stocks.trades["SPY"]) == 5
    assert all(isinstance(t, Trade) and t.price and t.price > 0 for t in stocks.trades["SPY"])
    crypto = await broker.get_trades(keys, "BTC/USD", start=start, limit=3, sort="desc")
    stamps = [t.timestamp for t in crypto.trades["BTC/USD"]]
    assert len(stamps) == 3 and stamps == sorted(stamps, reverse=True)  # type: ignore[type-var]
    contract = await an_option(broker, keys)
    options = await broker.get_trades(keys, contract, start=start - dt.timedelta(days=3), limit=2)
    assert list(options.trades) == [contract] and len(options.trades[contract]) == 2
    with pytest.raises(InvalidRequestError, match="no quote history for option contracts"):
        await broker.get_quotes(keys, contract)
    with pytest.raises(InvalidRequestError, match="separate calls"):
        await broker.get_trades(keys, ["SPY", "BTC/USD"])


async def test_stock_feed_comes_from_the_setting_or_the_call(simulator: Any, sim_account: Any) -> None:
    from .conftest import keys_for

    keys = keys_for(sim_account)
    iex = make_client(simulator, stock_feed="iex")
    delayed = make_client(simulator, stock_feed="delayed_sip")
    try:
        on_iex = (await iex.get_latest_quote(keys, "AAPL"))["AAPL"]
        assert (on_iex.ask_exchange, on_iex.bid_exchange) == ("V", "V")  # IEX alone
        on_delayed = (await delayed.get_latest_quote(keys, "AAPL"))["AAPL"]
        assert on_iex.timestamp and on_delayed.timestamp
        assert dt.timedelta(minutes=14) < on_iex.timestamp - on_delayed.timestamp < dt.timedelta(minutes=16)
        # The call's own feed wins over the setting.
        overridden = (await iex.get_latest_quote(keys, "AAPL", feed="delayed_sip"))["AAPL"]
        assert overridden.timestamp and on_iex.timestamp - overridden.timestamp > dt.timedelta(minutes=14)
    finally:
        await iex.aclose()
        await delayed.aclose()


async def test_latest_quote_trade_bar_and_snapshot_mix_every_market(
    broker: AlpacaClient, keys: AlpacaKeys
) -> None:
    contract = await an_option(broker, keys)
    symbols = ["AAPL", "ETH/USD", contract.lower()]
    quotes = await broker.get_latest_quote(keys, symbols)
    assert sorted(quotes) == sorted(["AAPL", "ETH/USD", contract])
    assert all(q.ask_price is not None and q.ask_price > 0 for q in quotes.values())
    trades = await broker.get_latest_trade(keys, symbols)
    assert sorted(trades) == sorted(quotes)
    bars = await broker.get_latest_bar(keys, symbols)
    assert {"AAPL", "ETH/USD"} <= set(bars)
    snapshots = await broker.get_snapshot(keys, symbols)
    assert sorted(snapshots) == sorted(quotes)
    option = snapshots[contract]
    assert option.greeks is not None and option.greeks.delta is not None and 0 < option.greeks.delta < 1
    assert option.implied_volatility is not None and option.implied_volatility > 0
    assert snapshots["AAPL"].greeks is None


async def test_crypto_orderbook(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    books = await broker.get_orderbook(keys, ["BTC/USD", "eth/usd"])
    assert sorted(books) == ["BTC/USD", "ETH/USD"]
    book = books["BTC/USD"]
    assert isinstance(book, Orderbook) and book.bids and book.asks
    assert book.bids[0].price < book.asks[0].price  # not crossed
    assert [b.price for b in book.bids] == sorted((b.price for b in book.bids), reverse=True)
    assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)
    with pytest.raises(InvalidRequestError, match="crypto pairs only"):
        await broker.get_orderbook(keys, "AAPL")


async def test_most_actives_and_movers(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    actives = await broker.get_most_actives(keys, by="trades", top=3)
    assert isinstance(actives, MostActives) and len(actives.most_actives) == 3
    assert all(a.symbol and a.trade_count is not None for a in actives.most_actives)
    movers = await broker.get_movers(keys, market_type="stocks", top=2)
    assert isinstance(movers, Movers) and len(movers.gainers) == 2 and len(movers.losers) == 2
    assert all(g.percent_change is not None for g in movers.gainers)
    crypto = await broker.get_movers(keys, market_type="crypto", top=1)
    assert all("/" in m.symbol for m in crypto.gainers + crypto.losers)
    with pytest.raises(InvalidRequestError, match="between 1 and 100"):
        await broker.get_most_actives(keys, top=0)
