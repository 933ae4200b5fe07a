"""A mentor's availability: weekly windows and one-off blocks (`/availability`).

The rules live in `bot.sessions.availability`; this reads the arguments, calls them and says
what changed: a window merged with others, the booked sessions a block covers (which stay
booked), a clear that waits for its confirmation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.context import Ctx
from bot.core import words
from bot.core.errors import BadInput
from bot.core.i18n import Lines, When, _, ngettext
from bot.core.replies import Choice
from bot.handlers.args import need, need_int
from bot.handlers.profile import own_profile
from bot.handlers.registry import choice, command, number, text
from bot.sessions import availability as rules
from bot.sessions.scheduling import Window, parse_hhmm, parse_local_date, parse_weekday
from storage.models import AvailabilityBlock, AvailabilityWindow, MentorProfile

# What each action takes, as an example the mentor can copy, said where an argument is missing.
USAGE = {
    "add": _("/availability add mon 18:00-20:00 (a weekly window, in your timezone)"),
    "remove": _("/availability remove 2 (the window's number, as /availability lists it)"),
    "block": _("/availability block 2026-03-10 14:00-18:00 (away for those hours)"),
    "off": _("/availability off 2026-03-12 (away all day)"),
    "unblock": _("/availability unblock 3 (the block's number, as /availability lists it)"),
}


def _minutes(span: str) -> tuple[int, int] | None:
    """`HH:MM-HH:MM` as minutes from midnight, or None unless it reads and starts first."""
    for dash in ("–", "~", "至", "到"):  # 18:00–20:00, 18:00~20:00, 18:00至20:00
        span = span.replace(dash, "-")
    start_text, _sep, end_text = words.fold(span).partition("-")
    start, end = parse_hhmm(start_text), parse_hhmm(end_text)
    if start is None or end is None or start >= end:
        return None
    return start, end


# How far ahead a one-off absence may be set: a year, past which no slot is offered anyway.
BLOCK_HORIZON = timedelta(days=366)


def _local_range(
    day_text: str, span: str | None, tz: str, now: datetime
) -> tuple[datetime, datetime] | None:
    """A local date (`2026-03-10`, `3月10日`: the next such day) and optional HH:MM-HH:MM in
    `tz` as a UTC range; None if unreadable.
    A date more than a year away (year 9999, year 1) is refused with the range allowed (one in
    the past year, as already over, by `add_block`). Times a daylight-saving change skips count
    from the moment the clocks jump."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    day = parse_local_date(day_text, today)
    minutes = (0, 1440) if span is None else _minutes(span)
    if day is None or minutes is None:
        return None
    last = (now + BLOCK_HORIZON).astimezone(zone).date()
    if not today - BLOCK_HORIZON <= day <= last:
        raise BadInput(
            _(
                "An absence can be set from today ({first}) to {last}; {day} is outside that.",
                first=today.isoformat(),
                last=last.isoformat(),
                day=day.isoformat(),
            )
        )
    start, end = (rules.local_instant(day, m, zone) for m in minutes)
    if start >= end:
        raise BadInput(
            _(
                "{day} {span} does not happen in {tz}: the clocks skip it that night.",
                day=day.isoformat(),
                span=span or "",
                tz=tz,
            )
        )
    return start, end


@command(
    "availability",
    _("Your weekly hours and time off: /availability [add|remove|clear|block|off|unblock]"),
    args=(
        choice(
            "action",
            _("Leave out to see your weekly windows"),
            "add",
            "remove",
            "clear",
            "block",
            "off",
            "unblock",
        ),
        text(
            "day",
            _("For add: the weekday (mon); for block or off: the date (YYYY-MM-DD)"),
            required=False,
        ),
        text("hours", _("For add or block: e.g. 18:00-20:00, in your timezone"), required=False),
        number("window", _("For remove or unblock: the number"), required=False),
    ),
    section="mentors",
)
async def availability(ctx: Ctx, args: list[str]) -> None:
    mentor = await own_profile(ctx)
    if args:
        # The front door let through only the actions the command table names.
        if not await ACTIONS[args[0].lower()](ctx, mentor, args):
            return
        await ctx.uow.flush()
    await _show(ctx, mentor)


