"""A mentor's availability: weekly windows (in their own timezone) and one-off blocks (UTC).

The rules here keep the windows tidy and say what a change touches: a new window that overlaps
or touches others on its weekday is merged with them into one; a block (time off) is refused
once it has ended and reports the booked sessions inside it, which stay booked unless the
mentor cancels them; a change of timezone either keeps the windows at the same local time
(nothing to do: they are stored as wall-clock times) or at the same instants (`keep_instants`).
Booked sessions are instants, so neither choice moves them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select

from bot.core.errors import BadInput
from bot.core.i18n import Msg, When, _
from bot.sessions.scheduling import Window, format_minute, local_to_utc
from storage.models import AvailabilityBlock, AvailabilityWindow, MentorSession, User
from storage.uow import UnitOfWork

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# The longest session a block can overlap without starting inside it (sessions are shorter).
LONGEST_SESSION = timedelta(days=1)


# --- pure: windows ------------------------------------------------------------------------


def merged(existing: Iterable[Window], new: Window) -> tuple[Window, tuple[Window, ...]]:
    """`new` joined with every window on its weekday that it overlaps or touches (18:00–20:00
    and 20:00–21:00 are one evening); returns the joined window and the ones it absorbs."""
    start, end = new.start_minute, new.end_minute
    absorbed: list[Window] = []
    changed = True
    pending = [w for w in existing if w.weekday == new.weekday]
    while changed:
        changed = False
        for w in list(pending):
            if w.start_minute <= end and start <= w.end_minute:
                start, end = min(start, w.start_minute), max(end, w.end_minute)
                absorbed.append(w)
                pending.remove(w)
                changed = True
    return Window(new.weekday, start, end), tuple(sorted(absorbed, key=_order))


def _order(w: Window) -> tuple[int, int, int]:
    return (w.weekday, w.start_minute, w.end_minute)


def shifted(windows: Iterable[Window], minutes: int) -> list[Window]:
    """Each window moved by `minutes` around the week (a window pushed past midnight is split
    into the two days it now covers), joined where they meet."""
    pieces: list[tuple[int, int]] = []
    for w in windows:
        start = (w.weekday * MINUTES_PER_DAY + w.start_minute + minutes) % MINUTES_PER_WEEK
        length = w.end_minute - w.start_minute
        while length > 0:
            day_end = (start // MINUTES_PER_DAY + 1) * MINUTES_PER_DAY
            piece = min(length, day_end - start)
            pieces.append((start, start + piece))
            start, length = day_end % MINUTES_PER_WEEK, length - piece
    out: list[Window] = []
    for s, e in sorted(pieces):
        day = s // MINUTES_PER_DAY
        w = Window(day, s - day * MINUTES_PER_DAY, e - day * MINUTES_PER_DAY)
        if out and out[-1].weekday == day and w.start_minute <= out[-1].end_minute:
            last = out.pop()
            w = Window(day, last.start_minute, max(last.end_minute, w.end_minute))
        out.append(w)
    return out


def offset_change(old_tz: str, new_tz: str, at: datetime) -> int:
    """How many minutes a wall clock in `new_tz` is ahead of one in `old_tz` at `at`."""
    old = at.astimezone(ZoneInfo(old_tz)).utcoffset() or timedelta(0)
    new = at.astimezone(ZoneInfo(new_tz)).utcoffset() or timedelta(0)
    return int((new - old).total_seconds() // 60)


# --- pure: local times to instants --------------------------------------------------------


def local_instant(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant a wall-clock time names in `tz`; a time a spring-forward skips names
    the moment the clocks jump (02:30 on that night is the 03:00 that follows); a repeated one
    names its first occurrence. 24:00 is the next midnight."""
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    for later in range(0, 24 * 60):  # a gap is at most a day (Samoa, 2011)
        instant = _at(day, minute + later, tz)
        if instant is not None:
            return instant
    raise AssertionError("no local time for a whole day")


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime | None:
    day += timedelta(days=minute // MINUTES_PER_DAY)
    return local_to_utc(day, minute % MINUTES_PER_DAY, tz)


# --- rules --------------------------------------------------------------------------------


async def windows_of(uow: UnitOfWork, mentor_id: int) -> list[AvailabilityWindow]:
    return list(
        (
            await uow.session.execute(
                select(AvailabilityWindow)
                .where(AvailabilityWindow.mentor_id == mentor_id)
                .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_minute)
            )
        ).scalars()
    )


