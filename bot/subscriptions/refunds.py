"""Refunding one paid period of a subscription: the rule every refund of a period goes through
(`refund_period`: an admin's `/admin refund ORDER period=N` or `/admin refund sub=ID period=N`,
Stripe's `charge.refunded` for an invoice's payment), and the admin's check and flow around it.

A period is one payment (a Stripe invoice, a Telegram Stars charge, a demo renewal) posted on
its subscription's anchor order. Refunding it posts `refunded:period:N` on that order, revokes
the period's own credits still unused on the enrollment it granted them to, reverses the
latest sessions' earnings the order's remaining money no longer covers
(`reverse_earnings_beyond_kept`: a mentor is never paid from money the learner got back), and
tells the learner and the mentors of that enrollment. The subscription itself goes on: booked
sessions stay booked, and ending it is the admin's separate choice (`/admin unsubscribe`).

An admin's refund follows the one-off orders' flow (`bot.payments.check_refund`, then
`refund_order`): `check_period_refund` reads and refuses (refunded already, outside the
policy without `force`, a provider not configured here); the money moves through the
provider port with no transaction open (a refusal changes nothing); `refund_paid_period`
then records it in a short transaction of its own, under the subscription's lock, so a double
press, a retry or Stripe's own report of the same refund records it once.

A plan's credits share one pool on its enrollment, spent (and expired at a rollover) oldest
first, so what is left belongs to the newest periods first (`own_share`): a refund takes back
the period's own credits still left, never a later period's.

The policy is the one-off orders': paid within `payments.refund_window_days`, and none of its
sessions used: all of its own credits are still unused (left, or taken back when the
subscription ended); one booked, held or expired at a rollover needs `force`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.config import Config
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import Lines, Money, Msg, When, _, ngettext
from bot.core.ledger import Kind, post, posted
from bot.core.outbox import tell
from bot.payments import PaymentProvider, Refund, payer_ids, provider_name
from bot.sessions.credits import move_credits
from bot.sessions.earnings import reverse_earnings_beyond_kept
from bot.subscriptions.lifecycle import display_name, lock_subscription, mentor_users
from bot.subscriptions.plans import plan_name
from storage.models import (
    Enrollment,
    LedgerEntry,
    MentorProfile,
    Plan,
    Subscription,
    SubscriptionPeriod,
)
from storage.uow import UnitOfWork


async def periods_on(uow: UnitOfWork, order_id: int) -> list[SubscriptionPeriod]:
    """The periods paid on an anchor order (their `paid:period:N` entries name it), oldest
    first."""
    keys = await uow.session.execute(
        select(LedgerEntry.key)
        .where(LedgerEntry.order_id == order_id)
        .where(LedgerEntry.kind == Kind.PERIOD_PAID.value)
    )
    ids = [int(key.removeprefix("paid:period:")) for key in keys.scalars()]
    if not ids:
        return []
    rows = await uow.session.execute(
        select(SubscriptionPeriod)
        .where(SubscriptionPeriod.id.in_(ids))
        .order_by(SubscriptionPeriod.number)
    )
    return list(rows.scalars())


async def periods_of(uow: UnitOfWork, subscription_id: int) -> list[SubscriptionPeriod]:
    """Every period paid on a subscription, oldest first: those on each anchor order it had,
    and those paid while it had none (it never got access, e.g. paid after it was cancelled)."""
    rows = await uow.session.execute(
        select(SubscriptionPeriod)
        .where(SubscriptionPeriod.subscription_id == subscription_id)
        .order_by(SubscriptionPeriod.number)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class PeriodsAt:
    """Where an admin's refund looks for a period: among those paid on an anchor order
    (`/admin refund ORDER`), or among all of one subscription's (`/admin refund sub=ID`),
    which also reaches a period paid while the subscription had no order."""

    order_id: int | None = None
    subscription_id: int | None = None

    def command(self) -> str:
        """The admin's command that lists these periods (`period=N` refunds one)."""
        if self.subscription_id is not None:
            return f"/admin refund sub={self.subscription_id}"
        return f"/admin refund {self.order_id}"

    async def periods(self, uow: UnitOfWork) -> list[SubscriptionPeriod]:
        if self.subscription_id is not None:
            return await periods_of(uow, self.subscription_id)
        assert self.order_id is not None
        return await periods_on(uow, self.order_id)


async def _credited(uow: UnitOfWork, period: SubscriptionPeriod) -> LedgerEntry | None:
    """The entry that granted the period's credits (None: it granted none)."""
    granted = await posted(uow, f"credits:period:{period.id}")
    return granted if granted is not None and granted.enrollment_id is not None else None