async def _add(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> bool:
    day = parse_weekday(need(args, 1, USAGE["add"]))
    minutes = _minutes(need(args, 2, USAGE["add"]))
    if day is None or minutes is None:
        raise BadInput(
            _(
                "Could not read that window. Example: /availability add mon 18:00-20:00 "
                "(in your timezone)."
            )
        )
    added = await rules.add_window(ctx.uow, mentor.id, Window(day, *minutes))
    new = rules.window_text(Window(day, *minutes))
    if added.inside:
        ctx.say(
            _(
                "{new} is already inside {window}; nothing changed.",
                new=new,
                window=rules.window_text(added.window),
            )
        )
    elif added.absorbed:
        absorbed = Lines((rules.window_text(w) for w in added.absorbed), " + ")
        ctx.say(
            _(
                "Merged with {old} → {window}.",
                old=absorbed,
                window=rules.window_text(added.window),
            )
        )
    else:
        ctx.say(_("Added {window}.", window=new))
    return True


async def _remove(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> bool:
    window_id = need_int(args, 1, USAGE["remove"])
    window = await ctx.uow.get(AvailabilityWindow, window_id)
    if window is None or window.mentor_id != mentor.id:
        raise BadInput(_("You have no availability window #{id}.", id=window_id))
    await ctx.uow.session.delete(window)
    ctx.say(
        _(
            "Removed window #{id} ({window}). Booked sessions stay booked.",
            id=window.id,
            window=rules.window_text(rules.as_window(window)),
        )
    )
    return True


async def _clear(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> bool:
    count = await rules.count_windows(ctx.uow, mentor.id)
    if count == 0:
        ctx.say(_("You have no weekly windows to clear."))
        return False
    if len(args) < 2 or not words.is_yes(args[1]):
        ctx.say(
            ngettext(
                "This removes your {n} weekly window: clear anyway? Booked sessions stay booked.",
                "This removes all {n} weekly windows: clear anyway? Booked sessions stay booked.",
                count,
            ),
            [
                Choice(_("Clear them"), "/availability clear confirm"),
                Choice(_("Keep them"), "/availability"),
            ],
        )
        return False
    await rules.clear_windows(ctx.uow, mentor.id)
    ctx.say(
        ngettext(
            "Cleared {n} weekly window. Booked sessions stay booked.",
            "Cleared {n} weekly windows. Booked sessions stay booked.",
            count,
        )
    )
    return True


async def _block(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> bool:
    action = args[0].lower()
    day_text = need(args, 1, USAGE[action])
    span = need(args, 2, USAGE[action]) if action == "block" else None
    found = _local_range(day_text, span, ctx.actor.user.timezone, ctx.now())
    if found is None:
        raise BadInput(
            _(
                "Could not read that. Examples: /availability block 2026-03-10 "
                "14:00-18:00, /availability off 2026-03-12 (in your timezone)."
            )
        )
    blocked = await rules.add_block(ctx.uow, mentor.id, *found, ctx.now())
    block = blocked.block
    ctx.say(
        _(
            "Block #{id}: no new bookings from {start} to {end}.",
            id=block.id,
            start=When(block.start_at),
            end=When(block.end_at),
        )
    )
    if blocked.clashes:
        booked = Lines(
            _(
                "#{id} {when} with {learner}",
                id=s.id,
                when=When(s.start_at),
                learner=learner.display_name,
            )
            for s, learner in blocked.clashes
        )
        ctx.say(
            ngettext(
                "{n} booked session falls inside it. It stays booked unless you cancel it "
                "(the learner gets the credit back and is told):\n{list}",
                "{n} booked sessions fall inside it. They stay booked unless you cancel them "
                "(the learners get their credits back and are told):\n{list}",
                len(blocked.clashes),
                list=booked,
            ),
            [
                Choice(_("Cancel #{id}", id=s.id), f"/cancelsession {s.id}")
                for s, _learner in blocked.clashes
            ],
        )
    return False  # the block's own reply is the last, so its cancel buttons stay pressable


async def _unblock(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> bool:
    block_id = need_int(args, 1, USAGE["unblock"])
    block = await ctx.uow.get(AvailabilityBlock, block_id)
    if block is None or block.mentor_id != mentor.id:
        raise BadInput(_("You have no block #{id}.", id=block_id))
    await ctx.uow.session.delete(block)
    ctx.say(
        _(
            "Block #{id} removed: {start} to {end} can be booked again in your weekly hours.",
            id=block.id,
            start=When(block.start_at),
            end=When(block.end_at),
        )
    )
    return True


ACTIONS = {
    "add": _add,
    "remove": _remove,
    "clear": _clear,
    "block": _block,
    "off": _block,
    "unblock": _unblock,
}


async def _show(ctx: Ctx, mentor: MentorProfile) -> None:
    windows = await rules.windows_of(ctx.uow, mentor.id)
    lines = [
        _("#{id} {window}", id=w.id, window=rules.window_text(rules.as_window(w))) for w in windows
    ]
    blocks = (
        await ctx.uow.session.execute(
            select(AvailabilityBlock)
            .where(AvailabilityBlock.mentor_id == mentor.id)
            .where(AvailabilityBlock.end_at > ctx.now())
            .order_by(AvailabilityBlock.start_at)
        )
    ).scalars()
    away = [
        _("block #{id}: {start} – {end}", id=b.id, start=When(b.start_at), end=When(b.end_at))
        for b in blocks
    ]
    if away:
        ctx.say(_("Away (no bookings):\n{list}", list=Lines(away)))
    if not lines:
        ctx.say(
            _(
                "You have no availability yet. Add some: /availability add mon 18:00-20:00 "
                "(times in {tz}).",
                tz=ctx.actor.user.timezone,
            )
        )
        return
    ctx.say(
        _("Your weekly availability ({tz}):\n{list}", tz=ctx.actor.user.timezone, list=Lines(lines))
    )