def as_window(row: AvailabilityWindow) -> Window:
    return Window(row.weekday, row.start_minute, row.end_minute)


def _row(mentor_id: int, w: Window) -> AvailabilityWindow:
    return AvailabilityWindow(
        mentor_id=mentor_id, weekday=w.weekday, start_minute=w.start_minute, end_minute=w.end_minute
    )


@dataclass(frozen=True)
class Added:
    """What adding a window did: `window` is what the mentor now has; `absorbed` the windows
    it replaced (merged into it); `inside` set when the new one was already covered."""

    window: Window
    absorbed: tuple[Window, ...] = ()
    inside: bool = False


async def add_window(uow: UnitOfWork, mentor_id: int, new: Window) -> Added:
    rows = [r for r in await windows_of(uow, mentor_id) if r.weekday == new.weekday]
    joined, absorbed = merged((as_window(r) for r in rows), new)
    if len(absorbed) == 1 and absorbed[0] == joined:
        return Added(joined, inside=True)
    for row in rows:
        if as_window(row) in absorbed:
            await uow.session.delete(row)
    uow.add(_row(mentor_id, joined))
    await uow.flush()
    return Added(joined, absorbed)


async def count_windows(uow: UnitOfWork, mentor_id: int) -> int:
    return int(
        (
            await uow.session.execute(
                select(func.count(AvailabilityWindow.id)).where(
                    AvailabilityWindow.mentor_id == mentor_id
                )
            )
        ).scalar_one()
    )


async def clear_windows(uow: UnitOfWork, mentor_id: int) -> None:
    await uow.session.execute(
        delete(AvailabilityWindow).where(AvailabilityWindow.mentor_id == mentor_id)
    )


async def keep_instants(
    uow: UnitOfWork, mentor_id: int, old_tz: str, new_tz: str, now: datetime
) -> list[Window]:
    """Rewrite the mentor's windows so that, in `new_tz`, they fall at the instants they had
    in `old_tz` (by the two offsets in force now); returns the new windows."""
    rows = await windows_of(uow, mentor_id)
    moved = shifted((as_window(r) for r in rows), offset_change(old_tz, new_tz, now))
    for row in rows:
        await uow.session.delete(row)
    for w in moved:
        uow.add(_row(mentor_id, w))
    await uow.flush()
    return moved


@dataclass(frozen=True)
class Blocked:
    """A block just added, and the booked sessions inside it (with their learners)."""

    block: AvailabilityBlock
    clashes: tuple[tuple[MentorSession, User], ...]


async def add_block(
    uow: UnitOfWork, mentor_id: int, start: datetime, end: datetime, now: datetime
) -> Blocked:
    """Block `start`–`end` (UTC) for bookings; refused once that time has passed."""
    if end <= now:
        raise BadInput(
            _(
                "That time is already over ({end}); block a time still to come.",
                end=When(end),
            )
        )
    block = AvailabilityBlock(mentor_id=mentor_id, start_at=start, end_at=end, created_at=now)
    uow.add(block)
    await uow.flush()
    return Blocked(block, tuple(await sessions_during(uow, mentor_id, start, end)))


async def sessions_during(
    uow: UnitOfWork, mentor_id: int, start: datetime, end: datetime
) -> Sequence[tuple[MentorSession, User]]:
    """The mentor's booked sessions that overlap `start`–`end`, in order, with their learner."""
    rows = (
        await uow.session.execute(
            select(MentorSession, User)
            .join(User, User.id == MentorSession.learner_id)
            .where(MentorSession.mentor_id == mentor_id)
            .where(MentorSession.status == "scheduled")
            .where(MentorSession.start_at < end)
            .where(MentorSession.start_at > start - LONGEST_SESSION)
            .order_by(MentorSession.start_at)
        )
    ).all()
    return [(s, u) for s, u in rows if s.start_at + timedelta(minutes=s.duration_minutes) > start]


# --- how a window reads -------------------------------------------------------------------

WEEKDAY_NAMES = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))


def window_text(w: Window) -> Msg:
    """`Mon 18:00–20:00` (`周一 18:00–20:00`), in the mentor's own timezone."""
    return _(
        "{day} {start}–{end}",
        day=WEEKDAY_NAMES[w.weekday],
        start=format_minute(w.start_minute),
        end=format_minute(w.end_minute),
    )
