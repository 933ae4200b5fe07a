"""A plan as learners and admins see it: its name in the reader's language, its price, the one
line that reads it (`/plans`, the admins' lists, the suggestions beside the courses), the
courses it covers, found by its short name."""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.core.errors import NotFound
from bot.core.i18n import Lines, Localized, Money, Msg, _, clip, ngettext
from bot.learning.courses import course_title
from storage.models import Course, Plan, PlanCourse, Subscription
from storage.uow import UnitOfWork

# Telegram's only subscription period, used for demo periods too; Stripe's invoices say their
# own (a calendar month).
PERIOD_DAYS = 30
STARS = "XTR"
SUBSCRIPTION_PROVIDER = "subscription"  # the orders a subscription's enrollments hang on


def plan_name(plan: Plan) -> Localized:
    return Localized(plan.name_en, plan.name_zh, title=True)


def plan_price(plan: Plan) -> Money:
    return Money(plan.price_minor, plan.currency)


def plan_line(plan: Plan) -> Msg:
    """Name, price a month, sessions per period, and the free trial and intro session if any:
    how a plan reads wherever it is offered."""
    line = ngettext(
        "{name} — {price} a month, {n} session per period",
        "{name} — {price} a month, {n} sessions per period",
        plan.sessions_per_period,
        name=plan_name(plan),
        price=plan_price(plan),
    )
    extras: list[Msg] = []
    if plan.trial_days:
        extras.append(ngettext("{n}-day free trial", "{n}-day free trial", plan.trial_days))
    if plan.intro_session:
        extras.append(_("a free intro session"))
    return Lines([line, *extras], " · ").as_msg() if extras else line


async def plan_by_slug(uow: UnitOfWork, slug: str, *, active_only: bool = True) -> Plan:
    """The plan called `slug` (case-insensitive); archived ones only when asked for."""
    plan = (
        await uow.session.execute(select(Plan).where(Plan.slug == slug.lower()))
    ).scalar_one_or_none()
    if plan is None or (active_only and plan.status != "active"):
        raise NotFound(_("There is no plan called '{slug}'. See /plans.", slug=clip(slug)))
    return plan


async def plan_courses(uow: UnitOfWork, plan: Plan) -> list[Course]:
    """The courses a plan covers: its primary one first (where each period's sessions land),
    then the others in the order the admin gave them."""
    primary = await uow.get(Course, plan.course_id)
    assert primary is not None
    others = await uow.session.execute(
        select(Course)
        .join(PlanCourse, PlanCourse.course_id == Course.id)
        .where(PlanCourse.plan_id == plan.id)
        .where(Course.id != plan.course_id)
        .order_by(PlanCourse.id)
    )
    return [primary, *others.scalars()]


async def set_plan_courses(uow: UnitOfWork, plan: Plan, courses: list[Course]) -> None:
    """The plan covers exactly `courses` (at least one, none twice), in that order: the first
    becomes its primary course, the others its `PlanCourse` rows. The plan must have its id
    (flushed)."""
    plan.course_id = courses[0].id
    await uow.session.execute(delete(PlanCourse).where(PlanCourse.plan_id == plan.id))
    for course in courses[1:]:
        uow.add(PlanCourse(plan_id=plan.id, course_id=course.id))
    await uow.flush()


def courses_named(courses: list[Course]) -> Lines:
    """The courses' titles in the reader's language, as a list inside a sentence."""
    return Lines((course_title(c) for c in courses), ", ")


async def plan_on(uow: UnitOfWork, enrollment_id: int) -> Plan | None:
    """The plan of the newest subscription whose sessions are on this enrollment, if any."""
    found = await uow.session.execute(
        select(Plan)
        .join(Subscription, Subscription.plan_id == Plan.id)
        .where(Subscription.enrollment_id == enrollment_id)
        .order_by(Subscription.id.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()
