"""Marketplace statistics for admins: weekly series, per-course and per-mentor breakdowns, a PNG
chart and CSV files. Used by `/admin stats` and `mentorbot report --out DIR`.

Weeks are calendar weeks in UTC starting Monday 00:00; the last one is the current, partial
week. A week's **revenue** is what was paid in it minus what was refunded in it, per currency
(demo payments move no money and are left out, as in the stats summary). The satisfaction
model and the other measures are defined in `bot/satisfaction.py`; here a week's inputs are the
lesson and session ratings given in it, the requests for a mentor made in it, and the sessions
that started in it. The chart is drawn with matplotlib's object API on the Agg canvas (no
display, no global pyplot state, safe in a worker thread); its labels are English because they
are data labels and the default font has no Chinese glyphs.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any, NamedTuple

from sqlalchemy import func, select

from bot.config import Config
from bot.i18n import currency_exponent
from bot.satisfaction import (
    Inputs,
    Satisfaction,
    Weights,
    growth_percent,
    learning_efficiency,
    satisfaction,
)
from storage.models import (
    Course,
    Enrollment,
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
CHART_SIZE = (1200, 900)  # pixels
_DPI = 100
WAITING = ("open", "offered", "waitlisted")


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
    mentors: list[tuple[int, str, str]]  # id, name, status

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
    run = uow.session.execute
    orders = [
        OrderRec(*row)
        for row in await run(
            select(
                Order.course_id,
                Order.currency,
                Order.amount_minor,
                Order.paid_at,
                Order.refunded_at,
            )
            .where(Order.provider != "demo")
            .where((Order.paid_at >= since) | (Order.refunded_at >= since))
        )
    ]
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
    )


# --- aggregation (pure) ---------------------------------------------------------------------


def _in(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def net_revenue(orders: Iterable[OrderRec], start: datetime, end: datetime) -> dict[str, int]:
    """Paid minus refunded within [start, end), per currency, in minor units."""
    totals: dict[str, int] = defaultdict(int)
    for o in orders:
        if _in(o.paid_at, start, end):
            totals[o.currency] += o.amount
        if _in(o.refunded_at, start, end):
            totals[o.currency] -= o.amount
    return dict(totals)


def wait_hours(requests: Iterable[RequestRec], now: datetime) -> list[float]:
    """Hours from asking to having a mentor (still waiting: so far); cancelled left out."""
    waits = []
    for r in requests:
        if r.status == "accepted" and r.accepted_at is not None:
            waits.append((r.accepted_at - r.created_at).total_seconds() / 3600)
        elif r.status in WAITING:
            waits.append((now - r.created_at).total_seconds() / 3600)
    return waits


def inputs_for(
    records: Records,
    start: datetime,
    end: datetime,
    course_id: int | None = None,
    mentor_id: int | None = None,
) -> Inputs:
    """The model's inputs for [start, end), optionally for one course or one mentor."""

    def keep(course: int, mentor: int | None) -> bool:
        return (course_id is None or course == course_id) and (
            mentor_id is None or mentor == mentor_id
        )

    sessions = [
        s
        for s in records.sessions
        if keep(s.course_id, s.mentor_id) and _in(s.start_at, start, end)
    ]
    return Inputs(
        lesson_stars=[
            r.stars
            for r in records.lesson_stars
            if mentor_id is None and keep(r.course_id, None) and _in(r.at, start, end)
        ],
        session_stars=[
            r.stars
            for r in records.session_stars
            if keep(r.course_id, r.mentor_id) and _in(r.at, start, end)
        ],
        wait_hours=wait_hours(
            (
                r
                for r in records.requests
                if keep(r.course_id, r.mentor_id) and _in(r.created_at, start, end)
            ),
            records.now,
        ),
        sessions_completed=sum(1 for s in sessions if s.status == "completed"),
        sessions_no_show=sum(1 for s in sessions if s.status == "no_show"),
    )


@dataclass(frozen=True)
class WeekRow:
    start: datetime
    revenue: dict[str, int]
    growth: dict[str, float | None]
    learners: int
    sessions_completed: int
    no_shows: int
    lessons_delivered: int
    lessons_done: int
    requests: int
    efficiency: float
    score: Satisfaction


@dataclass(frozen=True)
class Breakdown:
    """One course's or one mentor's figures over the report's weeks."""

    id: int
    name: str
    label: str  # slug for courses, status for mentors
    learners: int
    revenue: dict[str, int]
    lessons: int
    lessons_done: int
    inputs: Inputs
    score: Satisfaction
    accepted: int = 0
    median_accept_hours: float | None = None


