"""Free times as a reader sees and types them: browsed by day or by week in their timezone,
and a local date and time typed after `/book` or `/reschedule` read back to an instant.

Shared by the booking and moving commands (`bot.handlers.sessions`), whose buttons carry the
compact UTC stamp (`slot_token`); people type `2026-12-07 18:00`, `6pm` or `下午6点` in their
own timezone. A local time a daylight-saving change skips is refused with the free times around
it; one the change repeats books the one that is free, or asks which when both are.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import BadInput
from bot.core.i18n import Day, Lines, Msg, When, _, ngettext
from bot.core.replies import Choice
from bot.handlers.args import clip
from bot.sessions.scheduling import (
    by_local_day,
    local_instants,
    nearest,
    parse_clock_time,
    parse_local_date,
    parse_slot_token,
    skipped_to,
    slot_token,
    split_date,
)

NEAREST_SHOWN = 8  # free times offered when the one asked for is not free
DAY_SHOWN = 20  # a day's free times as buttons; a platform shows about 25 at most
WEEK = "week"
_TOKEN = re.compile(r"^\d{12}$")
EXAMPLE = "2026-12-07 18:00"

FreeTimes = Callable[[], Awaitable[list[datetime]]]


def slot_choices(prefix: str, slots: Sequence[datetime]) -> list[Choice]:
    """Free times as buttons, each labelled with its day and time in the reader's timezone."""
    return [Choice(_("{when}", when=When(s)), _at(prefix, s)) for s in slots]


def near(prefix: str, slots: Sequence[datetime], wanted: datetime | None) -> list[Choice]:
    """The free times nearest to `wanted` (the soonest, without one) as buttons."""
    shown = nearest(slots, wanted, NEAREST_SHOWN) if wanted else list(slots[:NEAREST_SHOWN])
    return slot_choices(prefix, shown)


def today_in(tz: str, now: datetime) -> date:
    """The reader's today, which a date typed without its year counts from."""
    return now.astimezone(ZoneInfo(tz)).date()


def is_browsing(rest: Sequence[str], today: date) -> bool:
    """Whether the words after the command ask to see free times rather than take one:
    nothing, a day (`2026-12-07`, `12月7日`) or a week (`week [2026-12-07]`)."""
    if not rest:
        return True
    if rest[0].lower() == WEEK:
        return True
    return len(rest) == 1 and parse_local_date(rest[0], today) is not None


def browse(
    prefix: str, slots: Sequence[datetime], tz: str, rest: Sequence[str], today: date
) -> tuple[Msg, list[Choice]]:
    """The day or week view the words ask for (`is_browsing`), of non-empty `slots`."""
    if rest and rest[0].lower() == WEEK:
        day = parse_local_date(rest[1], today) if len(rest) > 1 else None
        return week_view(prefix, slots, tz, day)
    return day_view(prefix, slots, tz, parse_local_date(rest[0], today) if rest else None)


def day_view(
    prefix: str, slots: Sequence[datetime], tz: str, day: date | None
) -> tuple[Msg, list[Choice]]:
    """One day's free times as buttons (the first day with any, without `day`), with the
    days before and after that have free times and the day's week one press away. A day
    with none says so and shows the next day that has some (or the last, past the horizon)."""
    days = by_local_day(slots, tz)
    order = sorted(days)
    shown = order[0] if day is None else day
    if shown in days:
        text = _("Free times on {day} (your timezone, {tz}):", day=Day(shown), tz=tz)
    else:
        later = [d for d in order if d > shown]
        asked, shown = shown, (later[0] if later else order[-1])
        if later:
            text = _(
                "No free times on {asked}. The next day with free times is {day} "
                "(your timezone, {tz}):",
                asked=Day(asked),
                day=Day(shown),
                tz=tz,
            )
        else:
            text = _(
                "No free times on {asked} or after it yet. The last day with free times is "
                "{day} (your timezone, {tz}):",
                asked=Day(asked),
                day=Day(shown),
                tz=tz,
            )
    choices = [
        Choice(_("{time}", time=When(s, time_only=True)), _at(prefix, s))
        for s in days[shown][:DAY_SHOWN]
    ]
    before = [d for d in order if d < shown]
    after = [d for d in order if d > shown]
    if before:
        choices.append(
            Choice(_("« Earlier: {day}", day=Day(before[-1], short=True)), f"{prefix} {before[-1]}")
        )
    if after:
        choices.append(
            Choice(_("Later: {day} »", day=Day(after[0], short=True)), f"{prefix} {after[0]}")
        )
    choices.append(Choice(_("The whole week"), f"{prefix} {WEEK} {shown}"))
    return text, choices


