"""What the clock does to subscriptions, in each sweep (`Marketplace.run_due`, through the
front door as an input of kind `sweep`).

- A demo subscription whose period (or trial) is over renews itself: the demo provider is
  "paid" the next period, so the whole flow can be walked in the console.
- One set to cancel whose period is over ends (`cancelled`) — demo and Stars; Stripe says so
  itself (`customer.subscription.deleted`), and reconciliation catches a lost event.
- An overdue one whose grace period is over lapses; so does a Stars subscription with no
  renewal charge by its expiration date plus `[subscriptions] stars_lapse_hours`.
- A renewal reminder `remind_days_before` a renewal, and a notice as long before a trial
  ends, once per period end (`reminded_for`), in the learner's language and timezone.

Rows are locked one by one and checked again under the lock, so two processes sweeping at
once neither renew twice (the period's reference is unique too) nor remind twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from bot.config import Config
from bot.core.i18n import Money, When, _, ngettext
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.subscriptions.coverage import sessions_left
from bot.subscriptions.lifecycle import (
    PeriodPaid,
    begin_trial,
    end,
    lock_subscription,
    next_period,
    record_period,
    trial_allowed,
)
from bot.subscriptions.plans import plan_name
from bot.subscriptions.promo import discounted
from storage.models import Plan, PromoCode, Subscription
from storage.uow import UnitOfWork

BATCH = 200


async def sweep(uow: UnitOfWork, config: Config, now: datetime) -> int:
    """One pass; returns how many subscriptions it changed or reminded."""
    done = 0
    stars_late = timedelta(hours=config.subscriptions.stars_lapse_hours)
    remind = timedelta(days=config.subscriptions.remind_days_before)
    due = await uow.session.execute(
        select(Subscription.id)
        .where(Subscription.ended_at.is_(None))
        .where(Subscription.current_period_end.is_not(None))
        .where(
            or_(
                Subscription.current_period_end <= now + remind,
                Subscription.grace_until <= now,
            )
        )
        .order_by(Subscription.current_period_end)
        .limit(BATCH)
    )
    for sub_id in list(due.scalars()):
        sub = await lock_subscription(uow, sub_id)
        if await _one(uow, config, sub, now, stars_late, remind):
            done += 1
    return done


async def _one(
    uow: UnitOfWork,
    config: Config,
    sub: Subscription,
    now: datetime,
    stars_late: timedelta,
    remind: timedelta,
) -> bool:
    period_end = sub.current_period_end
    if sub.ended_at is not None or period_end is None:
        return False
    if sub.status == "past_due" and sub.grace_until is not None and sub.grace_until <= now:
        return await end(uow, sub, "lapsed", now)
    if period_end <= now:
        if sub.status == "cancelling" and sub.provider != "stripe":
            return await end(uow, sub, "cancelled", now)
        if sub.provider == "demo" and sub.status in ("trialing", "active"):
            starts, ends = next_period(sub, now)
            paid = _demo_period(sub, starts, ends)
            return await record_period(uow, sub, paid, now) is not None
        overdue = sub.provider == "stars" and period_end + stars_late <= now
        if overdue and sub.status in ("active", "past_due"):
            return await end(uow, sub, "lapsed", now)
        return False
    if sub.status in ("trialing", "active") and period_end - remind <= now:
        if sub.reminded_for == period_end:
            return False
        sub.reminded_for = period_end
        await _remind(uow, sub, now)
        return True
    return False


async def _remind(uow: UnitOfWork, sub: Subscription, now: datetime) -> None:
    plan = await uow.get(Plan, sub.plan_id)
    assert plan is not None and sub.current_period_end is not None
    choices = [Choice(_("My subscription"), "/subscription")]
    if sub.status == "trialing":
        await tell(
            uow,
            sub.user_id,
            _(
                "Your free trial of {plan} ends on {when}. Then your first period is charged "
                "({price}); to stop before, cancel in /subscription.",
                plan=plan_name(plan),
                when=When(sub.current_period_end),
                price=Money(sub.amount_minor, sub.currency),
            ),
            now,
            choices,
        )
        return
    left = await sessions_left(uow, sub)
    await tell(
        uow,
        sub.user_id,
        ngettext(
            "{plan} renews on {when} ({price}). You have {n} session left this period.",
            "{plan} renews on {when} ({price}). You have {n} sessions left this period.",
            left,
            plan=plan_name(plan),
            when=When(sub.current_period_end),
            price=Money(sub.amount_minor, sub.currency),
        ),
        now,
        choices,
    )


async def activate_demo(uow: UnitOfWork, sub: Subscription, plan: Plan, now: datetime) -> None:
    """The demo "payment" of a waiting subscription: its trial starts, or its first period."""
    if await trial_allowed(uow, sub, plan):
        await begin_trial(uow, sub, plan, now + timedelta(days=plan.trial_days), now)
        return
    starts, ends = next_period(sub, now)
    first = _demo_period(sub, starts, ends)
    promo = None if sub.promo_id is None else await uow.get(PromoCode, sub.promo_id)
    if promo is not None and promo.duration == "once":  # the first period at the code's price
        first = replace(first, amount_minor=discounted(sub.amount_minor, promo))
    await record_period(uow, sub, first, now)


def _demo_period(sub: Subscription, starts: datetime, ends: datetime) -> PeriodPaid:
    ref = f"demo:{sub.id}:{ends.timestamp():.0f}"
    return PeriodPaid("demo", ref, starts, ends, sub.amount_minor, sub.currency)