@dataclass(frozen=True)
class Report:
    records: Records
    weeks: list[WeekRow]
    overall: Satisfaction
    courses: list[Breakdown]
    mentors: list[Breakdown]
    currencies: list[str] = field(default_factory=list)


def learners_in(enrollments: Iterable[EnrollmentRec], start: datetime, end: datetime) -> int:
    """Distinct learners enrolled at some point of [start, end) (refunds end an enrollment)."""
    return len(
        {
            e.user_id
            for e in enrollments
            if e.created_at < end and (e.refunded_at is None or e.refunded_at >= start)
        }
    )


def build(records: Records, config: Config) -> Report:
    weights = Weights.from_config(config.satisfaction)
    target = config.satisfaction.accept_target_hours
    rows: list[WeekRow] = []
    previous: dict[str, int] = {}
    for start in records.weeks:
        end = start + WEEK
        inputs = inputs_for(records, start, end)
        revenue = net_revenue(records.orders, start, end)
        done = sum(1 for x in records.lessons if _in(x.done_at, start, end))
        learners = learners_in(records.enrollments, start, end)
        rows.append(
            WeekRow(
                start=start,
                revenue=revenue,
                growth={
                    cur: growth_percent(revenue.get(cur, 0), previous.get(cur, 0))
                    for cur in set(revenue) | set(previous)
                },
                learners=learners,
                sessions_completed=inputs.sessions_completed,
                no_shows=inputs.sessions_no_show,
                lessons_delivered=sum(
                    1 for x in records.lessons if _in(x.delivered_at, start, end)
                ),
                lessons_done=done,
                requests=sum(1 for r in records.requests if _in(r.created_at, start, end)),
                efficiency=learning_efficiency(inputs.sessions_completed, done, learners),
                score=satisfaction(inputs, weights, target),
            )
        )
        previous = revenue
    since, until = records.since, records.now + timedelta(microseconds=1)
    overall = satisfaction(inputs_for(records, since, until), weights, target)
    courses = []
    for cid, slug, title, lesson_count in records.courses:
        inputs = inputs_for(records, since, until, course_id=cid)
        courses.append(
            Breakdown(
                id=cid,
                name=title,
                label=slug,
                learners=len(
                    {e.user_id for e in records.enrollments if e.active and e.course_id == cid}
                ),
                revenue=net_revenue(
                    (o for o in records.orders if o.course_id == cid), since, until
                ),
                lessons=lesson_count,
                lessons_done=sum(
                    1
                    for x in records.lessons
                    if x.course_id == cid and _in(x.done_at, since, until)
                ),
                inputs=inputs,
                score=satisfaction(inputs, weights, target),
            )
        )
    mentors = []
    for mid, name, status in records.mentors:
        inputs = inputs_for(records, since, until, mentor_id=mid)
        accepted = [
            (r.accepted_at - r.created_at).total_seconds() / 3600
            for r in records.requests
            if r.mentor_id == mid and r.status == "accepted" and r.accepted_at is not None
        ]
        mentors.append(
            Breakdown(
                id=mid,
                name=name,
                label=status,
                learners=0,
                revenue={},
                lessons=0,
                lessons_done=0,
                inputs=inputs,
                score=satisfaction(inputs, weights, target),
                accepted=len(accepted),
                median_accept_hours=median(accepted) if accepted else None,
            )
        )
    currencies = sorted({o.currency for o in records.orders})
    return Report(records, rows, overall, courses, mentors, currencies)


async def build_report(uow: UnitOfWork, config: Config, now: datetime) -> Report:
    return build(await gather(uow, config, now), config)


# --- output ---------------------------------------------------------------------------------


def major(amount_minor: int, currency: str) -> Decimal:
    """Minor units as a decimal amount in the currency's major unit (4900 USD → 49.00)."""
    return Decimal(amount_minor).scaleb(-currency_exponent(currency))


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _score_cells(s: Satisfaction) -> list[str]:
    return [
        _num(s.index),
        _num(s.resources),
        _num(s.mentors),
        _num(s.support),
        _num(s.speed),
        _num(s.reliability),
    ]


SCORE_COLUMNS = ["satisfaction", "resources", "mentors", "support", "speed", "reliability"]


