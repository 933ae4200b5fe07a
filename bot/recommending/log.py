"""What was suggested and what the learner did next: the feedback loop's records.

Every suggestion shown is a `RecommendationShown` row (what, to whom, why, rank, slot, arm),
once per item, learner and slot within `IMPRESSION_WINDOW` (`log_shown`, deduplicated in the
database, so two processes showing the same learner the same thing log it once).
Pressing its button within `OPEN_WINDOW` marks the newest such row opened: a course's
(`/course SLUG suggested`; in `/courses`, the suggested course's own catalogue button), a
plan's (`/subscribe PLAN suggested`) or a workshop's (`/join ID suggested`); the same course,
plan or workshop looked up or taken by hand does not. Buying, completing and rating are not
copied into it: `outcomes` joins them afterwards from the orders, sessions and ratings
themselves, counting one that came within `OUTCOME_WINDOW` after the suggestion was shown.

"Not interested" (`dismiss`) names a course, a plan or a workshop series: a weekly workshop is
one thing to the learner (the same title, host and topics every week), so saying no to one of
its occurrences says no to the series, and a new week of it is not suggested again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, insert, select

from bot.recommending.ranker import Arm, Suggestion
from storage.models import (
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
    RecommendationShown,
    Subscription,
    SubscriptionPeriod,
    Workshop,
    WorkshopSeat,
)
from storage.uow import UnitOfWork

OPEN_WINDOW = timedelta(days=7)
# The word a suggestion's button adds to the `/course SLUG` it sends: only a press of the
# suggestion counts as opening it, not the same course looked up by hand.
FROM_SUGGESTION = "suggested"
OUTCOME_WINDOW = timedelta(days=30)
SLOTS = ("start", "courses", "recommend", "course_end")
# The same item shown again to the same learner in the same slot within this (every press of
# "Browse courses") is one impression, not one per press, which would drown click-through.
IMPRESSION_WINDOW = timedelta(hours=1)
IMPRESSIONS_LOCK = 1901  # the advisory lock namespace of a learner's impressions (PostgreSQL)
Kind = Literal["course", "plan", "workshop"]  # what can be opened and dismissed
Dismissable = Literal["course", "plan", "workshop", "mentor"]  # a mentor: never suggested


@dataclass(frozen=True)
class Item:
    """A suggestion that is not a course: a plan, a workshop or a mentor (`item_id`), for a
    course where it has one."""

    kind: str  # plan, workshop, mentor
    item_id: int
    course_id: int | None
    reason: str = ""  # a plan's or workshop's strongest signal, e.g. plan-course (else `kind`)


Impression = tuple[str, int | None, int | None]  # kind, item_id, course_id


def impression(pick: Suggestion | Item) -> Impression:
    if isinstance(pick, Suggestion):
        return ("course", None, pick.course_id)
    return (pick.kind, pick.item_id, pick.course_id)


async def log_shown(
    uow: UnitOfWork,
    user_id: int,
    picks: Sequence[Suggestion | Item],
    slot: str,
    arm: Arm,
    now: datetime,
) -> datetime:
    """Log the reply's suggestions, courses and other items, in the order shown, leaving out
    each one already logged for this learner and slot within `IMPRESSION_WINDOW`: one read of
    their last hour and at most one INSERT. Returns the oldest of the items' newest
    impressions (an item logged now: `now`): until that time plus the window, showing the same
    again logs nothing, which the caller may remember (`bot.recommending.suggest.PickCache`).

    The read and the write are one step per learner across processes: on PostgreSQL an
    advisory lock on the learner holds a second transaction's read until the first commits
    (its own snapshot is then fresh: READ COMMITTED); on SQLite the transaction holds the
    database already (BEGIN IMMEDIATE)."""
    if not picks:
        return now
    await uow.advisory_lock(IMPRESSIONS_LOCK, user_id)
    recent: dict[Impression, datetime] = {
        (kind, item_id, course_id): at
        for kind, item_id, course_id, at in await uow.session.execute(
            select(
                RecommendationShown.kind,
                RecommendationShown.item_id,
                RecommendationShown.course_id,
                func.max(RecommendationShown.shown_at),
            )
            .where(RecommendationShown.user_id == user_id)
            .where(RecommendationShown.shown_at > now - IMPRESSION_WINDOW)
            .where(RecommendationShown.slot == slot)
            .group_by(
                RecommendationShown.kind,
                RecommendationShown.item_id,
                RecommendationShown.course_id,
            )
        )
    }
    rows = [
        {
            "user_id": user_id,
            "kind": kind,
            "item_id": item_id,
            "course_id": course_id,
            "slot": slot,
            "arm": arm,
            "reason": pick.reason if isinstance(pick, Suggestion) else pick.reason or pick.kind,
            "rank": rank,
            "shown_at": now,
            "opened_at": None,
        }
        for rank, pick in enumerate(picks, start=1)
        for kind, item_id, course_id in [impression(pick)]
        if (kind, item_id, course_id) not in recent
    ]
    if rows:
        await uow.session.execute(insert(RecommendationShown), rows)
    return min(recent.get(impression(pick), now) for pick in picks)


async def mark_opened(uow: UnitOfWork, user_id: int, kind: Kind, key: int, now: datetime) -> None:
    """The learner pressed a suggestion's button: the newest unopened suggestion to them of
    that course, plan or workshop (`key`: its id), if shown within `OPEN_WINDOW`, counts."""
    what = RecommendationShown.course_id if kind == "course" else RecommendationShown.item_id
    row = (
        await uow.session.execute(
            select(RecommendationShown)
            .where(RecommendationShown.user_id == user_id)
            .where(RecommendationShown.shown_at >= now - OPEN_WINDOW)
            .where(RecommendationShown.kind == kind)
            .where(what == key)
            .where(RecommendationShown.opened_at.is_(None))
            .order_by(RecommendationShown.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is not None:
        row.opened_at = now


async def dismiss(
    uow: UnitOfWork, user_id: int, kind: Dismissable, key: int, now: datetime
) -> bool:
    """Remember that the learner is not interested in a course, a plan, a workshop series or a
    mentor (`key`: the course's, the plan's, the series' (`series_key`) or the mentor
    profile's id); False if already said. A mentor so named is neither suggested nor offered
    the learner's requests (`bot.mentoring.offers.rating_history`)."""
    said = RecommendationDismissal
    what = said.course_id if kind == "course" else said.item_id
    known = (
        await uow.session.execute(
            select(RecommendationDismissal.id)
            .where(RecommendationDismissal.user_id == user_id)
            .where(RecommendationDismissal.kind == kind)
            .where(what == key)
        )
    ).first()
    if known is not None:
        return False
    uow.add(
        RecommendationDismissal(
            user_id=user_id,
            kind=kind,
            course_id=key if kind == "course" else None,
            item_id=None if kind == "course" else key,
            created_at=now,
        )
    )
    await uow.flush()
    return True


async def state_interest(
    uow: UnitOfWork, user_id: int, goals: str, level: int | None, now: datetime
) -> None:
    uow.add(LearnerInterest(user_id=user_id, goals=goals, level=level, created_at=now))
    await uow.flush()


@dataclass
class Tally:
    shown: int = 0
    opened: int = 0
    bought: int = 0
    completed: int = 0
    rated: int = 0

    def rate(self, part: int) -> float | None:
        return None if not self.shown else 100.0 * part / self.shown


GROUPS = {"course": "courses", "plan": "extras", "workshop": "extras"}  # mentors: neither


@dataclass(frozen=True)
class Outcomes:
    """Suggestions since a date and what followed, by (arm, slot), by (arm, reason), and by
    (arm, slot, group): the courses apart from the plans and workshops (`GROUPS`)."""

    by_slot: dict[tuple[str, str], Tally]
    by_reason: dict[tuple[str, str], Tally]
    arms: dict[str, Tally]
    by_group: dict[tuple[str, str, str], Tally] = field(default_factory=dict)


async def outcomes(uow: UnitOfWork, since: datetime) -> Outcomes:
    """Each suggestion shown since `since` joined to what its learner did with its course
    within `OUTCOME_WINDOW`: bought it (an order paid), completed a session or lesson of it,
    rated a session or lesson of it."""
    run = (await uow.session.connection()).execute
    shown = list(
        await run(
            select(
                RecommendationShown.user_id,
                RecommendationShown.kind,
                RecommendationShown.item_id,
                RecommendationShown.course_id,
                RecommendationShown.slot,
                RecommendationShown.arm,
                RecommendationShown.reason,
                RecommendationShown.shown_at,
                RecommendationShown.opened_at,
            ).where(RecommendationShown.shown_at >= since)
        )
    )
    users = {row[0] for row in shown}
    events = await _events(uow, users) if users else {}
    by_slot: dict[tuple[str, str], Tally] = defaultdict(Tally)
    by_reason: dict[tuple[str, str], Tally] = defaultdict(Tally)
    arms: dict[str, Tally] = defaultdict(Tally)
    by_group: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    for uid, kind, item, course_id, slot, arm, reason, at, opened in shown:
        what_id = course_id if kind == "course" else item
        followed = [
            int(
                any(
                    at <= t <= at + OUTCOME_WINDOW
                    for t in events.get((outcome, kind, uid, what_id), ())
                )
            )
            for outcome in ("bought", "completed", "rated")
        ]
        tallies = [by_slot[(arm, slot)], by_reason[(arm, reason)], arms[arm]]
        if kind in GROUPS:
            tallies.append(by_group[(arm, slot, GROUPS[kind])])
        for tally in tallies:
            tally.shown += 1
            tally.opened += int(opened is not None)
            tally.bought += followed[0]
            tally.completed += followed[1]
            tally.rated += followed[2]
    return Outcomes(dict(by_slot), dict(by_reason), dict(arms), dict(by_group))


Events = dict[tuple[str, str, int, int | None], list[datetime]]


async def _events(uow: UnitOfWork, users: set[int]) -> Events:
    """When each learner did what follows a suggestion, keyed (outcome, kind, learner, id):
    for a course, bought (an order paid), completed (a session held or a lesson done), rated (a
    session or lesson); for a plan, bought (a period paid) and completed (a session on it); a
    workshop, bought (a seat taken) and completed (attended); a mentor, bought (asked for a
    mentor for that course) and completed (that mentor accepted)."""
    run = (await uow.session.connection()).execute
    found: Events = defaultdict(list)
    queries = (
        (
            "bought",
            "course",
            select(Order.user_id, Order.course_id, Order.paid_at)
            .where(Order.paid_at.is_not(None))
            .where(Order.user_id.in_(users)),
        ),
        (
            "completed",
            "course",
            select(MentorSession.learner_id, Enrollment.course_id, MentorSession.start_at)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(MentorSession.status == "completed")
            .where(MentorSession.learner_id.in_(users)),
        ),
        (
            "completed",
            "course",
            select(LessonDelivery.user_id, Lesson.course_id, LessonDelivery.done_at)
            .join(Lesson, Lesson.id == LessonDelivery.lesson_id)
            .where(LessonDelivery.done_at.is_not(None))
            .where(LessonDelivery.user_id.in_(users)),
        ),
        (
            "rated",
            "course",
            select(Rating.rater_id, Enrollment.course_id, Rating.created_at)
            .join(MentorSession, MentorSession.id == Rating.session_id)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .where(Rating.rater_id.in_(users)),
        ),
        (
            "rated",
            "course",
            select(LessonRating.user_id, Lesson.course_id, LessonRating.created_at)
            .join(Lesson, Lesson.id == LessonRating.lesson_id)
            .where(LessonRating.user_id.in_(users)),
        ),
        (
            "bought",
            "plan",
            select(Subscription.user_id, Subscription.plan_id, SubscriptionPeriod.paid_at)
            .join(SubscriptionPeriod, SubscriptionPeriod.subscription_id == Subscription.id)
            .where(Subscription.user_id.in_(users)),
        ),
        (
            "completed",
            "plan",
            select(Subscription.user_id, Subscription.plan_id, MentorSession.start_at)
            .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
            .join(Subscription, Subscription.order_id == Enrollment.order_id)
            .where(MentorSession.status == "completed")
            .where(Subscription.user_id.in_(users)),
        ),
        (
            "bought",
            "workshop",
            select(WorkshopSeat.user_id, WorkshopSeat.workshop_id, WorkshopSeat.created_at).where(
                WorkshopSeat.user_id.in_(users)
            ),
        ),
        (
            "completed",
            "workshop",
            select(WorkshopSeat.user_id, WorkshopSeat.workshop_id, Workshop.start_at)
            .join(Workshop, Workshop.id == WorkshopSeat.workshop_id)
            .where(WorkshopSeat.status == "attended")
            .where(WorkshopSeat.user_id.in_(users)),
        ),
        (
            "completed",
            "mentor",
            select(
                MentorshipRequest.learner_id,
                MentorshipRequest.mentor_id,
                MentorshipRequest.accepted_at,
            )
            .where(MentorshipRequest.accepted_at.is_not(None))
            .where(MentorshipRequest.learner_id.in_(users)),
        ),
    )
    for what, kind, stmt in queries:
        for uid, item, at in await run(stmt):
            if at is not None:
                found[(what, kind, uid, item)].append(at)
    # A mentor suggestion is followed by asking for a mentor for its course: keyed by the
    # mentors suggested to that learner for that course.
    asked = await run(
        select(MentorshipRequest.learner_id, Enrollment.course_id, MentorshipRequest.created_at)
        .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
        .where(MentorshipRequest.learner_id.in_(users))
    )
    suggested = await run(
        select(
            RecommendationShown.user_id, RecommendationShown.course_id, RecommendationShown.item_id
        )
        .where(RecommendationShown.kind == "mentor")
        .where(RecommendationShown.user_id.in_(users))
        .distinct()
    )
    mentors: dict[tuple[int, int | None], set[int | None]] = defaultdict(set)
    for uid, cid, item in suggested:
        mentors[(uid, cid)].add(item)
    for uid, cid, at in asked:
        for item in mentors.get((uid, cid), ()):
            found[("bought", "mentor", uid, item)].append(at)
    return found
