"""Market tools: clock, calendar, assets and market data (all read-only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.errors import AlpacaNotFound
from alpaca_vault.broker.models import (
    Asset,
    Bar,
    CalendarDay,
    Clock,
    Quote,
    Snapshot,
    Trade,
)
from alpaca_vault.tools.errors import NoMarketData, UnknownAsset
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import CredentialRef, InvalidArgument, Symbol, symbol_of
from alpaca_vault.tools.results import counted, respond

T = TypeVar("T")


def _only(by_symbol: dict[str, T], symbol: str, what: str) -> T:
    """The one symbol's entry of a multi-symbol market data answer."""
    try:
        return by_symbol[symbol]
    except KeyError:
        raise NoMarketData(symbol, what) from None


Timeframe = Literal["1Min", "5Min", "15Min", "30Min", "1Hour", "4Hour", "1Day"]
_BAR_SECONDS: dict[str, int] = {
    "1Min": 60,
    "5Min": 300,
    "15Min": 900,
    "30Min": 1800,
    "1Hour": 3600,
    "4Hour": 14_400,
    "1Day": 86_400,
}
# Alpaca's market data begins in 2015/2016; an earlier start only makes the request slower.
_EARLIEST = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)


def _lookback_start(timeframe: str, limit: int, end: dt.datetime | None) -> dt.datetime:
    """A start far enough back that ``limit`` bars exist before ``end``.

    Without a start Alpaca begins at today's open, so "the last 100 daily bars" would be one bar.
    Markets trade about a fifth of the calendar (6.5 h, 5 days a week) plus holidays: six times the
    bars' span and a week covers it; newest-first with ``limit`` stops Alpaca at the right bar.
    """
    until = end or dt.datetime.now(dt.UTC)
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    span = dt.timedelta(seconds=_BAR_SECONDS[timeframe] * limit * 6) + dt.timedelta(days=7)
    try:
        return max(until - span, _EARLIEST)
    except OverflowError:
        return _EARLIEST


class ClockResult(BaseModel):
    credential: str = Field(description="The credential used.")
    clock: Clock


class CalendarResult(BaseModel):
    credential: str = Field(description="The credential used.")
    days: list[CalendarDay]


class AssetResult(BaseModel):
    credential: str = Field(description="The credential used.")
    asset: Asset


class QuoteResult(BaseModel):
    credential: str = Field(description="The credential used.")
    symbol: str
    quote: Quote


class TradeResult(BaseModel):
    credential: str = Field(description="The credential used.")
    symbol: str
    trade: Trade


class BarsResult(BaseModel):
    credential: str = Field(description="The credential used.")
    symbol: str
    timeframe: str
    bars: list[Bar]
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


class SnapshotResult(BaseModel):
    credential: str = Field(description="The credential used.")
    symbol: str
    snapshot: Snapshot


async def alpaca_get_clock(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, ClockResult]:
    """Is the US market open now, and when does it next open and close?"""
    async with alpaca_call(ctx, credential) as call:
        clock = await call.send(call.broker.get_clock)
    state = "OPEN" if clock.is_open else "CLOSED"
    summary = f"Market is {state} at {clock.timestamp.isoformat()}; next open {clock.next_open.isoformat()}, "
    summary += f"next close {clock.next_close.isoformat()}."
    return respond(ClockResult(credential=call.credential_name, clock=clock), summary)


