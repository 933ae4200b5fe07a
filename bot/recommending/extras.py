"""Plans and workshops beside the suggested courses: what a learner who is taking, or about to
take, a course could do next with it.

A plan is suggested for the best-placed course it covers among the learner's suggestions and
then their own courses (a monthly way to keep going with a mentor), unless they subscribe to it
already. A workshop is the soonest upcoming one with the learner not in it, for one of those
courses or on a topic they follow (their courses' topics and the topics they asked a mentor
about). At most one of each, after the courses, each with its reason. They are read only where
a learner asks for suggestions or comes back (`/recommend`, the welcome, the end of a course),
not on every `/courses`, which stays a catalogue with course suggestions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.core.i18n import Msg, When, _, clip, ngettext
from bot.core.replies import Choice
from bot.core.states import SUBSCRIPTION_LIVE
from bot.learning.courses import course_title
from bot.recommending.log import Item
from bot.sessions.workshops import upcoming_for, workshop_title
from bot.subscriptions.plans import plan_name, plan_price
from storage.models import Course, Enrollment, MentorshipRequest, Plan, Subscription
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Extra:
    item: Item
    line: Msg
    choice: Choice


async def extras(
    uow: UnitOfWork, user_id: int, suggested: Sequence[int], now: datetime
) -> list[Extra]:
    """At most one plan and one workshop for the learner, after the courses `suggested`."""
    owned = list(
        (
            await uow.session.execute(
                select(Enrollment.course_id)
                .where(Enrollment.user_id == user_id)
                .where(Enrollment.status == "active")
                .order_by(Enrollment.id.desc())
            )
        ).scalars()
    )
    order = list(dict.fromkeys([*suggested, *owned]))
    found = []
    plan = await _plan(uow, user_id, order)
    if plan is not None:
        found.append(plan)
    workshop = await _workshop(uow, user_id, order, now)
    if workshop is not None:
        found.append(workshop)
    return found


async def _plan(uow: UnitOfWork, user_id: int, order: list[int]) -> Extra | None:
    if not order:
        return None
    live = (
        select(Subscription.plan_id)
        .where(Subscription.user_id == user_id)
        .where(Subscription.status.in_(SUBSCRIPTION_LIVE))
    )
    rows = (
        await uow.session.execute(
            select(Plan, Course)
            .join(Course, Course.id == Plan.course_id)
            .where(Plan.status == "active")
            .where(Plan.course_id.in_(order))
            .where(Plan.id.not_in(live))
            .order_by(Plan.id)
        )
    ).all()
    if not rows:
        return None
    plan, course = min(rows, key=lambda r: order.index(r[0].course_id))
    line = ngettext(
        "• Plan {plan} for {course} — {price} a month, {n} session per period",
        "• Plan {plan} for {course} — {price} a month, {n} sessions per period",
        plan.sessions_per_period,
        plan=plan_name(plan),
        course=course_title(course),
        price=plan_price(plan),
    )
    choice = Choice(_("Subscribe: {name}", name=plan_name(plan)), f"/subscribe {plan.slug}")
    return Extra(Item("plan", plan.id, course.id), line, choice)


async def _workshop(uow: UnitOfWork, user_id: int, order: list[int], now: datetime) -> Extra | None:
    listed = await upcoming_for(uow, user_id, now)
    if not listed:
        return None
    courses = {
        c.id: c
        for c in (await uow.session.execute(select(Course).where(Course.id.in_(order)))).scalars()
    }
    asked = (
        await uow.session.execute(
            select(MentorshipRequest.topic).where(MentorshipRequest.learner_id == user_id)
        )
    ).scalars()
    follows = {t.lower() for c in courses.values() for t in c.topics or ()} | {
        t.lower() for t in asked if t
    }
    for w in listed:  # soonest first
        if w.course_id in courses and not w.own_product:
            why = _("for learners of {course}", course=course_title(courses[w.course_id]))
        else:
            shared = [t for t in w.topics or () if t.lower() in follows]
            if not shared:
                continue
            why = _("on a topic you follow: {topics}", topics=clip(", ".join(shared), 60))
        line = _(
            "• Workshop {title}, {when} — {why}",
            title=workshop_title(w),
            when=When(w.start_at),
            why=why,
        )
        choice = Choice(_("Join #{id}", id=w.id), f"/join {w.id}")
        return Extra(Item("workshop", w.id, w.course_id), line, choice)
    return None