async def own_share(uow: UnitOfWork, granted: LedgerEntry, pool: int) -> int:
    """How many of `pool` credits on an enrollment are still the period's own, given by
    `granted`. Credits are spent (and expire at a rollover) oldest first, so what is left
    belongs to the newest grants first: the period owns what the later grants on the
    enrollment (its later, unrefunded periods, a plan's free intro session) do not."""
    later = await uow.session.execute(
        select(LedgerEntry.key, LedgerEntry.credits)
        .where(LedgerEntry.enrollment_id == granted.enrollment_id)
        .where(LedgerEntry.kind.in_((Kind.PERIOD_CREDITS.value, Kind.CREDIT_GRANTED.value)))
        .where(LedgerEntry.id > granted.id)
    )
    grants = {str(key): int(n) for key, n in later}
    periods = {
        int(k.removeprefix("credits:period:")): k for k in grants if k.startswith("credits:")
    }
    refunded = await uow.session.execute(
        select(SubscriptionPeriod.id)
        .where(SubscriptionPeriod.id.in_(list(periods)))
        .where(SubscriptionPeriod.refunded_at.is_not(None))
    )
    for period_id in refunded.scalars():
        grants.pop(periods[period_id])  # its credits went back with it
    return max(0, min(granted.credits, pool - sum(grants.values())))


async def unused_credits(uow: UnitOfWork, enrollment: Enrollment) -> int:
    """Credits on a plan's enrollment that no session spent: those left, and those its
    subscription's end took back."""
    ended = await posted(uow, f"ended:enrollment:{enrollment.id}")
    return enrollment.credits_remaining - (ended.credits if ended is not None else 0)


async def period_within_policy(
    uow: UnitOfWork, config: Config, period: SubscriptionPeriod, now: datetime
) -> bool:
    """Paid within `payments.refund_window_days`, and none of its sessions booked or used
    (nor expired at a rollover: an older period's credits are the first to go)."""
    if now - period.paid_at > timedelta(days=config.payments.refund_window_days):
        return False
    granted = await _credited(uow, period)
    if granted is None or not granted.credits:
        return True
    enrollment = await uow.get(Enrollment, granted.enrollment_id)
    assert enrollment is not None
    return await own_share(uow, granted, await unused_credits(uow, enrollment)) >= granted.credits


@dataclass(frozen=True)
class PeriodRefund:
    """A checked period, as the provider needs it to give the money back (`refund`, on the
    anchor order, naming the period's payment) and as the reply names it."""

    refund: Refund
    period_id: int
    number: int
    subscription_id: int


def period_words(period: SubscriptionPeriod) -> dict[str, object]:
    return {"period": period.number, "sub": period.subscription_id}


async def check_period_refund(
    uow: UnitOfWork,
    config: Config,
    providers: Sequence[PaymentProvider],
    at: PeriodsAt,
    number: int,
    now: datetime,
    *,
    force: bool = False,
) -> PeriodRefund:
    """Whether an admin may refund period `number` found `at` an anchor order or subscription
    now: it was paid there, is not refunded yet, is inside the policy (unless `force`), and
    its provider is configured here. Reads only; raises the refusal."""
    period = next((p for p in await at.periods(uow) if p.number == number), None)
    if period is None:
        raise NotFound(
            _(
                "Order #{id} has no paid period {period}. See /admin refund {id}",
                id=at.order_id,
                period=number,
            )
            if at.subscription_id is None
            else _(
                "Subscription #{sub} has no paid period {period}. See {command}",
                sub=at.subscription_id,
                period=number,
                command=at.command(),
            )
        )
    said = period_words(period)
    if period.refunded_at is not None:
        raise BadInput(
            _(
                "Period {period} of subscription #{sub} was refunded on {when}; nothing more "
                "to do.",
                when=When(period.refunded_at),
                **said,
            )
        )
    if not force and not await period_within_policy(uow, config, period, now):
        raise BadInput(
            _(
                "Period {period} of subscription #{sub} is outside the refund policy (paid more "
                "than {days} days ago, or a session was booked with its credits). To refund it "
                "anyway: {command} period={period} force",
                command=at.command(),
                days=config.payments.refund_window_days,
                **said,
            )
        )
    if not any(p.name == period.provider for p in providers):
        raise BadInput(
            _(
                "Period {period} of subscription #{sub} was paid with {provider}, which is not "
                "configured here.",
                provider=provider_name(period.provider),
                **said,
            )
        )
    sub = await uow.get(Subscription, period.subscription_id)
    assert sub is not None
    plan = await uow.get(Plan, sub.plan_id)
    assert plan is not None
    payer = await payer_ids(uow, sub.user_id)
    if period.provider == "stars" and sub.customer_ref:
        payer["telegram"] = sub.customer_ref  # the account that paid the Stars
    paid = await posted(uow, f"paid:period:{period.id}")
    refund = Refund(
        order_id=None if paid is None else paid.order_id,  # the order it was paid on, if any
        user_id=sub.user_id,
        provider=period.provider,
        provider_ref=period.payment_ref,
        amount_minor=period.amount_minor,
        currency=period.currency,
        payer=payer,
        subject=_("period {period} of subscription #{sub} ({plan})", plan=plan_name(plan), **said),
    )
    return PeriodRefund(refund, period.id, period.number, period.subscription_id)


