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
    AssetsQuery,
    CalendarDay,
    Clock,
    MostActives,
    Movers,
    Orderbook,
    Quote,
    Snapshot,
    Trade,
)
from alpaca_vault.tools import voice
from alpaca_vault.tools.errors import NoMarketData, UnknownAsset
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import (
    CredentialRef,
    InvalidArgument,
    PageToken,
    StockFeed,
    Symbol,
    Symbols,
    as_utc,
    symbol_of,
    symbols_of,
)
from alpaca_vault.tools.results import (
    Bounded,
    Record,
    counted,
    respond,
    smaller_page,
    symbols_left_out,
)

T = TypeVar("T")


class ClockResult(BaseModel):
    credential: str = Field(description="The credential used.")
    clock: Clock


class CalendarResult(Bounded):
    credential: str = Field(description="The credential used.")
    days: list[CalendarDay]


class AssetResult(BaseModel):
    credential: str = Field(description="The credential used.")
    asset: Asset


class QuotesLatestResult(Bounded):
    credential: str = Field(description="The credential used.")
    quotes: dict[str, Quote] = Field(description="Latest quote by symbol.")
    missing: list[str] = Field(default_factory=list, description="Symbols Alpaca had no quote for.")


class TradesLatestResult(Bounded):
    credential: str = Field(description="The credential used.")
    trades: dict[str, Trade] = Field(description="Latest trade by symbol.")
    missing: list[str] = Field(default_factory=list, description="Symbols Alpaca had no trade for.")


class SnapshotsResult(Bounded):
    credential: str = Field(description="The credential used.")
    snapshots: dict[str, Snapshot] = Field(description="Snapshot by symbol; minute_bar is the latest bar.")
    missing: list[str] = Field(default_factory=list, description="Symbols Alpaca had no snapshot for.")


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
        ": "
        + ", ".join(f"{d.date} {voice.clock_time(d.open)}-{voice.clock_time(d.close)}" for d in days[:10])
        if days
        else "."
    )
    return respond(CalendarResult(credential=call.credential_name, days=days), summary, rest=_later_days)


def _later_days(kept: list[Record], omitted: list[Record]) -> str:
    last = kept[-1][1]["date"] if kept else None
    after = dt.date.fromisoformat(last) + dt.timedelta(days=1) if last else None
    return f"call again with start='{after}' and the same end" if after else "ask for a shorter range"


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
    # The asset's name is third-party text: it stays in the data block, out of our summary.
    summary = f"{voice.symbol(asset.symbol)} ({voice.word(asset.asset_class, voice.ASSET_CLASSES)}, "
    summary += (
        f"{voice.word(asset.exchange, voice.EXCHANGES)}, {voice.word(asset.status, voice.ASSET_STATUSES)}): "
    )
    summary += f"{', '.join(flags) or 'no flags'}."
    return respond(AssetResult(credential=call.credential_name, asset=asset), summary)


def _found(by_symbol: dict[str, T], wanted: list[str], what: str) -> tuple[dict[str, T], list[str]]:
    """The entries Alpaca answered, in the caller's order, and the symbols it had nothing for."""
    found = {symbol: by_symbol[symbol] for symbol in wanted if symbol in by_symbol}
    if not found:
        raise NoMarketData(", ".join(wanted[:10]), what)
    return found, [symbol for symbol in wanted if symbol not in by_symbol]


def _missing_note(missing: list[str]) -> str:
    return f" No data for {len(missing)}: {', '.join(missing[:10])}." if missing else ""


