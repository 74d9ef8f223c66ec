"""Historical bars: the latest or a range, listed or summarised in one record (issue #11: answers that fit)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.models import Bar
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import (
    CredentialRef,
    InvalidArgument,
    PageToken,
    StockFeed,
    Symbol,
    as_utc,
    symbol_of,
)
from alpaca_vault.tools.results import Bounded, Continuation, Record, counted, respond

Timeframe = Literal["1Min", "5Min", "15Min", "30Min", "1Hour", "4Hour", "1Day", "1Week", "1Month"]
_BAR_SECONDS: dict[str, int] = {
    "1Min": 60,
    "5Min": 300,
    "15Min": 900,
    "30Min": 1800,
    "1Hour": 3600,
    "4Hour": 14_400,
    "1Day": 86_400,
    "1Week": 604_800,
    "1Month": 2_592_000,
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


class BarsSummary(BaseModel):
    """The range in one record: what a long series of bars says without listing them."""

    bars: int = Field(description="How many bars were summarised.")
    start: dt.datetime = Field(description="Time of the first bar.")
    end: dt.datetime = Field(description="Time of the last bar.")
    open: Decimal = Field(description="Open of the first bar.")
    close: Decimal = Field(description="Close of the last bar.")
    high: Decimal
    high_at: dt.datetime = Field(description="Time of the bar with the high.")
    low: Decimal
    low_at: dt.datetime = Field(description="Time of the bar with the low.")
    change: Decimal = Field(description="close - open.")
    change_percent: Decimal | None = Field(description="change / open * 100, 2 decimals.")
    volume: Decimal | None = Field(description="Total volume of the bars (null when Alpaca gave none).")


class BarsResult(Bounded):
    credential: str = Field(description="The credential used.")
    symbol: str
    timeframe: str
    bars: list[Bar] = Field(description="Oldest first; empty with summarize=true.")
    summary: BarsSummary | None = Field(
        default=None, description="With summarize=true: the range in one record."
    )
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


async def alpaca_get_bars(
    ctx: Context[Any, Any],
    symbol: Symbol,
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1Day",
    start: Annotated[dt.datetime | None, Field(description="From this time.")] = None,
    end: Annotated[dt.datetime | None, Field(description="Until this time.")] = None,
    limit: Annotated[
        int | None,
        Field(ge=1, le=10_000, description="At most this many bars (default 50; with summarize, 10,000)."),
    ] = None,
    summarize: Annotated[
        bool,
        Field(
            description="One record for the range instead of the bars: open, close, high/low and when, "
            "change, volume. Use it for long ranges."
        ),
    ] = False,
    page_token: PageToken = None,
    feed: StockFeed = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, BarsResult]:
    """Historical OHLCV bars for a stock, crypto pair or option contract, oldest first.

    Without start, returns the most recent `limit` bars (before end, default now), and next_page_token
    goes further back in time. With start, returns bars from start onwards, and next_page_token goes forward.
    summarize=true answers with the range's open, close, high, low, change and volume instead of the bars.
    """
    symbol = symbol_of(symbol)
    start, end = as_utc(start), as_utc(end)
    if start is not None and end is not None and end < start:
        raise InvalidArgument(f"end ({end.isoformat()}) is before start ({start.isoformat()}); swap them.")
    count = limit or (10_000 if summarize else 50)
    # Without a start, an agent wants the most recent bars: ask newest-first, then show them in time order.
    latest_first = start is None
    if start is None:
        start = _lookback_start(timeframe, count, end)
    async with alpaca_call(ctx, credential) as call:
        page = await call.send(
            call.broker.get_bars,
            symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            limit=count,
            page_token=page_token,
            sort="desc" if latest_first else "asc",
            feed=feed,
        )
    bars = sorted(page.bars.get(symbol, []), key=lambda bar: bar.timestamp)
    summary = f"{counted(len(bars), f'{timeframe} bar')} for {symbol}"
    if bars:
        summary += f" from {bars[0].timestamp.isoformat()} to {bars[-1].timestamp.isoformat()}, "
        summary += f"last close {bars[-1].close}"
    else:
        summary += " in that range. Check the symbol with alpaca_get_asset (crypto pairs are written like "
        summary += "BTC/USD), or widen start/end"
    range_summary = _summarize_bars(bars) if summarize and bars else None
    if range_summary is not None:
        change = f"{range_summary.change:+}" + (
            f" ({range_summary.change_percent:+}%)" if range_summary.change_percent is not None else ""
        )
        summary += (
            f"; open {range_summary.open}, high {range_summary.high}, low {range_summary.low}, change {change}, "
            f"volume {range_summary.volume if range_summary.volume is not None else 'n/a'}"
        )
    summary += "." + (" More pages: pass next_page_token as page_token." if page.next_page_token else "")
    result = BarsResult(
        credential=call.credential_name,
        symbol=symbol,
        timeframe=timeframe,
        bars=[] if summarize else bars,
        summary=range_summary,
        next_page_token=page.next_page_token,
    )
    return respond(
        result,
        summary,
        records="bars",
        keep="last" if latest_first else "first",
        rest=_more_bars(latest_first),
    )


def _summarize_bars(bars: list[Bar]) -> BarsSummary:
    high = max(bars, key=lambda bar: bar.high)
    low = min(bars, key=lambda bar: bar.low)
    first, last = bars[0], bars[-1]
    change = last.close - first.open
    volumes = [bar.volume for bar in bars if bar.volume is not None]
    return BarsSummary(
        bars=len(bars),
        start=first.timestamp,
        end=last.timestamp,
        open=first.open,
        close=last.close,
        high=high.high,
        high_at=high.timestamp,
        low=low.low,
        low_at=low.timestamp,
        change=change,
        change_percent=(change / first.open * 100).quantize(Decimal("0.01")) if first.open else None,
        volume=sum(volumes, Decimal(0)) if volumes else None,
    )


def _more_bars(latest_first: bool) -> Continuation:
    def how(kept: list[Record], omitted: list[Record]) -> str:
        if not kept:
            return "call again with a smaller limit, or summarize=true"
        if latest_first:  # the latest bars were kept: the earlier ones end where these begin
            return f"call again with end='{kept[0][1]['timestamp']}' for the earlier bars, or summarize=true"
        after = dt.datetime.fromisoformat(kept[-1][1]["timestamp"]) + dt.timedelta(seconds=1)
        return f"call again with start='{after.isoformat()}' and the same end, or summarize=true"

    return how
