"""Where a person already is, and what a workshop seat costs: the two things workshops share
with one-on-one sessions.

One person is in one place at a time: a learner seated in a workshop, or a mentor hosting one,
is busy for its hour in one-on-one booking too (`busy_in_workshops`, used by
bot/sessions/booking.py), and a workshop seat is refused over a booked session or another
workshop (`clash`). A seat paid with session credits spends them from the learner's course
enrollment through the ledger, and gives them back at most once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from bot.core.ledger import Kind
from bot.core.users import mentor_profile_of
from bot.sessions.credits import move_credits
from bot.sessions.scheduling import Busy
from storage.models import Enrollment, MentorSession, Workshop, WorkshopSeat
from storage.uow import UnitOfWork

# No one-on-one session or workshop lasts longer than this: how far back a clash is looked for.
LONGEST = timedelta(hours=24)


def workshop_end(workshop: Workshop) -> datetime:
    return workshop.start_at + timedelta(minutes=workshop.duration_minutes)


async def busy_in_workshops(
    uow: UnitOfWork, *user_ids: int, exclude: int | None = None
) -> list[Busy]:
    """The times the users are in a scheduled workshop, as its host or seated in it."""
    ids = list(user_ids)
    if not ids:
        return []
    seated = select(WorkshopSeat.workshop_id).where(
        WorkshopSeat.user_id.in_(ids), WorkshopSeat.status == "seated"
    )
    rows = await uow.session.execute(
        select(Workshop)
        .where(Workshop.status == "scheduled")
        .where(Workshop.id != (exclude or 0))
        .where(or_(Workshop.host_id.in_(ids), Workshop.id.in_(seated)))
    )
    return [Busy(w.start_at, workshop_end(w)) for w in rows.scalars()]


async def clash(
    uow: UnitOfWork, user_id: int, start: datetime, end: datetime, exclude: int | None = None
) -> datetime | None:
    """The start of something the user is already in between `start` and `end` (a booked
    session, as learner or mentor, or a workshop they host or sit in), or None."""
    for busy in await busy_in_workshops(uow, user_id, exclude=exclude):
        if busy.start < end and start < busy.end:
            return busy.start
    profile = await mentor_profile_of(uow, user_id)
    sessions = await uow.session.execute(
        select(MentorSession)
        .where(MentorSession.status == "scheduled")
        .where(MentorSession.start_at < end)
        .where(MentorSession.start_at > start - LONGEST)
        .where(
            or_(
                MentorSession.learner_id == user_id,
                MentorSession.mentor_id == (profile.id if profile is not None else -1),
            )
        )
    )
    for session in sessions.scalars():
        if start < session.start_at + timedelta(minutes=session.duration_minutes):
            return session.start_at
    return None


async def paying_enrollment(
    uow: UnitOfWork, user_id: int, course_id: int, credits: int
) -> Enrollment | None:
    """The learner's oldest active enrollment in the course with `credits` left, locked."""
    found = await uow.session.execute(
        select(Enrollment.id)
        .where(Enrollment.user_id == user_id)
        .where(Enrollment.course_id == course_id)
        .where(Enrollment.status == "active")
        .where(Enrollment.credits_remaining >= credits)
        .order_by(Enrollment.id)
        .limit(1)
    )
    enrollment_id = found.scalar_one_or_none()
    return None if enrollment_id is None else await uow.lock(Enrollment, enrollment_id)


async def credits_in_course(uow: UnitOfWork, user_id: int, course_id: int) -> int:
    """The most credits the learner has on one active enrollment of the course."""
    found = await uow.session.execute(
        select(Enrollment.credits_remaining)
        .where(Enrollment.user_id == user_id)
        .where(Enrollment.course_id == course_id)
        .where(Enrollment.status == "active")
        .order_by(Enrollment.credits_remaining.desc())
        .limit(1)
    )
    return int(found.scalar_one_or_none() or 0)


async def pay_seat(
    uow: UnitOfWork, enrollment: Enrollment, seat: WorkshopSeat, now: datetime
) -> None:
    """The seat spends its price in credits of the locked enrollment (once per seat)."""
    seat.enrollment_id = enrollment.id
    await move_credits(
        uow,
        enrollment,
        Kind.WORKSHOP_CREDIT_USED,
        f"workshop-used:seat:{seat.id}",
        -seat.credits,
        now,
    )


async def refund_seat(uow: UnitOfWork, seat: WorkshopSeat, now: datetime) -> bool:
    """Give the seat's credits back, at most once, while its enrollment is active."""
    if seat.enrollment_id is None or seat.credits <= 0:
        return False
    enrollment = await uow.lock(Enrollment, seat.enrollment_id)
    if enrollment is None or enrollment.status != "active":
        return False
    return await move_credits(
        uow,
        enrollment,
        Kind.WORKSHOP_CREDIT_RETURNED,
        f"workshop-returned:seat:{seat.id}",
        seat.credits,
        now,
    )
