"""The admin report's numbers, computed from gathered rows (pure; no database).

Weeks are calendar weeks in UTC starting Monday 00:00; the last one is the current, partial
week. A week's **revenue** is what was paid in it minus what was refunded in it, per currency
(demo payments move no money and are left out, as in the stats summary). The satisfaction model
and the other measures are defined in `bot/reporting/satisfaction.py`; a week's inputs are the
lesson and
session ratings given in it, the requests for a mentor made in it (with their wait until
accepted, or until now), and the sessions that started in it. Breakdowns per course and per
mentor cover all the report's weeks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from bot.config import Config
from bot.reporting.records import WEEK, Held, OrderRec, Records, RequestRec
from bot.reporting.satisfaction import (
    Inputs,
    Satisfaction,
    Weights,
    growth_percent,
    learning_efficiency,
    satisfaction,
)

NO_SESSIONS = Held()
WAITING = ("open", "offered", "waitlisted")


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
    held: Held = NO_SESSIONS,
) -> Inputs:
    """The model's inputs for [start, end), optionally for one course or one mentor, with the
    sessions held and missed in it (counted by `gather`)."""

    def keep(course: int, mentor: int | None) -> bool:
        return (course_id is None or course == course_id) and (
            mentor_id is None or mentor == mentor_id
        )

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
        sessions_completed=held.completed,
        sessions_no_show=held.no_show,
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
    # What demo payments would have taken (no money moved; not in `revenue`).
    demo_revenue: dict[str, int] = field(default_factory=dict)


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


ROWS = ("orders", "session_stars", "lesson_stars", "lessons", "requests")
# When each row of the model's inputs happened, for cutting them into weeks.
WHEN = {
    "session_stars": "at",
    "lesson_stars": "at",
    "requests": "created_at",
}


def split(records: Records, key: Callable[[str, Any], int | None]) -> dict[int, Records]:
    """`records` cut into one `Records` per value of `key(kind of rows, row)` (None: in no
    part), so each week or breakdown reads its own rows rather than every row once per week,
    course or mentor."""
    parts: dict[int, dict[str, list[Any]]] = {}
    for name in ROWS:
        for row in getattr(records, name):
            value = key(name, row)
            if value is None:
                continue
            if value not in parts:
                parts[value] = {n: [] for n in ROWS}
            parts[value][name].append(row)
    return {value: with_rows(records, rows) for value, rows in parts.items()}


def with_rows(records: Records, rows: dict[str, list[Any]]) -> Records:
    """`records` holding `rows` (by name, as in ROWS) in place of its own."""
    return replace(
        records,
        orders=rows["orders"],
        session_stars=rows["session_stars"],
        lesson_stars=rows["lesson_stars"],
        lessons=rows["lessons"],
        requests=rows["requests"],
    )


def split_by(records: Records, attribute: str) -> dict[int, Records]:
    """`records` by each row's `attribute` (`course_id` or `mentor_id`)."""
    return split(records, lambda _name, row: getattr(row, attribute, None))


def split_by_week(records: Records) -> dict[int, Records]:
    """The model's inputs (ratings, requests) by the index of their week."""

    def week(name: str, row: Any) -> int | None:
        at = getattr(row, WHEN[name]) if name in WHEN else None
        return None if at is None or at < records.since else (at - records.since) // WEEK

    return split(records, week)


def build(records: Records, config: Config) -> Report:
    weights = Weights.from_config(config.satisfaction)
    target = config.satisfaction.accept_target_hours
    rows: list[WeekRow] = []
    previous: dict[str, int] = {}
    nothing = with_rows(records, {name: [] for name in ROWS})
    by_week = split_by_week(records)
    for i, start in enumerate(records.weeks):
        end = start + WEEK
        week = by_week.get(i, nothing)
        inputs = inputs_for(week, start, end, held=records.sessions_by_week.get(i, Held()))
        revenue = net_revenue(records.orders, start, end)
        done = sum(1 for x in records.lessons if _in(x.done_at, start, end))
        learners = records.learners_by_week[i]
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
                requests=len(week.requests),  # split by when they were made
                efficiency=learning_efficiency(inputs.sessions_completed, done, learners),
                score=satisfaction(inputs, weights, target),
                demo_revenue=net_revenue(records.demo_orders, start, end),
            )
        )
        previous = revenue
    since, until = records.since, records.now + timedelta(microseconds=1)
    overall = satisfaction(
        inputs_for(records, since, until, held=records.sessions_overall), weights, target
    )
    by_course = split_by(records, "course_id") if records.courses else {}
    courses = []
    for cid, slug, title, lesson_count in records.courses:
        part = by_course.get(cid, nothing)
        held = records.sessions_by_course.get(cid, Held())
        inputs = inputs_for(part, since, until, course_id=cid, held=held)
        courses.append(
            Breakdown(
                id=cid,
                name=title,
                label=slug,
                learners=records.active_learners.get(cid, 0),
                revenue=net_revenue(part.orders, since, until),
                lessons=lesson_count,
                lessons_done=sum(1 for x in part.lessons if _in(x.done_at, since, until)),
                inputs=inputs,
                score=satisfaction(inputs, weights, target),
            )
        )
    by_mentor = split_by(records, "mentor_id") if records.mentors else {}
    mentors = []
    for mid, name, status in records.mentors:
        part = by_mentor.get(mid, nothing)
        held = records.sessions_by_mentor.get(mid, Held())
        inputs = inputs_for(part, since, until, mentor_id=mid, held=held)
        accepted = [
            (r.accepted_at - r.created_at).total_seconds() / 3600
            for r in part.requests
            if r.status == "accepted" and r.accepted_at is not None
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
