"""The courses a subscription covers besides its plan's primary one.

Why an enrollment per covered course: lessons (`enrolled`, the drip), the community spaces'
enrollment rule (`sync_enrollments`, `revoke_course_access`), `/lessons`, `/progress` and the
catalogue all ask "does this learner hold an active enrollment in the course?". Giving the
subscription one in each covered course, with no credits, makes every one of them answer yes
while it lasts and no after it, unchanged. Each hangs on an order of its own (an enrollment's
order is unique): provider `subscription`, nothing charged, no sessions, its reference
`sub:ID:covers:COURSE:N`, by which the subscription finds its covered enrollments again.

Why the sessions stay on the primary enrollment alone: a period pays for
`sessions_per_period` sessions, not that many per course. So a subscription has one pool of
credits and one mentorship, as a one-course plan has: `/mentor` for any covered course asks on
the primary enrollment (`sessions_for`), and its request is offered to mentors of any of the
plan's courses (`bot.mentoring.offers.request_needs` matches the topics of them all). Booking,
cancelling, earnings and refunds then work on that enrollment exactly as before.

A learner's own enrollment in a covered course (a course bought separately) is a different
row: ending the subscription revokes only the subscription's, and the course's spaces stay
while the bought one is active (`revoke_course_access` checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

from bot.community.access import regrant_course_access, revoke_course_access
from bot.core.i18n import _
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.core.states import SUBSCRIPTION_LIVE, advance
from bot.payments import enroll
from bot.subscriptions.plans import (
    SUBSCRIPTION_PROVIDER,
    courses_named,
    plan_courses,
    plan_name,
)
from storage.models import Enrollment, Order, Plan, PlanCourse, Subscription
from storage.uow import UnitOfWork


def _refs(sub_id: int) -> str:
    """The start of every covered order's reference of this subscription."""
    return f"sub:{sub_id}:covers:"


def _covered(sub: Subscription) -> Select[Enrollment]:
    """The subscription's active enrollments in the courses it covers besides its primary."""
    return (
        select(Enrollment)
        .join(Order, Order.id == Enrollment.order_id)
        .where(Order.user_id == sub.user_id)
        .where(Order.provider == SUBSCRIPTION_PROVIDER)
        .where(Order.provider_ref.like(f"{_refs(sub.id)}%"))
        .where(Enrollment.status == "active")
        .order_by(Enrollment.id)
    )


async def covered_enrollments(uow: UnitOfWork, sub: Subscription) -> list[Enrollment]:
    """The subscription's active enrollments in the courses it covers besides its primary
    one, locked (the caller holds the subscription's lock; these follow it)."""
    rows = await uow.session.execute(_covered(sub).with_for_update(of=Enrollment))
    return list(rows.scalars())


async def sessions_left(uow: UnitOfWork, sub: Subscription) -> int:
    """The plan's sessions left this period: the credits on its primary enrollment, the one
    pool every covered course books on (0 before access began)."""
    if sub.enrollment_id is None:
        return 0
    primary = await uow.get(Enrollment, sub.enrollment_id)
    return 0 if primary is None else primary.credits_remaining


@dataclass(frozen=True)
class PlanCover:
    """A live subscription's plan as one of the enrollments it gives reads: the plan, and its
    sessions left this period (whichever covered course the enrollment is in)."""

    plan: Plan
    left: int


async def plan_covers(uow: UnitOfWork, user_id: int) -> dict[int, PlanCover]:
    """The learner's enrollments a live subscription gives, by enrollment id: each one's
    primary enrollment (where the credits are) and its covered ones (credit-less), so that
    `/mycourses` names the plan and its pool instead of an enrollment's own credits."""
    rows = await uow.session.execute(
        select(Subscription, Plan)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(Subscription.user_id == user_id)
        .where(Subscription.ended_at.is_(None))
        .where(Subscription.enrollment_id.is_not(None))
        .where(Subscription.status.in_(list(SUBSCRIPTION_LIVE)))
        .order_by(Subscription.id)
    )
    covers: dict[int, PlanCover] = {}
    for sub, plan in rows.all():
        assert sub.enrollment_id is not None
        cover = PlanCover(plan, await sessions_left(uow, sub))
        covers[sub.enrollment_id] = cover
        for enrollment in (await uow.session.execute(_covered(sub))).scalars():
            covers[enrollment.id] = cover
    return covers


