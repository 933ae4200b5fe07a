"""Free slots: a mentor's weekly windows, in their own timezone, turned into UTC instants.

Windows are wall-clock times in the mentor's IANA zone, so "Mondays 18:00" stays 18:00 for the
mentor across daylight-saving changes. A local time that does not exist (skipped by a
spring-forward) is not offered; an ambiguous one (repeated by a fall-back) is offered once, at
its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core import words

WEEKDAYS = words.WEEKDAY_CODES


@dataclass(frozen=True)
class Window:
    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class Busy:
    start: datetime
    end: datetime


def local_to_utc(day: date, minute: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, or None if that local time never happens."""
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    local = naive.replace(tzinfo=tz, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return instant


def free_slots(
    windows: Sequence[Window],
    mentor_tz: str,
    busy: Iterable[Busy],
    now: datetime,
    horizon: timedelta,
    duration: timedelta,
    lead: timedelta,
) -> list[datetime]:
    """Every slot start (UTC) in the mentor's windows from now+lead to now+horizon."""
    tz = ZoneInfo(mentor_tz)
    busy_list = list(busy)
    earliest = now + lead
    latest = now + horizon
    step = int(duration.total_seconds() // 60)
    slots: set[datetime] = set()
    day = now.astimezone(tz).date() - timedelta(days=1)
    last_day = latest.astimezone(tz).date()
    while day <= last_day:
        for w in windows:
            if w.weekday != day.weekday():
                continue
            minute = w.start_minute
            while minute + step <= w.end_minute:
                start = local_to_utc(day, minute, tz)
                minute += step
                if start is None or start < earliest or start > latest:
                    continue
                end = start + duration
                if any(b.start < end and start < b.end for b in busy_list):
                    continue
                slots.add(start)
        day += timedelta(days=1)
    return sorted(slots)


def parse_weekday(text: str) -> int | None:
    """`mon`, `Monday`, `周一`, `星期一` → 0; None if it names no weekday."""
    found = words.lookup(words.WEEKDAYS, text)
    if found is not None:
        return found
    key = words.normal(text)[:3]
    return WEEKDAYS.index(key) if key in WEEKDAYS else None


def parse_hhmm(text: str) -> int | None:
    try:
        hh, mm = words.fold(text).strip().split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        return None
    if h == 24 and m == 0:
        return 1440
    if not (0 <= h < 24 and 0 <= m < 60):
        return None
    return h * 60 + m


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


SLOT_FORMAT = "%Y%m%d%H%M"


def slot_token(start: datetime) -> str:
    """A compact UTC stamp for a slot, short enough for a 64-byte button payload."""
    return start.astimezone(UTC).strftime(SLOT_FORMAT)


def parse_slot_token(token: str) -> datetime | None:
    try:
        return datetime.strptime(token, SLOT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
