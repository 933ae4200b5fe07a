"""Free slots across timezones and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.sessions.scheduling import (
    Busy,
    Window,
    free_slots,
    local_instants,
    local_to_utc,
    parse_clock_time,
    parse_local_date,
    parse_slot_token,
    slot_token,
    split_date,
)

HOUR = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")


def slots(
    windows: list[Window], tz: str, now: datetime, busy: list[Busy] | None = None, days: int = 7
) -> list[datetime]:
    return free_slots(windows, tz, busy or [], now, timedelta(days=days), HOUR, timedelta(0))


def test_window_stays_at_the_mentors_wall_clock_across_spring_forward() -> None:
    """A Sunday 18:00 Berlin window is 17:00 UTC before the change and 16:00 UTC after."""
    sunday = Window(weekday=6, start_minute=18 * 60, end_minute=19 * 60)
    found = slots([sunday], "Europe/Berlin", datetime(2026, 3, 20, tzinfo=UTC), days=10)
    assert found == [datetime(2026, 3, 22, 17, tzinfo=UTC), datetime(2026, 3, 29, 16, tzinfo=UTC)]


def test_nonexistent_local_time_is_not_offered() -> None:
    """02:00–03:00 on the spring-forward night in Berlin does not exist, so no slot there."""
    window = Window(weekday=6, start_minute=1 * 60, end_minute=4 * 60)
    found = slots([window], "Europe/Berlin", datetime(2026, 3, 28, tzinfo=UTC), days=2)
    local_hours = [s.astimezone(BERLIN).hour for s in found]
    assert local_hours == [1, 3]
    assert local_to_utc(datetime(2026, 3, 29).date(), 2 * 60 + 30, BERLIN) is None


def test_repeated_local_time_on_fall_back_is_offered_once() -> None:
    """01:00 happens twice in New York on 1 Nov 2026; it is offered once, at the first."""
    window = Window(weekday=6, start_minute=0, end_minute=3 * 60)
    found = slots([window], "America/New_York", datetime(2026, 10, 31, tzinfo=UTC), days=2)
    assert found == [
        datetime(2026, 11, 1, 4, tzinfo=UTC),  # 00:00 EDT
        datetime(2026, 11, 1, 5, tzinfo=UTC),  # 01:00 EDT (first occurrence)
        datetime(2026, 11, 1, 7, tzinfo=UTC),  # 02:00 EST
    ]


def test_busy_times_and_lead_time_remove_slots() -> None:
    """Booked sessions and slots sooner than the lead time are not offered."""
    monday = Window(weekday=0, start_minute=9 * 60, end_minute=12 * 60)
    now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # Monday, London = UTC in March
    busy = [Busy(datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC))]
    found = free_slots(
        [monday], "Europe/London", busy, now, timedelta(days=1), HOUR, timedelta(hours=1)
    )
    assert found == [datetime(2026, 3, 2, 11, tzinfo=UTC)]


def test_slot_token_round_trips_and_fits_a_button() -> None:
    """A slot's token is short and parses back to the same instant; garbage does not parse."""
    start = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    token = slot_token(start)
    assert parse_slot_token(token) == start
    assert len(f"/book 999999 {token}".encode()) <= 64
    assert parse_slot_token("2026-13-45") is None


@pytest.mark.parametrize(
    ("typed", "minute"),
    [
        ("18:00", 18 * 60),
        ("9:05", 9 * 60 + 5),
        ("6pm", 18 * 60),
        ("6:30 PM", 18 * 60 + 30),
        ("12am", 0),
        ("12pm", 12 * 60),
        ("下午6点", 18 * 60),
        ("晚上7点半", 19 * 60 + 30),
        ("上午9点15分", 9 * 60 + 15),
        ("18点", 18 * 60),
        ("24:00", None),
        ("13pm", None),
        ("6", None),
        ("tonight", None),
    ],
)
def test_clock_times_are_read_as_people_type_them(typed: str, minute: int | None) -> None:
    """The times people type after /book, in English or Chinese; anything else is not read."""
    assert parse_clock_time(typed) == minute


def test_local_dates_and_the_instants_a_local_time_names() -> None:
    """A typed date is a real calendar day; a London time names no instant in the spring gap,
    two in the autumn's repeated hour, one otherwise."""
    assert parse_local_date("2026-12-07") == date(2026, 12, 7)
    assert parse_local_date("2026年12月7日") == date(2026, 12, 7)
    assert parse_local_date("2026-02-30") is None
    assert local_instants(date(2026, 3, 29), 90, "Europe/London") == ()
    assert local_instants(date(2026, 10, 25), 90, "Europe/London") == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    assert local_instants(date(2026, 12, 7), 18 * 60, "Asia/Shanghai") == (
        datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("typed", "today", "day"),
    [
        ("12月7日", date(2026, 12, 2), date(2026, 12, 7)),
        ("12月7号", date(2026, 12, 2), date(2026, 12, 7)),
        ("１２月７日", date(2026, 12, 2), date(2026, 12, 7)),
        ("12月7日", date(2026, 12, 7), date(2026, 12, 7)),  # today itself
        ("12月7日", date(2026, 12, 8), date(2027, 12, 7)),  # passed: next year's
        ("1月3日", date(2026, 12, 30), date(2027, 1, 3)),
        ("2月29日", date(2026, 3, 1), date(2028, 2, 29)),  # the next leap day
        ("2月30日", date(2026, 3, 1), None),
        ("13月1日", date(2026, 3, 1), None),
    ],
)
def test_a_chinese_date_without_its_year_is_the_next_such_day(
    typed: str, today: date, day: date | None
) -> None:
    """`12月7日` is the next 7 December from the reader's today (today included); a day no
    year has is not a date."""
    assert parse_local_date(typed, today) == day


def test_a_date_run_into_its_time_splits_and_a_yearless_date_needs_a_today() -> None:
    """`12月7日下午6点` is a date and a time; without knowing today, `12月7日` is not read."""
    assert split_date("12月7日下午6点", date(2026, 12, 2)) == (date(2026, 12, 7), "下午6点")
    assert split_date("2027年1月3日18:00", date(2026, 12, 2)) == (date(2027, 1, 3), "18:00")
    assert split_date("下午6点", date(2026, 12, 2)) is None
    assert parse_local_date("12月7日") is None
