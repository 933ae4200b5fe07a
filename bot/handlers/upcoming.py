"""`/reminders` (also `/upcoming`): what the bot will send you and when, in your timezone.

It lists the reader's own schedule only: the reminders and the after-session question of the
sessions they take part in (`bot.sessions.reminders`) and the next drip lesson of each course
that sends lessons on a schedule (`bot.learning.lessons`).
"""

from __future__ import annotations

from datetime import datetime

from bot.context import Ctx
from bot.core.i18n import Lines, Msg, When, _
from bot.core.users import mentor_profile_of
from bot.handlers.registry import command
from bot.learning.courses import course_title
from bot.learning.lessons import drips_for
from bot.sessions.booking import other_side
from bot.sessions.reminders import FOLLOWUP, pending_for

SHOWN = 30  # lines in one reply; the rest are counted


@command(
    "reminders", _("What the bot will send you and when: reminders, lessons"), section="mentoring"
)
async def reminders(ctx: Ctx, args: list[str]) -> None:
    """List the reader's pending session reminders and drip lessons, soonest first."""
    now = ctx.now()
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    mentor_id = profile.id if profile is not None else None
    planned: list[tuple[datetime, int, Msg]] = []
    for reminder, session in await pending_for(ctx.uow, ctx.actor.id, mentor_id, now):
        other = await other_side(ctx.uow, session, session.mentor_id == mentor_id)
        if reminder.kind == FOLLOWUP:
            what = _(
                "{when}: whether session #{id} with {other} took place",
                when=When(reminder.due_at),
                id=session.id,
                other=other.display_name,
            )
        else:
            what = _(
                "{when}: a reminder of session #{id} with {other}, which starts {start}",
                when=When(reminder.due_at),
                id=session.id,
                other=other.display_name,
                start=When(session.start_at),
            )
        planned.append((max(reminder.due_at, now), 0, what))
    for due, course in await drips_for(ctx.uow, ctx.actor.id):
        if due is None or due <= now:
            what = _("In a minute or so: the next lesson of {course}", course=course_title(course))
        else:
            what = _(
                "{when}: the next lesson of {course}", when=When(due), course=course_title(course)
            )
        planned.append((max(due or now, now), 1, what))
    if not planned:
        ctx.say(
            _(
                "Nothing is scheduled to be sent to you. Booking a session (/book) schedules "
                "its reminders; a course that sends its lessons on a schedule (/mycourses) "
                "schedules them."
            )
        )
        return
    planned.sort(key=lambda item: (item[0], item[1]))
    lines = [what for _due, _order, what in planned[:SHOWN]]
    if len(planned) > SHOWN:
        lines.append(_("…and {n} more.", n=len(planned) - SHOWN))
    ctx.say(
        _(
            "What I will send you (your timezone, {tz}):\n{lines}",
            tz=ctx.actor.user.timezone,
            lines=Lines(lines),
        )
    )


@command(
    "upcoming",
    _("The same as /reminders: what the bot will send you and when"),
    section="mentoring",
)
async def upcoming(ctx: Ctx, args: list[str]) -> None:
    """`/reminders` under the other name people look for."""
    await reminders(ctx, args)
