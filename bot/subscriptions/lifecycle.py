"""The subscription rules, called alike by the demo button, Stripe's webhooks and
reconciliation, Telegram Stars payments and the clock's sweep.

Each rule takes a unit of work holding the subscription's row lock (`lock_subscription`) and
plain data, goes through the subscription's transition table, posts its ledger entries in the
same transaction and tells the people concerned through the outbox.

- A period is paid once per provider reference (an invoice id, a Stars charge id, a demo
  renewal's number): the period row's `(provider, provider_ref)` is unique, so a duplicate or
  concurrent delivery is a no-op, and an older invoice that arrives after a newer one adds
  its money and credits without moving the subscription back in time.
- Rollover: when a newer period starts, unused credits beyond the plan's `rollover_max` expire
  (Kind.CREDIT_EXPIRED); booked sessions already spent theirs.
- A failed renewal makes the subscription `past_due` with `grace_until` =
  now + `[subscriptions] grace_days`; the learner keeps access and is told how to fix it.
- Ending (lapsed or cancelled) revokes the enrollment, its unused credits and its course's
  community spaces (unless another active enrollment in the course keeps them), and so the
  enrollments and spaces of the other courses the plan covers (`bot.subscriptions.coverage`);
  already booked sessions stay booked (the learner is told which) and the mentors are told.
  Getting access again (a late payment after a lapse) gives the spaces back.
- Refunding a period (`bot.subscriptions.refunds`) gives its money back (on the anchor
  order it was paid on) and revokes as many of its credits as are unused; the mentors keep
  what the order's remaining money covers, and the latest sessions' earnings beyond that are
  reversed: a mentor is never paid from money the learner got back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.community.access import regrant_course_access, revoke_course_access
from bot.config import Config
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import Lines, Money, Msg, When, _, ngettext
from bot.core.ledger import Kind, post
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.core.states import SUBSCRIPTION_LIVE, SubscriptionStatus, advance
from bot.payments import enroll
from bot.sessions.credits import move_credits
from bot.subscriptions.coverage import cover, uncover
from bot.subscriptions.plans import PERIOD_DAYS, SUBSCRIPTION_PROVIDER, plan_name
from storage.models import (
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Plan,
    Subscription,
    SubscriptionPeriod,
    User,
)
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class PeriodPaid:
    """One paid period as a provider reports it."""

    provider: str
    ref: str  # unique per provider: the invoice id, the charge id, `demo:SUB:N`
    starts_at: datetime
    ends_at: datetime
    amount_minor: int
    currency: str
    payment_ref: str | None = None


async def lock_subscription(uow: UnitOfWork, subscription_id: int) -> Subscription:
    sub = await uow.lock(Subscription, subscription_id)
    if sub is None:
        raise NotFound(_("There is no subscription #{id}.", id=subscription_id))
    return sub


async def own_subscription(uow: UnitOfWork, user_id: int, subscription_id: int) -> Subscription:
    """The learner's own subscription, locked; anyone else's reads as missing."""
    sub = await uow.lock(Subscription, subscription_id)
    if sub is None or sub.user_id != user_id:
        raise NotFound(_("You have no subscription #{id}.", id=subscription_id))
    return sub


async def _plan(uow: UnitOfWork, sub: Subscription) -> Plan:
    plan = await uow.get(Plan, sub.plan_id)
    assert plan is not None
    return plan


async def start(
    uow: UnitOfWork,
    user_id: int,
    plan: Plan,
    provider: str,
    now: datetime,
    *,
    amount_minor: int | None = None,
    currency: str | None = None,
    promo_id: int | None = None,
) -> tuple[Subscription, bool]:
    """The learner's subscription to `plan`, waiting for its first payment: the one already
    waiting on this provider (pressing Subscribe twice shows the same), or a new one. Refused
    while the learner has a live one to this plan. Returns (subscription, created)."""
    rows = await uow.session.execute(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .where(Subscription.plan_id == plan.id)
        .where(Subscription.ended_at.is_(None))
        .order_by(Subscription.id)
    )
    for sub in rows.scalars():
        if sub.status in SUBSCRIPTION_LIVE:
            raise BadInput(
                _(
                    "You already subscribe to {plan} (subscription #{id}). See /subscription.",
                    plan=plan_name(plan),
                    id=sub.id,
                ),
                [Choice(_("My subscription"), "/subscription")],
            )
        if sub.status == "incomplete" and sub.provider == provider and sub.promo_id == promo_id:
            return sub, False
    sub = Subscription(
        user_id=user_id,
        plan_id=plan.id,
        status="incomplete",
        provider=provider,
        amount_minor=plan.price_minor if amount_minor is None else amount_minor,
        currency=currency or plan.currency,
        promo_id=promo_id,
        cancel_at_period_end=False,
        created_at=now,
    )
    uow.add(sub)
    await uow.flush()
    return sub, True


async def trial_allowed(uow: UnitOfWork, sub: Subscription, plan: Plan) -> bool:
    """A plan's free trial is once per learner and plan."""
    if plan.trial_days <= 0:
        return False
    earlier = await uow.session.execute(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.user_id == sub.user_id)
        .where(Subscription.plan_id == plan.id)
        .where(Subscription.trial_end.is_not(None))
        .where(Subscription.id != sub.id)
    )
    return int(earlier.scalar_one()) == 0


