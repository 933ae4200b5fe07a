"""Chat commands for sessions: book, move, cancel, list, close and annotate them.

The rules live in `bot.sessions.booking`; these parse the arguments, call the rule and turn
what happened into replies (the free times offered as buttons, the calendar invite attached).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from bot.context import Ctx
from bot.core import words
from bot.core.errors import STATUS_NAMES, BadInput, NotAllowed
from bot.core.i18n import Lines, Msg, When, _
from bot.core.replies import Choice, write_to_admins
from bot.handlers.args import clip, need, need_int, within
from bot.handlers.registry import choice, command, number, text
from bot.handlers.slots import Wanted, browse, is_browsing, not_free, today_in, wanted
from bot.sessions import booking
from bot.sessions.booking import Answer, Closed, SlotNotFree
from bot.sessions.rating import rating_by
from bot.sessions.reminders import rating_choices
from storage.models import MentorSession, User

T = TypeVar("T")
SESSION = number("session", _("The session number"))
COMING_SESSION = number(
    "session", _("The session number; leave out to choose"), required=False
)  # `/reschedule` and `/cancelsession` offer the coming sessions without one
SLOT = text(
    "slot",
    _("Your local date and time, e.g. 2026-12-07 18:00 or 6pm; a date alone shows that day"),
    required=False,
    words=True,
)
BOOK_USAGE = "/book [REQUEST] [YYYY-MM-DD HH:MM]"
RESCHEDULE_USAGE = "/reschedule [SESSION] [YYYY-MM-DD HH:MM]"


async def _offering_free(work: Awaitable[T], prefix: str, asked: Wanted) -> T:
    """Run a rule; a time that is not free is refused with the free ones nearest to it."""
    try:
        return await work
    except SlotNotFree as refused:
        raise not_free(prefix, asked, refused.message, refused.free) from None


def _session_choices(session: MentorSession) -> list[Choice]:
    return [
        Choice(_("Move this session"), f"/reschedule {session.id}"),
        Choice(_("Cancel this session"), f"/cancelsession {session.id}"),
    ]


@command(
    "book",
    _("Book a session with your mentor: /book [REQUEST] [YYYY-MM-DD HH:MM]"),
    args=(
        number("request", _("The mentorship request number; leave out to choose"), required=False),
        SLOT,
    ),
    section="mentoring",
)
async def book(ctx: Ctx, args: list[str]) -> None:
    """Browse the mentor's free times by day or week, or book one typed or pressed."""
    requests = await booking.accepted_requests(ctx.uow, ctx.actor.id)
    if not requests:
        if await booking.refunded_requests(ctx.uow, ctx.actor.id):
            raise BadInput(
                _(
                    "Your course was refunded, so there is nothing to book. Buy it again with "
                    "/courses to go on with the same mentor."
                )
            )
        raise BadInput(_("You have no mentor yet. Ask for one with /mentor."))
    if not args or not _numbered(args[0]):
        # `/book`, `/book 2026-12-08 10:00`, `/book week`: the request is left out.
        if len(requests) > 1:
            ctx.say(
                _("Book with which mentorship?"),
                [
                    Choice(f"#{r.id}: {clip(r.goals)}", _command("/book", r.id, args))
                    for r in requests
                ],
            )
            return
        args = [str(requests[0].id), *args]
    request_id = need_int(args, 0, BOOK_USAGE)
    prefix = f"/book {request_id}"
    tz = ctx.actor.user.timezone

    async def free() -> list[datetime]:
        return await booking.bookable_times(
            ctx.uow, ctx.actor.id, request_id, ctx.now(), ctx.config
        )

    today = today_in(tz, ctx.now())
    if is_browsing(args[1:], today):
        slots = await free()
        if not slots:
            ctx.say(_("Your mentor has no free times in the coming days. Try again later."))
            return
        ctx.say(*browse(prefix, slots, tz, args[1:], today))
        return
    asked = await wanted(args[1:], tz, ctx.now(), free, prefix)
    booked = await _offering_free(
        booking.book(ctx.uow, ctx.actor.id, request_id, asked.start, ctx.now(), ctx.config),
        prefix,
        asked,
    )
    if asked.note is not None:
        ctx.say(asked.note)
    session = booked.session
    if booked.repeated:
        ctx.say(
            _(
                "You already booked session #{id} at {when}. Join: {link}",
                id=session.id,
                when=When(session.start_at),
                link=session.meeting_link,
            ),
            _session_choices(session),
        )
        return
    ctx.wake_at.extend(booked.wake_at)
    ctx.say(
        _(
            "Booked: session #{id} with {mentor} on {when}. Join: {link}\n"
            "Sessions left after this one: {left}.",
            id=session.id,
            mentor=booked.mentor_name,
            when=When(session.start_at),
            link=session.meeting_link,
            left=booked.credits_left,
        ),
        _session_choices(session),
        (booked.invite,) if booked.invite else (),
    )


