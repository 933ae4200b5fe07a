"""Booking, moving, cancelling and closing sessions with a mentor.

Booking is atomic: the mentor's profile row and the learner's user row are locked (PostgreSQL;
SQLite serialises writers with BEGIN IMMEDIATE), the slot is re-checked against the database,
and a partial unique index on (mentor, start) and (learner, start) among scheduled sessions is
the last guard. Moving or a learner's cancellation that returns the credit is possible until
`sessions.cancel_window_hours` before the start; later a learner's cancellation uses the credit
up, while a mentor's cancellation always gives it back, since it is not the learner's doing.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from bot.context import Ctx
from bot.core.errors import STATUS_NAMES, BadInput, NotAllowed, NotFound
from bot.core.i18n import Lines, When, _
from bot.core.replies import Attachment, Choice
from bot.core.states import SessionStatus, advance
from bot.core.users import mentor_profile_of
from bot.handlers.args import need, need_int
from bot.handlers.registry import command
from bot.learning.courses import course_title
from bot.sessions.earnings import credit_mentor
from bot.sessions.ics import session_invite
from bot.sessions.reminders import (
    rating_choices,
    schedule_for_session,
    skip_for_session,
)
from bot.sessions.scheduling import Busy, Window, free_slots, parse_slot_token, slot_token
from storage.models import (
    AvailabilityBlock,
    AvailabilityWindow,
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    User,
)

SLOTS_SHOWN = 8


async def mentor_free_slots(
    ctx: Ctx, mentor: MentorProfile, learner_id: int, ignore_session: int | None = None
) -> list[datetime]:
    """The mentor's bookable starts for this learner: windows minus sessions and blocks."""
    mentor_user = await ctx.uow.get(User, mentor.user_id)
    assert mentor_user is not None
    windows = [
        Window(w.weekday, w.start_minute, w.end_minute)
        for w in (
            await ctx.uow.session.execute(
                select(AvailabilityWindow).where(AvailabilityWindow.mentor_id == mentor.id)
            )
        ).scalars()
    ]
    sessions = (
        await ctx.uow.session.execute(
            select(MentorSession)
            .where(MentorSession.status == "scheduled")
            .where(MentorSession.id != (ignore_session or 0))
            .where(
                or_(MentorSession.mentor_id == mentor.id, MentorSession.learner_id == learner_id)
            )
        )
    ).scalars()
    busy = [Busy(s.start_at, s.start_at + timedelta(minutes=s.duration_minutes)) for s in sessions]
    blocks = (
        await ctx.uow.session.execute(
            select(AvailabilityBlock).where(AvailabilityBlock.mentor_id == mentor.id)
        )
    ).scalars()
    busy += [Busy(b.start_at, b.end_at) for b in blocks]
    cfg = ctx.config.sessions
    return free_slots(
        windows,
        mentor_user.timezone,
        busy,
        ctx.now(),
        horizon=timedelta(days=cfg.booking_horizon_days),
        duration=timedelta(minutes=cfg.duration_minutes),
        lead=timedelta(minutes=cfg.min_lead_minutes),
    )


async def _my_accepted_requests(ctx: Ctx) -> list[MentorshipRequest]:
    return list(
        (
            await ctx.uow.session.execute(
                select(MentorshipRequest)
                .where(MentorshipRequest.learner_id == ctx.actor.id)
                .where(MentorshipRequest.status == "accepted")
                .order_by(MentorshipRequest.id)
            )
        ).scalars()
    )


def _slot_choices(ctx: Ctx, command_prefix: str, slots: list[datetime]) -> list[Choice]:
    return [
        Choice(_("{when}", when=When(s)), f"{command_prefix} {slot_token(s)}")
        for s in slots[:SLOTS_SHOWN]
    ]


async def _invite(ctx: Ctx, session: MentorSession) -> Attachment:
    enrollment = await ctx.uow.get(Enrollment, session.enrollment_id)
    assert enrollment is not None
    course = await ctx.uow.get(Course, enrollment.course_id)
    assert course is not None
    return session_invite(
        session.id,
        session.start_at,
        session.duration_minutes,
        f"mentorbot: {course.title_en}",
        session.meeting_link,
        ctx.now(),
        sequence=session.rescheduled_count,
    )