def weekly_csv(report: Report) -> bytes:
    cur = report.currencies
    header = [
        "week_start",
        *(f"revenue_{c}" for c in cur),
        *(f"revenue_growth_pct_{c}" for c in cur),
        "learners",
        "sessions_completed",
        "no_shows",
        "lessons_delivered",
        "lessons_done",
        "requests",
        "learning_efficiency",
        *SCORE_COLUMNS,
    ]
    return _csv(
        header,
        (
            [
                w.start.date().isoformat(),
                *(str(major(w.revenue.get(c, 0), c)) for c in cur),
                *(_num(w.growth.get(c)) for c in cur),
                w.learners,
                w.sessions_completed,
                w.no_shows,
                w.lessons_delivered,
                w.lessons_done,
                w.requests,
                _num(w.efficiency, 2),
                *_score_cells(w.score),
            ]
            for w in report.weeks
        ),
    )


def courses_csv(report: Report) -> bytes:
    cur = report.currencies
    header = [
        "course_id",
        "slug",
        "title",
        "learners",
        *(f"revenue_{c}" for c in cur),
        "lessons",
        "lessons_done",
        "lesson_ratings",
        "session_ratings",
        "sessions_completed",
        "no_shows",
        *SCORE_COLUMNS,
    ]
    return _csv(
        header,
        (
            [
                b.id,
                b.label,
                b.name,
                b.learners,
                *(str(major(b.revenue.get(c, 0), c)) for c in cur),
                b.lessons,
                b.lessons_done,
                len(b.inputs.lesson_stars),
                len(b.inputs.session_stars),
                b.inputs.sessions_completed,
                b.inputs.sessions_no_show,
                *_score_cells(b.score),
            ]
            for b in report.courses
        ),
    )


def mentors_csv(report: Report) -> bytes:
    header = [
        "mentor_id",
        "name",
        "status",
        "sessions_completed",
        "no_shows",
        "ratings",
        "average_stars",
        "requests_accepted",
        "median_hours_to_accept",
        *SCORE_COLUMNS,
    ]
    return _csv(
        header,
        (
            [
                b.id,
                b.name,
                b.label,
                b.inputs.sessions_completed,
                b.inputs.sessions_no_show,
                len(b.inputs.session_stars),
                _num(sum(b.inputs.session_stars) / len(b.inputs.session_stars), 2)
                if b.inputs.session_stars
                else "",
                b.accepted,
                _num(b.median_accept_hours),
                *_score_cells(b.score),
            ]
            for b in report.mentors
        ),
    )


def csv_files(report: Report) -> dict[str, bytes]:
    return {
        "weekly.csv": weekly_csv(report),
        "courses.csv": courses_csv(report),
        "mentors.csv": mentors_csv(report),
    }


def chart_png(report: Report) -> bytes:
    """Revenue, sessions and satisfaction per week, as a PNG of `CHART_SIZE` pixels."""
    from matplotlib.figure import Figure  # imported on use: it takes a while to load

    weeks = report.weeks
    labels = [w.start.strftime("%m-%d") for w in weeks]
    x = list(range(len(weeks)))
    fig = Figure(figsize=(CHART_SIZE[0] / _DPI, CHART_SIZE[1] / _DPI), dpi=_DPI)
    revenue_ax, sessions_ax, score_ax = fig.subplots(3, 1, sharex=True)
    fig.suptitle(f"Last {len(weeks)} weeks (UTC, weeks start Monday)")
    for currency in report.currencies:
        revenue_ax.plot(
            x,
            [float(major(w.revenue.get(currency, 0), currency)) for w in weeks],
            marker="o",
            label=currency,
        )
    if report.currencies:
        revenue_ax.legend(loc="upper left")
    revenue_ax.set_ylabel("Revenue")
    sessions_ax.bar(x, [w.sessions_completed for w in weeks], label="completed")
    sessions_ax.bar(
        x,
        [w.no_shows for w in weeks],
        bottom=[w.sessions_completed for w in weeks],
        label="no-shows",
    )
    sessions_ax.set_ylabel("Sessions")
    sessions_ax.legend(loc="upper left")
    nan = float("nan")
    for name, pick, style in (
        ("satisfaction", lambda s: s.index, "-"),
        ("resources", lambda s: s.resources, ":"),
        ("mentors", lambda s: s.mentors, ":"),
        ("support", lambda s: s.support, ":"),
    ):
        values = [pick(w.score) for w in weeks]
        score_ax.plot(
            x, [nan if v is None else v for v in values], linestyle=style, marker="o", label=name
        )
    score_ax.set_ylim(0, 100)
    score_ax.set_ylabel("Satisfaction (0-100)")
    score_ax.legend(loc="lower left", ncols=4)
    score_ax.set_xticks(x, labels)
    for ax in (revenue_ax, sessions_ax, score_ax):
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()