async def alpaca_get_latest_quote(
    ctx: Context[Any, Any], symbols: Symbols, feed: StockFeed = None, credential: CredentialRef = None
) -> Annotated[CallToolResult, QuotesLatestResult]:
    """Latest bid/ask quote for one or more stocks, crypto pairs, option contracts, or bonds by ISIN
    (US912797SX61: percent of par, with yields)."""
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        answer = await call.send(call.broker.get_latest_quote, wanted, feed=feed)
    quotes, missing = _found(answer, wanted, "quote")
    summary = "; ".join(
        f"{s}: bid {q.bid_price} x {q.bid_size}, ask {q.ask_price} x {q.ask_size}"
        for s, q in list(quotes.items())[:10]
    )
    summary += ("; ..." if len(quotes) > 10 else ".") + _missing_note(missing)
    return respond(
        QuotesLatestResult(credential=call.credential_name, quotes=quotes, missing=missing),
        summary,
        records="quotes",
        rest=symbols_left_out("alpaca_get_latest_quote"),
    )


async def alpaca_get_latest_trade(
    ctx: Context[Any, Any], symbols: Symbols, feed: StockFeed = None, credential: CredentialRef = None
) -> Annotated[CallToolResult, TradesLatestResult]:
    """Latest trade (price, size, time) for one or more stocks, crypto pairs or option contracts."""
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        answer = await call.send(call.broker.get_latest_trade, wanted, feed=feed)
    trades, missing = _found(answer, wanted, "trade")
    summary = "; ".join(f"{s}: last {t.size} @ {t.price}" for s, t in list(trades.items())[:10])
    summary += ("; ..." if len(trades) > 10 else ".") + _missing_note(missing)
    return respond(
        TradesLatestResult(credential=call.credential_name, trades=trades, missing=missing),
        summary,
        records="trades",
        rest=symbols_left_out("alpaca_get_latest_trade"),
    )


async def alpaca_get_snapshot(
    ctx: Context[Any, Any], symbols: Symbols, feed: StockFeed = None, credential: CredentialRef = None
) -> Annotated[CallToolResult, SnapshotsResult]:
    """Snapshots of one or more symbols: latest trade and quote, latest minute bar (minute_bar), today's and
    the previous daily bar; option contracts add implied volatility and greeks."""
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        answer = await call.send(call.broker.get_snapshot, wanted, feed=feed)
    snapshots, missing = _found(answer, wanted, "snapshot")
    parts = []
    for symbol, snapshot in list(snapshots.items())[:10]:
        last = snapshot.latest_trade.price if snapshot.latest_trade else None
        day = snapshot.daily_bar
        parts.append(
            f"{symbol}: last {last}"
            + (f", day O {day.open} H {day.high} L {day.low} C {day.close}" if day else "")
        )
    summary = "; ".join(parts) + ("; ..." if len(snapshots) > 10 else ".") + _missing_note(missing)
    result = SnapshotsResult(credential=call.credential_name, snapshots=snapshots, missing=missing)
    return respond(result, summary, records="snapshots", rest=symbols_left_out("alpaca_get_snapshot"))


# --- issue #15: asset listing, history of quotes and trades, order books, screeners -------------


class AssetsResult(Bounded):
    credential: str = Field(description="The credential used.")
    assets: list[Asset]
    truncated: bool = Field(description="True when more assets matched than limit; narrow the filters.")