async def _ensure_access(uow: UnitOfWork, sub: Subscription, plan: Plan, now: datetime) -> None:
    """Give the subscription an anchor order and an active enrollment, unless it has them,
    and an enrollment in each other course its plan covers (`cover`). This is where a
    subscription gets access (a trial starting, a first or late payment, each renewal), so
    its courses' community spaces follow here: taken back ones at once, new ones by the
    access sweep's enrollment rule."""
    if sub.enrollment_id is not None:
        enrollment = await uow.lock(Enrollment, sub.enrollment_id)
        if enrollment is not None and enrollment.status == "active":
            await cover(uow, sub, plan, now)
            return
    order = Order(
        user_id=sub.user_id,
        course_id=plan.course_id,
        status="paid",
        amount_minor=sub.amount_minor,
        currency=sub.currency,
        sessions_included=plan.sessions_per_period,
        provider=SUBSCRIPTION_PROVIDER,
        provider_ref=f"sub:{sub.id}:{now.timestamp():.0f}",
        created_at=now,
        expires_at=now,
        paid_at=now,
    )
    uow.add(order)
    await uow.flush()
    enrollment = await enroll(uow, order, now)
    sub.order_id, sub.enrollment_id = order.id, enrollment.id
    await regrant_course_access(uow, sub.user_id, plan.course_id, "subscription", now)
    await cover(uow, sub, plan, now)


async def _enrollment(uow: UnitOfWork, sub: Subscription) -> Enrollment | None:
    return None if sub.enrollment_id is None else await uow.lock(Enrollment, sub.enrollment_id)


async def begin_trial(
    uow: UnitOfWork, sub: Subscription, plan: Plan, trial_end: datetime, now: datetime
) -> None:
    """The free trial starts: access (the course's lessons) until `trial_end`, no session
    credits, which only a paid period grants."""
    advance("subscription", sub, "trialing")
    await _ensure_access(uow, sub, plan, now)
    sub.trial_end = trial_end
    sub.current_period_start, sub.current_period_end = now, trial_end
    await tell(
        uow,
        sub.user_id,
        _(
            "Your free trial of {plan} has started and runs until {when}. Your first period "
            "is charged then ({price}), unless you cancel before.",
            plan=plan_name(plan),
            when=When(trial_end),
            price=Money(sub.amount_minor, sub.currency),
        ),
        now,
        [Choice(_("My subscription"), "/subscription")],
    )


async def period_recorded(uow: UnitOfWork, provider: str, ref: str) -> bool:
    """Whether the provider's payment `ref` (a Stripe invoice, a Stars charge) is a period."""
    seen = await uow.session.execute(
        select(SubscriptionPeriod.id)
        .where(SubscriptionPeriod.provider == provider)
        .where(SubscriptionPeriod.provider_ref == ref)
    )
    return seen.first() is not None


def intro_key(user_id: int, plan: Plan) -> str:
    """The one free intro session a learner gets per mentor (the plan's mentor), or per course
    for a plan any mentor of it may serve: the ledger's unique key makes it once, whichever plan,
    subscription or process grants it."""
    if plan.mentor_id is not None:
        return f"intro:user:{user_id}:mentor:{plan.mentor_id}"
    return f"intro:user:{user_id}:course:{plan.course_id}"


