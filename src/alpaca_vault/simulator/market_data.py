"""Market data payloads in Alpaca's compact JSON: stocks (v2), crypto (v1beta3), options (v1beta1).

Latest values are the price path at now; history is the path sampled on a fixed cadence per
asset class (bars by timeframe, quotes and trades every few seconds), paginated across symbols
the way Alpaca pages: ``limit`` counts rows of all symbols together, the token names where to resume.
"""

from __future__ import annotations

import base64
import math
import re
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from alpaca_vault.simulator import black_scholes
from alpaca_vault.simulator.assets import Asset
from alpaca_vault.simulator.clock import NEW_YORK, MarketClock, exchange_open, is_trading_day, iso, iso_nanos
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.prices import PricePath

_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNIT_SECONDS = {
    "Min": 60,
    "T": 60,
    "Hour": 3600,
    "H": 3600,
    "Day": 86400,
    "D": 86400,
    "Week": 604800,
    "W": 604800,
}
STOCK_FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "otc")
OPTION_FEEDS = ("opra", "indicative")
_SIP_EXCHANGES = "QNPZKVJYX"  # exchange codes a consolidated (SIP) feed reports
_DELAY = 15 * 60.0  # delayed_sip and indicative data run 15 minutes behind
# Seconds between historical quotes and between trades, per asset class.
_TICKS = {"us_equity": (2.0, 5.0), "crypto": (1.0, 3.0), "us_option": (10.0, 60.0)}

Row = dict[str, Any]


def parse_timeframe(text: str) -> tuple[int, str]:
    """(amount, unit) with unit in Min/Hour/Day/Week/Month, validated as Alpaca does."""
    match = _TIMEFRAME.match(text or "")
    if not match:
        raise invalid(f"invalid timeframe: {text!r} (use e.g. 1Min, 5Min, 15Min, 1Hour, 1Day, 1Week, 1Month)")
    amount, unit = int(match.group(1)), match.group(2)
    unit = {"T": "Min", "H": "Hour", "D": "Day", "W": "Week", "M": "Month"}.get(unit, unit)
    limits = {"Min": 59, "Hour": 23, "Day": 1, "Week": 1, "Month": 12}
    if not 1 <= amount <= limits[unit]:
        raise invalid(f"invalid timeframe: {text!r}")
    return amount, unit


def _round(value: float) -> float:
    return round(value, 2)