async def alpaca_list_assets(
    ctx: Context[Any, Any],
    status: Annotated[Literal["active", "inactive"] | None, Field(description="Listing status.")] = "active",
    asset_class: Annotated[
        Literal["us_equity", "us_option", "crypto"] | None, Field(description="Asset class.")
    ] = None,
    exchange: Annotated[
        str | None, Field(pattern=r"^[A-Za-z]{2,12}$", description="e.g. NASDAQ, NYSE, ARCA, CRYPTO.")
    ] = None,
    tradable: Annotated[bool | None, Field(description="Only (non-)tradable assets.")] = None,
    fractionable: Annotated[bool | None, Field(description="Only (non-)fractionable assets.")] = None,
    shortable: Annotated[bool | None, Field(description="Only (non-)shortable assets.")] = None,
    name_contains: Annotated[
        str | None, Field(min_length=1, max_length=64, description="Name or symbol contains this text.")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many assets.")] = 100,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, AssetsResult]:
    """Search and list assets (stocks, ETFs, crypto, options roots) by status, class, exchange and flags."""
    query = AssetsQuery(
        status=status,
        asset_class=asset_class,
        exchange=exchange.upper() if exchange else None,
        tradable=tradable,
        fractionable=fractionable,
        shortable=shortable,
        name_contains=name_contains,
        limit=limit + 1,  # one more tells whether there are more
    )
    async with alpaca_call(ctx, credential) as call:
        found = await call.send(call.broker.list_assets, query)
    assets, truncated = found[:limit], len(found) > limit
    # Asset names are third-party text: the summary counts and lists symbols only.
    summary = f"{len(assets)} asset(s) match" + (
        f" (more than {limit}: narrow the filters)" if truncated else ""
    )
    if assets:
        summary += ": " + ", ".join(voice.symbol(a.symbol) for a in assets[:20])
        summary += ", ..." if len(assets) > 20 else ""
    result = AssetsResult(credential=call.credential_name, assets=assets, truncated=truncated)
    return respond(result, summary + ".", records="assets", rest=_narrower_assets)


def _narrower_assets(kept: list[Record], omitted: list[Record]) -> str:
    return "narrow the filters (asset_class, exchange, name_contains, tradable, fractionable, shortable)"


class QuotesHistoryResult(Bounded):
    credential: str = Field(description="The credential used.")
    quotes: dict[str, list[Quote]] = Field(description="Quotes by symbol, in time order.")
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


class TradesHistoryResult(Bounded):
    credential: str = Field(description="The credential used.")
    trades: dict[str, list[Trade]] = Field(description="Trades by symbol, in time order.")
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


Start = Annotated[dt.datetime, Field(description="From this time.")]
End = Annotated[dt.datetime | None, Field(description="Until this time, default now.")]
HistoryLimit = Annotated[int, Field(ge=1, le=10_000, description="At most this many rows in all.")]
Sort = Annotated[Literal["asc", "desc"], Field(description="asc: oldest first; desc: newest first.")]


def _history_range(start: dt.datetime, end: dt.datetime | None) -> None:
    start, end = as_utc(start) or start, as_utc(end)
    if end is not None and end < start:
        raise InvalidArgument(f"end ({end.isoformat()}) is before start ({start.isoformat()}); swap them.")


def _rows_summary(kind: str, rows: dict[str, list[Any]], token: str | None) -> str:
    counts = ", ".join(f"{voice.symbol(symbol)} {len(items)}" for symbol, items in list(rows.items())[:10])
    total = sum(len(items) for items in rows.values())
    summary = f"{total} {kind}(s)" + (f" ({counts})" if counts else " in that range")
    return summary + ("; more pages: pass next_page_token as page_token." if token else ".")


async def alpaca_get_quotes(
    ctx: Context[Any, Any],
    symbols: Symbols,
    start: Start,
    end: End = None,
    limit: HistoryLimit = 1000,
    sort: Sort = "asc",
    page_token: PageToken = None,
    feed: StockFeed = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, QuotesHistoryResult]:
    """Historical bid/ask quotes of stocks or crypto pairs (one market per call), paginated."""
    _history_range(start, end)
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        page = await call.send(
            call.broker.get_quotes, wanted, start=start, end=end, limit=limit, page_token=page_token,
            feed=feed, sort=sort,
        )  # fmt: skip
    result = QuotesHistoryResult(
        credential=call.credential_name, quotes=page.quotes, next_page_token=page.next_page_token
    )
    return respond(result, _rows_summary("quote", page.quotes, page.next_page_token), rest=smaller_page())


async def alpaca_get_trades(
    ctx: Context[Any, Any],
    symbols: Symbols,
    start: Start,
    end: End = None,
    limit: HistoryLimit = 1000,
    sort: Sort = "asc",
    page_token: PageToken = None,
    feed: StockFeed = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, TradesHistoryResult]:
    """Historical trades of stocks, crypto pairs or option contracts (one market per call), paginated."""
    _history_range(start, end)
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        page = await call.send(
            call.broker.get_trades, wanted, start=start, end=end, limit=limit, page_token=page_token,
            feed=feed, sort=sort,
        )  # fmt: skip
    result = TradesHistoryResult(
        credential=call.credential_name, trades=page.trades, next_page_token=page.next_page_token
    )
    return respond(result, _rows_summary("trade", page.trades, page.next_page_token), rest=smaller_page())


class OrderbooksResult(Bounded):
    credential: str = Field(description="The credential used.")
    orderbooks: dict[str, Orderbook] = Field(description="Order book by pair: bids and asks, best first.")


async def alpaca_get_orderbook(
    ctx: Context[Any, Any],
    symbols: Annotated[
        str, Field(min_length=1, max_length=400, description="Crypto pairs, comma-separated, like BTC/USD.")
    ],
    depth: Annotated[int, Field(ge=1, le=100, description="Levels per side to return.")] = 10,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, OrderbooksResult]:
    """Latest crypto order book (bids and asks) for one or more pairs."""
    wanted = symbols_of(symbols)
    async with alpaca_call(ctx, credential) as call:
        books = await call.send(call.broker.get_orderbook, wanted)
    books = {
        s: b.model_copy(update={"bids": b.bids[:depth], "asks": b.asks[:depth]}) for s, b in books.items()
    }
    if not books:
        raise NoMarketData(", ".join(wanted[:10]), "order book")
    summary = "; ".join(
        f"{voice.symbol(s)}: best bid {b.bids[0].price if b.bids else 'none'}, "
        f"best ask {b.asks[0].price if b.asks else 'none'}"
        for s, b in books.items()
    )
    return respond(
        OrderbooksResult(credential=call.credential_name, orderbooks=books),
        summary + ".",
        rest=lambda kept, omitted: (
            symbols_left_out("alpaca_get_orderbook")(kept, omitted) + ", or a smaller depth"
        ),
    )


class MoversResult(Bounded):
    credential: str = Field(description="The credential used.")
    movers: Movers


class MostActivesResult(Bounded):
    credential: str = Field(description="The credential used.")
    most_actives: MostActives


async def alpaca_get_market_movers(
    ctx: Context[Any, Any],
    market_type: Annotated[Literal["stocks", "crypto"], Field(description="Which market.")] = "stocks",
    top: Annotated[int, Field(ge=1, le=50, description="How many gainers and losers.")] = 10,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, MoversResult]:
    """Today's top gainers and losers by percent change (stocks: since the last close; crypto: 24 hours)."""
    async with alpaca_call(ctx, credential) as call:
        movers = await call.send(call.broker.get_movers, market_type=market_type, top=top)

    def line(items: list[Any]) -> str:
        return ", ".join(f"{voice.symbol(m.symbol)} {m.percent_change}%" for m in items[:5]) or "none"

    summary = f"Top {market_type} movers: gainers {line(movers.gainers)}; losers {line(movers.losers)}."
    return respond(MoversResult(credential=call.credential_name, movers=movers), summary)


async def alpaca_get_most_actives(
    ctx: Context[Any, Any],
    by: Annotated[
        Literal["volume", "trades"], Field(description="Rank by share volume or trade count.")
    ] = "volume",
    top: Annotated[int, Field(ge=1, le=100, description="How many stocks.")] = 10,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, MostActivesResult]:
    """Today's most active stocks by volume or by number of trades."""
    async with alpaca_call(ctx, credential) as call:
        actives = await call.send(call.broker.get_most_actives, by=by, top=top)
    listed = ", ".join(
        f"{voice.symbol(a.symbol)} ({a.volume if by == 'volume' else a.trade_count})"
        for a in actives.most_actives[:10]
    )
    summary = f"{len(actives.most_actives)} most active stock(s) by {by}" + (
        f": {listed}." if listed else "."
    )
    return respond(MostActivesResult(credential=call.credential_name, most_actives=actives), summary)