def week_view(
    prefix: str, slots: Sequence[datetime], tz: str, day: date | None
) -> tuple[Msg, list[Choice]]:
    """The week (Monday to Sunday) holding `day`, or the first free time: how many free times
    each day has, each such day a button, and the weeks before and after that have any."""
    days = by_local_day(slots, tz)
    order = sorted(days)
    start = day if day is not None else order[0]
    monday = start - timedelta(days=start.weekday())
    week = [monday + timedelta(days=i) for i in range(7)]
    lines: list[Msg] = []
    choices: list[Choice] = []
    for d in week:
        count = len(days.get(d, ()))
        if count:
            lines.append(
                ngettext("{day}: {n} free time", "{day}: {n} free times", count, day=Day(d))
            )
            choices.append(Choice(_("{day}", day=Day(d, short=True)), f"{prefix} {d}"))
        else:
            lines.append(_("{day}: no free times", day=Day(d)))
    before = [d for d in order if d < monday]
    after = [d for d in order if d > week[-1]]
    if before:
        choices.append(Choice(_("« Earlier week"), f"{prefix} {WEEK} {before[-1]}"))
    if after:
        choices.append(Choice(_("Later week »"), f"{prefix} {WEEK} {after[0]}"))
    text = _(
        "The week of {day} (your timezone, {tz}):\n{lines}",
        day=Day(monday),
        tz=tz,
        lines=Lines(lines),
    )
    return text, choices


@dataclass(frozen=True)
class Wanted:
    """The instant the words name; `note` says how a repeated local hour was read; `typed`
    that a person typed it (a refusal then names it), not pressed a button."""

    start: datetime | None
    note: Msg | None = None
    typed: bool = False


def not_free(prefix: str, asked: Wanted, refusal: Msg, free: Sequence[datetime]) -> BadInput:
    """The refusal of a time that is not free, with the free times nearest to it as buttons:
    a typed time is named back; a pressed one keeps the rule's words (taken meanwhile)."""
    if asked.typed and asked.start is not None:
        refusal = _(
            "{when} is not a free time. The free times nearest to it:", when=When(asked.start)
        )
    return BadInput(refusal, near(prefix, free, asked.start))


async def wanted(
    rest: Sequence[str], tz: str, now: datetime, free: FreeTimes, prefix: str
) -> Wanted:
    """Read the words after the command as a time to take: a button's UTC stamp, or a local
    date and time in `tz` (`2026-12-07 18:00`, `12月7日下午6点`; a time alone is its next
    occurrence, a Chinese date without its year the next such day).

    Whether it is free is the rule's to say (under its locks, and the same booking sent
    twice is recognised there); only a time a daylight-saving change skips or repeats is
    settled here against the free times.
    """
    if len(rest) == 1 and _TOKEN.match(rest[0]):
        return Wanted(parse_slot_token(rest[0]))
    today = today_in(tz, now)
    day = parse_local_date(rest[0], today)
    clock_text = " ".join(rest[1:] if day is not None else rest)
    if day is None and (joined := split_date(rest[0], today)) is not None:
        day, time_text = joined
        clock_text = " ".join([time_text, *rest[1:]])
    minute = parse_clock_time(clock_text)
    if minute is None:
        raise BadInput(
            _(
                "'{value}' is not a date and time I can read. Type it like {example} "
                "(your timezone, {tz}), or leave it out to browse the free times.",
                value=clip(" ".join(rest)),
                example=f"{prefix} {EXAMPLE}",
                tz=tz,
            )
        )
    if day is None:
        day = today
        if all(i <= now for i in local_instants(day, minute, tz)):
            day += timedelta(days=1)
    instants = local_instants(day, minute, tz)
    if len(instants) == 1:
        return Wanted(instants[0], typed=True)
    slots = await free()
    clock = f"{minute // 60:02d}:{minute % 60:02d}"
    if not instants:
        raise BadInput(
            _(
                "{time} on {day} does not exist in {tz}: the clocks skip that hour for "
                "daylight saving. The free times nearest to it:",
                time=clock,
                day=Day(day),
                tz=tz,
            ),
            near(prefix, slots, skipped_to(day, minute, tz)),
        )
    return _repeated_hour(instants, slots, clock, day, tz, prefix)


def _repeated_hour(
    instants: Sequence[datetime],
    slots: Sequence[datetime],
    clock: str,
    day: date,
    tz: str,
    prefix: str,
) -> Wanted:
    """A local time the clocks show twice (they go back): the free one, or ask which."""
    first, second = instants
    free = [i for i in instants if i in slots]
    if len(free) == 2:
        raise BadInput(
            _(
                "{time} happens twice on {day} in {tz}, as the clocks go back an hour, and "
                "both are free. Which one?",
                time=clock,
                day=Day(day),
                tz=tz,
            ),
            [
                Choice(_("The first {time} (before the change)", time=clock), _at(prefix, first)),
                Choice(_("The second {time} (after the change)", time=clock), _at(prefix, second)),
            ],
        )
    if not free:
        return Wanted(first, typed=True)
    if free[0] == first:
        note = _(
            "{time} happens twice on {day} in {tz}, as the clocks go back; the first one (before "
            "the change) is free, so that is the one.",
            time=clock,
            day=Day(day),
            tz=tz,
        )
    else:
        note = _(
            "{time} happens twice on {day} in {tz}, as the clocks go back; the second one "
            "(after the change) is free, so that is the one.",
            time=clock,
            day=Day(day),
            tz=tz,
        )
    return Wanted(free[0], note, typed=True)


def _at(prefix: str, instant: datetime) -> str:
    """The command a button for `instant` sends: the compact UTC stamp after `prefix`."""
    return f"{prefix} {slot_token(instant)}"
