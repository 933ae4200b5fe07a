"""Booking, listing, cancelling and closing sessions with a mentor."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from bot.context import Ctx
from bot.errors import STATUS_NAMES, BadInput, NotAllowed, NotFound
from bot.handlers.args import need_int
from bot.handlers.catalogue import title
from bot.handlers.registry import command
from bot.i18n import Lines, When, _
from bot.reminders import schedule_for_session, skip_for_session
from bot.replies import Choice
from bot.scheduling import Busy, Window, free_slots, parse_slot_token, slot_token
from bot.states import advance
from bot.users import mentor_profile_of
from storage.models import (
    AvailabilityWindow,
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    User,
)
from storage.uow import UnitOfWork

SLOTS_SHOWN = 8


async def mentor_free_slots(ctx: Ctx, mentor: MentorProfile, learner_id: int) -> list:  # type: ignore[type-arg]
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
    busy_rows = (
        await ctx.uow.session.execute(
            select(MentorSession)
            .where(MentorSession.status == "scheduled")
            .where(
                or_(MentorSession.mentor_id == mentor.id, MentorSession.learner_id == learner_id)
            )
        )
    ).scalars()
    busy = [Busy(s.start_at, s.start_at + timedelta(minutes=s.duration_minutes)) for s in busy_rows]
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
    if enrollment.status != "active" or enrollment.credits_remaining <= 0:
        raise BadInput(_("You have no sessions left in this course. Buy it again with /courses."))
    mentor = await ctx.uow.lock(MentorProfile, request.mentor_id)
    assert mentor is not None
    if mentor.status != "approved":
        raise BadInput(_("Your mentor is not taking sessions at the moment. Please ask an admin."))
    slots = await mentor_free_slots(ctx, mentor, ctx.actor.id)
    if len(args) < 2:
        if not slots:
            ctx.say(_("Your mentor has no free times in the coming days. Try again later."))
            return
        ctx.say(
            _("Pick a time (shown in your timezone, {tz}):", tz=ctx.actor.user.timezone),
            [
                Choice(_("{when}", when=When(s)), f"/book {request.id} {slot_token(s)}")
                for s in slots[:SLOTS_SHOWN]
            ],
        )
        return
    start = parse_slot_token(args[1])
    if start is None or start not in slots:
        raise BadInput(
            _("That time is not free. Pick one of the times from /book {id}.", id=request.id)
        )
    session = await _create_session(ctx.uow, ctx, request, enrollment, mentor, start)
    mentor_user = await ctx.uow.get(User, mentor.user_id)
    assert mentor_user is not None
    course = await ctx.uow.get(Course, enrollment.course_id)
    assert course is not None
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
        [Choice(_("Cancel this session"), f"/cancelsession {session.id}")],
    )
    await ctx.tell(
        mentor_user.id,
        _(
            "{learner} booked session #{id} ({course}) on {when}. Join: {link}",
            learner=ctx.actor.user.display_name,
            id=session.id,
            course=title(course),
            when=When(session.start_at),
            link=session.meeting_link,
        ),
    )


async def _create_session(
    uow: UnitOfWork,
    ctx: Ctx,
    request: MentorshipRequest,
    enrollment: Enrollment,
    mentor: MentorProfile,
    start: object,
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
    )
    try:
        async with uow.session.begin_nested():
            uow.add(session)
            await uow.flush()
    except IntegrityError:
        raise BadInput(
            _("That time was just taken. Pick another one from /book {id}.", id=request.id)
        ) from None
    session.meeting_link = ctx.config.sessions.meeting_link_template.format(
        session_id=session.id, token=secrets.token_hex(4)
    )
    enrollment.credits_remaining -= 1
    ctx.wake_at.extend(await schedule_for_session(uow, ctx.config, session, now))
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
    advance("session", session, "cancelled")
    enrollment = await ctx.uow.lock(Enrollment, session.enrollment_id)
    assert enrollment is not None
    if enrollment.status == "active":
        enrollment.credits_remaining += 1
    await skip_for_session(ctx.uow, session.id, now)
    other = await _other_side(ctx, session, is_mentor)
    ctx.say(_("Session #{id} is cancelled. The session credit is back.", id=session.id))
    await ctx.tell(
        other.id,
        _(
            "{who} cancelled session #{id} on {when}.",
            who=ctx.actor.user.display_name,
            id=session.id,
            when=When(session.start_at),
        ),
    )


async def _mentor_closes(ctx: Ctx, args: list[str], usage: str, target: str) -> MentorSession:
    session, is_mentor = await _participant_session(ctx, need_int(args, 0, usage))
    if not is_mentor:
        raise NotAllowed(_("Only the session's mentor can do that."))
    if session.status == "scheduled" and ctx.now() < session.start_at:
        raise BadInput(_("Session #{id} has not started yet.", id=session.id))
    advance("session", session, target)
    return session


def rating_choices(session_id: int) -> list[Choice]:
    return [Choice("★" * n, f"/rate {session_id} {n}") for n in range(1, 6)]


@command("complete", _("Mark a session as completed: /complete SESSION"), role="mentor")
async def complete(ctx: Ctx, args: list[str]) -> None:
    session = await _mentor_closes(ctx, args, "/complete SESSION", "completed")
    learner = await ctx.uow.get(User, session.learner_id)
    assert learner is not None
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


@command("noshow", _("Mark that the learner did not come: /noshow SESSION"), role="mentor")
async def no_show(ctx: Ctx, args: list[str]) -> None:
    session = await _mentor_closes(ctx, args, "/noshow SESSION", "no_show")
    ctx.say(_("Session #{id} is marked as a no-show.", id=session.id))
    await ctx.tell(
        session.learner_id,
        _(
            "Your mentor marked session #{id} on {when} as missed. If that is wrong, please "
            "contact an admin.",
            id=session.id,
            when=When(session.start_at),
        ),
    )
