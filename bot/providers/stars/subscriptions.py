"""Subscriptions paid in Telegram Stars: a 30-day `subscription_period` invoice link.

The first payment and every renewal arrive as a `successful_payment` (renewals with
`is_recurring`), each with its own charge id: the period's `provider_ref`, so a redelivered
update grants nothing twice. `subscription_expiration_date` is the period's end; Telegram sends
nothing when a renewal fails, so the sweep (bot/subscriptions/sweep.py) lapses a subscription
with no charge by then plus `[subscriptions] stars_lapse_hours`. Cancel and resume go through
`editUserStarSubscription` (the adapter connects it), naming the first charge's id, which is
kept as the subscription's `provider_ref`; the payer's Telegram id is its `customer_ref`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Config
from bot.core.i18n import Msg, _, ngettext
from bot.core.outbox import tell_admins
from bot.core.replies import Invoice, Reply, Say, render
from bot.core.users import Incoming, resolve_user
from bot.providers.stars.payloads import parse_payload, payload
from bot.subscriptions.lifecycle import PeriodPaid, record_period
from bot.subscriptions.plans import PERIOD_DAYS, plan_name
from storage.models import Plan, Subscription
from storage.uow import UnitOfWork

PROVIDER = "stars"
CURRENCY = "XTR"
SUBSCRIPTION_PERIOD = PERIOD_DAYS * 86400  # 2592000 s: the only period Telegram allows
MAX_SUBSCRIPTION_STARS = 10000  # telegram.constants.InvoiceLimit.SUBSCRIPTION_MAX_PRICE


def subscription_payload(sub_id: int, stars: int) -> str:
    return payload("sub", sub_id, stars)


def parse_subscription_payload(text: str) -> tuple[int, int] | None:
    return parse_payload(text, "sub")


def subscription_invoice(sub: Subscription, plan: Plan) -> Invoice:
    return Invoice(
        title=plan_name(plan),
        description=ngettext(
            "{plan}: {n} mentor session every 30 days (subscription #{id})",
            "{plan}: {n} mentor sessions every 30 days (subscription #{id})",
            plan.sessions_per_period,
            plan=plan_name(plan),
            id=sub.id,
        ),
        label=plan_name(plan),
        payload=subscription_payload(sub.id, sub.amount_minor),
        currency=CURRENCY,
        amount=sub.amount_minor,
        subscription_period=SUBSCRIPTION_PERIOD,
    )


async def subscription_refusal(
    uow: UnitOfWork, user_id: int, payload: str, currency: str, amount: int
) -> Msg | None:
    """Why a subscription checkout must not go ahead, or None."""
    parsed = parse_subscription_payload(payload)
    sub = await uow.get(Subscription, parsed[0]) if parsed else None
    if parsed is None or sub is None or sub.user_id != user_id or currency != CURRENCY:
        return _("This invoice is not valid any more; nothing was charged. See /plans.")
    if sub.status != "incomplete":
        return _("Subscription #{id} has started already. See /subscription.", id=sub.id)
    plan = await uow.get(Plan, sub.plan_id)
    if plan is None or plan.status != "active":
        return _("This plan is no longer on offer; nothing was charged. See /plans.")
    if amount != sub.amount_minor or parsed[1] != amount:
        return _("The price has changed; nothing was charged. Subscribe again with /plans.")
    return None


async def record_subscription_payment(
    uow: UnitOfWork,
    config: Config,
    payer: Incoming,
    payload: str,
    amount: int,
    charge_id: str,
    expires: datetime | None,
    now: datetime,
) -> tuple[Reply | None, bool]:
    """Grant the period a Stars charge paid, once per charge id (the learner is told through
    the outbox). Returns a reply and True when the payment names no subscription of the
    payer's, or an amount other than its price (pre-checkout compared them, but a renewal's
    charge is only reported), and must be refunded."""
    user, _roles = await resolve_user(uow, config, payer, now)
    parsed = parse_subscription_payload(payload)
    sub = await uow.lock(Subscription, parsed[0]) if parsed else None
    if sub is None or sub.user_id != user.id or sub.provider != PROVIDER:
        say = Say(
            _(
                "Your payment of {stars} ⭐ matched no subscription of yours, so the Stars are "
                "being returned to you.",
                stars=amount,
            )
        )
        return render(user.id, say, user.language, user.timezone), True
    if parsed is None or amount != sub.amount_minor or parsed[1] != amount:
        await tell_admins(
            uow,
            _(
                "A Stars payment of {stars} ⭐ for subscription #{id} did not match its price "
                "({price} ⭐); it is being returned and no period was granted.",
                stars=amount,
                id=sub.id,
                price=sub.amount_minor,
            ),
            now,
        )
        say = Say(
            _(
                "Your payment of {stars} ⭐ did not match the price of subscription #{id} "
                "({price} ⭐), so the Stars are being returned to you. Nothing else changed.",
                stars=amount,
                id=sub.id,
                price=sub.amount_minor,
            )
        )
        return render(user.id, say, user.language, user.timezone), True
    if sub.provider_ref is None:
        sub.provider_ref, sub.customer_ref = charge_id, payer.external_id
    last_end = sub.current_period_end
    starts = last_end if last_end is not None and last_end < now else now
    ends = expires or starts + timedelta(seconds=SUBSCRIPTION_PERIOD)
    paid = PeriodPaid(PROVIDER, charge_id, starts, ends, amount, CURRENCY, charge_id)
    await record_period(uow, sub, paid, now)
    return None, False
