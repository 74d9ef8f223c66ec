"""Market data: latest quotes, trades and bars, snapshots, history, crypto order books, screeners.

A symbol is a stock ticker, a crypto pair (BTC/USD) or an OCC option symbol; the methods that take
several symbols group them by market and ask each of Alpaca's data endpoints for its own:

==========  ==========================  ==============================  ============================
market      latest quote / trade / bar  snapshots                       history (bars, quotes, trades)
==========  ==========================  ==============================  ============================
stocks      /v2/stocks/{kind}/latest    /v2/stocks/snapshots            /v2/stocks/{kind}
crypto      /v1beta3/crypto/us/latest/  /v1beta3/crypto/us/snapshots    /v1beta3/crypto/us/{kind}
options     /v1beta1/options/{kind}/    /v1beta1/options/snapshots      /v1beta1/options/{bars,trades}
            latest (no latest bar: the
            snapshot's minute bar)
fixed       /v1beta1/fixed_income/
income      latest/quotes (by ISIN)
==========  ==========================  ==============================  ============================

The option exchange codes quotes and trades cite (``/v1beta1/options/meta/exchanges``) are a static
table: it is fetched once per process and kept (it is public reference data, not the account's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from . import arguments as args
from .errors import AlpacaBadResponse, InvalidRequestError
from .models import (
    AssetKind,
    Bar,
    BarsPage,
    MostActives,
    Movers,
    OptionFeed,
    Orderbook,
    Quote,
    QuotesPage,
    Snapshot,
    SortDirection,
    StockFeed,
    Trade,
    TradesPage,
    is_isin,
)
from .transport import AlpacaKeys, AlpacaTransport, M

CRYPTO = "/v1beta3/crypto/us"
OPTIONS = "/v1beta1/options"
FIXED_INCOME = "/v1beta1/fixed_income"
Latest = Literal["quotes", "trades", "bars"]
History = Literal["bars", "quotes", "trades"]
Adjustment = Literal["raw", "split", "dividend", "all"]
Time = dt.datetime | dt.date | str


class MarketDataApi(AlpacaTransport):
    _option_exchanges: dict[str, str] | None = None  # the static code table, once fetched

    # ------------------------------------------------------------------ latest

    def _by_symbol(self, model: type[M], raw: dict[str, Any]) -> dict[str, M]:
        """Alpaca files each symbol's object under the symbol: parse each, naming its symbol."""
        return {
            sym: self._parse(model, {**v, "symbol": sym}) for sym, v in raw.items() if isinstance(v, dict)
        }

    def _stock_params(self, feed: StockFeed | None) -> dict[str, Any]:
        return {"feed": feed or self._stock_feed}

    async def _latest(
        self,
        keys: AlpacaKeys,
        groups: dict[AssetKind, list[str]],
        kind: Latest,
        feed: StockFeed | None,
        option_feed: OptionFeed | None,
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        if stocks := groups.get("stock"):
            params = {"symbols": ",".join(stocks), **self._stock_params(feed)}
            merged.update(
                args.section(await self._get(keys, self._data(f"/v2/stocks/{kind}/latest"), params), kind)
            )
        if crypto := groups.get("crypto"):
            url = self._data(f"{CRYPTO}/latest/{kind}")
            merged.update(args.section(await self._get(keys, url, {"symbols": ",".join(crypto)}), kind))
        if (options := groups.get("option")) and kind != "bars":
            url = self._data(f"{OPTIONS}/{kind}/latest")
            payload = await self._get(keys, url, {"symbols": ",".join(options), "feed": option_feed})
            merged.update(args.section(payload, kind))
        return merged

    async def get_latest_quote(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
    ) -> dict[str, Quote]:
        """Latest quote per symbol (stocks, crypto pairs, option contracts and ISINs of fixed-income
        securities may be mixed). A fixed-income quote's prices are in percent of par, with yields."""
        wanted = args.symbols(symbols)
        isins = [s for s in wanted if is_isin(s)]
        others = [s for s in wanted if not is_isin(s)]
        raw = await self._latest(keys, args.by_kind(others), "quotes", feed, option_feed) if others else {}
        if isins:
            url = self._data(f"{FIXED_INCOME}/latest/quotes")
            raw.update(args.section(await self._get(keys, url, {"isins": ",".join(isins)}), "quotes"))
        return self._by_symbol(Quote, raw)

    async def get_latest_trade(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
    ) -> dict[str, Trade]:
        """Latest trade per symbol (stocks, crypto pairs and option contracts may be mixed)."""
        raw = await self._latest(keys, args.by_kind(symbols), "trades", feed, option_feed)
        return self._by_symbol(Trade, raw)

    async def get_latest_bar(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
    ) -> dict[str, Bar]:
        """Latest minute bar per symbol; an option contract's comes from its snapshot (Alpaca has no
        latest-bar endpoint for options). A symbol without a bar yet is left out."""
        groups = args.by_kind(symbols)
        raw = await self._latest(keys, groups, "bars", feed, option_feed)
        bars = {sym: self._parse(Bar, b) for sym, b in raw.items() if isinstance(b, dict)}
        if options := groups.get("option"):
            snapshots = await self._option_snapshots(keys, options, option_feed)
            bars.update({sym: s.minute_bar for sym, s in snapshots.items() if s.minute_bar is not None})
        return bars

    async def get_snapshot(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
    ) -> dict[str, Snapshot]:
        """Latest trade, quote, minute bar, daily and previous daily bar per symbol; option contracts
        add implied volatility and greeks."""
        groups = args.by_kind(symbols)
        merged: dict[str, Any] = {}
        if stocks := groups.get("stock"):
            params = {"symbols": ",".join(stocks), **self._stock_params(feed)}
            payload = await self._get(keys, self._data("/v2/stocks/snapshots"), params)
            # Stock snapshots come keyed by symbol at the top level; crypto's under "snapshots".
            merged.update(args.section(payload, "snapshots", top_level_ok=True))
        if crypto := groups.get("crypto"):
            payload = await self._get(keys, self._data(f"{CRYPTO}/snapshots"), {"symbols": ",".join(crypto)})
            merged.update(args.section(payload, "snapshots", top_level_ok=True))
        snapshots = self._by_symbol(Snapshot, merged)
        if options := groups.get("option"):
            snapshots.update(await self._option_snapshots(keys, options, option_feed))
        return snapshots

    async def _option_snapshots(
        self, keys: AlpacaKeys, options: list[str], feed: OptionFeed | None
    ) -> dict[str, Snapshot]:
        params = {"symbols": ",".join(options), "feed": feed, "limit": len(options)}
        payload = await self._get(keys, self._data(f"{OPTIONS}/snapshots"), params)
        return self._by_symbol(Snapshot, args.section(payload, "snapshots"))

    async def get_option_exchanges(self, keys: AlpacaKeys) -> dict[str, str]:
        """Option exchange code -> exchange name (the codes in option quotes and trades), kept once fetched."""
        if self._option_exchanges is not None:
            return dict(self._option_exchanges)
        payload = await self._get(keys, self._data(f"{OPTIONS}/meta/exchanges"))
        if not isinstance(payload, dict):
            raise AlpacaBadResponse(200, None, "Alpaca's option exchange codes were not an object")
        table = {str(code)[:8]: str(name)[:80] for code, name in list(payload.items())[:100]}
        self._option_exchanges = table
        return dict(table)

    # ------------------------------------------------------------------ history

    async def _history(
        self,
        keys: AlpacaKeys,
        kind: History,
        symbols: str | Sequence[str],
        params: dict[str, Any],
        *,
        feed: StockFeed | None,
        option_feed: OptionFeed | None,
        adjustment: Adjustment | None = None,
    ) -> dict[str, Any]:
        groups = args.by_kind(symbols)
        if len(groups) > 1:
            raise InvalidRequestError(
                f"ask for the {kind} of stocks, crypto pairs and option contracts in separate calls (pages differ)."
            )
        ((market, chosen),) = groups.items()
        params = {**params, "symbols": ",".join(chosen)}
        if market == "stock":
            params.update(self._stock_params(feed))
            if adjustment is not None:
                params["adjustment"] = adjustment
            url = self._data(f"/v2/stocks/{kind}")
        elif market == "crypto":
            url = self._data(f"{CRYPTO}/{kind}")
        else:
            if kind == "quotes":
                raise InvalidRequestError(
                    "Alpaca keeps no quote history for option contracts: ask for their latest quote or snapshot."
                )
            params["feed"] = option_feed
            url = self._data(f"{OPTIONS}/{kind}")
        payload = await self._get(keys, url, params)
        if not isinstance(payload, dict):
            raise AlpacaBadResponse(200, None, f"Alpaca's {kind} answer was not an object")
        return {kind: payload.get(kind) or {}, "next_page_token": payload.get("next_page_token")}

    @staticmethod
    def _range(
        start: Time | None,
        end: Time | None,
        limit: int | None,
        page_token: str | None,
        sort: SortDirection | None,
    ) -> dict[str, Any]:
        return {
            "start": args.time_param(start, "start"),
            "end": args.time_param(end, "end"),
            "limit": args.limit_param(limit, 10_000),
            "page_token": args.page_token(page_token),
            "sort": sort,
        }

    async def get_bars(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        timeframe: str = "1Day",
        start: Time | None = None,
        end: Time | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
        adjustment: Adjustment | None = None,
        sort: SortDirection | None = None,
    ) -> BarsPage:
        """One page of bars per symbol; pass next_page_token back as page_token for more."""
        params = {"timeframe": args.timeframe(timeframe), **self._range(start, end, limit, page_token, sort)}
        page = await self._history(
            keys, "bars", symbols, params, feed=feed, option_feed=option_feed, adjustment=adjustment
        )
        return self._parse(BarsPage, page)

    async def get_quotes(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        start: Time | None = None,
        end: Time | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        feed: StockFeed | None = None,
        sort: SortDirection | None = None,
    ) -> QuotesPage:
        """One page of historical quotes per symbol (stocks or crypto pairs)."""
        params = self._range(start, end, limit, page_token, sort)
        return self._parse(QuotesPage, await self._ticks(keys, "quotes", symbols, params, feed, None))

    async def get_trades(
        self,
        keys: AlpacaKeys,
        symbols: str | Sequence[str],
        *,
        start: Time | None = None,
        end: Time | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        feed: StockFeed | None = None,
        option_feed: OptionFeed | None = None,
        sort: SortDirection | None = None,
    ) -> TradesPage:
        """One page of historical trades per symbol (stocks, crypto pairs or option contracts)."""
        params = self._range(start, end, limit, page_token, sort)
        return self._parse(TradesPage, await self._ticks(keys, "trades", symbols, params, feed, option_feed))

    async def _ticks(
        self,
        keys: AlpacaKeys,
        kind: Literal["quotes", "trades"],
        symbols: str | Sequence[str],
        params: dict[str, Any],
        feed: StockFeed | None,
        option_feed: OptionFeed | None,
    ) -> dict[str, Any]:
        """A page of quotes or trades, each tick naming its symbol (Alpaca files them under it)."""
        page = await self._history(keys, kind, symbols, params, feed=feed, option_feed=option_feed)
        ticks = {
            sym: [{**tick, "symbol": sym} for tick in items if isinstance(tick, dict)]
            for sym, items in _per_symbol(page[kind]).items()
        }
        return {kind: ticks, "next_page_token": page["next_page_token"]}

    # ------------------------------------------------------------------ crypto books and screeners

    async def get_orderbook(self, keys: AlpacaKeys, symbols: str | Sequence[str]) -> dict[str, Orderbook]:
        """The latest order book (bids and asks) per crypto pair."""
        groups = args.by_kind(symbols)
        if set(groups) != {"crypto"}:
            raise InvalidRequestError("order books exist for crypto pairs only (like BTC/USD).")
        url = self._data(f"{CRYPTO}/latest/orderbooks")
        raw = args.section(await self._get(keys, url, {"symbols": ",".join(groups["crypto"])}), "orderbooks")
        return self._by_symbol(Orderbook, raw)

    async def get_most_actives(
        self, keys: AlpacaKeys, *, by: Literal["volume", "trades"] = "volume", top: int = 10
    ) -> MostActives:
        """Today's most active stocks, by share volume or by number of trades."""
        if by not in ("volume", "trades"):
            raise InvalidRequestError("by must be 'volume' or 'trades'.")
        params = {"by": by, "top": args.limit_param(top, 100, "top")}
        url = self._data("/v1beta1/screener/stocks/most-actives")
        return self._parse(MostActives, await self._get(keys, url, params))

    async def get_movers(
        self, keys: AlpacaKeys, *, market_type: Literal["stocks", "crypto"] = "stocks", top: int = 10
    ) -> Movers:
        """Today's top gainers and losers of a market."""
        if market_type not in ("stocks", "crypto"):
            raise InvalidRequestError("market_type must be 'stocks' or 'crypto'.")
        url = self._data(f"/v1beta1/screener/{market_type}/movers")
        return self._parse(Movers, await self._get(keys, url, {"top": args.limit_param(top, 50, "top")}))


def _per_symbol(value: Any) -> dict[str, list[Any]]:
    if not isinstance(value, dict):
        raise AlpacaBadResponse(200, None, "Alpaca's market data answer was not keyed by symbol")
    return {sym: items for sym, items in value.items() if isinstance(items, list)}
