"""What the admin report reads from the database, as plain rows gathered in one transaction.

`gather` runs a handful of queries bounded by the report's first week (enrollments are read in
full, since learners enrolled before the window still count); `bot/reporting/model.py` turns the
rows into weekly series and breakdowns without touching the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select

from bot.config import Config
from bot.core.ledger import REVENUE_KINDS, Kind
from bot.core.states import MentorStatus
from storage.models import (
    Course,
    Enrollment,
    LedgerEntry,
    Lesson,
    LessonDelivery,
    LessonRating,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    User,
)
from storage.uow import UnitOfWork

WEEK = timedelta(days=7)


class OrderRec(NamedTuple):
    course_id: int
    currency: str
    amount: int
    paid_at: datetime | None
    refunded_at: datetime | None


class SessionRec(NamedTuple):
    course_id: int
    mentor_id: int
    start_at: datetime
    status: str


class StarsRec(NamedTuple):
    course_id: int
    mentor_id: int  # 0 for lesson ratings
    stars: int
    at: datetime


class LessonRec(NamedTuple):
    course_id: int
    delivered_at: datetime
    done_at: datetime | None


class RequestRec(NamedTuple):
    course_id: int
    mentor_id: int | None
    status: str
    created_at: datetime
    accepted_at: datetime | None


class EnrollmentRec(NamedTuple):
    user_id: int
    course_id: int
    created_at: datetime
    refunded_at: datetime | None
    active: bool


@dataclass(frozen=True)
class Records:
    """Everything the report reads, as plain rows (gathered once, in one transaction)."""

    now: datetime
    weeks: list[datetime]
    orders: list[OrderRec]
    sessions: list[SessionRec]
    session_stars: list[StarsRec]
    lesson_stars: list[StarsRec]
    lessons: list[LessonRec]
    requests: list[RequestRec]
    enrollments: list[EnrollmentRec]
    courses: list[tuple[int, str, str, int]]  # id, slug, title, active lessons
    mentors: list[tuple[int, str, MentorStatus]]  # id, name, status
    # Demo payments (no money moved): kept apart, so the chart can show them as not counted.
    demo_orders: list[OrderRec] = field(default_factory=list)

    @property
    def since(self) -> datetime:
        return self.weeks[0]


def week_starts(now: datetime, weeks: int) -> list[datetime]:
    """The Mondays (00:00 UTC) of the last `weeks` weeks, the current one last."""
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return [monday - WEEK * i for i in reversed(range(weeks))]


async def gather(uow: UnitOfWork, config: Config, now: datetime) -> Records:
    weeks = week_starts(now, config.satisfaction.report_weeks)
    since = weeks[0]
    run = (await uow.session.connection()).execute  # Core rows: no ORM loading per row
    orders: list[OrderRec] = []
    demo_orders: list[OrderRec] = []
    for course_id, currency, amount, kind, at, demo in await run(
        select(
            Order.course_id,
            LedgerEntry.currency,
            LedgerEntry.amount_minor,
            LedgerEntry.kind,
            LedgerEntry.at,
            LedgerEntry.demo,
        )
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.kind.in_([k.value for k in REVENUE_KINDS]))
        .where(LedgerEntry.at >= since)
    ):
        (demo_orders if demo else orders).append(
            OrderRec(course_id, str(currency), amount, at, None)
            if kind == Kind.ORDER_PAID
            else OrderRec(course_id, str(currency), -amount, None, at)
        )
    sessions = [
        SessionRec(*row)
        for row in await run(
            select(
                Enrollment.course_id,
                MentorSession.mentor_id,
                MentorSession.start_at,
                MentorSession.status,
            )
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(MentorSession.start_at >= since)
            .where(MentorSession.status.in_(("completed", "no_show")))
        )
    ]
    session_stars = [
        StarsRec(*row)
        for row in await run(
            select(Enrollment.course_id, MentorSession.mentor_id, Rating.stars, Rating.created_at)
            .join(MentorSession, MentorSession.id == Rating.session_id)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(Rating.rater_id == MentorSession.learner_id)  # learners rating mentors
            .where(Rating.created_at >= since)
        )
    ]
    lesson_stars = [
        StarsRec(course_id, 0, stars, at)
        for course_id, stars, at in await run(
            select(Lesson.course_id, LessonRating.stars, LessonRating.created_at)
            .join(Lesson, Lesson.id == LessonRating.lesson_id)
            .where(LessonRating.created_at >= since)
        )
    ]
    lessons = [
        LessonRec(*row)
        for row in await run(
            select(Lesson.course_id, LessonDelivery.delivered_at, LessonDelivery.done_at)
            .join(Lesson, Lesson.id == LessonDelivery.lesson_id)
            .where((LessonDelivery.delivered_at >= since) | (LessonDelivery.done_at >= since))
        )
    ]
    requests = [
        RequestRec(*row)
        for row in await run(
            select(
                Enrollment.course_id,
                MentorshipRequest.mentor_id,
                MentorshipRequest.status,
                MentorshipRequest.created_at,
                MentorshipRequest.accepted_at,
            )
            .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
            .where(MentorshipRequest.created_at >= since)
        )
    ]
    enrollments = [
        EnrollmentRec(user_id, course_id, created_at, refunded_at, status == "active")
        for user_id, course_id, created_at, refunded_at, status in await run(
            select(
                Enrollment.user_id,
                Enrollment.course_id,
                Enrollment.created_at,
                Order.refunded_at,
                Enrollment.status,
            ).join(Order, Order.id == Enrollment.order_id)
        )
    ]
    active_lessons = dict(
        (
            await run(
                select(Lesson.course_id, func.count(Lesson.id))
                .where(Lesson.status == "active")
                .group_by(Lesson.course_id)
            )
        ).all()
    )
    courses = [
        (cid, slug, title, int(active_lessons.get(cid, 0)))
        for cid, slug, title in await run(
            select(Course.id, Course.slug, Course.title_en).order_by(Course.id)
        )
    ]
    mentors = [
        (mid, name, status)
        for mid, name, status in await run(
            select(MentorProfile.id, User.display_name, MentorProfile.status)
            .join(User, User.id == MentorProfile.user_id)
            .order_by(MentorProfile.id)
        )
    ]
    return Records(
        now,
        weeks,
        orders,
        sessions,
        session_stars,
        lesson_stars,
        lessons,
        requests,
        enrollments,
        courses,
        mentors,
        demo_orders,
    )
