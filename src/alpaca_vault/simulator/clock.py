"""Simulator time and US equity market hours (America/New_York, 9:30-16:00 on weekdays).

Holidays and early closes are not modelled: every weekday is a full session.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from alpaca_vault.simulator.config import ClockMode

NEW_YORK = ZoneInfo("America/New_York")
OPEN = dtime(9, 30)
CLOSE = dtime(16, 0)


class MarketClock:
    """Wall-clock time plus an offset that tests can advance; always open or real exchange hours."""

    def __init__(self, mode: ClockMode = "always_open") -> None:
        self.mode: ClockMode = mode
        self.offset = 0.0
        self._close_window = (0.0, 0.0)  # (a close, the next close): last_close's cache

    def now(self) -> float:
        # Microseconds, as timestamps are written: a time read back from JSON compares equal.
        return round((time.time() + self.offset) * 1_000_000) / 1_000_000

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def is_open(self, t: float) -> bool:
        if self.mode == "always_open":
            return True
        return exchange_open(t)

    def last_close(self, t: float) -> float:
        """The most recent 16:00 New York close strictly before ``t``."""
        close, following = self._close_window
        if close < t <= following:  # hot path: GET /v2/account asks this on every request
            return close
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            candidate = datetime.combine(day, CLOSE, NEW_YORK)
            if day.weekday() < 5 and candidate.timestamp() < t:
                close = candidate.timestamp()
                self._close_window = (close, self.next_close(close).timestamp())
                return close
            day -= timedelta(days=1)

    def next_open(self, t: float) -> datetime:
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            candidate = datetime.combine(day, OPEN, NEW_YORK)
            if day.weekday() < 5 and candidate > local:
                return candidate
            day += timedelta(days=1)

    def next_close(self, t: float) -> datetime:
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            candidate = datetime.combine(day, CLOSE, NEW_YORK)
            if day.weekday() < 5 and candidate > local:
                return candidate
            day += timedelta(days=1)


def exchange_open(t: float) -> bool:
    local = datetime.fromtimestamp(t, NEW_YORK)
    return local.weekday() < 5 and OPEN <= local.time() < CLOSE


def trading_days(start: date, end: date) -> list[date]:
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def iso(t: float) -> str:
    """RFC 3339 UTC with microseconds and a Z, as Alpaca's trading API writes timestamps."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_nanos(t: float) -> str:
    """Market data timestamps carry nanoseconds."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp or a YYYY-MM-DD date (midnight UTC) to unix seconds."""
    text = value.strip().replace(" ", "+")  # a raw '+' in a query string arrives as a space
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        # Python 3.11 accepts at most 6 fraction digits; market data sends 9.
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
