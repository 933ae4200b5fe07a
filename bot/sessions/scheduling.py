"""Free slots: a mentor's weekly windows, in their own timezone, turned into UTC instants.

Windows are wall-clock times in the mentor's IANA zone, so "Mondays 18:00" stays 18:00 for the
mentor across daylight-saving changes. A local time that does not exist (skipped by a
spring-forward) is not offered; an ambiguous one (repeated by a fall-back) is offered once, at
its first occurrence.
"""

from __future__ import annotations

import re
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


# --- times as people type them, in their own timezone -----------------------------------------

_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?$")
# A Chinese date without its year (`12月7日`, `12月7号`) is the next such day from today.
_MONTH_DAY = re.compile(r"^(\d{1,2})月(\d{1,2})[日号]?$")
# A Chinese date run into the time after it, as people type it: `12月7日下午6点`.
_DATE_THEN_TIME = re.compile(r"^((?:\d{4}年)?\d{1,2}月\d{1,2}[日号])(.+)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")  # a bare "6" is not guessed at
_AMPM = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?$", re.IGNORECASE)
# 下午6点, 下午6点30, 下午6点30分, 晚上7点半, 18点, 9时
_ZH = re.compile(
    r"^(凌晨|早上|早晨|上午|中午|下午|傍晚|晚上)?(\d{1,2})[点點时時](?:(\d{1,2})分?|(半))?$"
)
_ZH_AFTERNOON = ("中午", "下午", "傍晚", "晚上")


def parse_local_date(text: str, today: date | None = None) -> date | None:
    """`2026-12-07` (also `2026/12/07`, `2026年12月7日`), or None. Given the reader's `today`,
    a Chinese date without its year (`12月7日`, `12月7号`) is the next such day from today
    (today itself included; 2月29日 the next leap day)."""
    plain = words.fold(text).strip()
    if found := _DATE.match(plain):
        year, month, day = (int(g) for g in found.groups())
        try:
            return date(year, month, day)
        except ValueError:
            return None
    found = _MONTH_DAY.match(plain)
    if found is None or today is None:
        return None
    month, day = int(found.group(1)), int(found.group(2))
    for year in range(today.year, today.year + 9):  # a leap day comes within eight years
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def split_date(text: str, today: date) -> tuple[date, str] | None:
    """A date typed together with the time after it in one word (`12月7日下午6点`): the date
    and the rest; None unless it starts with a date `parse_local_date` reads."""
    found = _DATE_THEN_TIME.match(words.fold(text).strip())
    if found is None:
        return None
    day = parse_local_date(found.group(1), today)
    return None if day is None else (day, found.group(2))


def parse_clock_time(text: str) -> int | None:
    """A clock time as minutes after midnight: `18:00`, `6pm`, `6:30 pm`, `下午6点`, `18点半`."""
    plain = " ".join(text.split()).lower()
    hour: int
    minute: int
    if found := _CLOCK.match(plain):
        hour, minute = int(found.group(1)), int(found.group(2) or 0)
    elif found := _AMPM.match(plain):
        hour, minute = int(found.group(1)), int(found.group(2) or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found.group(3) == "p" else 0)
    elif found := _ZH.match(plain.replace(" ", "")):
        hour = int(found.group(2))
        minute = 30 if found.group(4) else int(found.group(3) or 0)
        if found.group(1) in _ZH_AFTERNOON and 1 <= hour < 12:
            hour += 12
    else:
        return None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    return hour * 60 + minute


def local_instants(day: date, minute: int, tz: str) -> tuple[datetime, ...]:
    """Every UTC instant at which `tz`'s clocks show `day` at `minute`: none in a gap a
    daylight-saving change skips, two in the hour a change repeats, else one."""
    zone = ZoneInfo(tz)
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    found: list[datetime] = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive and instant not in found:
            found.append(instant)
    return tuple(found)


def skipped_to(day: date, minute: int, tz: str) -> datetime:
    """Where the clocks stand when they jump over a skipped local time: the instant the
    wall-clock time names read with the offset before the change."""
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    return naive.replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(UTC)


def nearest(slots: Sequence[datetime], wanted: datetime, count: int) -> list[datetime]:
    """The `count` slots closest to `wanted`, in time order."""
    closest = sorted(slots, key=lambda s: (abs(s - wanted), s))[:count]
    return sorted(closest)


def by_local_day(slots: Iterable[datetime], tz: str) -> dict[date, list[datetime]]:
    """Slots grouped by the day they fall on in `tz`, days and slots in time order."""
    zone = ZoneInfo(tz)
    days: dict[date, list[datetime]] = {}
    for slot in sorted(slots):
        days.setdefault(slot.astimezone(zone).date(), []).append(slot)
    return days
