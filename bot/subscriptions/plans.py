"""A plan as learners and admins see it: its name in the reader's language, its price, the one
line that reads it (`/plans`, the admins' lists, the suggestions beside the courses), found by
its short name."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.errors import NotFound
from bot.core.i18n import Lines, Localized, Money, Msg, _, clip, ngettext
from storage.models import Plan
from storage.uow import UnitOfWork

# Telegram's only subscription period, used for demo periods too; Stripe's invoices say their
# own (a calendar month).
PERIOD_DAYS = 30
STARS = "XTR"


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
