"""Plans and workshops beside the suggested courses: what a learner who is taking, or about to
take, a course could do next with it, ranked like the courses (bot/recommending/extra_ranker.py)
and each with the reason of its strongest signal.

Candidates: every active plan the learner does not subscribe to (live: trialing, active,
past due), and the upcoming workshops (the soonest 20 that have not started) they neither host
nor sit or wait in. Left out: a plan or workshop of a course they said "not interested" in, a
plan they said it of, a workshop of a series they said it of (any occurrence: a weekly workshop
is one thing to them, `bot.recommending.log.dismiss`); a full workshop (a suggestion is
something to take now — pressing Join on a full one would put them in a line, which they can
still choose from /workshops); a workshop priced in credits of a course they hold too few
credits of (Join would refuse). Up to `[recommend] extras` of each
kind (`extras_recommend` in `/recommend`) follow the courses, plans first. They are read only
where a learner asks for suggestions or comes back (`/recommend`, the welcome, the end of a
course), not on every `/courses`, which stays a catalogue with course suggestions; the reads
are four queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from bot.config import Config
from bot.core.i18n import Msg, When, _, clip, ngettext
from bot.core.replies import Choice
from bot.core.states import SUBSCRIPTION_LIVE
from bot.learning.courses import Titled, course_title
from bot.matching import bayesian_rating
from bot.recommending.extra_ranker import FEW_SEATS, Candidate, Ranked, fit_of, rank_extras
from bot.recommending.log import FROM_SUGGESTION, Item
from bot.recommending.ranker import Arm, Model
from bot.recommending.signals import LearnerState
from bot.sessions.workshops import PRESENT, upcoming_for, workshop_title
from bot.subscriptions.plans import plan_line, plan_name
from storage.models import (
    Course,
    Enrollment,
    MentorProfile,
    Plan,
    Subscription,
    Workshop,
    WorkshopSeat,
    WorkshopWaitlist,
)
from storage.uow import UnitOfWork

WORKSHOPS_READ = 20


@dataclass(frozen=True)
class Extra:
    item: Item
    line: Msg
    choice: Choice  # Subscribe / Join, marked as the suggestion's (`FROM_SUGGESTION`)
    hide: Choice  # Not interested


@dataclass(frozen=True)
class _Read:
    """What the lines need besides the ranking: the plans and workshops, course titles."""

    plans: dict[int, Plan]
    workshops: dict[int, Workshop]
    titles: dict[int, Titled]


async def extras(
    uow: UnitOfWork,
    config: Config,
    model: Model,
    state: LearnerState,
    suggested: Sequence[int],
    arm: Arm,
    now: datetime,
    k: int,
) -> list[Extra]:
    """Up to `k` plans and `k` workshops for the learner, after the courses `suggested`."""
    if k <= 0:
        return []
    learner = state.learner
    credits: dict[int, int] = {}
    for course_id, left in await uow.session.execute(
        select(Enrollment.course_id, Enrollment.credits_remaining)
        .where(Enrollment.user_id == learner.user_id)
        .where(Enrollment.status == "active")
        .order_by(Enrollment.id.desc())
    ):
        credits[course_id] = max(credits.get(course_id, 0), left)
    taken = {*learner.history, *credits}
    peers = (
        select(Enrollment.user_id)
        .where(Enrollment.course_id.in_(taken))
        .where(Enrollment.user_id != learner.user_id)
        if taken
        else None
    )
    plans, plan_candidates = await _plans(uow, learner.user_id, state, peers)
    workshops, workshop_candidates = await _workshops(
        uow, config, learner.user_id, state, credits, peers, now
    )
    follows = {t.lower() for t in learner.topics}
    for course_id in taken:
        if course_id in model.index:
            follows |= model.topics[model.index[course_id]]
    ranked = rank_extras(
        model,
        [*plan_candidates, *workshop_candidates],
        fit_of(list(credits), suggested, learner.goals, follows),
        k,
        arm,
    )
    titles: dict[int, Titled] = {p.course_id: c for p, c in plans.values()}
    for r in ranked:
        if r.course_id is not None and r.course_id not in titles and r.course_id in model.index:
            titles[r.course_id] = model.doc(r.course_id)
    wanted = {r.course_id for r in ranked if r.course_id is not None} - titles.keys()
    if wanted:  # a course newer than the model
        for c in (await uow.session.execute(select(Course).where(Course.id.in_(wanted)))).scalars():
            titles[c.id] = c
    read = _Read({i: p for i, (p, _c) in plans.items()}, workshops, titles)
    return [_extra(r, read) for r in ranked]


async def _plans(
    uow: UnitOfWork, user_id: int, state: LearnerState, peers: Select[Any] | None
) -> tuple[dict[int, tuple[Plan, Course]], list[Candidate]]:
    live = (
        select(Subscription.plan_id)
        .where(Subscription.user_id == user_id)
        .where(Subscription.status.in_(SUBSCRIPTION_LIVE))
    )
    subscribers = (
        select(func.count(Subscription.id))
        .where(Subscription.plan_id == Plan.id)
        .where(Subscription.status.in_(SUBSCRIPTION_LIVE))
        .scalar_subquery()
    )
    liked = (
        select(func.count(func.distinct(Subscription.user_id)))
        .where(Subscription.plan_id == Plan.id)
        .where(Subscription.order_id.is_not(None))
        .where(Subscription.user_id.in_(peers))
        .scalar_subquery()
        if peers is not None
        else None
    )
    stmt = (
        select(Plan, Course, subscribers, *([liked] if liked is not None else []))
        .join(Course, Course.id == Plan.course_id)
        .where(Plan.status == "active")
        .where(Plan.id.not_in(live))
        .order_by(Plan.id)
    )
    if state.dismissed:
        stmt = stmt.where(Plan.course_id.not_in(state.dismissed))
    if state.dismissed_plans:
        stmt = stmt.where(Plan.id.not_in(state.dismissed_plans))
    found: dict[int, tuple[Plan, Course]] = {}
    candidates = []
    for plan, course, live_count, *rest in await uow.session.execute(stmt):
        found[plan.id] = (plan, course)
        candidates.append(
            Candidate(
                "plan",
                plan.id,
                plan.course_id,
                topics=tuple(course.topics or ()),
                popularity=int(live_count or 0),
                peers=int(rest[0] or 0) if rest else 0,
            )
        )
    return found, candidates


async def _workshops(
    uow: UnitOfWork,
    config: Config,
    user_id: int,
    state: LearnerState,
    credits: dict[int, int],
    peers: Select[Any] | None,
    now: datetime,
) -> tuple[dict[int, Workshop], list[Candidate]]:
    dismissed = state.dismissed
    upcoming = await upcoming_for(uow, user_id, now, WORKSHOPS_READ, state.dismissed_series)
    listed = {w.id: w for w in upcoming}
    if not listed:
        return {}, []
    seated = (
        select(func.count(WorkshopSeat.id))
        .where(WorkshopSeat.workshop_id == Workshop.id)
        .where(WorkshopSeat.status == "seated")
        .scalar_subquery()
    )
    offered = (
        select(func.count(WorkshopWaitlist.id))
        .where(WorkshopWaitlist.workshop_id == Workshop.id)
        .where(WorkshopWaitlist.status == "offered")
        .scalar_subquery()
    )
    columns = [Workshop.id, seated, offered, MentorProfile.rating_sum, MentorProfile.rating_count]
    if peers is not None:
        columns.append(
            select(func.count(func.distinct(WorkshopSeat.user_id)))
            .where(WorkshopSeat.workshop_id == Workshop.id)
            .where(WorkshopSeat.status.in_(PRESENT))
            .where(WorkshopSeat.user_id.in_(peers))
            .scalar_subquery()
        )
    counted = await uow.session.execute(
        select(*columns)
        .outerjoin(MentorProfile, MentorProfile.user_id == Workshop.host_id)
        .where(Workshop.id.in_(listed))
    )
    kept: dict[int, Workshop] = {}
    candidates = []
    for workshop_id, n_seated, n_offered, rating_sum, rating_count, *rest in counted:
        w = listed[workshop_id]
        left = w.seats - int(n_seated or 0) - int(n_offered or 0)
        course = None if w.own_product else w.course_id
        if left <= 0 or (course is not None and course in dismissed):
            continue
        if course is not None and w.price_credits > credits.get(course, 0):
            continue
        kept[w.id] = w
        candidates.append(
            Candidate(
                "workshop",
                w.id,
                course,
                text=" ".join([w.title_en, w.title_zh, *(w.topics or ())]),
                topics=tuple(w.topics or ()),
                popularity=w.seats - left,
                peers=int(rest[0] or 0) if rest else 0,
                stars=bayesian_rating(rating_sum, rating_count, config.matching)
                if rating_count
                else None,
                hours=(w.start_at - now).total_seconds() / 3600,
                seats_left=left,
            )
        )
    return kept, candidates


def _why(r: Ranked, read: _Read) -> Msg:
    """The one-line reason of a plan or workshop, from its strongest signal."""
    c = r.candidate
    if r.reason == "course" and r.course_id in read.titles:
        return _("for learners of {course}", course=course_title(read.titles[r.course_id]))
    if r.reason == "picked" and r.course_id in read.titles:
        return _("for {course}, suggested above", course=course_title(read.titles[r.course_id]))
    if r.reason == "related" and r.course_id in read.titles:
        return _("related to {course}", course=course_title(read.titles[r.course_id]))
    if r.reason == "goal":
        if r.words:
            return _("matches your goal: {words}", words=clip(", ".join(r.words), 60))
        return _("matches what you are learning")
    if r.reason == "topic" and r.words:
        return _("on a topic you follow: {topics}", topics=clip(", ".join(r.words), 60))
    if r.reason == "peers":
        if c.kind == "plan":
            return _("learners like you subscribed")
        return _("learners like you joined")
    if r.reason == "soon" and c.hours is not None:
        start = (
            _("starts within a day")
            if c.hours < 24
            else ngettext("starts in {n} day", "starts in {n} days", math.ceil(c.hours / 24))
        )
        if c.seats_left is not None and c.seats_left <= FEW_SEATS:
            return ngettext(
                "{start}, {n} seat left", "{start}, {n} seats left", c.seats_left, start=start
            )
        return start
    return _("popular with learners")


def _extra(r: Ranked, read: _Read) -> Extra:
    c = r.candidate
    reason = f"{c.kind}-{r.reason}"
    if c.kind == "plan":
        plan = read.plans[c.id]
        return Extra(
            Item(c.kind, c.id, c.course_id, reason),
            _("• Plan {plan} · {why}", plan=plan_line(plan), why=_why(r, read)),
            Choice(
                _("Subscribe: {name}", name=plan_name(plan)),
                f"/subscribe {plan.slug} {FROM_SUGGESTION}",
            ),
            Choice(
                _("Not interested: {title}", title=plan_name(plan)),
                f"/recommend hide plan {plan.slug}",
            ),
        )
    w = read.workshops[c.id]
    return Extra(
        Item(c.kind, c.id, w.course_id, reason),
        _(
            "• Workshop {title}, {when} — {why}",
            title=workshop_title(w),
            when=When(w.start_at),
            why=_why(r, read),
        ),
        Choice(_("Join #{id}", id=w.id), f"/join {w.id} {FROM_SUGGESTION}"),
        Choice(
            _("Not interested: {title}", title=workshop_title(w)),
            f"/recommend hide workshop {w.id}",
        ),
    )