@command("book", _("Book a session with your mentor: /book [REQUEST] [SLOT]"))
async def book(ctx: Ctx, args: list[str]) -> None:
    requests = await _my_accepted_requests(ctx)
    if not requests:
        raise BadInput(_("You have no mentor yet. Ask for one with /mentor."))
    if not args:
        if len(requests) > 1:
            ctx.say(
                _("Book with which mentorship?"),
                [Choice(f"#{r.id}: {r.goals[:40]}", f"/book {r.id}") for r in requests],
            )
            return
        args = [str(requests[0].id)]
    request_id = need_int(args, 0, "/book REQUEST [SLOT]")
    request = next((r for r in requests if r.id == request_id), None)
    if request is None:
        raise NotFound(_("You have no mentorship #{id} to book with.", id=request_id))
    assert request.mentor_id is not None
    enrollment = await ctx.uow.lock(Enrollment, request.enrollment_id)
    assert enrollment is not None
    if len(args) >= 2 and await _already_booked(ctx, request, args[1]):
        return
    if enrollment.status != "active" or enrollment.credits_remaining <= 0:
        raise BadInput(_("You have no sessions left in this course. Buy it again with /courses."))
    mentor = await ctx.uow.lock(MentorProfile, request.mentor_id)
    assert mentor is not None
    if mentor.status != "approved":
        raise BadInput(_("Your mentor is not taking sessions at the moment. Please ask an admin."))
    await ctx.uow.lock(User, ctx.actor.id)
    slots = await mentor_free_slots(ctx, mentor, ctx.actor.id)
    if len(args) < 2:
        if not slots:
            ctx.say(_("Your mentor has no free times in the coming days. Try again later."))
            return
        ctx.say(
            _("Pick a time (shown in your timezone, {tz}):", tz=ctx.actor.user.timezone),
            _slot_choices(ctx, f"/book {request.id}", slots),
        )
        return
    start = parse_slot_token(args[1])
    if start is None or start not in slots:
        raise BadInput(
            _("That time is not free. Pick one of the times from /book {id}.", id=request.id),
            _slot_choices(ctx, f"/book {request.id}", slots),
        )
    session = await _create_session(ctx, request, enrollment, mentor, start, slots)
    mentor_user = await ctx.uow.get(User, mentor.user_id)
    assert mentor_user is not None
    course = await ctx.uow.get(Course, enrollment.course_id)
    assert course is not None
    invite = await _invite(ctx, session)
    ctx.say(
        _(
            "Booked: session #{id} with {mentor} on {when}. Join: {link}\n"
            "Sessions left after this one: {left}.",
            id=session.id,
            mentor=mentor_user.display_name,
            when=When(session.start_at),
            link=session.meeting_link,
            left=enrollment.credits_remaining,
        ),
        [
            Choice(_("Move this session"), f"/reschedule {session.id}"),
            Choice(_("Cancel this session"), f"/cancelsession {session.id}"),
        ],
        (invite,),
    )
    await ctx.tell(
        mentor_user.id,
        _(
            "{learner} booked session #{id} ({course}) on {when}. Join: {link}",
            learner=ctx.actor.user.display_name,
            id=session.id,
            course=course_title(course),
            when=When(session.start_at),
            link=session.meeting_link,
        ),
        attachments=(invite,),
    )


async def _already_booked(ctx: Ctx, request: MentorshipRequest, token: str) -> bool:
    """The same booking sent twice (a double tap, a redelivered update after a crash) confirms
    the session it made instead of refusing its own slot as taken."""
    start = parse_slot_token(token)
    if start is None:
        return False
    session = (
        await ctx.uow.session.execute(
            select(MentorSession)
            .where(MentorSession.request_id == request.id)
            .where(MentorSession.start_at == start)
            .where(MentorSession.status == "scheduled")
        )
    ).scalar_one_or_none()
    if session is None:
        return False
    ctx.say(
        _(
            "You already booked session #{id} at {when}. Join: {link}",
            id=session.id,
            when=When(session.start_at),
            link=session.meeting_link,
        ),
        [
            Choice(_("Move this session"), f"/reschedule {session.id}"),
            Choice(_("Cancel this session"), f"/cancelsession {session.id}"),
        ],
    )
    return True