def _numbered(word: str) -> bool:
    """Whether `word` is a request or session number (`12`, `#12`), not a date or time."""
    return word.lstrip("#").isdigit()


def _command(name: str, number: int, rest: list[str]) -> str:
    """`/book 3 2026-12-08 10:00`: the command for `number`, with what was typed after it."""
    return " ".join([name, str(number), *rest])


def _pick(session: MentorSession, other: User, command: str) -> Choice:
    """A coming session as a button: its number, when, and with whom."""
    return Choice(
        _(
            "#{id} {when} with {other}",
            id=session.id,
            when=When(session.start_at),
            other=other.display_name,
        ),
        command,
    )


@command("sessions", _("Your upcoming and recent sessions"), section="mentoring")
async def list_sessions(ctx: Ctx, args: list[str]) -> None:
    rows = await booking.sessions_with(ctx.uow, ctx.actor.id)
    if not rows:
        ctx.say(_("You have no sessions yet."))
        return
    lines = []
    choices = []
    for s, other in rows:
        lines.append(
            _(
                "#{id} {when} with {other} — {status}",
                id=s.id,
                when=When(s.start_at),
                other=other.display_name,
                status=STATUS_NAMES[s.status],
            )
        )
        if s.status == "scheduled" and s.start_at > ctx.now():
            choices.append(Choice(_("Cancel #{id}", id=s.id), f"/cancelsession {s.id}"))
    ctx.say(_("Your sessions:\n{list}", list=Lines(lines)), choices)


@command(
    "reschedule",
    _("Move a booked session: /reschedule [SESSION] [YYYY-MM-DD HH:MM]"),
    args=(COMING_SESSION, SLOT),
    section="mentoring",
)
async def reschedule(ctx: Ctx, args: list[str]) -> None:
    """Browse the times a session could move to, or move it to one typed or pressed. Without
    a session number: the only coming session, or a choice among them."""
    if not args or not _numbered(args[0]):
        coming = await booking.sessions_with(ctx.uow, ctx.actor.id, coming_after=ctx.now())
        if not coming:
            raise BadInput(_("You have no booked sessions to move. Book one with /book."))
        if len(coming) > 1:
            ctx.say(
                _("Which session do you want to move?"),
                [_pick(s, other, _command("/reschedule", s.id, args)) for s, other in coming],
            )
            return
        args = [str(coming[0][0].id), *args]
    session_id = need_int(args, 0, RESCHEDULE_USAGE)
    prefix = f"/reschedule {session_id}"
    tz = ctx.actor.user.timezone

    async def free() -> list[datetime]:
        return await booking.movable_times(ctx.uow, ctx.actor.id, session_id, ctx.now(), ctx.config)

    today = today_in(tz, ctx.now())
    if is_browsing(args[1:], today):
        slots = await free()
        if not slots:
            ctx.say(_("There are no other free times in the coming days."))
            return
        text, choices = browse(prefix, slots, tz, args[1:], today)
        ctx.say(_("Move session #{id}. {times}", id=session_id, times=text), choices)
        return
    asked = await wanted(args[1:], tz, ctx.now(), free, prefix)
    moved = await _offering_free(
        booking.move(ctx.uow, ctx.actor.id, session_id, asked.start, ctx.now(), ctx.config),
        prefix,
        asked,
    )
    if asked.note is not None:
        ctx.say(asked.note)
    ctx.wake_at.extend(moved.wake_at)
    ctx.say(
        _("Session #{id} moved to {when}.", id=session_id, when=When(moved.session.start_at)),
        attachments=(moved.invite,),
    )