@dataclass(frozen=True)
class PeriodRefunded:
    """What refunding a checked period did: the credits taken back; `already` when another
    refund of it (Stripe's report, a second press) recorded it first."""

    taken: int
    already: bool
    live: bool  # the subscription goes on (it was not ended, nor set to end)
    renews_at: datetime | None


async def refund_paid_period(
    new_uow: Callable[[], UnitOfWork],
    providers: Sequence[PaymentProvider],
    checked: PeriodRefund,
    now: datetime,
) -> PeriodRefunded:
    """Give a checked period's money back through its provider, with no transaction open,
    then record the refund (`refund_period`) once."""
    provider = next(p for p in providers if p.name == checked.refund.provider)
    await provider.refund(checked.refund)
    async with new_uow() as uow:
        taken = await refund_period(uow, checked.period_id, now)
        sub = await lock_subscription(uow, checked.subscription_id)
        outcome = PeriodRefunded(
            taken=taken or 0,
            already=taken is None,
            live=sub.ended_at is None and not sub.cancel_at_period_end,
            renews_at=sub.current_period_end,
        )
        await uow.commit()
    return outcome


async def refund_period(uow: UnitOfWork, period_id: int, now: datetime) -> int | None:
    """A period's money was given back: post the refund on the order it was paid on, reverse
    the earnings that order no longer covers, revoke the period's unused credits, and tell the
    learner and the mentors. Returns the credits taken back; None if it was refunded before.

    The period is read again under its subscription's lock, so two refunds of it racing (an
    admin's and Stripe's report of it) record it once."""
    found = await uow.get(SubscriptionPeriod, period_id)
    assert found is not None
    sub = await lock_subscription(uow, found.subscription_id)
    await uow.session.refresh(found)
    period = found
    if period.refunded_at is not None:
        return None
    period.refunded_at = now
    paid = await posted(uow, f"paid:period:{period.id}")
    order_id = sub.order_id if paid is None else paid.order_id  # the order it was paid on
    await post(
        uow,
        f"refunded:period:{period.id}",
        Kind.PERIOD_REFUNDED,
        now,
        user_id=sub.user_id,
        order_id=order_id,
        currency=period.currency,
        amount_minor=-period.amount_minor,
        demo=period.provider == "demo",
    )
    reversed_: list[LedgerEntry] = []
    if order_id is not None:
        reversed_ = await reverse_earnings_beyond_kept(uow, order_id, now)
    granted = await _credited(uow, period)
    enrollment = None
    taken = 0
    if granted is not None:
        enrollment = await uow.lock(Enrollment, granted.enrollment_id)
        assert enrollment is not None
        taken = await own_share(uow, granted, enrollment.credits_remaining)
        if taken:
            await move_credits(
                uow,
                enrollment,
                Kind.CREDIT_REVOKED,
                f"revoked:period:{period.id}",
                -taken,
                now,
            )
    plan = await uow.get(Plan, sub.plan_id)
    assert plan is not None
    await tell(
        uow,
        sub.user_id,
        ngettext(
            "{plan}: a period's payment was refunded ({price}); {n} of its sessions was "
            "taken back.",
            "{plan}: a period's payment was refunded ({price}); {n} of its sessions were "
            "taken back.",
            taken,
            plan=plan_name(plan),
            price=Money(period.amount_minor, period.currency),
        ),
        now,
    )
    await _tell_mentors(uow, sub.user_id, plan, enrollment, reversed_, now)
    return taken


async def _tell_mentors(
    uow: UnitOfWork,
    learner_id: int,
    plan: Plan,
    enrollment: Enrollment | None,
    reversed_: list[LedgerEntry],
    now: datetime,
) -> None:
    """Each mentor of the enrollment, and each whose earnings were reversed, hears of the
    refund, with what it took back from them."""
    lost: dict[int, dict[str, int]] = {}
    for entry in reversed_:
        if entry.kind == Kind.MENTOR_EARNING.value and entry.mentor_id and entry.currency:
            mentor = await uow.get(MentorProfile, entry.mentor_id)
            if mentor is not None:
                sums = lost.setdefault(mentor.user_id, {})
                sums[entry.currency] = sums.get(entry.currency, 0) + entry.amount_minor
    told = set(lost) | (set() if enrollment is None else await mentor_users(uow, enrollment.id))
    name = await display_name(uow, learner_id)
    for mentor_user in sorted(told):
        said: Msg = _(
            "{name}'s payment for one period of {plan} was refunded. Sessions already booked "
            "stay booked, and earn only while the subscription's remaining payments cover them.",
            name=name,
            plan=plan_name(plan),
        )
        if mentor_user in lost:
            said = _(
                "{name}'s payment for one period of {plan} was refunded, so {amounts} of your "
                "earnings from its sessions are reversed. Sessions already booked stay booked, "
                "and earn only while the subscription's remaining payments cover them.",
                name=name,
                plan=plan_name(plan),
                amounts=Lines(
                    [Money(a, cur) for cur, a in sorted(lost[mentor_user].items())], ", "
                ),
            )
        await tell(uow, mentor_user, said, now)