async def _create_session(
    ctx: Ctx,
    request: MentorshipRequest,
    enrollment: Enrollment,
    mentor: MentorProfile,
    start: datetime,
    slots: list[datetime],
) -> MentorSession:
    now = ctx.now()
    session = MentorSession(
        request_id=request.id,
        enrollment_id=enrollment.id,
        mentor_id=mentor.id,
        learner_id=ctx.actor.id,
        start_at=start,
        duration_minutes=ctx.config.sessions.duration_minutes,
        meeting_link="",
        status="scheduled",
        created_at=now,
        mentor_note="",
        rescheduled_count=0,
    )
    try:
        async with ctx.uow.session.begin_nested():
            ctx.uow.add(session)
            await ctx.uow.flush()
    except IntegrityError:
        raise BadInput(
            _("That time was just taken. Pick another one from /book {id}.", id=request.id),
            _slot_choices(ctx, f"/book {request.id}", [s for s in slots if s != start]),
        ) from None
    session.meeting_link = ctx.config.sessions.meeting_link_template.format(
        session_id=session.id, token=secrets.token_hex(4)
    )
    enrollment.credits_remaining -= 1
    ctx.wake_at.extend(await schedule_for_session(ctx.uow, ctx.config, session, now))
    return session


async def _participant_session(ctx: Ctx, session_id: int) -> tuple[MentorSession, bool]:
    """The session if the actor takes part in it; the flag says whether as its mentor."""
    session = await ctx.uow.lock(MentorSession, session_id)
    if session is None:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    is_mentor = profile is not None and profile.id == session.mentor_id
    if not is_mentor and session.learner_id != ctx.actor.id:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    return session, is_mentor


async def _other_side(ctx: Ctx, session: MentorSession, is_mentor: bool) -> User:
    if is_mentor:
        other = await ctx.uow.get(User, session.learner_id)
    else:
        mentor = await ctx.uow.get(MentorProfile, session.mentor_id)
        assert mentor is not None
        other = await ctx.uow.get(User, mentor.user_id)
    assert other is not None
    return other


@command("sessions", _("Your upcoming and recent sessions"))
async def list_sessions(ctx: Ctx, args: list[str]) -> None:
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    conditions = [MentorSession.learner_id == ctx.actor.id]
    if profile is not None:
        conditions.append(MentorSession.mentor_id == profile.id)
    rows = list(
        (
            await ctx.uow.session.execute(
                select(MentorSession).where(or_(*conditions)).order_by(MentorSession.start_at)
            )
        ).scalars()
    )
    if not rows:
        ctx.say(_("You have no sessions yet."))
        return
    lines = []
    choices = []
    for s in rows:
        other = await _other_side(ctx, s, profile is not None and s.mentor_id == profile.id)
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


def _inside_window(ctx: Ctx, session: MentorSession) -> bool:
    window = timedelta(hours=ctx.config.sessions.cancel_window_hours)
    return session.start_at - ctx.now() < window


@command("reschedule", _("Move a booked session: /reschedule SESSION [SLOT]"))
async def reschedule(ctx: Ctx, args: list[str]) -> None:
    usage = "/reschedule SESSION [SLOT]"
    session, is_mentor = await _participant_session(ctx, need_int(args, 0, usage))
    if session.status != "scheduled" or session.start_at <= ctx.now():
        raise BadInput(_("Session #{id} can no longer be moved.", id=session.id))
    if _inside_window(ctx, session):
        raise BadInput(
            _(
                "Sessions can be moved until {hours} h before they start. You can still "
                "cancel with /cancelsession {id}.",
                hours=ctx.config.sessions.cancel_window_hours,
                id=session.id,
            )
        )
    mentor = await ctx.uow.lock(MentorProfile, session.mentor_id)
    assert mentor is not None
    await ctx.uow.lock(User, session.learner_id)
    slots = await mentor_free_slots(ctx, mentor, session.learner_id, ignore_session=session.id)
    slots = [s for s in slots if s != session.start_at]
    if len(args) < 2:
        if not slots:
            ctx.say(_("There are no other free times in the coming days."))
            return
        ctx.say(
            _(
                "Move session #{id} to (your timezone, {tz}):",
                id=session.id,
                tz=ctx.actor.user.timezone,
            ),
            _slot_choices(ctx, f"/reschedule {session.id}", slots),
        )
        return
    start = parse_slot_token(args[1])
    if start is None or start not in slots:
        raise BadInput(
            _("That time is not free. Pick one of the times from /reschedule {id}.", id=session.id),
            _slot_choices(ctx, f"/reschedule {session.id}", slots),
        )
    old_start = session.start_at
    now = ctx.now()
    try:
        async with ctx.uow.session.begin_nested():
            session.start_at = start
            session.rescheduled_count += 1
            await ctx.uow.flush()
    except IntegrityError:
        raise BadInput(
            _("That time was just taken. Pick another one from /reschedule {id}.", id=session.id),
            _slot_choices(ctx, f"/reschedule {session.id}", [s for s in slots if s != start]),
        ) from None
    await skip_for_session(ctx.uow, session.id, now)
    ctx.wake_at.extend(await schedule_for_session(ctx.uow, ctx.config, session, now))
    invite = await _invite(ctx, session)
    other = await _other_side(ctx, session, is_mentor)
    ctx.say(
        _("Session #{id} moved to {when}.", id=session.id, when=When(session.start_at)),
        attachments=(invite,),
    )
    await ctx.tell(
        other.id,
        _(
            "{who} moved session #{id} from {old} to {when}. Join: {link}",
            who=ctx.actor.user.display_name,
            id=session.id,
            old=When(old_start),
            when=When(session.start_at),
            link=session.meeting_link,
        ),
        attachments=(invite,),
    )