async def record_period(
    uow: UnitOfWork, sub: Subscription, paid: PeriodPaid, now: datetime
) -> SubscriptionPeriod | None:
    """A period was paid: post its money and grant its sessions, once (None: seen before)."""
    if await period_recorded(uow, paid.provider, paid.ref):
        return None
    plan = await _plan(uow, sub)
    count = await uow.session.execute(
        select(func.count())
        .select_from(SubscriptionPeriod)
        .where(SubscriptionPeriod.subscription_id == sub.id)
    )
    ended = sub.status == "cancelled"
    if not ended:
        await _ensure_access(uow, sub, plan, now)
    latest = sub.current_period_end is None or paid.ends_at > sub.current_period_end
    period = SubscriptionPeriod(
        subscription_id=sub.id,
        provider=paid.provider,
        provider_ref=paid.ref,
        payment_ref=paid.payment_ref,
        number=int(count.scalar_one()) + 1,
        starts_at=paid.starts_at,
        ends_at=paid.ends_at,
        amount_minor=paid.amount_minor,
        currency=paid.currency,
        credits=0,
        paid_at=now,
    )
    uow.add(period)
    await uow.flush()
    await post(
        uow,
        f"paid:period:{period.id}",
        Kind.PERIOD_PAID,
        now,
        user_id=sub.user_id,
        order_id=sub.order_id,
        currency=paid.currency,
        amount_minor=paid.amount_minor,
        demo=paid.provider == "demo",
    )
    enrollment = None if ended else await _enrollment(uow, sub)
    intro = False
    if enrollment is not None:
        if latest and enrollment.credits_remaining > plan.rollover_max:
            await move_credits(
                uow,
                enrollment,
                Kind.CREDIT_EXPIRED,
                f"expired:period:{period.id}",
                plan.rollover_max - enrollment.credits_remaining,
                now,
            )
        await move_credits(
            uow,
            enrollment,
            Kind.PERIOD_CREDITS,
            f"credits:period:{period.id}",
            plan.sessions_per_period,
            now,
        )
        period.credits = plan.sessions_per_period
        intro = period.number == 1 and plan.intro_session
        intro = intro and await move_credits(
            uow, enrollment, Kind.CREDIT_GRANTED, intro_key(sub.user_id, plan), 1, now
        )
    if latest and not ended:
        sub.current_period_start, sub.current_period_end = paid.starts_at, paid.ends_at
        sub.grace_until = None
        if sub.status in ("incomplete", "trialing", "past_due", "lapsed"):
            if sub.status == "lapsed":
                sub.ended_at = None
            advance("subscription", sub, "active")
    left = enrollment.credits_remaining if enrollment is not None else 0
    await tell(
        uow,
        sub.user_id,
        ngettext(
            "{plan}: period paid ({price}). You have {n} session to book until {when}.",
            "{plan}: period paid ({price}). You have {n} sessions to book until {when}.",
            left,
            plan=plan_name(plan),
            price=Money(paid.amount_minor, paid.currency),
            when=When(sub.current_period_end or paid.ends_at),
        ),
        now,
        [Choice(_("Book a session"), "/book"), Choice(_("My subscription"), "/subscription")],
    )
    if intro:
        await tell(
            uow,
            sub.user_id,
            _(
                "One of them is the plan's free intro session: a learner gets one per mentor, "
                "whichever plan they subscribe to."
            ),
            now,
        )
    return period


async def record_failure(
    uow: UnitOfWork,
    config: Config,
    sub: Subscription,
    now: datetime,
    fix: Choice | None = None,
) -> bool:
    """A renewal's payment failed: the learner keeps access through the grace period and is
    told how to fix it. False when it was already overdue (a retry failing again)."""
    if sub.status not in ("trialing", "active", "cancelling"):
        return False
    advance("subscription", sub, "past_due")
    sub.grace_until = now + timedelta(days=config.subscriptions.grace_days)
    plan = await _plan(uow, sub)
    choices = [fix] if fix is not None else []
    await tell(
        uow,
        sub.user_id,
        _(
            "The payment for {plan} did not go through. You keep your sessions until {when}; "
            "please update your payment method before then, or the subscription ends.",
            plan=plan_name(plan),
            when=When(sub.grace_until),
        ),
        now,
        [*choices, Choice(_("My subscription"), "/subscription")],
    )
    return True


