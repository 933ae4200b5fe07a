"""The founding design's two other models, beside satisfaction: learning efficiency and revenue
growth, each 0–100 per week, computed from the data, weights from `[models]`.

    learning efficiency = (40·support + 30·interactivity + 30·resources) / (40 + 30 + 30)
    revenue growth      = (50·satisfaction + 30·learners + 20·competitiveness) / (50 + 30 + 20)

As in `bot/reporting/satisfaction.py`, a component with no data is unknown rather than 0: it
is left out and the other weights are rescaled (and with nothing known the model is unknown).
Two components may have no data, and say so:

- *interactivity*: the mean of its known parts in `INTERACTIVITY` (messages relayed between
  mentors and learners, workshop attendance, learners' questions answered); a week with none
  of them (no conversation, no workshop) has no data.
- *competitiveness*: there is no market data (other marketplaces' prices and ratings), so it
  is always left out and revenue growth is `(50·satisfaction + 30·learners) / 80`.

Each component, how it is measured and normalised to 0–100, is documented on its function.
The functions of numbers are pure; `gather` reads what they need for the report's weeks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import aliased

from bot.config import ModelsSection
from bot.core.i18n import Day, Lines, Msg, _
from bot.reporting.files import csv_file
from bot.reporting.model import Report, wait_hours
from bot.reporting.records import WEEK, per_week
from bot.reporting.satisfaction import speed_quality, stars_quality, weighted
from storage.models import (
    Enrollment,
    Lesson,
    LessonFile,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    Order,
    RelayMessage,
    RelayThread,
    Workshop,
    WorkshopSeat,
)
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Component:
    name: str  # support, interactivity, resources; satisfaction, learners, competitiveness
    weight: float
    value: float | None  # 0–100; None: no data, left out


@dataclass(frozen=True)
class Score:
    index: float | None
    components: tuple[Component, ...]

    def part(self, name: str) -> float | None:
        return next(c.value for c in self.components if c.name == name)


def combine(components: Sequence[Component]) -> Score:
    """The weighted mean of the known components, weights rescaled over them."""
    return Score(weighted([(c.weight, c.value) for c in components]), tuple(components))


def mean_known(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return fmean(known) if known else None


# --- learning efficiency ----------------------------------------------------------------------


@dataclass(frozen=True)
class EfficiencyInputs:
    """One week's inputs of learning efficiency."""

    sessions: int = 0  # sessions completed
    fitting: int = 0  # … whose mentor knows the request's topic at the learner's level or above
    noted: int = 0  # … with a mentor's note
    wait_hours: Sequence[float] = ()  # requests made: hours until they had a mentor
    interactivity: Mapping[str, float | None] = field(default_factory=dict)
    resources_per_learner: float | None = None  # lessons + files + links per enrolled learner
    lesson_stars: Sequence[int] = ()


def fit_share(sessions: int, fitting: int) -> float | None:
    """*Matched mentor*: `100 · fitting / sessions` of the sessions completed, where a session
    fits when its mentor lists the request's topic at the learner's level or above."""
    return None if sessions <= 0 else 100.0 * fitting / sessions


def notes_share(sessions: int, noted: int) -> float | None:
    """*Mentor notes per session*: `100 · sessions with a note / sessions completed`."""
    return None if sessions <= 0 else 100.0 * noted / sessions


def personalised_support(inputs: EfficiencyInputs, target_hours: float) -> float | None:
    """The mean of the known parts: matched mentor (`fit_share`), mentor notes
    (`notes_share`) and *time to a mentor* (`100·T/(T + hours)` per request, T =
    `[satisfaction] accept_target_hours`, as satisfaction's speed)."""
    return mean_known(
        [
            fit_share(inputs.sessions, inputs.fitting),
            notes_share(inputs.sessions, inputs.noted),
            speed_quality(inputs.wait_hours, target_hours),
        ]
    )


Part = Callable[[UnitOfWork, datetime, datetime], Awaitable[float | None]]


