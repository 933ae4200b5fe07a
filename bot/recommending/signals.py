"""What the ranker reads from the database, through a unit of work: every course, every
learner's courses with their outcomes (for the model), and one learner's own state.

The model (`bot/recommending/ranker.py`) is rebuilt only when what it reads changed, and one
learner's suggestions are recomputed only when the model or what they read of the learner
changed: each call makes one read of indexed maxima (`versions`: the newest of the changes to
what the model reads, which `storage.changes` notes; the learner's newest enrollment, ledger
entry, dismissal, stated goal and request) and reuses the model and the learner's suggestions
computed for the same numbers (`ModelCache`, and `bot.recommending.suggest`). A purchase, a
used credit or a "not interested" changes those numbers, so it counts at once, in every
process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, select

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
from storage.changes import WINDOW
from storage.models import (
    Course,
    Enrollment,
    LearnerInterest,
    LedgerEntry,
    Lesson,
    LessonDelivery,
    LessonRating,
    MentorSession,
    MentorshipRequest,
    ModelChange,
    Order,
    Rating,
    RecommendationDismissal,
)
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

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


def _latest(column: Any, *where: Any) -> Any:
    return select(func.max(column)).where(*where).scalar_subquery()


def _count(column: Any, *where: Any) -> Any:
    return select(func.count(column)).where(*where).scalar_subquery()


_LEARNER = bindparam("learner", type_=Integer)
_NEWEST_CHANGE = select(func.max(ModelChange.id)).scalar_subquery()
# What the model reads changes only with a `model_changes` row (storage.changes): the newest
# one, and how many of the last `WINDOW` ids are there (a change committed out of id order).
_MODEL_INPUTS = (
    _NEWEST_CHANGE,
    _count(ModelChange.id, ModelChange.id > _NEWEST_CHANGE - WINDOW),
)
# And what one learner's suggestions read besides: their enrollments, every movement of their
# credits or money (the ledger), what they dismissed, said and asked a mentor.
_LEARNER_INPUTS = (
    _latest(Enrollment.id, Enrollment.user_id == _LEARNER),
    _latest(LedgerEntry.id, LedgerEntry.user_id == _LEARNER),
    _latest(RecommendationDismissal.id, RecommendationDismissal.user_id == _LEARNER),
    _latest(LearnerInterest.id, LearnerInterest.user_id == _LEARNER),
    _latest(MentorshipRequest.id, MentorshipRequest.learner_id == _LEARNER),
)
_VERSIONS = select(*_MODEL_INPUTS, *_LEARNER_INPUTS)


@dataclass(frozen=True)
class Versions:
    """Keys that change whenever the model's inputs (`model`) or one learner's (`learner`) do."""

    model: str
    learner: str
    newcomer: bool  # no course, no goal, no request: nothing to be "returning" with


async def versions(uow: UnitOfWork, user_id: int, now: datetime) -> Versions:
    """One read, of indexed maxima and a bounded count, tells whether a cached model or a
    learner's cached suggestions are still what they would be computed afresh (the day is part
    of both: popularity decays and exploration draws per day)."""
    row = tuple((await uow.session.execute(_VERSIONS, {"learner": user_id})).one())
    model_part, learner_part = row[: len(_MODEL_INPUTS)], row[len(_MODEL_INPUTS) :]
    day = now.date().isoformat()
    model = hashlib.sha256(repr((model_part, day)).encode()).hexdigest()
    enrolled, _money, _dismissed, said, asked = learner_part
    return Versions(
        model,
        f"{model}:{user_id}:{learner_part!r}",
        enrolled is None and said is None and asked is None,
    )


@dataclass
class ModelCache:
    """The last model built per database, with the key (`Versions.model`) it was built for.

    A serving process builds its first model in the background as it starts (`warm`); only a
    learner who asks before that build has read its inputs waits for one. After that, a changed
    key (a purchase, a rating anywhere) starts one rebuild in the background and the learner is
    served by the model in hand, marked not current, until it lands: a rebuild takes about 0.6 s
    at 20,000 learners (README), which inline would hold every other update for as long on
    SQLite (its write lock is held by the asking transaction) and break "one learner in
    < 20 ms". The background rebuild reads its inputs in a transaction of its own and builds
    on a worker thread. `background = False` builds inline every time (tests that need the
    newest model at once)."""

    size: int = 8
    background: bool = True
    models: dict[int, tuple[str, Model]] = field(default_factory=dict)
    building: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    reading: set[int] = field(default_factory=set)  # builds still reading their inputs

    async def model(
        self, uow: UnitOfWork, config: Config, now: datetime, key: str
    ) -> tuple[Model, bool]:
        """The model, and whether it is current (built for `key`)."""
        where = id(uow.session.bind)
        cached = self.models.get(where)
        if cached is None and where in self.building and where not in self.reading:
            # The start-up build (`warm`) has read its inputs and is computing: waiting for it
            # beats building a second. One still reading needs the database this transaction
            # holds (SQLite), so then this one builds its own.
            await asyncio.shield(self.building[where])
            cached = self.models.get(where)
        if cached is not None and cached[0] == key:
            return cached[1], True
        if cached is None or not self.background:
            model = build(await _signals(uow, now), Weights.from_config(config.recommend))
            self._keep(where, key, model)
            return model, True
        self._start(uow.sibling(), config, now, where)
        return cached[1], False

    def warm(self, uow: UnitOfWork, config: Config, now: datetime, engine: object) -> None:
        """Build `engine`'s first model in the background (at start-up, `Marketplace.warm`):
        building it takes a second or more (jieba loads its dictionary), which the first
        learner shown suggestions would otherwise wait for, and every update behind them."""
        where = id(engine)
        if self.background and where not in self.models:
            self._start(uow, config, now, where)

    def _start(self, uow: UnitOfWork, config: Config, now: datetime, where: int) -> None:
        if where not in self.building:
            self.reading.add(where)  # from now: a learner must not wait for it while reading
            task = asyncio.create_task(self._rebuild(uow, config, now, where))
            self.building[where] = task
            task.add_done_callback(lambda _done: self.building.pop(where, None))

    async def settled(self) -> None:
        """Wait for the rebuilds under way in this event loop (tests; a clean shutdown)."""
        loop = asyncio.get_running_loop()
        mine = [t for t in self.building.values() if t.get_loop() is loop]
        await asyncio.gather(*mine, return_exceptions=True)

    async def _rebuild(self, uow: UnitOfWork, config: Config, now: datetime, where: int) -> None:
        try:
            try:
                async with uow:
                    key = (await versions(uow, 0, now)).model  # of what this transaction reads
                    signals = await _signals(uow, now)
            finally:
                self.reading.discard(where)
            model = await asyncio.to_thread(build, signals, Weights.from_config(config.recommend))
        except Exception:  # the model in hand serves on; the next change tries again
            log.warning("recommendation model rebuild failed", exc_info=True)
            return
        self._keep(where, key, model)

    def _keep(self, where: int, key: str, model: Model) -> None:
        self.models.pop(where, None)
        if len(self.models) >= self.size:
            self.models.pop(next(iter(self.models)))
        self.models[where] = (key, model)


async def _signals(uow: UnitOfWork, now: datetime) -> Signals:
    rows = await courses(uow)
    return Signals(now, tuple(course_doc(c) for c in rows), tuple(await interactions(uow)))


MODELS = ModelCache()


@dataclass(frozen=True)
class LearnerState:
    learner: Learner
    owns: frozenset[int]  # courses with an active enrollment that has credits left
    dismissed: frozenset[int]  # courses said "not interested" in
    dismissed_plans: frozenset[int] = frozenset()
    dismissed_series: frozenset[int] = frozenset()  # workshop series (`series_key`)


async def learner_state(uow: UnitOfWork, user_id: int, model: Model | None = None) -> LearnerState:
    """One learner as the ranker sees them (goals, level, topics, history), read fresh; their
    courses' outcomes from `model` when given (current: it was built for today's
    `Versions.model`)."""
    run = uow.session.execute
    if model is not None:
        mine = list(model.interactions_of.get(user_id, ()))
    else:
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
    said_no: dict[str, set[int]] = defaultdict(set)
    for kind, course_id, item_id in await run(
        select(
            RecommendationDismissal.kind,
            RecommendationDismissal.course_id,
            RecommendationDismissal.item_id,
        ).where(RecommendationDismissal.user_id == user_id)
    ):
        found = course_id if kind == "course" else item_id
        if found is not None:
            said_no[kind].add(found)
    dismissed = frozenset(said_no["course"])
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
    return LearnerState(
        learner, owns, dismissed, frozenset(said_no["plan"]), frozenset(said_no["workshop"])
    )
