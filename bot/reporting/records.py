"""What the admin report reads from the database, gathered in one transaction.

`gather` runs a handful of queries bounded by the report's first week. What is only counted or
summed is counted in the database: revenue per course, currency and week, sessions held or
missed per week, course and mentor, distinct learners per week and per course (week buckets are
a CASE over the weeks' bounds, so SQLite and PostgreSQL agree). Ratings, lesson deliveries and
requests stay rows, as the model needs each value (means of a curve, medians).
`bot/reporting/model.py` turns them into weekly series and breakdowns without the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    case,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute, aliased

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


def per_week(
    at: InstrumentedAttribute[datetime],
    weeks: list[datetime],
    now: datetime,
    part: Callable[[ColumnElement[bool]], Select[*tuple[Any, ...]]],
    first: int = 0,
) -> CompoundSelect[*tuple[Any, ...]]:
    """`part(in_week)` for each week from `weeks[first]`, as one statement: each part's rows
    end with the index into `weeks` of its week, `len(weeks)` for the current week after `now`.
    Each part reads one range of an index on `at`, which costs far less than a CASE over every
    row."""
    last = len(weeks) - 1
    ranges = [(at >= start) & (at < weeks[i + 1]) for i, start in enumerate(weeks[:last])]
    ranges += [(at >= weeks[last]) & (at <= now), (at > now) & (at < weeks[last] + WEEK)]
    return union_all(
        *(
            part(where).add_columns(literal_column(str(i)))
            for i, where in enumerate(ranges)
            if i >= first
        )
    )


def _held(rows: Any) -> dict[int, Held]:
    counts: dict[int, dict[str, int]] = {}
    for key, status, n in rows:
        counts.setdefault(key, {})[status] = int(n)
    return {k: Held(c.get("completed", 0), c.get("no_show", 0)) for k, c in counts.items()}


async def gather(
    uow: UnitOfWork, config: Config, now: datetime, *, breakdowns: bool = True
) -> Records:
    """The report's rows. Without `breakdowns` (the `/admin stats` summary: weekly series and
    the overall score only) nothing is read per course or per mentor: no join from sessions,
    requests or payments to their course, no per-mentor counts; `courses` and `mentors` stay
    empty and course ids read 0."""
    weeks = week_starts(now, config.satisfaction.report_weeks)
    since = weeks[0]
    after_now = now + timedelta(microseconds=1)
    conn = await uow.session.connection()  # Core rows: no ORM loading per row
    run = conn.execute
    orders: list[OrderRec] = []
    demo_orders: list[OrderRec] = []
    # Without breakdowns, course ids read 0 (a constant, so not among the GROUP BY terms).
    revenue_course = Order.course_id if breakdowns else literal_column("0")
    by_course = [Order.course_id] if breakdowns else []

    def revenue(in_week: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
        paid = select(
            revenue_course,
            LedgerEntry.currency,
            LedgerEntry.kind,
            LedgerEntry.demo,
            func.sum(LedgerEntry.amount_minor),
        )
        if breakdowns:
            paid = paid.join(Order, Order.id == LedgerEntry.order_id)
        return paid.where(LedgerEntry.kind.in_([k.value for k in REVENUE_KINDS]), in_week).group_by(
            *by_course, LedgerEntry.currency, LedgerEntry.kind, LedgerEntry.demo
        )

    for course_id, currency, kind, demo, amount, i in await run(
        per_week(LedgerEntry.at, weeks, now, revenue)
    ):
        at = after_now if i == len(weeks) else weeks[i]
        (demo_orders if demo else orders).append(
            OrderRec(course_id, str(currency), int(amount), at, None)
            if kind == Kind.ORDER_PAID
            else OrderRec(course_id, str(currency), -int(amount), None, at)
        )
    # Held and missed per week and course (after now: index len(weeks)).
    sessions_by_week: dict[int, Held] = {}
    sessions_by_course: dict[int, Held] = {}
    completed_so_far = no_show_so_far = 0
    held_course = Enrollment.course_id if breakdowns else literal_column("0")
    held_by = [Enrollment.course_id] if breakdowns else []
    took_place = MentorSession.status.in_(("completed", "no_show"))

    def held(in_week: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
        rows = select(held_course, MentorSession.status, func.count())
        if breakdowns:
            rows = rows.join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
        return rows.where(in_week, took_place).group_by(*held_by, MentorSession.status)

    for course_id, status, n, i in await run(per_week(MentorSession.start_at, weeks, now, held)):
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
    sessions_by_mentor = (
        _held(
            await run(
                select(MentorSession.mentor_id, MentorSession.status, func.count())
                .where(MentorSession.start_at >= since, MentorSession.start_at <= now, took_place)
                .group_by(MentorSession.mentor_id, MentorSession.status)
            )
        )
        if breakdowns
        else {}
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
    asked = select(
        Enrollment.course_id if breakdowns else literal_column("0"),
        MentorshipRequest.mentor_id,
        MentorshipRequest.status,
        MentorshipRequest.created_at,
        MentorshipRequest.accepted_at,
    ).where(MentorshipRequest.created_at >= since)
    if breakdowns:
        asked = asked.join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
    requests = [RequestRec(*row) for row in await run(asked)]
    learners_by_week = await _learners_by_week(conn, weeks)
    active_learners: dict[int, int] = {}
    courses: list[tuple[int, str, str, int]] = []
    mentors: list[tuple[int, str, MentorStatus]] = []
    if breakdowns:
        active_learners, courses, mentors = await _breakdown_rows(conn)
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


async def _learners_by_week(conn: AsyncConnection, weeks: list[datetime]) -> list[int]:
    """Distinct learners with an enrollment spanning part of each week: made before the week's
    end and not refunded before its start.

    Counted without joining every enrollment to its order: a learner's first enrollment among
    those never refunded (one pass over enrollments, the refunded orders' ids as a set) puts
    them in every week from then on, summed per starting week in SQL; the few refunded
    enrollments that reach into the report come back as rows and add their learners to the
    weeks they span, unless those weeks already count them."""
    refunded = select(Order.id).where(Order.refunded_at.is_not(None))
    firsts = (
        select(Enrollment.user_id, func.min(Enrollment.created_at).label("first"))
        .where(Enrollment.order_id.not_in(refunded))
        .group_by(Enrollment.user_id)
        .subquery()
    )
    from_week = case(
        *((firsts.c.first < start + WEEK, i) for i, start in enumerate(weeks)), else_=None
    ).label("from_week")
    starting = [0] * len(weeks)
    for i, n in await conn.execute(select(from_week, func.count()).group_by(from_week)):
        if i is not None:
            starting[int(i)] += int(n)
    other = aliased(Enrollment)
    first_kept = (
        select(func.min(other.created_at))
        .where(other.user_id == Enrollment.user_id, other.order_id.not_in(refunded))
        .scalar_subquery()
    )
    spans: dict[int, tuple[datetime | None, list[tuple[datetime, datetime]]]] = {}
    for user_id, made, gone, first in await conn.execute(
        select(Enrollment.user_id, Enrollment.created_at, Order.refunded_at, first_kept)
        .join(Order, Order.id == Enrollment.order_id)
        .where(Order.refunded_at >= weeks[0], Enrollment.created_at < weeks[-1] + WEEK)
    ):
        if gone is not None:  # always, by the WHERE
            spans.setdefault(user_id, (first, []))[1].append((made, gone))
    counts = []
    total = 0
    for i, start in enumerate(weeks):
        end = start + WEEK
        total += starting[i]
        counts.append(
            total
            + sum(
                1
                for first, held in spans.values()
                if (first is None or first >= end)
                and any(made < end and gone >= start for made, gone in held)
            )
        )
    return counts


async def _breakdown_rows(
    conn: AsyncConnection,
) -> tuple[dict[int, int], list[tuple[int, str, str, int]], list[tuple[int, str, MentorStatus]]]:
    """Per course: distinct learners with an active enrollment; the courses with their active
    lessons; the mentors with their names and statuses."""
    active_learners = {
        cid: int(n)
        for cid, n in await conn.execute(
            select(Enrollment.course_id, func.count(func.distinct(Enrollment.user_id)))
            .join(Order, Order.id == Enrollment.order_id)
            .where(Enrollment.status == "active")
            .group_by(Enrollment.course_id)
        )
    }
    active_lessons = dict(
        (
            await conn.execute(
                select(Lesson.course_id, func.count(Lesson.id))
                .where(Lesson.status == "active")
                .group_by(Lesson.course_id)
            )
        ).all()
    )
    courses = [
        (cid, slug, title, int(active_lessons.get(cid, 0)))
        for cid, slug, title in await conn.execute(
            select(Course.id, Course.slug, Course.title_en).order_by(Course.id)
        )
    ]
    mentors = [
        (mid, name, status)
        for mid, name, status in await conn.execute(
            select(MentorProfile.id, User.display_name, MentorProfile.status)
            .join(User, User.id == MentorProfile.user_id)
            .order_by(MentorProfile.id)
        )
    ]
    return active_learners, courses, mentors