async def discussion_messages(uow: UnitOfWork, start: datetime, end: datetime) -> float | None:
    """*Messages in discussion spaces and relays* (`/ask`, `/answer`, replies) per mentorship
    with a conversation by the week's end, `m` a week, as `100·m/(m + 5)`: five messages a
    week per pair score 50. No data before the first conversation."""
    pairs = await uow.session.scalar(
        select(func.count()).select_from(RelayThread).where(RelayThread.created_at < end)
    )
    if not pairs:
        return None
    sent = await uow.session.scalar(
        select(func.count())
        .select_from(RelayMessage)
        .where(RelayMessage.created_at >= start, RelayMessage.created_at < end)
    )
    m = int(sent or 0) / int(pairs)
    return 100.0 * m / (m + 5)


async def workshop_attendance(uow: UnitOfWork, start: datetime, end: datetime) -> float | None:
    """*Workshop attendance*: `100 · attended / registered` over the seats of workshops that
    started in the week and were not cancelled (registered: seated, attended or absent; a
    seat given up before is not counted). No data in a week without workshops."""
    rows = await uow.session.execute(
        select(WorkshopSeat.status, func.count())
        .join(Workshop, Workshop.id == WorkshopSeat.workshop_id)
        .where(Workshop.start_at >= start, Workshop.start_at < end)
        .where(Workshop.status != "cancelled")
        .where(WorkshopSeat.status.in_(("seated", "attended", "absent")))
        .group_by(WorkshopSeat.status)
    )
    counts = {status: int(n) for status, n in rows}
    registered = sum(counts.values())
    return None if registered == 0 else 100.0 * counts.get("attended", 0) / registered


async def questions_answered(uow: UnitOfWork, start: datetime, end: datetime) -> float | None:
    """*Questions answered*: of the learners' messages to their mentors in the week, the share
    (`100 · answered / asked`) that the mentor answered later in the same conversation. No data
    in a week when no learner wrote (a `/support` message is not a learning question)."""
    answer = aliased(RelayMessage)
    answered = (
        select(answer.id)
        .where(answer.thread_id == RelayMessage.thread_id)
        .where(answer.sender_id == RelayThread.mentor_user_id)
        .where(answer.created_at >= RelayMessage.created_at, answer.id > RelayMessage.id)
        .exists()
    )
    asked, replied = (
        await uow.session.execute(
            select(func.count(), func.sum(case((answered, 1), else_=0)))
            .select_from(RelayMessage)
            .join(RelayThread, RelayThread.id == RelayMessage.thread_id)
            .where(RelayMessage.sender_id == RelayThread.learner_id)
            .where(RelayMessage.created_at >= start, RelayMessage.created_at < end)
        )
    ).one()
    return None if not asked else 100.0 * int(replied or 0) / int(asked)


# Each part of interactivity, by name: replace a function to plug in its feature's table.
INTERACTIVITY: dict[str, Part] = {
    "discussion": discussion_messages,
    "workshops": workshop_attendance,
    "questions": questions_answered,
}


def interactivity(parts: Mapping[str, float | None]) -> float | None:
    """The mean of the known parts of `INTERACTIVITY` (each 0–100); None while none has data."""
    return mean_known(list(parts.values()))


def resource_richness(inputs: EfficiencyInputs, target: float) -> float | None:
    """The mean of the known parts: *resources per enrolled learner* `x` (active lessons, their
    files and links, of the courses each learner enrolled that week has, averaged over those
    learners) as `100·x/(x + R)`, R = `[models] richness_target` (R resources score 50); and
    *lesson ratings* mapped 1★ → 0, 5★ → 100."""
    x = inputs.resources_per_learner
    per_learner = None if x is None else 100.0 * x / (x + target)
    return mean_known([per_learner, stars_quality(inputs.lesson_stars)])


def learning_efficiency(
    inputs: EfficiencyInputs, weights: ModelsSection, target_hours: float
) -> Score:
    return combine(
        [
            Component(
                "support",
                weights.efficiency_weight_support,
                personalised_support(inputs, target_hours),
            ),
            Component(
                "interactivity",
                weights.efficiency_weight_interactivity,
                interactivity(inputs.interactivity),
            ),
            Component(
                "resources",
                weights.efficiency_weight_resources,
                resource_richness(inputs, weights.richness_target),
            ),
        ]
    )


# --- revenue growth ---------------------------------------------------------------------------


def learner_growth(current: int, previous: int) -> float | None:
    """*Growth of active learners*: the week's learners against the week before, `g` percent,
    as `50 + g/2` kept within 0–100 (no change 50, doubling 100, halving 25); None when the
    week before had none."""
    if previous <= 0:
        return None
    g = 100.0 * (current - previous) / previous
    return max(0.0, min(100.0, 50.0 + g / 2.0))