# The word that confirms a destructive action typed or pressed a second time.
CONFIRM = "confirm"


@command(
    "cancelsession",
    _("Cancel a booked session: /cancelsession [SESSION]"),
    args=(COMING_SESSION,),
    section="mentoring",
)
async def cancel_session(ctx: Ctx, args: list[str]) -> None:
    """Cancel a session; without its number, a choice among the coming ones (a button even
    for one: cancelling is not done on a guess)."""
    if not args:
        coming = await booking.sessions_with(ctx.uow, ctx.actor.id, coming_after=ctx.now())
        if not coming:
            raise BadInput(_("You have no booked sessions to cancel. See /sessions."))
        ctx.say(
            _("Which session do you want to cancel?"),
            [_pick(s, other, f"/cancelsession {s.id}") for s, other in coming],
        )
        return
    session_id = need_int(args, 0, "/cancelsession [SESSION]")
    confirmed = len(args) > 1 and words.is_yes(args[1])
    if not confirmed and await booking.cancelling_loses_credit(
        ctx.uow, ctx.actor.id, session_id, ctx.now(), ctx.config
    ):
        ctx.say(
            _(
                "Session #{id} is less than {hours} h away: cancelling now uses up its session "
                "credit. Cancel anyway?",
                id=session_id,
                hours=ctx.config.sessions.cancel_window_hours,
            ),
            [
                Choice(_("Cancel and lose the credit"), f"/cancelsession {session_id} {CONFIRM}"),
                Choice(_("Keep the session"), "/sessions"),
            ],
        )
        return
    cancelled = await booking.cancel(ctx.uow, ctx.actor.id, session_id, ctx.now(), ctx.config)
    if cancelled.credit_back:
        ctx.say(_("Session #{id} is cancelled. The session credit is back.", id=session_id))
        return
    ctx.say(
        _(
            "Session #{id} is cancelled. It was less than {hours} h away, so the session "
            "credit is used up.",
            id=session_id,
            hours=ctx.config.sessions.cancel_window_hours,
        )
    )


@command(
    "outcome",
    _("Say whether a session took place: /outcome SESSION completed|noshow"),
    args=(
        SESSION,
        choice(
            "outcome",
            _("What happened"),
            "completed",
            "noshow",
            required=True,
            words=True,
            also=words.OUTCOMES,
        ),
    ),
    section="mentoring",
)
async def outcome(ctx: Ctx, args: list[str]) -> None:
    """The mentor's answer decides the session's status; the learner's alone never does, and
    a disagreement is a dispute the admins settle."""
    usage = "/outcome SESSION completed|noshow"
    session_id = need_int(args, 0, usage)
    await booking.participant_session(ctx.uow, ctx.actor.id, session_id)
    answer: Answer | None = words.lookup(words.OUTCOMES, " ".join(args[1:]) or need(args, 1, usage))
    if answer is None:
        raise BadInput(
            _(
                "Answer completed or noshow, not '{value}'. Usage: {usage}",
                value=clip(" ".join(args[1:])),
                usage=usage,
            )
        )
    closed = await booking.close(ctx.uow, ctx.actor.id, session_id, answer, ctx.now(), ctx.config)
    if closed.result == "known":
        ctx.say(*await _known_reply(ctx, closed.session, answer))
        return
    rate = rating_choices(session_id) if closed.result == "completed" else []
    ctx.say(_closed_reply(closed), rate)