def _hash(*parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


def _token(symbol: str, t: float) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{t}".encode()).decode()


def _untoken(token: str) -> tuple[str, float]:
    try:
        symbol, _, t_text = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return symbol, float(t_text)
    except (ValueError, UnicodeDecodeError):
        raise invalid("invalid page_token") from None


class MarketData:
    def __init__(self, prices: PricePath, clock: MarketClock) -> None:
        self.prices = prices
        self.clock = clock

    # ------------------------------------------------------------------ one instant

    def data_time(self, now: float, feed: str | None) -> float:
        """Delayed feeds show the market as it was 15 minutes ago."""
        return now - _DELAY if feed in ("delayed_sip", "indicative") else now

    def quote(self, asset: Asset, t: float, feed: str | None = None) -> Row:
        bid, ask = self.prices.quote(asset.symbol, t)
        size = self.prices.volume(asset.symbol, t, 1) % 9 + 1
        if asset.is_crypto:
            return {"t": iso_nanos(t), "bp": float(bid), "bs": size / 10, "ap": float(ask), "as": size / 10}
        if asset.is_option:
            return {
                "t": iso_nanos(t),
                "ax": "C",
                "ap": float(ask),
                "as": size,
                "bx": "C",
                "bp": float(bid),
                "bs": size,
                "c": "A",
            }
        if feed in (None, "iex"):
            ask_x = bid_x = "V"
        else:
            ask_x = _SIP_EXCHANGES[_hash(asset.symbol, int(t), "a") % len(_SIP_EXCHANGES)]
            bid_x = _SIP_EXCHANGES[_hash(asset.symbol, int(t), "b") % len(_SIP_EXCHANGES)]
            size *= 3  # the consolidated book is deeper than IEX alone
        return {
            "t": iso_nanos(t),
            "ax": ask_x,
            "ap": float(ask),
            "as": size,
            "bx": bid_x,
            "bp": float(bid),
            "bs": size,
            "c": ["R"],
            "z": self._tape(asset),
        }

    def trade(self, asset: Asset, t: float, feed: str | None = None) -> Row:
        price = float(self.prices.price(asset.symbol, t))
        trade_id = int(t * 1000) % 10**12
        size = self.prices.volume(asset.symbol, t, 1) % 300 + 1
        if asset.is_crypto:
            return {"t": iso_nanos(t), "p": price, "s": size / 1000, "tks": "B", "i": trade_id}
        if asset.is_option:
            return {"t": iso_nanos(t), "x": "C", "p": price, "s": size % 20 + 1, "c": "I"}
        exchange = (
            "V"
            if feed in (None, "iex")
            else _SIP_EXCHANGES[_hash(asset.symbol, int(t)) % len(_SIP_EXCHANGES)]
        )
        return {
            "t": iso_nanos(t),
            "x": exchange,
            "p": price,
            "s": size,
            "c": ["@"],
            "i": trade_id,
            "z": self._tape(asset),
        }

    def _tape(self, asset: Asset) -> str:
        return {"NASDAQ": "C", "ARCA": "B"}.get(asset.exchange, "A")

    def bar(self, asset: Asset, start: float, seconds: float) -> Row:
        o, h, low, c = self.prices.bar(asset.symbol, start, seconds)
        volume = self.prices.volume(asset.symbol, start, seconds)
        return {
            "t": iso(start).replace(".000000", ""),
            "o": _round(o),
            "h": _round(h),
            "l": _round(low),
            "c": _round(c),
            "v": volume,
            "n": max(1, volume // 40),
            "vw": _round((o + h + low + c) / 4),
        }

    def latest_bar(self, asset: Asset, now: float, feed: str | None = None) -> Row:
        start = math.floor(now / 60) * 60 - 60
        return self.bar(asset, start, 60)

    def day_start(self, t: float) -> float:
        local = datetime.fromtimestamp(t, NEW_YORK)
        return datetime.combine(local.date(), datetime.min.time(), NEW_YORK).timestamp()

    def previous_day_start(self, asset: Asset, now: float) -> float:
        previous = self.day_start(now) - 86400
        if not asset.is_crypto:
            while not is_trading_day(datetime.fromtimestamp(previous + 43200, NEW_YORK).date()):
                previous -= 86400
        return previous

    def snapshot(self, asset: Asset, now: float, feed: str | None = None) -> Row:
        today = self.day_start(now)
        snapshot: Row = {
            "latestTrade": self.trade(asset, now, feed),
            "latestQuote": self.quote(asset, now, feed),
            "minuteBar": self.latest_bar(asset, now),
            "dailyBar": self.bar(asset, today, max(60.0, now - today)),
            "prevDailyBar": self.bar(asset, self.previous_day_start(asset, now), 86400),
        }
        if asset.is_option:
            snapshot.update(self.option_analytics(asset, now))
        return snapshot

    def option_analytics(self, contract: Asset, t: float) -> Row:
        """``impliedVolatility`` and ``greeks`` from Black-Scholes at the quote's mid (absent when undefined)."""
        assert contract.underlying is not None and contract.strike is not None
        years = self.prices.years_to_expiry(contract, t)
        bid, ask = self.prices.quote(contract.symbol, t)
        spot = self.prices.raw(contract.underlying, t)
        call = contract.option_type == "call"
        strike = float(contract.strike)
        vol = black_scholes.implied_volatility(call, float(bid + ask) / 2, spot, strike, years)
        if vol is None:
            return {}
        g = black_scholes.greeks(call, spot, strike, years, vol)
        return {
            "impliedVolatility": round(vol, 6),
            "greeks": {
                "delta": round(g.delta, 4),
                "gamma": round(g.gamma, 4),
                "rho": round(g.rho, 4),
                "theta": round(g.theta, 4),
                "vega": round(g.vega, 4),
            },
        }

    def orderbook(self, asset: Asset, t: float, depth: int = 20) -> Row:
        """A crypto order book: ``depth`` levels a side, stepping away from the quote."""
        bid, ask = self.prices.quote(asset.symbol, t)
        tick = max(0.01, round(float(ask) * 0.00002, 2))

        def size(side: str, level: int) -> float:
            return round((_hash(asset.symbol, int(t), side, level) % 5000 + 1) / 1000, 3)

        return {
            "t": iso_nanos(t),
            "b": [{"p": round(float(bid) - i * tick, 2), "s": size("b", i)} for i in range(depth)],
            "a": [{"p": round(float(ask) + i * tick, 2), "s": size("a", i)} for i in range(depth)],
        }

    # ------------------------------------------------------------------ sampling times

    def _intraday(self, asset: Asset, step: float, start: float, end: float, limit: int) -> list[float]:
        """Times in [start, end) on a ``step`` grid, inside exchange hours when the clock keeps them."""
        times: list[float] = []
        t = math.ceil(start / step) * step
        hours_only = self.clock.mode == "exchange_hours" and not asset.is_crypto
        while t < end and len(times) < limit:
            if hours_only and not exchange_open(t):
                t = max(t + step, math.ceil(self.clock.next_open(t).timestamp() / step) * step)
                continue
            times.append(t)
            t += step
        return times

    def bar_starts(
        self, asset: Asset, amount: int, unit: str, start: float, end: float, limit: int
    ) -> list[float]:
        """Bar start times in [start, end), aligned to the timeframe, at most ``limit``."""
        if unit in ("Min", "Hour"):
            return self._intraday(asset, amount * _UNIT_SECONDS[unit], start, end, limit)
        starts: list[float] = []
        local = datetime.fromtimestamp(start, NEW_YORK)
        day = local.date() if local.time() == datetime.min.time() else local.date() + timedelta(days=1)
        if unit == "Week":
            day += timedelta(days=(7 - day.weekday()) % 7)
        if unit == "Month" and day.day != 1:
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        while len(starts) < limit:
            midnight = datetime.combine(day, datetime.min.time(), NEW_YORK).timestamp()
            if midnight >= end:
                break
            if unit == "Day":
                if asset.is_crypto or is_trading_day(day):
                    starts.append(midnight)
                day += timedelta(days=1)
            elif unit == "Week":
                starts.append(midnight)
                day += timedelta(days=7)
            else:
                starts.append(midnight)
                month = day.month - 1 + amount
                day = day.replace(year=day.year + month // 12, month=month % 12 + 1)
        return starts

    def bar_length(self, amount: int, unit: str, start: float) -> float:
        if unit == "Month":
            local = datetime.fromtimestamp(start, NEW_YORK)
            month = local.month - 1 + amount
            following = local.replace(year=local.year + month // 12, month=month % 12 + 1)
            return following.timestamp() - start
        return float(amount * _UNIT_SECONDS[unit])

    # ------------------------------------------------------------------ history, paginated

    def _paged(
        self,
        assets: list[Asset],
        start: float,
        end: float,
        limit: int,
        page_token: str | None,
        descending: bool,
        times: Callable[[Asset, float, float, int], list[float]],
        row: Callable[[Asset, float], Row],
    ) -> tuple[dict[str, list[Row]], str | None]:
        resume_symbol, resume_t = _untoken(page_token) if page_token else (None, None)
        out: dict[str, list[Row]] = {}
        total = 0
        for asset in sorted(assets, key=lambda a: a.symbol):
            if resume_symbol is not None and asset.symbol < resume_symbol:
                continue
            resuming = resume_symbol == asset.symbol and resume_t is not None
            first = resume_t if (resuming and not descending and resume_t is not None) else start
            last = resume_t + 1e-6 if (resuming and descending and resume_t is not None) else end
            # Descending needs the whole range to start from its end; bounded all the same.
            found = times(asset, first, last, 100_000 if descending else limit - total + 1)
            if descending:
                found.reverse()
            rows: list[Row] = []
            for t in found:
                if total == limit:
                    if rows:
                        out[asset.symbol] = rows
                    return out, _token(asset.symbol, t)
                rows.append(row(asset, t))
                total += 1
            if rows:
                out[asset.symbol] = rows
        return out, None

    def _range(
        self, start: float | None, end: float | None, default_span: float | None
    ) -> tuple[float, float]:
        now = self.clock.now()
        end = min(end if end is not None else now, now)
        if start is None:
            start = self.day_start(now) if default_span is None else now - default_span
        return start, end

    def bars(
        self,
        assets: list[Asset],
        timeframe: str,
        start: float | None,
        end: float | None,
        limit: int,
        page_token: str | None,
        descending: bool,
    ) -> tuple[dict[str, list[Row]], str | None]:
        """Bars per symbol; ``start`` defaults to today for intraday timeframes, else 30 days back."""
        amount, unit = parse_timeframe(timeframe)
        first, last = self._range(start, end, None if unit in ("Min", "Hour") else 30 * 86400)
        return self._paged(
            assets,
            first,
            last,
            limit,
            page_token,
            descending,
            lambda a, s, e, n: self.bar_starts(a, amount, unit, s, e, n),
            lambda a, t: self.bar(a, t, self.bar_length(amount, unit, t)),
        )

    def ticks(
        self,
        kind: str,
        assets: list[Asset],
        start: float | None,
        end: float | None,
        limit: int,
        page_token: str | None,
        descending: bool,
        feed: str | None = None,
    ) -> tuple[dict[str, list[Row]], str | None]:
        """Historical ``quotes`` or ``trades`` per symbol; ``start`` defaults to the start of today."""
        first, last = self._range(start, end, None)
        index = 0 if kind == "quotes" else 1
        make = self.quote if kind == "quotes" else self.trade
        return self._paged(
            assets,
            first,
            last,
            limit,
            page_token,
            descending,
            lambda a, s, e, n: self._intraday(a, _TICKS[a.asset_class][index], s, e, n),
            lambda a, t: make(a, t, feed),
        )
