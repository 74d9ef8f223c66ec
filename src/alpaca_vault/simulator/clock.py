"""Simulator time and the US equity exchange calendar (America/New_York).

Regular sessions run 9:30-16:00 on weekdays, except NYSE holidays (New Year's Day, Martin Luther
King Jr. Day, Washington's Birthday, Good Friday, Memorial Day, Juneteenth, Independence Day, Labor
Day, Thanksgiving, Christmas; moved to the Friday before or the Monday after when they fall on a
weekend) and early closes at 13:00 (the day before Independence Day, the day after Thanksgiving,
Christmas Eve).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from alpaca_vault.simulator.config import ClockMode

NEW_YORK = ZoneInfo("America/New_York")
OPEN = dtime(9, 30)
CLOSE = dtime(16, 0)
EARLY_CLOSE = dtime(13, 0)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday of a month (n = -1: the last)."""
    if n < 0:
        last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    lw = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * lw) // 433
    month = (h + lw - 7 * m + 90) // 25
    return date(year, month, (h + lw - 7 * m + 33 * month + 19) % 32)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@functools.lru_cache(maxsize=256)
def holidays(year: int) -> frozenset[date]:
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    if date(year, 1, 1).weekday() != 5:  # NYSE does not close on a Friday for a Saturday New Year
        days.add(_observed(date(year, 1, 1)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


@functools.lru_cache(maxsize=256)
def early_closes(year: int) -> frozenset[date]:
    candidates = [
        date(year, 7, 3),
        _nth_weekday(year, 11, 3, 4) + timedelta(days=1),  # the day after Thanksgiving
        date(year, 12, 24),
    ]
    return frozenset(d for d in candidates if d.weekday() < 5 and d not in holidays(year))


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def session(day: date) -> tuple[datetime, datetime] | None:
    """(open, close) of the day's regular session in New York time, or None when closed."""
    if not is_trading_day(day):
        return None
    close = EARLY_CLOSE if day in early_closes(day.year) else CLOSE
    return datetime.combine(day, OPEN, NEW_YORK), datetime.combine(day, close, NEW_YORK)


def next_trading_day(day: date) -> date:
    day += timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


class MarketClock:
    """Wall-clock time plus an offset that tests can advance; always open or real exchange hours."""

    def __init__(self, mode: ClockMode = "always_open", report_always_open: bool = False) -> None:
        self.mode: ClockMode = mode
        self.report_always_open = report_always_open
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

    def reports_open(self, t: float) -> bool:
        """What ``GET /v2/clock`` says: the real session, unless always-open was asked to say so."""
        if self.mode == "always_open" and self.report_always_open:
            return True
        return exchange_open(t)

    def last_close(self, t: float) -> float:
        """The most recent session close strictly before ``t``."""
        close, following = self._close_window
        if close < t <= following:  # hot path: GET /v2/account asks this on every request
            return close
        day = datetime.fromtimestamp(t, NEW_YORK).date()
        while True:
            hours = session(day)
            if hours is not None and hours[1].timestamp() < t:
                close = hours[1].timestamp()
                self._close_window = (close, self.next_close(close).timestamp())
                return close
            day -= timedelta(days=1)

    def next_open(self, t: float) -> datetime:
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            hours = session(day)
            if hours is not None and hours[0] > local:
                return hours[0]
            day += timedelta(days=1)

    def next_close(self, t: float) -> datetime:
        local = datetime.fromtimestamp(t, NEW_YORK)
        day = local.date()
        while True:
            hours = session(day)
            if hours is not None and hours[1] > local:
                return hours[1]
            day += timedelta(days=1)


def exchange_open(t: float) -> bool:
    local = datetime.fromtimestamp(t, NEW_YORK)
    hours = session(local.date())
    return hours is not None and hours[0] <= local < hours[1]


def trading_days(start: date, end: date) -> list[date]:
    days = []
    day = start
    while day <= end:
        if is_trading_day(day):
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
