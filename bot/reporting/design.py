"""The founding design's two other models, beside satisfaction: learning efficiency and revenue
growth, each 0–100 per week, computed from the data, weights from `[models]`.

    learning efficiency = (40·support + 30·interactivity + 30·resources) / (40 + 30 + 30)
    revenue growth      = (50·satisfaction + 30·learners + 20·competitiveness) / (50 + 30 + 20)

As in `bot/reporting/satisfaction.py`, a component with no data is unknown rather than 0: it
is left out and the other weights are rescaled (and with nothing known the model is unknown).
Two components have no data by construction today and say so:

- *interactivity*: mentorbot has no discussion spaces, relays or workshops yet; each of its
  parts is a function in `INTERACTIVITY` that answers None ("no data") until the feature that
  measures it exists: a new table plugs in by replacing its function there.
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

from sqlalchemy import func, select

from bot.config import ModelsSection
from bot.core.i18n import Day, Lines, Msg, _
from bot.reporting.files import csv_file
from bot.reporting.model import Report, wait_hours
from bot.reporting.records import WEEK
from bot.reporting.satisfaction import speed_quality, stars_quality, weighted
from storage.models import (
    Enrollment,
    Lesson,
    LessonFile,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    Order,
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
    """*Messages in discussion spaces and relays* per active learner, to become
    `100·m/(m + 5)`: no discussion spaces exist yet, so no data."""
    return None


async def workshop_attendance(uow: UnitOfWork, start: datetime, end: datetime) -> float | None:
    """*Workshop attendance*, to become `100 · attended / registered`: no workshops yet."""
    return None


async def questions_answered(uow: UnitOfWork, start: datetime, end: datetime) -> float | None:
    """*Questions answered*, to become `100 · answered / asked` in discussion spaces: no data
    until those exist (a `/support` message is not a learning question)."""
    return None


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
    uow: UnitOfWork, report: Report, weights: ModelsSection, target_hours: float
) -> list[DesignWeek]:
    """Both models for each of the report's weeks."""
    records = report.records
    weeks = records.weeks
    since = records.since
    run = (await uow.session.connection()).execute
    levels = {
        (mid, topic): level
        for mid, topic, level in await run(
            select(MentorTopic.mentor_id, MentorTopic.topic, MentorTopic.level)
        )
    }
    sessions: list[list[int]] = [[0, 0, 0] for _ in weeks]
    for start_at, mid, topic, level, note in await run(
        select(
            MentorSession.start_at,
            MentorSession.mentor_id,
            MentorshipRequest.topic,
            MentorshipRequest.level,
            MentorSession.mentor_note,
        )
        .join(MentorshipRequest, MentorshipRequest.id == MentorSession.request_id)
        .where(MentorSession.status == "completed")
        .where(MentorSession.start_at >= since)
        .where(MentorSession.start_at <= records.now)
    ):
        i = min((start_at - since) // WEEK, len(weeks) - 1)
        sessions[i][0] += 1
        sessions[i][1] += int(levels.get((mid, topic), 0) >= level)
        sessions[i][2] += int(bool(note))
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
    enrolled = list(
        await run(
            select(
                Enrollment.user_id, Enrollment.course_id, Enrollment.created_at, Order.refunded_at
            ).join(Order, Order.id == Enrollment.order_id)
        )
    )
    found = []
    previous_learners = 0
    for i, start in enumerate(weeks):
        end = start + WEEK
        per_learner: dict[int, int] = {}
        for uid, cid, created, refunded in enrolled:
            if created < end and (refunded is None or refunded >= start):
                per_learner[uid] = per_learner.get(uid, 0) + resources.get(cid, 0)
        parts = {name: await part(uow, start, end) for name, part in INTERACTIVITY.items()}
        inputs = EfficiencyInputs(
            sessions=sessions[i][0],
            fitting=sessions[i][1],
            noted=sessions[i][2],
            wait_hours=wait_hours(
                (r for r in records.requests if start <= r.created_at < end), records.now
            ),
            interactivity=parts,
            resources_per_learner=fmean(per_learner.values()) if per_learner else None,
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
        "A component with no data is left out and the others' weights rescaled: there are no "
        "discussion spaces or workshops yet (interactivity) and no market data "
        "(competitiveness)."
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