async def alpaca_get_calendar(
    ctx: Context[Any, Any],
    start: Annotated[dt.date | None, Field(description="First date (YYYY-MM-DD), default today.")] = None,
    end: Annotated[
        dt.date | None, Field(description="Last date (YYYY-MM-DD), default start + 7 days.")
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, CalendarResult]:
    """Trading days with their open and close times (exchange time, America/New_York)."""
    start = start or dt.date.today()
    end = end or start + dt.timedelta(days=7)
    if end < start:
        raise InvalidArgument(f"end ({end}) is before start ({start}); give end on or after start.")
    async with alpaca_call(ctx, credential) as call:
        days = await call.send(call.broker.get_calendar, start=start, end=end)
    summary = f"{counted(len(days), 'trading day')} from {start} to {end}" + (
        ": " + ", ".join(f"{d.date} {d.open}-{d.close}" for d in days[:10]) if days else "."
    )
    return respond(CalendarResult(credential=call.credential_name, days=days), summary)


async def alpaca_get_asset(
    ctx: Context[Any, Any], symbol: Symbol, credential: CredentialRef = None
) -> Annotated[CallToolResult, AssetResult]:
    """Look up an asset: tradable, fractionable, shortable, marginable, exchange, name."""
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        try:
            asset = await call.send(call.broker.get_asset, symbol)
        except AlpacaNotFound:
            raise UnknownAsset(symbol) from None
    flags = [f for f in ("tradable", "fractionable", "shortable", "marginable") if getattr(asset, f)]
    summary = (
        f"{asset.symbol} ({asset.name}, {asset.exchange}, {asset.status}): {', '.join(flags) or 'no flags'}."
    )
    return respond(AssetResult(credential=call.credential_name, asset=asset), summary)


async def alpaca_get_latest_quote(
    ctx: Context[Any, Any], symbol: Symbol, credential: CredentialRef = None
) -> Annotated[CallToolResult, QuoteResult]:
    """Latest bid/ask quote for a stock (AAPL) or crypto pair (BTC/USD)."""
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        quote = _only(await call.send(call.broker.get_latest_quote, symbol), symbol, "quote")
    summary = f"{symbol}: bid {quote.bid_price} x {quote.bid_size}, ask {quote.ask_price} x {quote.ask_size}"
    summary += f" at {quote.timestamp.isoformat() if quote.timestamp else 'n/a'}."
    return respond(QuoteResult(credential=call.credential_name, symbol=symbol, quote=quote), summary)


async def alpaca_get_latest_trade(
    ctx: Context[Any, Any], symbol: Symbol, credential: CredentialRef = None
) -> Annotated[CallToolResult, TradeResult]:
    """Latest trade (price and size) for a stock or crypto pair."""
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        trade = _only(await call.send(call.broker.get_latest_trade, symbol), symbol, "trade")
    summary = f"{symbol}: last trade {trade.size} @ {trade.price}"
    summary += f" at {trade.timestamp.isoformat() if trade.timestamp else 'n/a'}."
    return respond(TradeResult(credential=call.credential_name, symbol=symbol, trade=trade), summary)


async def alpaca_get_bars(
    ctx: Context[Any, Any],
    symbol: Symbol,
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1Day",
    start: Annotated[dt.datetime | None, Field(description="From this time (RFC 3339).")] = None,
    end: Annotated[dt.datetime | None, Field(description="Until this time (RFC 3339).")] = None,
    limit: Annotated[int, Field(ge=1, le=10_000, description="At most this many bars.")] = 100,
    page_token: Annotated[
        str | None,
        Field(description="next_page_token from the previous call (same other arguments) for the next page."),
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, BarsResult]:
    """Historical OHLCV bars for a stock or crypto pair, oldest first.

    Without start, returns the most recent `limit` bars (before end, default now), and next_page_token
    goes further back in time. With start, returns bars from start onwards, and next_page_token goes forward.
    """
    symbol = symbol_of(symbol)
    if start is not None and end is not None and end < start:
        raise InvalidArgument(f"end ({end.isoformat()}) is before start ({start.isoformat()}); swap them.")
    # Without a start, an agent wants the most recent bars: ask newest-first, then show them in time order.
    latest_first = start is None
    if start is None:
        start = _lookback_start(timeframe, limit, end)
    async with alpaca_call(ctx, credential) as call:
        page = await call.send(
            call.broker.get_bars,
            symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            limit=limit,
            page_token=page_token,
            sort="desc" if latest_first else "asc",
        )
    bars = sorted(page.bars.get(symbol, []), key=lambda bar: bar.timestamp)
    summary = f"{counted(len(bars), f'{timeframe} bar')} for {symbol}"
    if bars:
        summary += f" from {bars[0].timestamp.isoformat()} to {bars[-1].timestamp.isoformat()}, "
        summary += f"last close {bars[-1].close}"
    else:
        summary += " in that range. Check the symbol with alpaca_get_asset (crypto pairs are written like "
        summary += "BTC/USD), or widen start/end"
    summary += "." + (" More pages: pass next_page_token as page_token." if page.next_page_token else "")
    result = BarsResult(
        credential=call.credential_name,
        symbol=symbol,
        timeframe=timeframe,
        bars=bars,
        next_page_token=page.next_page_token,
    )
    return respond(result, summary)


async def alpaca_get_snapshot(
    ctx: Context[Any, Any], symbol: Symbol, credential: CredentialRef = None
) -> Annotated[CallToolResult, SnapshotResult]:
    """Snapshot of a symbol: latest trade and quote, current minute bar, today's and yesterday's daily bars."""
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        snapshot = _only(await call.send(call.broker.get_snapshot, symbol), symbol, "snapshot")
    last = snapshot.latest_trade.price if snapshot.latest_trade else None
    day = snapshot.daily_bar
    summary = f"{symbol}: last {last}" + (
        f", day O {day.open} H {day.high} L {day.low} C {day.close}" if day else ""
    )
    return respond(
        SnapshotResult(credential=call.credential_name, symbol=symbol, snapshot=snapshot), summary + "."
    )