async def _open(uow: UnitOfWork, sub: Subscription, course_id: int, now: datetime) -> None:
    """An enrollment (no credits) in a covered course, on an order of its own; the course's
    spaces the learner was taken out of come back at once, new ones with the access sweep."""
    ref = f"{_refs(sub.id)}{course_id}:"
    earlier = await uow.session.execute(
        select(func.count())
        .select_from(Order)
        .where(Order.provider == SUBSCRIPTION_PROVIDER)
        .where(Order.provider_ref.like(f"{ref}%"))
    )
    order = Order(
        user_id=sub.user_id,
        course_id=course_id,
        status="paid",
        amount_minor=0,
        currency=sub.currency,
        sessions_included=0,
        provider=SUBSCRIPTION_PROVIDER,
        provider_ref=f"{ref}{int(earlier.scalar_one()) + 1}",
        created_at=now,
        expires_at=now,
        paid_at=now,
    )
    uow.add(order)
    await uow.flush()
    await enroll(uow, order, now)
    await regrant_course_access(uow, sub.user_id, course_id, "subscription", now)


async def _close(uow: UnitOfWork, enrollment: Enrollment, reason: str, now: datetime) -> None:
    """A covered enrollment ends; its course's spaces go unless another active enrollment in
    the course (one bought separately, another plan's) still entitles the learner."""
    advance("enrollment", enrollment, "revoked")
    await revoke_course_access(uow, enrollment.user_id, enrollment.course_id, reason, now)


async def cover(uow: UnitOfWork, sub: Subscription, plan: Plan, now: datetime) -> bool:
    """Make the subscription's covered enrollments match its plan's courses now, beside its
    active primary enrollment (the caller checked it is active): one opened for each course
    it lacks, one revoked for each course the plan no longer covers. True if any changed."""
    primary = await uow.get(Enrollment, sub.enrollment_id)
    assert primary is not None
    wanted = [c.id for c in await plan_courses(uow, plan) if c.id != primary.course_id]
    have = {e.course_id: e for e in await covered_enrollments(uow, sub)}
    for course_id, enrollment in have.items():
        if course_id not in wanted:
            await _close(uow, enrollment, "subscription", now)
    for course_id in wanted:
        if course_id not in have:
            await _open(uow, sub, course_id, now)
    return set(wanted) != set(have)


async def uncover(uow: UnitOfWork, sub: Subscription, reason: str, now: datetime) -> None:
    """The subscription ended (`reason`: lapsed, cancelled): its covered enrollments end."""
    for enrollment in await covered_enrollments(uow, sub):
        await _close(uow, enrollment, reason, now)


async def follow_plan_courses(uow: UnitOfWork, plan: Plan, now: datetime) -> int:
    """An admin changed which courses the plan covers: every subscription to it that has
    access now covers exactly them, at once, and its learner is told which they are. Each
    subscription is locked, as every subscription rule holds it. Returns how many changed."""
    ids = await uow.session.execute(
        select(Subscription.id)
        .where(Subscription.plan_id == plan.id)
        .where(Subscription.ended_at.is_(None))
        .where(Subscription.enrollment_id.is_not(None))
        .order_by(Subscription.id)
    )
    changed = 0
    courses = courses_named(await plan_courses(uow, plan))
    for sub_id in list(ids.scalars()):
        sub = await uow.lock(Subscription, sub_id)
        if sub is None or sub.ended_at is not None or sub.enrollment_id is None:
            continue
        primary = await uow.lock(Enrollment, sub.enrollment_id)
        if primary is None or primary.status != "active":
            continue
        if await cover(uow, sub, plan, now):
            changed += 1
            await tell(
                uow,
                sub.user_id,
                _(
                    "Your subscription to {plan} now covers: {courses}.",
                    plan=plan_name(plan),
                    courses=courses,
                ),
                now,
                [Choice(_("My subscription"), "/subscription")],
            )
    return changed


async def sessions_for(uow: UnitOfWork, user_id: int, course_id: int) -> Enrollment | None:
    """Where the sessions for a course a live subscription covers (not as its primary) come
    from: that subscription's primary enrollment, if it has sessions left."""
    found = await uow.session.execute(
        select(Enrollment)
        .join(Subscription, Subscription.enrollment_id == Enrollment.id)
        .join(PlanCourse, PlanCourse.plan_id == Subscription.plan_id)
        .where(Subscription.user_id == user_id)
        .where(Subscription.ended_at.is_(None))
        .where(PlanCourse.course_id == course_id)
        .where(Enrollment.status == "active")
        .where(Enrollment.credits_remaining > 0)
        .order_by(Enrollment.id)
        .limit(1)
    )
    return found.scalar_one_or_none()