def resumed_status(sub: Subscription, now: datetime) -> SubscriptionStatus:
    if sub.grace_until is not None:
        return "past_due"
    if sub.trial_end is not None and now < sub.trial_end:
        return "trialing"
    return "active"


async def set_cancel_at_period_end(
    uow: UnitOfWork, sub: Subscription, cancel: bool, now: datetime
) -> bool:
    """Cancel at the period's end (access stays until then) or resume; False if it already
    was so."""
    if cancel == (sub.status == "cancelling"):
        sub.cancel_at_period_end = cancel
        return False
    if cancel:
        advance("subscription", sub, "cancelling")
    else:
        advance("subscription", sub, resumed_status(sub, now))
    sub.cancel_at_period_end = cancel
    return True


async def end(
    uow: UnitOfWork, sub: Subscription, target: SubscriptionStatus, now: datetime
) -> bool:
    """The subscription ends (`lapsed`: no renewal came; `cancelled`: as asked). Unused
    credits are revoked; booked sessions stay, and the learner and mentors are told. False if
    it had ended already."""
    if sub.status == target or sub.status == "cancelled":
        return False
    advance("subscription", sub, target)
    sub.ended_at = now
    sub.cancel_at_period_end = False
    plan = await _plan(uow, sub)
    enrollment = await _enrollment(uow, sub)
    kept: list[MentorSession] = []
    mentors: set[int] = set()
    if enrollment is not None and enrollment.status == "active":
        advance("enrollment", enrollment, "revoked")
        # Its community spaces go with it, unless another active enrollment in the course
        # (a bought course, another plan) still entitles the learner.
        await revoke_course_access(uow, sub.user_id, enrollment.course_id, target, now)
        await move_credits(
            uow,
            enrollment,
            Kind.CREDIT_REVOKED,
            f"ended:enrollment:{enrollment.id}",
            -enrollment.credits_remaining,
            now,
        )
        kept = list(
            (
                await uow.session.execute(
                    select(MentorSession)
                    .where(MentorSession.enrollment_id == enrollment.id)
                    .where(MentorSession.status == "scheduled")
                    .where(MentorSession.start_at > now)
                    .order_by(MentorSession.start_at)
                )
            ).scalars()
        )
        mentors = await mentor_users(uow, enrollment.id)
    await uncover(uow, sub, target, now)
    if sub.status == "lapsed":
        ended: Msg = _(
            "Your subscription to {plan} has ended: no renewal payment came through.",
            plan=plan_name(plan),
        )
    else:
        ended = _("Your subscription to {plan} has ended, as you asked.", plan=plan_name(plan))
    lines: list[Msg] = [ended]
    if kept:
        lines.append(
            _(
                "These booked sessions stay booked:\n{list}",
                list=Lines(_("#{id} on {when}", id=s.id, when=When(s.start_at)) for s in kept),
            )
        )
    await tell(
        uow,
        sub.user_id,
        Lines(lines).as_msg(),
        now,
        [Choice(_("Subscribe again"), f"/subscribe {plan.slug}")],
    )
    for mentor_user in sorted(mentors):
        await tell(
            uow,
            mentor_user,
            _(
                "{name}'s subscription to {plan} has ended; sessions already booked stay booked.",
                name=await display_name(uow, sub.user_id),
                plan=plan_name(plan),
            ),
            now,
        )
    return True


async def display_name(uow: UnitOfWork, user_id: int) -> str:
    user = await uow.get(User, user_id)
    return user.display_name if user is not None else "?"


async def mentor_users(uow: UnitOfWork, enrollment_id: int) -> set[int]:
    """The users mentoring on an enrollment (its mentorship requests' mentors)."""
    mentors = await uow.session.execute(
        select(MentorProfile.user_id)
        .join(MentorshipRequest, MentorshipRequest.mentor_id == MentorProfile.id)
        .where(MentorshipRequest.enrollment_id == enrollment_id)
    )
    return {int(m) for m in mentors.scalars()}


def next_period(sub: Subscription, now: datetime) -> tuple[datetime, datetime]:
    """The dates of the period after the current one (demo renewals)."""
    starts = sub.current_period_end or now
    return starts, starts + timedelta(days=PERIOD_DAYS)