async def _known_reply(
    ctx: Ctx, session: MentorSession, answer: Answer
) -> tuple[Msg, list[Choice]]:
    """What is recorded for a session whose outcome this person can no longer change: a
    completed one offers their rating until they gave it; an answer contrary to the record
    offers the admins, who alone can change it."""
    sid = session.id
    contrary = [write_to_admins()] if answer != session.status else []
    if session.status == "completed":
        rated = await rating_by(ctx.uow, sid, ctx.actor.id)
        if rated is None:
            return (
                _("Session #{id} is recorded as completed. Rate it from 1 to 5:", id=sid),
                [*rating_choices(sid), *contrary],
            )
        return (
            _(
                "Session #{id} is recorded as completed, and you rated it {stars}★.",
                id=sid,
                stars=rated.stars,
            ),
            contrary,
        )
    if session.status == "disputed":
        return (
            _(
                "Session #{id} is disputed: the two answers differ, and an admin decides. "
                "You are told when it is settled.",
                id=sid,
            ),
            [],
        )
    if session.status == "no_show" and session.no_show_by == "mentor":
        return (
            _(
                "Session #{id} is recorded as missed by the mentor, so the learner's session "
                "credit was given back.",
                id=sid,
            ),
            contrary,
        )
    if session.status == "no_show":
        return (
            _(
                "Session #{id} is recorded as missed by the learner, so its session credit is "
                "used.",
                id=sid,
            ),
            contrary,
        )
    if session.learner_outcome == "completed":  # the learner's answers wait for the mentor
        return (
            _(
                "You already said session #{id} took place. Your mentor confirms it; then you "
                "can rate it.",
                id=sid,
            ),
            [],
        )
    return (
        _(
            "You already said your mentor did not come to session #{id}. Your mentor is asked; "
            "if they do not confirm it took place, an admin decides whether the session credit "
            "comes back.",
            id=sid,
        ),
        [write_to_admins()],
    )


def _closed_reply(closed: Closed) -> Msg:
    sid = closed.session.id
    if closed.result == "disputed":
        if closed.by_mentor:
            return _("Noted. The learner reported otherwise, so an admin will look at it.")
        return _("Noted. Your mentor reported otherwise, so an admin will look at it.")
    if closed.result == "completed":
        return _(
            "Session #{id} is marked completed. How would you rate {learner}?",
            id=sid,
            learner=closed.learner_name,
        )
    if closed.result == "no_show":
        return _("Session #{id} is marked as a no-show.", id=sid)
    if closed.result == "awaiting_mentor":
        return _("Thank you! Your mentor confirms the session; then you can rate it.")
    if closed.result == "recorded":
        return _(
            "Noted. Your mentor marked session #{id} completed; the admins see your answer.",
            id=sid,
        )
    return _(
        "Sorry about that. Your mentor is asked about session #{id}; if they do not confirm "
        "it took place, an admin decides whether the session credit comes back.",
        id=sid,
    )


@command(
    "complete",
    _("Mark a session as completed: /complete SESSION"),
    role="mentor",
    args=(SESSION,),
    section="mentors",
)
async def complete(ctx: Ctx, args: list[str]) -> None:
    await _mentor_only(ctx, args, "/complete SESSION")
    await outcome(ctx, [args[0], "completed"])


@command(
    "noshow",
    _("Mark that the learner did not come: /noshow SESSION"),
    role="mentor",
    args=(SESSION,),
    section="mentors",
)
async def no_show(ctx: Ctx, args: list[str]) -> None:
    await _mentor_only(ctx, args, "/noshow SESSION")
    await outcome(ctx, [args[0], "noshow"])


async def _mentor_only(ctx: Ctx, args: list[str], usage: str) -> None:
    _session, is_mentor = await booking.participant_session(
        ctx.uow, ctx.actor.id, need_int(args, 0, usage)
    )
    if not is_mentor:
        raise NotAllowed(_("Only the session's mentor can do that."))


@command(
    "note",
    _("Leave a short note on a session for the learner: /note SESSION TEXT"),
    role="mentor",
    args=(SESSION, text("text", _("The note for the learner"), words=True)),
    section="mentors",
)
async def note(ctx: Ctx, args: list[str]) -> None:
    usage = "/note SESSION TEXT"
    session, is_mentor = await booking.participant_session(
        ctx.uow, ctx.actor.id, need_int(args, 0, usage)
    )
    if not is_mentor:
        raise NotAllowed(_("Only the session's mentor can do that."))
    text = " ".join(args[1:]).strip()
    if not text:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=usage))
    if session.status != "completed":
        raise BadInput(_("Notes are for completed sessions."))
    session.mentor_note = within(text, "note", _("A note"))
    ctx.say(_("Note saved on session #{id}. The learner sees it in /progress.", id=session.id))
    await ctx.tell(
        session.learner_id,
        _(
            "{mentor} left a note on session #{id}: {note}",
            mentor=ctx.actor.user.display_name,
            id=session.id,
            note=session.mentor_note,
        ),
    )
