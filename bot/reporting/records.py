"""What the admin report reads from the database, gathered in one transaction.

`gather` runs a handful of queries bounded by the report's first week. What is only counted or
summed is counted in the database: revenue per course, currency and week, sessions held or
missed per week, course and mentor, distinct learners per week and per course (week buckets are
a CASE over the weeks' bounds, so SQLite and PostgreSQL agree). Ratings, lesson deliveries and
requests stay rows, as the model needs each value (means of a curve, medians).
`bot/reporting/model.py` turns them into weekly series and breakdowns without the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, func, select

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


class Held(NamedTuple):
    """Sessions that took place and sessions missed (a no-show by either side)."""

    completed: int = 0
    no_show: int = 0


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


@dataclass(frozen=True)
class Records:
    """Everything the report reads, as plain rows (gathered once, in one transaction)."""

    now: datetime
    weeks: list[datetime]
    # Revenue summed per course, currency and week: paid_at / refunded_at is the week's start
    # (or, for entries stamped after `now`, the moment after it).
    orders: list[OrderRec]
    session_stars: list[StarsRec]
    lesson_stars: list[StarsRec]
    lessons: list[LessonRec]
    requests: list[RequestRec]
    sessions_by_week: dict[int, Held]  # by index into `weeks`
    sessions_by_course: dict[int, Held]  # since the first week, up to now
    sessions_by_mentor: dict[int, Held]
    sessions_overall: Held
    learners_by_week: list[int]  # distinct learners enrolled at some point of each week
    active_learners: dict[int, int]  # distinct learners with an active enrollment, per course
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


def week_index(at: Any, weeks: list[datetime], now: datetime) -> Any:
    """The index into `weeks` of the week `at` falls in, as SQL (a CASE over the weeks' ends);
    `len(weeks)` for the current week after `now`; NULL outside the weeks."""
    return case(
        (at < weeks[0], None),
        (at > now, case((at < weeks[-1] + WEEK, len(weeks)), else_=None)),
        *((at < start + WEEK, i) for i, start in enumerate(weeks)),
        else_=None,
    )


def _held(rows: Any) -> dict[int, Held]:
    counts: dict[int, dict[str, int]] = {}
    for key, status, n in rows:
        counts.setdefault(key, {})[status] = int(n)
    return {k: Held(c.get("completed", 0), c.get("no_show", 0)) for k, c in counts.items()}


async def gather(uow: UnitOfWork, config: Config, now: datetime) -> Records:
    weeks = week_starts(now, config.satisfaction.report_weeks)
    since = weeks[0]
    after_now = now + timedelta(microseconds=1)
    run = (await uow.session.connection()).execute  # Core rows: no ORM loading per row
    orders: list[OrderRec] = []
    demo_orders: list[OrderRec] = []
    week = week_index(LedgerEntry.at, weeks, now).label("week")
    for course_id, currency, kind, demo, i, amount in await run(
        select(
            Order.course_id,
            LedgerEntry.currency,
            LedgerEntry.kind,
            LedgerEntry.demo,
            week,
            func.sum(LedgerEntry.amount_minor),
        )
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.kind.in_([k.value for k in REVENUE_KINDS]))
        .where(LedgerEntry.at >= since)
        .group_by(Order.course_id, LedgerEntry.currency, LedgerEntry.kind, LedgerEntry.demo, week)
    ):
        if i is None:
            continue
        at = after_now if i == len(weeks) else weeks[i]
        (demo_orders if demo else orders).append(
            OrderRec(course_id, str(currency), int(amount), at, None)
            if kind == Kind.ORDER_PAID
            else OrderRec(course_id, str(currency), -int(amount), None, at)
        )
    held = (
        select()
        .select_from(MentorSession)
        .where(MentorSession.start_at >= since)
        .where(MentorSession.status.in_(("completed", "no_show")))
    )
    # Held and missed per week and course (after now: index len(weeks)), in one scan.
    by_week = week_index(MentorSession.start_at, weeks, now).label("week")
    sessions_by_week: dict[int, Held] = {}
    sessions_by_course: dict[int, Held] = {}
    completed_so_far = no_show_so_far = 0
    for i, course_id, status, n in await run(
        held.add_columns(by_week, Enrollment.course_id, MentorSession.status, func.count())
        .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
        .group_by(by_week, Enrollment.course_id, MentorSession.status)
    ):
        if i is None:
            continue
        one = Held(int(n), 0) if status == "completed" else Held(0, int(n))
        week_i = min(int(i), len(weeks) - 1)  # after now: still the current week
        old = sessions_by_week.get(week_i, Held())
        sessions_by_week[week_i] = Held(old[0] + one[0], old[1] + one[1])
        if i < len(weeks):  # the breakdowns and the overall score stop at now
            old = sessions_by_course.get(course_id, Held())
            sessions_by_course[course_id] = Held(old[0] + one[0], old[1] + one[1])
            completed_so_far += one[0]
            no_show_so_far += one[1]
    sessions_overall = Held(completed_so_far, no_show_so_far)
    so_far = held.where(MentorSession.start_at <= now)
    sessions_by_mentor = _held(
        await run(
            so_far.add_columns(
                MentorSession.mentor_id, MentorSession.status, func.count()
            ).group_by(MentorSession.mentor_id, MentorSession.status)
        )
    )
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
    # Per learner, whether some enrollment of theirs spans part of each week (one scan), then
    # how many learners per week.
    spans = (
        select(
            *(
                func.max(
                    case(
                        (
                            (Enrollment.created_at < start + WEEK)
                            & (Order.refunded_at.is_(None) | (Order.refunded_at >= start)),
                            1,
                        ),
                        else_=0,
                    )
                ).label(f"w{i}")
                for i, start in enumerate(weeks)
            )
        )
        .join(Order, Order.id == Enrollment.order_id)
        .group_by(Enrollment.user_id)
        .subquery()
    )
    learners_by_week = [
        int(n or 0) for n in (await run(select(*(func.sum(column) for column in spans.c)))).one()
    ]
    active_learners = {
        cid: int(n)
        for cid, n in await run(
            select(Enrollment.course_id, func.count(func.distinct(Enrollment.user_id)))
            .join(Order, Order.id == Enrollment.order_id)
            .where(Enrollment.status == "active")
            .group_by(Enrollment.course_id)
        )
    }
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
        session_stars,
        lesson_stars,
        lessons,
        requests,
        sessions_by_week,
        sessions_by_course,
        sessions_by_mentor,
        sessions_overall,
        learners_by_week,
        active_learners,
        courses,
        mentors,
        demo_orders,
    )
