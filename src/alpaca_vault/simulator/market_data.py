"""Market Data v2 (stocks) and v1beta3 (crypto) payloads in Alpaca's compact JSON shapes."""

from __future__ import annotations

import base64
import math
import re
from datetime import datetime, timedelta
from typing import Any

from alpaca_vault.simulator.clock import NEW_YORK, MarketClock, exchange_open, iso, iso_nanos
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.prices import Asset, PricePath

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


class MarketData:
    def __init__(self, prices: PricePath, clock: MarketClock) -> None:
        self.prices = prices
        self.clock = clock

    def quote(self, asset: Asset, t: float) -> dict[str, Any]:
        bid, ask = self.prices.quote(asset.symbol, t)
        size = self.prices.volume(asset.symbol, t, 1) % 9 + 1
        if asset.is_crypto:
            return {"t": iso_nanos(t), "bp": float(bid), "bs": size / 10, "ap": float(ask), "as": size / 10}
        return {
            "t": iso_nanos(t),
            "ax": "V",
            "ap": float(ask),
            "as": size,
            "bx": "V",
            "bp": float(bid),
            "bs": size,
            "c": ["R"],
            "z": "C" if asset.exchange == "NASDAQ" else "A",
        }

    def trade(self, asset: Asset, t: float) -> dict[str, Any]:
        price = float(self.prices.price(asset.symbol, t))
        trade_id = int(t * 1000) % 10**12
        size = self.prices.volume(asset.symbol, t, 1) % 300 + 1
        if asset.is_crypto:
            return {"t": iso_nanos(t), "p": price, "s": size / 1000, "tks": "B", "i": trade_id}
        return {"t": iso_nanos(t), "x": "V", "p": price, "s": size, "c": ["@"], "i": trade_id, "z": "C"}

    def bar(self, asset: Asset, start: float, seconds: float) -> dict[str, Any]:
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

    def latest_bar(self, asset: Asset, now: float) -> dict[str, Any]:
        start = math.floor(now / 60) * 60 - 60
        return self.bar(asset, start, 60)

    def _day_start(self, t: float) -> float:
        local = datetime.fromtimestamp(t, NEW_YORK)
        return datetime.combine(local.date(), datetime.min.time(), NEW_YORK).timestamp()

    def snapshot(self, asset: Asset, now: float) -> dict[str, Any]:
        today = self._day_start(now)
        previous = today - 86400
        if not asset.is_crypto:
            while datetime.fromtimestamp(previous + 43200, NEW_YORK).weekday() >= 5:
                previous -= 86400
        return {
            "latestTrade": self.trade(asset, now),
            "latestQuote": self.quote(asset, now),
            "minuteBar": self.latest_bar(asset, now),
            "dailyBar": self.bar(asset, today, max(60.0, now - today)),
            "prevDailyBar": self.bar(asset, previous, 86400),
        }

    def bar_starts(
        self, asset: Asset, amount: int, unit: str, start: float, end: float, limit: int
    ) -> list[float]:
        """Bar start times in [start, end), aligned to the timeframe, at most ``limit``."""
        starts: list[float] = []
        if unit in ("Min", "Hour"):
            step = amount * _UNIT_SECONDS[unit]
            t = math.ceil(start / step) * step
            hours_only = self.clock.mode == "exchange_hours" and not asset.is_crypto
            while t < end and len(starts) < limit:
                if hours_only and not exchange_open(t):
                    t = max(t + step, math.ceil(self.clock.next_open(t).timestamp() / step) * step)
                    continue
                starts.append(t)
                t += step
            return starts
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
                if asset.is_crypto or day.weekday() < 5:
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

    def bars(
        self,
        assets: list[Asset],
        timeframe: str,
        start: float | None,
        end: float | None,
        limit: int,
        page_token: str | None,
        descending: bool,
    ) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """Bars per symbol, paginated across symbols the way Alpaca pages: limit counts all bars."""
        amount, unit = parse_timeframe(timeframe)
        now = self.clock.now()
        end = min(end if end is not None else now, now)
        if start is None:
            start = self._day_start(now) if unit in ("Min", "Hour") else now - 30 * 86400
        resume_symbol, resume_t = None, None
        if page_token:
            try:
                resume_symbol, _, t_text = (
                    base64.urlsafe_b64decode(page_token.encode()).decode().partition("|")
                )
                resume_t = float(t_text)
            except (ValueError, UnicodeDecodeError):
                raise invalid("invalid page_token") from None
        out: dict[str, list[dict[str, Any]]] = {}
        total = 0
        ordered = sorted(assets, key=lambda a: a.symbol)
        for asset in ordered:
            if resume_symbol is not None and asset.symbol < resume_symbol:
                continue
            resuming = resume_symbol == asset.symbol and resume_t is not None
            first = resume_t if (resuming and not descending and resume_t is not None) else start
            last = resume_t + 1 if (resuming and descending and resume_t is not None) else end
            # Descending needs the whole range to start from its end; bounded all the same.
            starts = self.bar_starts(
                asset, amount, unit, first, last, 100_000 if descending else limit - total + 1
            )
            if descending:
                starts.reverse()
            rows: list[dict[str, Any]] = []
            for t in starts:
                if total == limit:
                    token = base64.urlsafe_b64encode(f"{asset.symbol}|{t}".encode()).decode()
                    if rows:
                        out[asset.symbol] = rows
                    return out, token
                rows.append(self.bar(asset, t, self.bar_length(amount, unit, t)))
                total += 1
            if rows:
                out[asset.symbol] = rows
        return out, None