@command("cancelsession", _("Cancel a booked session: /cancelsession SESSION"))
async def cancel_session(ctx: Ctx, args: list[str]) -> None:
    session, is_mentor = await _participant_session(
        ctx, need_int(args, 0, "/cancelsession SESSION")
    )
    now = ctx.now()
    if session.status == "scheduled" and session.start_at <= now:
        raise BadInput(
            _("Session #{id} has already started and can no longer be cancelled.", id=session.id)
        )
    late = _inside_window(ctx, session)
    advance("session", session, "cancelled")
    enrollment = await ctx.uow.lock(Enrollment, session.enrollment_id)
    assert enrollment is not None
    credit_back = enrollment.status == "active" and (is_mentor or not late)
    if credit_back:
        enrollment.credits_remaining += 1
    await skip_for_session(ctx.uow, session.id, now)
    other = await _other_side(ctx, session, is_mentor)
    if credit_back:
        ctx.say(_("Session #{id} is cancelled. The session credit is back.", id=session.id))
    else:
        ctx.say(
            _(
                "Session #{id} is cancelled. It was less than {hours} h away, so the session "
                "credit is used up.",
                id=session.id,
                hours=ctx.config.sessions.cancel_window_hours,
            )
        )
    await ctx.tell(
        other.id,
        _(
            "{who} cancelled session #{id} on {when}.",
            who=ctx.actor.user.display_name,
            id=session.id,
            when=When(session.start_at),
        ),
    )


OUTCOMES: dict[str, SessionStatus] = {
    "completed": "completed",
    "noshow": "no_show",
    "no-show": "no_show",
}


@command("outcome", _("Say whether a session took place: /outcome SESSION completed|noshow"))
async def outcome(ctx: Ctx, args: list[str]) -> None:
    """The mentor's answer decides the session's status; the learner's is recorded, and a
    disagreement or a mentor who did not come is brought to the admins."""
    usage = "/outcome SESSION completed|noshow"
    session, is_mentor = await _participant_session(ctx, need_int(args, 0, usage))
    answer = OUTCOMES.get(need(args, 1, usage).lower())
    if answer is None:
        raise BadInput(
            _(
                "Answer completed or noshow, not '{value}'. Usage: {usage}",
                value=args[1],
                usage=usage,
            )
        )
    if session.status == "scheduled" and ctx.now() < session.start_at:
        raise BadInput(_("Session #{id} has not started yet.", id=session.id))
    if session.status == "cancelled":
        raise BadInput(_("Session #{id} was cancelled.", id=session.id))
    if is_mentor:
        await _mentor_outcome(ctx, session, answer)
    else:
        await _learner_outcome(ctx, session, answer)


