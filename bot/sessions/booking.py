"""The session rules: book, move, cancel and close a session with a mentor.

Each rule takes a unit of work and plain data (user ids, a session id, an instant, now, config)
and returns what happened, so a chat command, a webhook, a sweep and data erasure all go
through the same checks, credit changes, reminders, earnings and notices. A refusal is a
`MentorbotError` (nothing is changed, as the caller's transaction rolls back).

Booking is atomic: the mentor's profile row and the learner's user row are locked (PostgreSQL;
SQLite serialises writers with BEGIN IMMEDIATE), the slot is re-checked against the database,
and a partial unique index on (mentor, start) and (learner, start) among scheduled sessions is
the last guard. Moving or a learner's cancellation that returns the credit is possible until
`sessions.cancel_window_hours` before the start; later a learner's cancellation uses the credit
up, while a mentor's cancellation always gives it back, since it is not the learner's doing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from bot.config import Config
from bot.core.errors import STATUS_NAMES, BadInput, NotFound
from bot.core.i18n import Lines, Msg, When, _, ngettext
from bot.core.outbox import tell, tell_admins
from bot.core.replies import Attachment, Choice, write_to_admins
from bot.core.states import LIVE_REQUEST_STATES, advance
from bot.core.users import mentor_profile_of
from bot.learning.courses import course_title
from bot.recommending.suggest import suggest
from bot.sessions.credits import return_credit, use_credit
from bot.sessions.earnings import credit_mentor
from bot.sessions.ics import session_invite
from bot.sessions.reminders import rating_choices, schedule_for_session, skip_for_session
from bot.sessions.scheduling import Busy, Window, free_slots
from bot.sessions.seats import busy_in_workshops
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
from storage.uow import UnitOfWork

Answer = Literal["completed", "no_show"]
Verdict = Literal["completed", "noshow", "refund-credit"]


class SlotNotFree(BadInput):
    """The time asked for is not (or no longer) free; `free` holds the times that still are,
    so the caller can offer them."""

    def __init__(self, message: Msg, free: Sequence[datetime]) -> None:
        super().__init__(message)
        self.free = tuple(free)


@dataclass(frozen=True)
class Booked:
    """A session booked (or, `repeated`, the one the same booking made before)."""

    session: MentorSession
    mentor_name: str
    credits_left: int
    invite: Attachment | None
    wake_at: tuple[datetime, ...] = ()
    repeated: bool = False


@dataclass(frozen=True)
class Moved:
    session: MentorSession
    invite: Attachment
    wake_at: tuple[datetime, ...]


@dataclass(frozen=True)
class Cancelled:
    session: MentorSession
    credit_back: bool


@dataclass(frozen=True)
class Closed:
    """An answer to whether a session took place, and what it led to.

    `result`: "completed" or "no_show" (the mentor's answer decided the status),
    "disputed" (the answers disagree; the admins are told), "awaiting_mentor" (the learner
    confirmed; the mentor's answer decides), "claimed" (the learner says the mentor did not
    come; the mentor's answer or an admin decides), "recorded" (the learner answered after
    the mentor marked it completed; a contrary answer is passed to the admins), "known" (what
    happened was already recorded, by this person's earlier answer, the other side's or an
    admin's: nothing changes and the reply says what is recorded).
    """

    session: MentorSession
    by_mentor: bool
    result: Literal[
        "completed", "no_show", "disputed", "awaiting_mentor", "claimed", "recorded", "known"
    ]
    learner_name: str


# --- looking up ------------------------------------------------------------------------------


async def accepted_requests(uow: UnitOfWork, learner_id: int) -> list[MentorshipRequest]:
    """The learner's mentorships they can book sessions in, oldest first.

    A mentorship books against its course enrollment. When that one is revoked (refunded) or
    used up and the learner has bought the course again, the mentorship moves to the newest
    active enrollment with sessions left, so the same mentor goes on with the new credits; a
    mentorship whose enrollment was refunded and not bought again is not offered.
    """
    rows = await uow.session.execute(
        select(MentorshipRequest, Enrollment)
        .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
        .where(MentorshipRequest.learner_id == learner_id)
        .where(MentorshipRequest.status == "accepted")
        .order_by(MentorshipRequest.id)
    )
    bookable = []
    for request, enrollment in rows.all():
        if enrollment.status != "active" or enrollment.credits_remaining <= 0:
            newer = await _newer_enrollment(uow, enrollment)
            if newer is not None:
                request.enrollment_id = newer.id
            elif enrollment.status != "active":
                continue
        bookable.append(request)
    return bookable


async def refunded_requests(uow: UnitOfWork, learner_id: int) -> list[MentorshipRequest]:
    """The learner's accepted mentorships whose course was refunded (not bookable)."""
    rows = await uow.session.execute(
        select(MentorshipRequest)
        .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
        .where(MentorshipRequest.learner_id == learner_id)
        .where(MentorshipRequest.status == "accepted")
        .where(Enrollment.status != "active")
        .order_by(MentorshipRequest.id)
    )
    return list(rows.scalars())


async def _newer_enrollment(uow: UnitOfWork, old: Enrollment) -> Enrollment | None:
    """The learner's newest active enrollment in the same course with sessions left and no
    request of its own (one that has one goes on with that mentorship)."""
    found = await uow.session.execute(
        select(Enrollment)
        .where(Enrollment.user_id == old.user_id)
        .where(Enrollment.course_id == old.course_id)
        .where(Enrollment.status == "active")
        .where(Enrollment.credits_remaining > 0)
        .where(Enrollment.id != old.id)
        .where(~exists(_live_request(Enrollment.id)))
        .order_by(Enrollment.id.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


def _live_request(enrollment_id: Any) -> Any:
    return (
        select(MentorshipRequest.id)
        .where(MentorshipRequest.enrollment_id == enrollment_id)
        .where(MentorshipRequest.status.in_(LIVE_REQUEST_STATES))
    )


async def mentorship_for(uow: UnitOfWork, enrollment: Enrollment) -> MentorshipRequest | None:
    """What `/mentor` finds for an enrollment instead of asking anew: its own request still in
    play, or else the learner's mentorship in the same course whose enrollment was refunded or
    used up, which moves to this one at the next booking (`accepted_requests`): buying the
    course again, or subscribing again, goes on with the same mentor."""
    own = await uow.session.execute(
        select(MentorshipRequest)
        .where(MentorshipRequest.id.in_(_live_request(enrollment.id)))
        .order_by(MentorshipRequest.id)
        .limit(1)
    )
    found = own.scalar_one_or_none()
    if found is not None:
        return found
    earlier = await uow.session.execute(
        select(MentorshipRequest)
        .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
        .where(MentorshipRequest.learner_id == enrollment.user_id)
        .where(MentorshipRequest.status == "accepted")
        .where(Enrollment.course_id == enrollment.course_id)
        .where(Enrollment.id != enrollment.id)
        .where((Enrollment.status != "active") | (Enrollment.credits_remaining <= 0))
        .order_by(MentorshipRequest.id.desc())
        .limit(1)
    )
    return earlier.scalar_one_or_none()


async def participant_session(
    uow: UnitOfWork, user_id: int, session_id: int
) -> tuple[MentorSession, bool]:
    """The session, locked, if the user takes part in it; the flag says whether as its mentor.
    Anyone else is told it does not exist."""
    session = await uow.lock(MentorSession, session_id)
    if session is None:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    profile = await mentor_profile_of(uow, user_id)
    is_mentor = profile is not None and profile.id == session.mentor_id
    if not is_mentor and session.learner_id != user_id:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    return session, is_mentor


async def sessions_with(
    uow: UnitOfWork, user_id: int, *, coming_after: datetime | None = None
) -> list[tuple[MentorSession, User]]:
    """The sessions the user takes part in (as learner or mentor), soonest first, each with
    the other participant: what `/sessions` lists. `coming_after`: only those still booked
    and to come after it, what `/reschedule` and `/cancelsession` offer when no session is
    named."""
    profile = await mentor_profile_of(uow, user_id)
    mine = [MentorSession.learner_id == user_id]
    if profile is not None:
        mine.append(MentorSession.mentor_id == profile.id)
    stmt = select(MentorSession).where(or_(*mine))
    if coming_after is not None:
        stmt = stmt.where(MentorSession.status == "scheduled")
        stmt = stmt.where(MentorSession.start_at > coming_after)
    rows = await uow.session.execute(stmt.order_by(MentorSession.start_at, MentorSession.id))
    return [
        (s, await other_side(uow, s, profile is not None and s.mentor_id == profile.id))
        for s in rows.scalars()
    ]


async def other_side(uow: UnitOfWork, session: MentorSession, is_mentor: bool) -> User:
    """The session's other participant, seen from its mentor (`is_mentor`) or its learner."""
    if is_mentor:
        other = await uow.get(User, session.learner_id)
    else:
        mentor = await uow.get(MentorProfile, session.mentor_id)
        assert mentor is not None
        other = await uow.get(User, mentor.user_id)
    assert other is not None
    return other


async def _user(uow: UnitOfWork, user_id: int) -> User:
    user = await uow.get(User, user_id)
    assert user is not None
    return user


async def _free_starts(
    uow: UnitOfWork,
    config: Config,
    mentor: MentorProfile,
    learner_id: int,
    now: datetime,
    ignore_session: int | None = None,
) -> list[datetime]:
    """The mentor's bookable starts for this learner: windows minus sessions and blocks."""
    mentor_user = await _user(uow, mentor.user_id)
    windows = [
        Window(w.weekday, w.start_minute, w.end_minute)
        for w in (
            await uow.session.execute(
                select(AvailabilityWindow).where(AvailabilityWindow.mentor_id == mentor.id)
            )
        ).scalars()
    ]
    # One person is in at most one session at a time, whatever their role: the mentor's own
    # sessions as a learner elsewhere and the learner's as a mentor count as busy too.
    learner_as_mentor = await mentor_profile_of(uow, learner_id)
    sessions = (
        await uow.session.execute(
            select(MentorSession)
            .where(MentorSession.status == "scheduled")
            .where(MentorSession.id != (ignore_session or 0))
            .where(
                or_(
                    MentorSession.mentor_id == mentor.id,
                    MentorSession.learner_id == learner_id,
                    MentorSession.learner_id == mentor.user_id,
                    MentorSession.mentor_id
                    == (learner_as_mentor.id if learner_as_mentor is not None else -1),
                )
            )
        )
    ).scalars()
    busy = [Busy(s.start_at, s.start_at + timedelta(minutes=s.duration_minutes)) for s in sessions]
    blocks = (
        await uow.session.execute(
            select(AvailabilityBlock).where(AvailabilityBlock.mentor_id == mentor.id)
        )
    ).scalars()
    busy += [Busy(b.start_at, b.end_at) for b in blocks]
    # A workshop either of them hosts or sits in is busy too (bot/sessions/seats.py).
    busy += await busy_in_workshops(uow, mentor.user_id, learner_id)
    cfg = config.sessions
    return free_slots(
        windows,
        mentor_user.timezone,
        busy,
        now,
        horizon=timedelta(days=cfg.booking_horizon_days),
        duration=timedelta(minutes=cfg.duration_minutes),
        lead=timedelta(minutes=cfg.min_lead_minutes),
    )


async def _invite(uow: UnitOfWork, session: MentorSession, now: datetime) -> Attachment:
    enrollment = await uow.get(Enrollment, session.enrollment_id)
    assert enrollment is not None
    course = await uow.get(Course, enrollment.course_id)
    assert course is not None
    return session_invite(
        session.id,
        session.start_at,
        session.duration_minutes,
        f"mentorbot: {course.title_en}",
        session.meeting_link,
        now,
        sequence=session.rescheduled_count,
    )


def _inside_window(config: Config, session: MentorSession, now: datetime) -> bool:
    return session.start_at - now < timedelta(hours=config.sessions.cancel_window_hours)


# --- booking ---------------------------------------------------------------------------------


async def _accepted_request(uow: UnitOfWork, learner_id: int, request_id: int) -> MentorshipRequest:
    requests = await accepted_requests(uow, learner_id)
    request = next((r for r in requests if r.id == request_id), None)
    if request is None:
        raise NotFound(_("You have no mentorship #{id} to book with.", id=request_id))
    assert request.mentor_id is not None
    return request


async def _open_to_booking(
    uow: UnitOfWork,
    config: Config,
    request: MentorshipRequest,
    enrollment: Enrollment,
    now: datetime,
) -> tuple[MentorProfile, list[datetime]]:
    """The locked mentor and their free starts, if the learner may book in this mentorship."""
    if enrollment.status != "active" or enrollment.credits_remaining <= 0:
        raise BadInput(_("You have no sessions left in this course. Buy it again with /courses."))
    mentor = await uow.lock(MentorProfile, request.mentor_id)
    assert mentor is not None
    if mentor.status != "approved":
        raise BadInput(
            _(
                "Your mentor is not taking sessions at the moment. Ask the admins with /support "
                "to find you another mentor."
            ),
            [write_to_admins()],
        )
    await _lock_people(uow, request.learner_id, mentor.user_id)
    return mentor, await _free_starts(uow, config, mentor, request.learner_id, now)


async def _lock_people(uow: UnitOfWork, *user_ids: int) -> None:
    """Lock both people of a booking, in id order: a booking elsewhere in which either is the
    other role locks the same rows, so the two cannot both take the same hour."""
    for user_id in sorted(set(user_ids)):
        await uow.lock(User, user_id)


async def _locked_enrollment(uow: UnitOfWork, enrollment_id: int) -> Enrollment:
    enrollment = await uow.lock(Enrollment, enrollment_id)
    assert enrollment is not None
    return enrollment


async def bookable_times(
    uow: UnitOfWork, learner_id: int, request_id: int, now: datetime, config: Config
) -> list[datetime]:
    """The starts the learner could book in mentorship `request_id` now."""
    request = await _accepted_request(uow, learner_id, request_id)
    enrollment = await _locked_enrollment(uow, request.enrollment_id)
    _mentor, slots = await _open_to_booking(uow, config, request, enrollment, now)
    return slots


async def book(
    uow: UnitOfWork,
    learner_id: int,
    request_id: int,
    start: datetime | None,
    now: datetime,
    config: Config,
) -> Booked:
    """Book a session at `start` in the learner's mentorship `request_id`: one credit spent,
    reminders scheduled, the mentor told with a calendar invite.

    The same booking sent twice (a double tap, a redelivered update after a crash) returns the
    session it made, `repeated`, instead of refusing its own slot as taken. `start` None (a
    time that could not be read) is refused like a taken one, with the free times.
    """
    request = await _accepted_request(uow, learner_id, request_id)
    enrollment = await _locked_enrollment(uow, request.enrollment_id)
    if start is not None:
        made = await _booked_at(uow, request.id, start)
        if made is not None:
            mentor_user = await other_side(uow, made, is_mentor=False)
            return Booked(
                made, mentor_user.display_name, enrollment.credits_remaining, None, repeated=True
            )
    mentor, slots = await _open_to_booking(uow, config, request, enrollment, now)
    if start is None or start not in slots:
        raise SlotNotFree(
            _("That time is not free. Pick one of the times from /book {id}.", id=request.id),
            slots,
        )
    session = MentorSession(
        request_id=request.id,
        enrollment_id=enrollment.id,
        mentor_id=mentor.id,
        learner_id=learner_id,
        start_at=start,
        duration_minutes=config.sessions.duration_minutes,
        meeting_link="",
        status="scheduled",
        created_at=now,
        mentor_note="",
        rescheduled_count=0,
    )
    try:
        async with uow.session.begin_nested():
            uow.add(session)
            await uow.flush()
    except IntegrityError:
        raise SlotNotFree(
            _("That time was just taken. Pick another one from /book {id}.", id=request.id),
            [s for s in slots if s != start],
        ) from None
    session.meeting_link = config.sessions.meeting_link_template.format(
        session_id=session.id, token=secrets.token_hex(4)
    )
    await use_credit(uow, enrollment, session, now)
    wake_at = await schedule_for_session(uow, config, session, now)
    mentor_user = await _user(uow, mentor.user_id)
    learner = await _user(uow, learner_id)
    course = await uow.get(Course, enrollment.course_id)
    assert course is not None
    invite = await _invite(uow, session, now)
    await tell(
        uow,
        mentor_user.id,
        _(
            "{learner} booked session #{id} ({course}) on {when}. Join: {link}",
            learner=learner.display_name,
            id=session.id,
            course=course_title(course),
            when=When(session.start_at),
            link=session.meeting_link,
        ),
        now,
        attachments=(invite,),
    )
    return Booked(
        session, mentor_user.display_name, enrollment.credits_remaining, invite, tuple(wake_at)
    )


async def _booked_at(uow: UnitOfWork, request_id: int, start: datetime) -> MentorSession | None:
    found = await uow.session.execute(
        select(MentorSession)
        .where(MentorSession.request_id == request_id)
        .where(MentorSession.start_at == start)
        .where(MentorSession.status == "scheduled")
    )
    return found.scalar_one_or_none()


# --- moving ----------------------------------------------------------------------------------


async def _open_to_moving(
    uow: UnitOfWork, user_id: int, session_id: int, now: datetime, config: Config
) -> tuple[MentorSession, bool, list[datetime]]:
    session, is_mentor = await participant_session(uow, user_id, session_id)
    if session.status != "scheduled" or session.start_at <= now:
        raise BadInput(_("Session #{id} can no longer be moved.", id=session.id))
    if _inside_window(config, session, now):
        raise BadInput(
            _(
                "Sessions can be moved until {hours} h before they start. You can still "
                "cancel with /cancelsession {id}.",
                hours=config.sessions.cancel_window_hours,
                id=session.id,
            )
        )
    mentor = await uow.lock(MentorProfile, session.mentor_id)
    assert mentor is not None
    await _lock_people(uow, session.learner_id, mentor.user_id)
    slots = await _free_starts(
        uow, config, mentor, session.learner_id, now, ignore_session=session.id
    )
    return session, is_mentor, [s for s in slots if s != session.start_at]


async def movable_times(
    uow: UnitOfWork, user_id: int, session_id: int, now: datetime, config: Config
) -> list[datetime]:
    """The other starts session `session_id` could move to now, for either participant."""
    _session, _is_mentor, slots = await _open_to_moving(uow, user_id, session_id, now, config)
    return slots


async def move(
    uow: UnitOfWork,
    user_id: int,
    session_id: int,
    start: datetime | None,
    now: datetime,
    config: Config,
) -> Moved:
    """Move a session to `start`, by either participant, outside the cancellation window:
    its reminders follow it and the other side is told with an updated invite."""
    session, is_mentor, slots = await _open_to_moving(uow, user_id, session_id, now, config)
    if start is None or start not in slots:
        raise SlotNotFree(
            _("That time is not free. Pick one of the times from /reschedule {id}.", id=session.id),
            slots,
        )
    old_start = session.start_at
    try:
        async with uow.session.begin_nested():
            session.start_at = start
            session.rescheduled_count += 1
            await uow.flush()
    except IntegrityError:
        raise SlotNotFree(
            _("That time was just taken. Pick another one from /reschedule {id}.", id=session.id),
            [s for s in slots if s != start],
        ) from None
    await skip_for_session(uow, session.id, now)
    wake_at = await schedule_for_session(uow, config, session, now)
    invite = await _invite(uow, session, now)
    mover = await _user(uow, user_id)
    other = await other_side(uow, session, is_mentor)
    await tell(
        uow,
        other.id,
        _(
            "{who} moved session #{id} from {old} to {when}. Join: {link}",
            who=mover.display_name,
            id=session.id,
            old=When(old_start),
            when=When(session.start_at),
            link=session.meeting_link,
        ),
        now,
        attachments=(invite,),
    )
    return Moved(session, invite, tuple(wake_at))


# --- cancelling ------------------------------------------------------------------------------


async def cancelling_loses_credit(
    uow: UnitOfWork, user_id: int, session_id: int, now: datetime, config: Config
) -> bool:
    """Whether cancelling now would use up the learner's credit (the learner cancelling inside
    the window), so that they are asked once before they lose it."""
    session, is_mentor = await participant_session(uow, user_id, session_id)
    return (
        not is_mentor
        and session.status == "scheduled"
        and session.start_at > now
        and _inside_window(config, session, now)
    )


async def cancel(
    uow: UnitOfWork,
    user_id: int,
    session_id: int,
    now: datetime,
    config: Config,
    *,
    account_closed: bool = False,
) -> Cancelled:
    """Cancel a session that has not started, by either participant; the other side is told.

    The credit comes back when the mentor cancels, or the learner does before the window;
    `account_closed` says the participant is erasing their account, which the notice says (a
    learner leaving has no use for the credit, a mentor leaving gives it back).
    """
    session, is_mentor = await participant_session(uow, user_id, session_id)
    if session.status == "scheduled" and session.start_at <= now:
        raise BadInput(
            _("Session #{id} has already started and can no longer be cancelled.", id=session.id)
        )
    late = _inside_window(config, session, now)
    advance("session", session, "cancelled")
    enrollment = await _locked_enrollment(uow, session.enrollment_id)
    credit_back = enrollment.status == "active" and (is_mentor or not (late or account_closed))
    if credit_back:
        await return_credit(uow, enrollment, session, now)
    await skip_for_session(uow, session.id, now)
    other = await other_side(uow, session, is_mentor)
    when = When(session.start_at)
    if account_closed and is_mentor:
        notice = _(
            "Session #{id} on {when} is cancelled: your mentor closed their account. "
            "The session credit is back.",
            id=session.id,
            when=when,
        )
    elif account_closed:
        notice = _(
            "Session #{id} on {when} is cancelled: the learner closed their account.",
            id=session.id,
            when=when,
        )
    else:
        notice = await _cancel_notice(
            uow, session, user_id, is_mentor, credit_back, enrollment, late, config
        )
    again = [Choice(_("Book again"), f"/book {session.request_id}")]
    await tell(uow, other.id, notice, now, again if is_mentor and credit_back else ())
    return Cancelled(session, credit_back)


async def _cancel_notice(
    uow: UnitOfWork,
    session: MentorSession,
    user_id: int,
    is_mentor: bool,
    credit_back: bool,
    enrollment: Enrollment,
    late: bool,
    config: Config,
) -> Msg:
    """What the other side reads: a learner learns the credit came back and how many are
    left; a mentor learns whether the learner lost the credit by cancelling late."""
    who = (await _user(uow, user_id)).display_name
    when = When(session.start_at)
    if is_mentor and credit_back:
        course = await uow.get(Course, enrollment.course_id)
        assert course is not None
        return ngettext(
            "{who} cancelled session #{id} on {when}. Your session credit is back: "
            "{n} session left in {course}.",
            "{who} cancelled session #{id} on {when}. Your session credit is back: "
            "{n} sessions left in {course}.",
            enrollment.credits_remaining,
            who=who,
            id=session.id,
            when=when,
            course=course_title(course),
        )
    if is_mentor or enrollment.status != "active":
        return _("{who} cancelled session #{id} on {when}.", who=who, id=session.id, when=when)
    if not late:
        return _(
            "{who} cancelled session #{id} on {when}, early enough to get the session credit back.",
            who=who,
            id=session.id,
            when=when,
        )
    return _(
        "{who} cancelled session #{id} on {when}, less than {hours} h before it, so the "
        "learner's session credit is used up.",
        who=who,
        id=session.id,
        when=when,
        hours=config.sessions.cancel_window_hours,
    )


# --- closing ---------------------------------------------------------------------------------


async def close(
    uow: UnitOfWork, user_id: int, session_id: int, answer: Answer, now: datetime, config: Config
) -> Closed:
    """Record a participant's answer to whether the session took place.

    The mentor's answer decides the status when the learner agrees or has not answered; a
    learner's answer alone never decides, so claiming "the mentor did not come" cannot return
    credits by itself. When the answers disagree the session is disputed (credit used, no
    earnings) and the admins are told, until one of them settles it with `settle`.
    """
    session, is_mentor = await participant_session(uow, user_id, session_id)
    if session.status == "scheduled" and now < session.start_at:
        raise BadInput(_("Session #{id} has not started yet.", id=session.id))
    if session.status == "cancelled":
        raise BadInput(
            _("Session #{id} was cancelled, so there is nothing to record.", id=session.id)
        )
    if is_mentor:
        return await _mentor_answer(uow, session, answer, now, config)
    return await _learner_answer(uow, session, answer, now)


def session_end(session: MentorSession) -> datetime:
    return session.start_at + timedelta(minutes=session.duration_minutes)


async def _mentor_answer(
    uow: UnitOfWork, session: MentorSession, answer: Answer, now: datetime, config: Config
) -> Closed:
    learner = await _user(uow, session.learner_id)
    if session.mentor_outcome is not None or session.status != "scheduled":
        return Closed(session, True, "known", learner.display_name)
    session.mentor_outcome = answer
    if session.learner_outcome == "no_show" or session.learner_outcome not in (None, answer):
        return await _dispute(uow, session, now, by_mentor=True)
    advance("session", session, answer)
    if answer == "completed":
        await _completed(uow, session, now, config)
        return Closed(session, True, "completed", learner.display_name)
    session.no_show_by = "learner"
    await tell(
        uow,
        learner.id,
        _(
            "Your mentor marked session #{id} on {when} as missed. If it did take place, "
            "answer /outcome {id} completed and an admin settles it; to explain more, write "
            "to the admins with /support.",
            id=session.id,
            when=When(session.start_at),
        ),
        now,
        [Choice(_("It took place"), f"/outcome {session.id} completed"), write_to_admins()],
    )
    return Closed(session, True, "no_show", learner.display_name)


async def _completed(
    uow: UnitOfWork, session: MentorSession, now: datetime, config: Config
) -> None:
    """The session took place: its mentor is paid (once) and the learner asked to rate it."""
    await credit_mentor(uow, config, session, now)
    mentor_user = await other_side(uow, session, is_mentor=False)
    done = _(
        "Session #{id} with {mentor} is complete. How was it? Rate it from 1 to 5:",
        id=session.id,
        mentor=mentor_user.display_name,
    )
    if await _last_of_course(uow, session):  # the course is done: what to take next
        found = await suggest(uow, config, session.learner_id, "course_end", now)
        lines = found.lines()
        if lines is not None:
            done = Lines([done, lines]).as_msg()
    await tell(uow, session.learner_id, done, now, rating_choices(session.id))


async def _last_of_course(uow: UnitOfWork, session: MentorSession) -> bool:
    """Whether this session used the last credit of its enrollment, with none still booked."""
    enrollment = await uow.get(Enrollment, session.enrollment_id)
    if enrollment is None or enrollment.credits_remaining > 0:
        return False
    booked = await uow.session.execute(
        select(MentorSession.id)
        .where(MentorSession.enrollment_id == session.enrollment_id)
        .where(MentorSession.status == "scheduled")
        .limit(1)
    )
    return booked.first() is None


async def _learner_answer(
    uow: UnitOfWork, session: MentorSession, answer: Answer, now: datetime
) -> Closed:
    learner_name = (await _user(uow, session.learner_id)).display_name
    if session.learner_outcome is not None:
        return Closed(session, False, "known", learner_name)
    if session.status == "scheduled" and now < session_end(session):
        raise BadInput(
            _(
                "Session #{id} has not ended yet. You can say whether it took place from {when}.",
                id=session.id,
                when=When(session_end(session)),
            )
        )
    session.learner_outcome = answer
    if session.status == "no_show":
        return await _dispute(uow, session, now, by_mentor=False)
    if session.status == "completed" and answer == "no_show":
        await _alert_admins(uow, session, now)
        return Closed(session, False, "recorded", learner_name)
    if session.status == "completed":  # the learner agrees with the mentor
        return Closed(session, False, "known", learner_name)
    if answer == "completed":
        return Closed(session, False, "awaiting_mentor", learner_name)
    mentor_user = await other_side(uow, session, is_mentor=False)
    await tell(
        uow,
        mentor_user.id,
        _(
            "{learner} says you did not come to session #{id} on {when}. If it took place, "
            "answer /outcome {id} completed; otherwise an admin settles it.",
            learner=learner_name,
            id=session.id,
            when=When(session.start_at),
        ),
        now,
    )
    return Closed(session, False, "claimed", learner_name)


async def _dispute(
    uow: UnitOfWork, session: MentorSession, now: datetime, *, by_mentor: bool
) -> Closed:
    advance("session", session, "disputed")
    session.no_show_by = None
    await _alert_admins(uow, session, now)
    learner = await _user(uow, session.learner_id)
    return Closed(session, by_mentor, "disputed", learner.display_name)


async def _alert_admins(uow: UnitOfWork, session: MentorSession, now: datetime) -> None:
    await tell_admins(
        uow,
        _(
            "Session #{id} on {when}: mentor says {mentor}, learner says {learner}. "
            "Settle it with /admin settle {id} completed|noshow|refund-credit.",
            id=session.id,
            when=When(session.start_at),
            mentor=STATUS_NAMES.get(session.mentor_outcome or "", "—"),
            learner=STATUS_NAMES.get(session.learner_outcome or "", "—"),
        ),
        now,
    )


# --- settling --------------------------------------------------------------------------------


def awaits_admin(session: MentorSession) -> bool:
    """Disputed, or a learner's no-show claim the mentor has not answered yet."""
    if session.status == "disputed":
        return True
    return session.status == "scheduled" and session.learner_outcome == "no_show"


async def settle(
    uow: UnitOfWork, session_id: int, verdict: Verdict, now: datetime, config: Config
) -> MentorSession:
    """An admin's decision on a disputed session (or an unanswered no-show claim).

    "completed" pays the mentor and keeps the credit used; "noshow" (the learner missed it)
    keeps the credit used and pays nothing; "refund-credit" (the mentor missed it) returns the
    learner's credit. Both sides are told. A session already decided is refused.
    """
    session = await uow.lock(MentorSession, session_id)
    if session is None:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    if not awaits_admin(session):
        raise BadInput(_("Session #{id} is not disputed; nothing to settle.", id=session.id))
    if verdict == "completed":
        advance("session", session, "completed")
        session.no_show_by = None
        await _completed(uow, session, now, config)
        decision = _("it took place; the mentor is paid")
    elif verdict == "noshow":
        advance("session", session, "no_show")
        session.no_show_by = "learner"
        decision = _("the learner missed it; the session credit is used")
    else:
        advance("session", session, "no_show")
        session.no_show_by = "mentor"
        enrollment = await _locked_enrollment(uow, session.enrollment_id)
        if enrollment.status == "active":
            await return_credit(uow, enrollment, session, now)
        decision = _("the mentor missed it; the learner's session credit is back")
    mentor_user = await other_side(uow, session, is_mentor=False)
    for user_id in (session.learner_id, mentor_user.id):
        await tell(
            uow,
            user_id,
            _(
                "An admin settled session #{id} on {when}: {decision}.",
                id=session.id,
                when=When(session.start_at),
                decision=decision,
            ),
            now,
        )
    return session
