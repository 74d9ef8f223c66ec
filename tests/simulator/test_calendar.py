"""The exchange calendar: holidays and early closes in /v2/calendar and /v2/clock, and a clock that
tells the truth about the session unless asked to say the market is always open."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetCalendarRequest, MarketOrderRequest

from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread
from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.conftest import no_retries

NEW_YORK = ZoneInfo("America/New_York")


def test_calendar_skips_holidays_and_marks_early_closes(trading: TradingClient) -> None:
    days = {
        d.date: d
        for d in trading.get_calendar(GetCalendarRequest(start=date(2026, 1, 1), end=date(2026, 12, 31)))
    }
    holidays_2026 = [
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 4, 3),  # Good Friday
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),  # Independence Day falls on a Saturday
        date(2026, 9, 7),
        date(2026, 11, 26),
        date(2026, 12, 25),
    ]
    assert not set(holidays_2026) & set(days)
    assert len(days) == 251
    assert days[date(2026, 11, 27)].close.time() == time(13, 0)  # the day after Thanksgiving
    assert days[date(2026, 12, 24)].close.time() == time(13, 0)
    assert days[date(2026, 12, 23)].close.time() == time(16, 0)

    raw = trading.get("/calendar", {"start": "2026-04-02", "end": "2026-04-02"})
    assert raw[0]["settlement_date"] == "2026-04-06"  # over Good Friday and the weekend


def _advance_to(handle: SimulatorHandle, target: datetime) -> None:
    seconds = (target - datetime.now(NEW_YORK)).total_seconds()
    handle.advance_clock(max(0.0, seconds))


def _next(weekday_ok: bool, at: time) -> datetime:
    day = datetime.now(NEW_YORK).date() + timedelta(days=1)
    while (day.weekday() < 5) != weekday_ok:
        day += timedelta(days=1)
    return datetime.combine(day, at, NEW_YORK)


def test_always_open_clock_does_not_claim_the_market_is_open_at_night() -> None:
    with serve_in_thread(create_app(SimulatorConfig())) as base_url:
        handle = SimulatorHandle(base_url)
        account = handle.new_account()
        trading = TradingClient(account.api_key, account.secret_key, paper=True, url_override=base_url)
        no_retries(trading)
        _advance_to(handle, _next(True, time(2, 38)))
        clock = trading.get_clock()
        assert clock.is_open is False
        assert clock.next_open.astimezone(NEW_YORK).time() == time(9, 30)
        assert clock.next_close > clock.next_open
        # It is still always open for trading: a market order fills at 02:38.
        order = trading.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day")
        )
        assert order.filled_qty == "1"
        handle.close()


def test_asked_to_the_always_open_clock_says_open() -> None:
    with serve_in_thread(create_app(SimulatorConfig(report_always_open=True))) as base_url:
        handle = SimulatorHandle(base_url)
        account = handle.new_account()
        trading = TradingClient(account.api_key, account.secret_key, paper=True, url_override=base_url)
        _advance_to(handle, _next(True, time(2, 38)))
        assert trading.get_clock().is_open is True
        handle.close()


def test_exchange_hours_clock_is_closed_on_a_holiday() -> None:
    with serve_in_thread(create_app(SimulatorConfig(clock="exchange_hours"))) as base_url:
        handle = SimulatorHandle(base_url)
        account = handle.new_account()
        trading = TradingClient(account.api_key, account.secret_key, paper=True, url_override=base_url)
        today = datetime.now(NEW_YORK).date()
        christmas = date(today.year, 12, 25)
        if christmas <= today or christmas.weekday() >= 5:
            christmas = date(today.year + 1, 12, 25)
        while christmas.weekday() >= 5:
            christmas = date(christmas.year + 1, 12, 25)
        _advance_to(handle, datetime.combine(christmas, time(11, 0), NEW_YORK))
        clock = trading.get_clock()
        assert clock.is_open is False
        assert clock.next_open.astimezone(NEW_YORK).date() > christmas
        handle.close()
