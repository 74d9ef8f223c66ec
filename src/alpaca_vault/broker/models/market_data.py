"""Market data answers: quotes, trades, bars, snapshots, order books, screeners (stocks, crypto, options).

Alpaca's market data API uses one-letter keys ("ap", "bp", "t"); each field accepts both those and
our readable names, and always leaves under the readable one.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AliasChoices, Field

from .base import AlpacaModel, Money

StockFeed = Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"]
OptionFeed = Literal["opra", "indicative"]
SortDirection = Literal["asc", "desc"]


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Quote(AlpacaModel):
    symbol: str | None = None
    timestamp: dt.datetime | None = Field(default=None, validation_alias=_alias("timestamp", "t"))
    ask_price: Money | None = Field(default=None, validation_alias=_alias("ask_price", "ap"))
    ask_size: Money | None = Field(default=None, validation_alias=_alias("ask_size", "as"))
    ask_exchange: str | None = Field(default=None, validation_alias=_alias("ask_exchange", "ax"))
    bid_price: Money | None = Field(default=None, validation_alias=_alias("bid_price", "bp"))
    bid_size: Money | None = Field(default=None, validation_alias=_alias("bid_size", "bs"))
    bid_exchange: str | None = Field(default=None, validation_alias=_alias("bid_exchange", "bx"))
    conditions: list[str] | str | None = Field(default=None, validation_alias=_alias("conditions", "c"))
    tape: str | None = Field(default=None, validation_alias=_alias("tape", "z"))
    # Fixed income only (prices in percent of par, sizes in par value; 0 means no bid or ask).
    bid_yield_to_maturity: Money | None = Field(
        default=None, validation_alias=_alias("bid_yield_to_maturity", "bytm")
    )
    bid_yield_to_worst: Money | None = Field(
        default=None, validation_alias=_alias("bid_yield_to_worst", "bytw")
    )
    bid_min_size: Money | None = Field(default=None, validation_alias=_alias("bid_min_size", "bms"))
    ask_yield_to_maturity: Money | None = Field(
        default=None, validation_alias=_alias("ask_yield_to_maturity", "aytm")
    )
    ask_yield_to_worst: Money | None = Field(
        default=None, validation_alias=_alias("ask_yield_to_worst", "aytw")
    )
    ask_min_size: Money | None = Field(default=None, validation_alias=_alias("ask_min_size", "ams"))


class Trade(AlpacaModel):
    symbol: str | None = None
    timestamp: dt.datetime | None = Field(default=None, validation_alias=_alias("timestamp", "t"))
    price: Money | None = Field(default=None, validation_alias=_alias("price", "p"))
    size: Money | None = Field(default=None, validation_alias=_alias("size", "s"))
    exchange: str | None = Field(default=None, validation_alias=_alias("exchange", "x"))
    id: int | str | None = Field(default=None, validation_alias=_alias("id", "i"))
    conditions: list[str] | str | None = Field(default=None, validation_alias=_alias("conditions", "c"))
    tape: str | None = Field(default=None, validation_alias=_alias("tape", "z"))
    taker_side: str | None = Field(default=None, validation_alias=_alias("taker_side", "tks"))


class Bar(AlpacaModel):
    timestamp: dt.datetime = Field(validation_alias=_alias("timestamp", "t"))
    open: Money = Field(validation_alias=_alias("open", "o"))
    high: Money = Field(validation_alias=_alias("high", "h"))
    low: Money = Field(validation_alias=_alias("low", "l"))
    close: Money = Field(validation_alias=_alias("close", "c"))
    volume: Money | None = Field(default=None, validation_alias=_alias("volume", "v"))
    trade_count: int | None = Field(default=None, validation_alias=_alias("trade_count", "n"))
    vwap: Money | None = Field(default=None, validation_alias=_alias("vwap", "vw"))


class Greeks(AlpacaModel):
    delta: Money | None = None
    gamma: Money | None = None
    theta: Money | None = None
    vega: Money | None = None
    rho: Money | None = None


class Snapshot(AlpacaModel):
    """Latest trade, quote and bars of one symbol; option contracts add greeks and implied volatility."""

    symbol: str | None = None
    latest_trade: Trade | None = Field(default=None, validation_alias=_alias("latest_trade", "latestTrade"))
    latest_quote: Quote | None = Field(default=None, validation_alias=_alias("latest_quote", "latestQuote"))
    minute_bar: Bar | None = Field(default=None, validation_alias=_alias("minute_bar", "minuteBar"))
    daily_bar: Bar | None = Field(default=None, validation_alias=_alias("daily_bar", "dailyBar"))
    previous_daily_bar: Bar | None = Field(
        default=None, validation_alias=_alias("previous_daily_bar", "prevDailyBar")
    )
    implied_volatility: Money | None = Field(
        default=None, validation_alias=_alias("implied_volatility", "impliedVolatility")
    )
    greeks: Greeks | None = None


class BarsPage(AlpacaModel):
    """Bars per symbol, and the token for the next page when there is more."""

    bars: dict[str, list[Bar]]
    next_page_token: str | None = None


class QuotesPage(AlpacaModel):
    """Historical quotes per symbol, and the token for the next page when there is more."""

    quotes: dict[str, list[Quote]]
    next_page_token: str | None = None


class TradesPage(AlpacaModel):
    """Historical trades per symbol, and the token for the next page when there is more."""

    trades: dict[str, list[Trade]]
    next_page_token: str | None = None


class OptionChainPage(AlpacaModel):
    """Snapshots (with greeks and implied volatility) of an underlying's contracts, one page."""

    snapshots: dict[str, Snapshot]
    next_page_token: str | None = None


class OrderbookLevel(AlpacaModel):
    price: Money = Field(validation_alias=_alias("price", "p"))
    size: Money = Field(validation_alias=_alias("size", "s"))


class Orderbook(AlpacaModel):
    """The latest crypto order book of one pair: bids best first, asks best first."""

    symbol: str | None = None
    timestamp: dt.datetime | None = Field(default=None, validation_alias=_alias("timestamp", "t"))
    bids: list[OrderbookLevel] = Field(default_factory=list, validation_alias=_alias("bids", "b"))
    asks: list[OrderbookLevel] = Field(default_factory=list, validation_alias=_alias("asks", "a"))
    reset: bool | None = Field(default=None, validation_alias=_alias("reset", "r"))


class ActiveStock(AlpacaModel):
    symbol: str
    volume: Money | None = None
    trade_count: Money | None = None


class MostActives(AlpacaModel):
    """The stocks most traded today, by volume or by number of trades."""

    most_actives: list[ActiveStock]
    last_updated: dt.datetime | None = None


class Mover(AlpacaModel):
    symbol: str
    percent_change: Money | None = None
    change: Money | None = None
    price: Money | None = None


class Movers(AlpacaModel):
    """Today's top gainers and losers of a market (stocks or crypto)."""

    gainers: list[Mover]
    losers: list[Mover]
    market_type: str | None = None
    last_updated: dt.datetime | None = None
