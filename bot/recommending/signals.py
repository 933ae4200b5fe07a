"""What the ranker reads from the database, through a unit of work: every course, every
learner's courses with their outcomes (for the model), and one learner's own state.

The model (`bot/recommending/ranker.py`) is rebuilt only when what it reads changed: each
call reads a cheap fingerprint of the events (the newest order, rating, lesson rating and
enrollment, how many sessions and lessons were completed) and the course rows, and reuses the
model built for the same fingerprint on the same database (`ModelCache`). The learner's own
state (what they have, dismissed, said and asked) is read fresh every time, so a purchase or
a "not interested" counts at once.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot.config import Config
from bot.recommending.ranker import (
    CourseDoc,
    Interaction,
    Learner,
    Model,
    Signals,
    Weights,
    build,
    strengths_of,
)
from storage.models import (
    Course,
    Enrollment,
    LearnerInterest,
    Lesson,
    LessonDelivery,
    LessonRating,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    RecommendationDismissal,
)
from storage.uow import UnitOfWork

GOAL_REQUESTS = 3  # the goals of a learner's latest requests that count


def course_doc(c: Course) -> CourseDoc:
    return CourseDoc(
        c.id,
        c.slug,
        c.title_en,
        c.title_zh,
        c.description_en,
        c.description_zh,
        tuple(c.topics or ()),
        c.created_at,
        c.status == "active",
    )


async def courses(uow: UnitOfWork) -> list[Course]:
    return list((await uow.session.execute(select(Course).order_by(Course.id))).scalars())


async def interactions(uow: UnitOfWork, user_id: int | None = None) -> list[Interaction]:
    """Each learner's paid courses (one per learner and course, the first purchase) with how
    far they completed them (sessions held of those bought, or lessons done of the course's
    lessons, whichever is further) and their mean rating of its sessions and lessons."""
    run = (await uow.session.connection()).execute

    def mine(stmt: Any, column: Any) -> Any:
        return stmt if user_id is None else stmt.where(column == user_id)

    bought: dict[tuple[int, int], list[Any]] = {}
    for uid, cid, at, included in await run(
        mine(
            select(
                Enrollment.user_id,
                Enrollment.course_id,
                func.coalesce(Order.paid_at, Enrollment.created_at),
                Order.sessions_included,
            ).join(Order, Order.id == Enrollment.order_id),
            Enrollment.user_id,
        ).order_by(Enrollment.id)
    ):
        entry = bought.setdefault((uid, cid), [at, 0])
        entry[0] = min(entry[0], at)
        entry[1] += int(included or 0)
    held: dict[tuple[int, int], int] = defaultdict(int)
    for uid, cid, n in await run(
        mine(
            select(Enrollment.user_id, Enrollment.course_id, func.count())
            .select_from(MentorSession)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(MentorSession.status == "completed")
            .group_by(Enrollment.user_id, Enrollment.course_id),
            Enrollment.user_id,
        )
    ):
        held[(uid, cid)] = int(n)
    lessons = dict(
        (
            await run(
                select(Lesson.course_id, func.count())
                .where(Lesson.status == "active")
                .group_by(Lesson.course_id)
            )
        ).all()
    )
    done: dict[tuple[int, int], int] = {}
    for uid, cid, n in await run(
        mine(
            select(LessonDelivery.user_id, Lesson.course_id, func.count())
            .join(Lesson, Lesson.id == LessonDelivery.lesson_id)
            .where(LessonDelivery.done_at.is_not(None))
            .group_by(LessonDelivery.user_id, Lesson.course_id),
            LessonDelivery.user_id,
        )
    ):
        done[(uid, cid)] = int(n)
    stars: dict[tuple[int, int], list[int]] = defaultdict(list)
    for uid, cid, s in await run(
        mine(
            select(Rating.rater_id, Enrollment.course_id, Rating.stars)
            .join(MentorSession, MentorSession.id == Rating.session_id)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(Rating.rater_id == MentorSession.learner_id),
            Rating.rater_id,
        )
    ):
        stars[(uid, cid)].append(int(s))
    for uid, cid, s in await run(
        mine(
            select(LessonRating.user_id, Lesson.course_id, LessonRating.stars).join(
                Lesson, Lesson.id == LessonRating.lesson_id
            ),
            LessonRating.user_id,
        )
    ):
        stars[(uid, cid)].append(int(s))
    found = []
    for (uid, cid), (at, included) in bought.items():
        by_sessions = held[(uid, cid)] / included if included else 0.0
        by_lessons = done.get((uid, cid), 0) / lessons[cid] if lessons.get(cid) else 0.0
        rated = stars.get((uid, cid))
        found.append(
            Interaction(
                uid,
                cid,
                at,
                min(1.0, max(by_sessions, by_lessons)),
                sum(rated) / len(rated) if rated else None,
            )
        )
    return found


async def fingerprint(uow: UnitOfWork, rows: list[Course]) -> str:
    """What changes whenever the model's inputs do (new events, edited courses)."""
    run = (await uow.session.connection()).execute
    events = (
        await run(
            select(
                select(func.max(Order.id)).scalar_subquery(),
                select(func.max(Enrollment.id)).scalar_subquery(),
                select(func.max(Rating.id)).scalar_subquery(),
                select(func.count(Rating.id)).scalar_subquery(),
                select(func.max(Rating.updated_at)).scalar_subquery(),
                select(func.max(LessonRating.id)).scalar_subquery(),
                select(func.count())
                .select_from(MentorSession)
                .where(MentorSession.status == "completed")
                .scalar_subquery(),
                select(func.count(LessonDelivery.done_at)).scalar_subquery(),
                select(func.count()).select_from(Lesson).scalar_subquery(),
            )
        )
    ).one()
    text = repr(
        (
            tuple(events),
            [(c.id, c.slug, c.title_en, c.title_zh, c.description_en, c.description_zh,
              c.topics, c.status) for c in rows],
        )
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ModelCache:
    """The last model built per database, with the fingerprint and day it was built for."""

    size: int = 8
    models: dict[int, tuple[str, Model]] = field(default_factory=dict)

    async def model(self, uow: UnitOfWork, config: Config, now: datetime) -> Model:
        rows = await courses(uow)
        key = f"{await fingerprint(uow, rows)}:{now.date().isoformat()}"
        where = id(uow.session.bind)
        cached = self.models.get(where)
        if cached is not None and cached[0] == key:
            return cached[1]
        signals = Signals(now, tuple(course_doc(c) for c in rows), tuple(await interactions(uow)))
        model = build(signals, Weights.from_config(config.recommend))
        if len(self.models) >= self.size:
            self.models.pop(next(iter(self.models)))
        self.models[where] = (key, model)
        return model


MODELS = ModelCache()


@dataclass(frozen=True)
class LearnerState:
    learner: Learner
    owns: frozenset[int]  # courses with an active enrollment that has credits left
    dismissed: frozenset[int]


async def learner_state(uow: UnitOfWork, user_id: int) -> LearnerState:
    """One learner as the ranker sees them (goals, level, topics, history), read fresh."""
    run = uow.session.execute
    mine = await interactions(uow, user_id)
    history, strengths = strengths_of(mine)
    owns = frozenset(
        (
            await run(
                select(Enrollment.course_id)
                .where(Enrollment.user_id == user_id)
                .where(Enrollment.status == "active")
                .where(Enrollment.credits_remaining > 0)
            )
        ).scalars()
    )
    dismissed = frozenset(
        (
            await run(
                select(RecommendationDismissal.course_id).where(
                    RecommendationDismissal.user_id == user_id
                )
            )
        ).scalars()
    )
    interest = (
        await run(
            select(LearnerInterest)
            .where(LearnerInterest.user_id == user_id)
            .order_by(LearnerInterest.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    requests = list(
        (
            await run(
                select(MentorshipRequest)
                .where(MentorshipRequest.learner_id == user_id)
                .order_by(MentorshipRequest.id.desc())
                .limit(GOAL_REQUESTS)
            )
        ).scalars()
    )
    goals = " ".join([interest.goals if interest else "", *(r.goals for r in requests)]).strip()
    level = interest.level if interest and interest.level else None
    if level is None and requests:
        level = requests[0].level
    learner = Learner(
        user_id,
        goals,
        level,
        tuple(dict.fromkeys(r.topic for r in requests)),
        history,
        strengths,
        owns | dismissed,
    )
    return LearnerState(learner, owns, dismissed)