def competitiveness() -> float | None:
    """*Market competitiveness*: would compare prices and ratings with other marketplaces'.
    There is no market data, so it is always unknown and left out."""
    return None


def revenue_growth(
    satisfaction: float | None, learners: int, previous: int, weights: ModelsSection
) -> Score:
    """Satisfaction (the satisfaction model's index, already 0–100), growth of active learners
    and competitiveness (no data: left out, weights rescaled)."""
    return combine(
        [
            Component("satisfaction", weights.growth_weight_satisfaction, satisfaction),
            Component(
                "learners", weights.growth_weight_learners, learner_growth(learners, previous)
            ),
            Component("competitiveness", weights.growth_weight_competitiveness, competitiveness()),
        ]
    )


# --- the weeks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignWeek:
    start: datetime
    efficiency: Score
    growth: Score


async def gather(
    uow: UnitOfWork,
    report: Report,
    weights: ModelsSection,
    target_hours: float,
    last: int | None = None,
) -> list[DesignWeek]:
    """Both models for each of the report's weeks, or for its `last` weeks only (what
    `/admin stats` shows: the last full week and the current one)."""
    records = report.records
    weeks = records.weeks
    first = 0 if last is None else max(0, len(weeks) - last)
    run = (await uow.session.connection()).execute
    # Completed sessions per week: how many, how many with a mentor whose level in the
    # topic reaches the request's, how many with a mentor's note; counted in the database.
    topic_level = func.coalesce(MentorTopic.level, 0)

    def completed(in_week: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
        return (
            select(
                func.count(),
                func.sum(case((topic_level >= MentorshipRequest.level, 1), else_=0)),
                func.sum(case((MentorSession.mentor_note != "", 1), else_=0)),
            )
            .select_from(MentorSession)
            .join(MentorshipRequest, MentorshipRequest.id == MentorSession.request_id)
            .outerjoin(
                MentorTopic,
                (MentorTopic.mentor_id == MentorSession.mentor_id)
                & (MentorTopic.topic == MentorshipRequest.topic),
            )
            .where(MentorSession.status == "completed", in_week)
        )

    sessions: list[list[int]] = [[0, 0, 0] for _ in weeks]
    for n, fitting, noted, i in await run(
        per_week(MentorSession.start_at, weeks, records.now, completed, first)
    ):
        if int(i) < len(weeks):  # after now: not held yet
            sessions[int(i)] = [int(n or 0), int(fitting or 0), int(noted or 0)]
    resources: dict[int, int] = {}
    for cid, links in await run(
        select(Lesson.course_id, Lesson.links).where(Lesson.status == "active")
    ):
        resources[cid] = resources.get(cid, 0) + 1 + len(links or ())
    for cid, n in await run(
        select(Lesson.course_id, func.count(LessonFile.id))
        .join(Lesson, Lesson.id == LessonFile.lesson_id)
        .where(Lesson.status == "active")
        .group_by(Lesson.course_id)
    ):
        resources[cid] = resources.get(cid, 0) + int(n)
    per_learner = await _resources_by_week(run, weeks[first:], resources)
    found = []
    previous_learners = records.learners_by_week[first - 1] if first else 0
    for i in range(first, len(weeks)):
        start = weeks[i]
        end = start + WEEK
        parts = {name: await part(uow, start, end) for name, part in INTERACTIVITY.items()}
        inputs = EfficiencyInputs(
            sessions=sessions[i][0],
            fitting=sessions[i][1],
            noted=sessions[i][2],
            wait_hours=wait_hours(
                (r for r in records.requests if start <= r.created_at < end), records.now
            ),
            interactivity=parts,
            resources_per_learner=per_learner[i - first],
            lesson_stars=[s.stars for s in records.lesson_stars if start <= s.at < end],
        )
        learners = records.learners_by_week[i]
        found.append(
            DesignWeek(
                start,
                learning_efficiency(inputs, weights, target_hours),
                revenue_growth(report.weeks[i].score.index, learners, previous_learners, weights),
            )
        )
        previous_learners = learners
    return found


async def _resources_by_week(
    run: Any, weeks: list[datetime], resources: Mapping[int, int]
) -> list[float | None]:
    """Per week, the mean over learners enrolled in it of the resources (lessons, files,
    links) of the courses they are enrolled in; None for a week with no learner.

    Most enrollments span every week of the report (made before the first week ends, not
    refunded before the last begins): they are summed per course in the database, once. Only
    the few that begin or end inside the report come back as rows, to be placed week by week.
    """
    first_end, last_start = weeks[0] + WEEK, weeks[-1]
    ended_early = select(Order.id).where(Order.refunded_at < last_start)
    throughout = (Enrollment.created_at < first_end) & Enrollment.order_id.not_in(ended_early)
    base_total = 0
    for cid, n in await run(
        select(Enrollment.course_id, func.count()).where(throughout).group_by(Enrollment.course_id)
    ):
        base_total += int(n) * resources.get(cid, 0)
    base_learners = set(
        (await run(select(Enrollment.user_id).where(throughout).distinct())).scalars()
    )
    partial = list(
        await run(
            select(
                Enrollment.user_id, Enrollment.course_id, Enrollment.created_at, Order.refunded_at
            )
            .join(Order, Order.id == Enrollment.order_id)
            .where(~throughout, Enrollment.created_at < last_start + WEEK)
            .where(Order.refunded_at.is_(None) | (Order.refunded_at >= weeks[0]))
        )
    )
    found: list[float | None] = []
    for start in weeks:
        end = start + WEEK
        learners = set(base_learners)
        total = base_total
        for uid, cid, created, refunded in partial:
            if created < end and (refunded is None or refunded >= start):
                learners.add(uid)
                total += resources.get(cid, 0)
        found.append(total / len(learners) if learners else None)
    return found


# --- as shown ---------------------------------------------------------------------------------


def _value(value: float | None) -> Msg | str:
    return _("no data") if value is None else f"{value:.0f}"


def week_msg(week: DesignWeek) -> Msg:
    """Both models of one week with their components, for /admin stats and the report."""
    e, g = week.efficiency, week.growth
    return _(
        "Learning efficiency: {index} of 100 (personalised support {support} · interactivity "
        "{interactivity} · resources {resources})\nRevenue growth: {growth} of 100 "
        "(satisfaction {satisfaction} · growth of active learners {learners} · competitiveness "
        "{competitiveness})",
        index=_value(e.index),
        support=_value(e.part("support")),
        interactivity=_value(e.part("interactivity")),
        resources=_value(e.part("resources")),
        growth=_value(g.index),
        satisfaction=_value(g.part("satisfaction")),
        learners=_value(g.part("learners")),
        competitiveness=_value(g.part("competitiveness")),
    )


def rescaled_note() -> Msg:
    return _(
        "A component with no data is left out and the others' weights rescaled: there is no "
        "market data (competitiveness), and interactivity counts only weeks with messages "
        "between mentors and learners or workshops."
    )


def _dated(week: DesignWeek) -> Msg:
    return _("Week from {week}:\n{models}", week=Day(week.start.date()), models=week_msg(week))


def weeks_msg(weeks: Sequence[DesignWeek]) -> Msg:
    """The models week by week (the report's text file)."""
    return _(
        "The design's models, last {n} weeks (UTC, weeks start on Monday)\n{weeks}\n{note}",
        n=len(weeks),
        weeks=Lines(_dated(w) for w in weeks),
        note=rescaled_note(),
    )


COLUMNS = [
    "week_start",
    "learning_efficiency",
    "personalised_support",
    "interactivity",
    "resource_richness",
    "revenue_growth",
    "satisfaction",
    "active_learner_growth",
    "competitiveness",
]


def models_csv(weeks: Sequence[DesignWeek]) -> bytes:
    """One row per week; an empty cell is a component with no data."""

    def num(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    return csv_file(
        COLUMNS,
        (
            [
                w.start.date().isoformat(),
                num(w.efficiency.index),
                num(w.efficiency.part("support")),
                num(w.efficiency.part("interactivity")),
                num(w.efficiency.part("resources")),
                num(w.growth.index),
                num(w.growth.part("satisfaction")),
                num(w.growth.part("learners")),
                num(w.growth.part("competitiveness")),
            ]
            for w in weeks
        ),
    )