async def _mentor_outcome(ctx: Ctx, session: MentorSession, answer: SessionStatus) -> None:
    if session.mentor_outcome is not None:
        raise BadInput(_("You already answered for session #{id}.", id=session.id))
    session.mentor_outcome = answer
    learner = await ctx.uow.get(User, session.learner_id)
    assert learner is not None
    if session.status == "no_show" and session.no_show_by == "mentor":
        # The learner already reported that the mentor did not come; the admins decide.
        await _alert_dispute(ctx, session)
        ctx.say(_("Noted. The learner reported otherwise, so an admin will look at it."))
        return
    advance("session", session, answer)
    if answer == "completed":
        await credit_mentor(ctx.uow, ctx.config, session, ctx.now())
        ctx.say(
            _(
                "Session #{id} is marked completed. How would you rate {learner}?",
                id=session.id,
                learner=learner.display_name,
            ),
            rating_choices(session.id),
        )
        await ctx.tell(
            learner.id,
            _(
                "Session #{id} with {mentor} is complete. How was it? Rate it from 1 to 5:",
                id=session.id,
                mentor=ctx.actor.user.display_name,
            ),
            rating_choices(session.id),
        )
        if session.learner_outcome == "no_show":
            await _alert_dispute(ctx, session)
        return
    session.no_show_by = "learner"
    ctx.say(_("Session #{id} is marked as a no-show.", id=session.id))
    await ctx.tell(
        learner.id,
        _(
            "Your mentor marked session #{id} on {when} as missed. If that is wrong, please "
            "contact an admin.",
            id=session.id,
            when=When(session.start_at),
        ),
    )


async def _learner_outcome(ctx: Ctx, session: MentorSession, answer: SessionStatus) -> None:
    if session.learner_outcome is not None:
        raise BadInput(_("You already answered for session #{id}.", id=session.id))
    session.learner_outcome = answer
    if answer == "completed":
        if session.mentor_outcome == "no_show":
            await _alert_dispute(ctx, session)
            ctx.say(_("Noted. Your mentor reported otherwise, so an admin will look at it."))
        else:
            ctx.say(_("Thank you! Your mentor confirms the session; then you can rate it."))
        return
    if session.status == "scheduled":
        advance("session", session, "no_show")
        session.no_show_by = "mentor"
        enrollment = await ctx.uow.lock(Enrollment, session.enrollment_id)
        assert enrollment is not None
        if enrollment.status == "active":
            enrollment.credits_remaining += 1
        ctx.say(
            _(
                "Sorry about that. Session #{id} is marked as missed by your mentor and the "
                "session credit is back. The admins are told.",
                id=session.id,
            )
        )
    else:
        ctx.say(_("Noted. Your mentor reported otherwise, so an admin will look at it."))
    await _alert_dispute(ctx, session)


async def _alert_dispute(ctx: Ctx, session: MentorSession) -> None:
    await ctx.tell_admins(
        _(
            "Session #{id} on {when}: mentor says {mentor}, learner says {learner}.",
            id=session.id,
            when=When(session.start_at),
            mentor=STATUS_NAMES.get(session.mentor_outcome or "", "—"),
            learner=STATUS_NAMES.get(session.learner_outcome or "", "—"),
        ),
    )


@command("complete", _("Mark a session as completed: /complete SESSION"), role="mentor")
async def complete(ctx: Ctx, args: list[str]) -> None:
    await _mentor_only(ctx, args, "/complete SESSION")
    await outcome(ctx, [args[0], "completed"])


@command("noshow", _("Mark that the learner did not come: /noshow SESSION"), role="mentor")
async def no_show(ctx: Ctx, args: list[str]) -> None:
    await _mentor_only(ctx, args, "/noshow SESSION")
    await outcome(ctx, [args[0], "noshow"])


async def _mentor_only(ctx: Ctx, args: list[str], usage: str) -> None:
    _session, is_mentor = await _participant_session(ctx, need_int(args, 0, usage))
    if not is_mentor:
        raise NotAllowed(_("Only the session's mentor can do that."))


@command(
    "note", _("Leave a short note on a session for the learner: /note SESSION TEXT"), role="mentor"
)
async def note(ctx: Ctx, args: list[str]) -> None:
    usage = "/note SESSION TEXT"
    session, is_mentor = await _participant_session(ctx, need_int(args, 0, usage))
    if not is_mentor:
        raise NotAllowed(_("Only the session's mentor can do that."))
    text = " ".join(args[1:]).strip()
    if not text:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=usage))
    if session.status != "completed":
        raise BadInput(_("Notes are for completed sessions."))
    session.mentor_note = text[:500]
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
