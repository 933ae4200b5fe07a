"""Subscriptions by card: Stripe Billing behind the rules of bot/subscriptions/.

Talking to Stripe (no transaction open while it answers): a plan's recurring Price is looked
up by its `lookup_key` (which names the plan, amount and currency) or created once; Checkout
opens in `mode=subscription`, the subscription carrying our ids in its metadata; cancel and
resume set `cancel_at_period_end`; "Manage billing" opens a Customer Portal session in the
learner's language.

Settling (in the webhook's transaction, which records the event id): access and credits come
only from events. `checkout.session.completed` links the Stripe customer and subscription;
`invoice.paid` grants the period, once per invoice id (a $0 first invoice starts a trial);
`invoice.payment_failed` starts the grace period, with the invoice's payment page as the fix;
`customer.subscription.updated` follows cancel-at-period-end and plan changes (the new plan's
sessions come with the next invoice); `customer.subscription.deleted` ends it (lapsed when
Stripe gave up on payment, else cancelled). Reconciliation lists our subscriptions and their
paid invoices and applies whatever a lost webhook left out, through the same functions.

An erased account (`/deleteme`) keeps nothing it pays for afterwards: its open Checkout pages
are expired at erasure, and if one is paid anyway (before the expiry reached Stripe, or Stripe
could not be reached), the completed Checkout cancels the new Stripe subscription at once and
each of its invoices not already a period is refunded in full (`unwanted_checkout`,
`unwanted_invoice`, `give_back`, then `settle_given_back` records it once and tells the
admins). No period, credit or ledger entry comes of it: the money went back as it came. The
calls to Stripe come first, with no transaction open; a failure answers Stripe's webhook 500
(it sends it again) and leaves the next reconciliation to try again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import select

from bot.config import Config
from bot.core.i18n import Money, _
from bot.core.replies import Choice
from bot.core.states import advance
from bot.providers.stripe.amounts import from_stripe, to_stripe
from bot.providers.stripe.checkout import METADATA_SOURCE, PROVIDER, StripePayments
from bot.providers.stripe.settle import Settled, alert_admins, first_time, recorded
from bot.subscriptions.lifecycle import (
    PeriodPaid,
    begin_trial,
    end,
    lock_subscription,
    period_recorded,
    record_failure,
    record_period,
    set_cancel_at_period_end,
    trial_allowed,
)
from bot.subscriptions.refunds import refund_period
from storage.models import Plan, PromoCode, Subscription, SubscriptionPeriod, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Stripe's Checkout and Portal locales for our languages.
LOCALES = {"en": "en", "zh": "zh"}
SUBSCRIPTION_EVENTS = {
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}


class BillingUnavailable(Exception):
    """Stripe could not be reached or refused; nothing was changed."""


class GiveBackFirst(Exception):
    """An erased account's payment reached the transaction that would apply it before it was
    given back (the account was erased meanwhile): nothing is applied, and the retry (Stripe
    sending the webhook again, the next reconciliation) gives it back first."""


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return None


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def our_id(metadata: Any) -> int | None:
    """Our subscription's id in a Stripe object's metadata, if we made it."""
    if not isinstance(metadata, Mapping) or metadata.get("source") != METADATA_SOURCE:
        return None
    try:
        return int(metadata.get("subscription_id", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class InvoiceFacts:
    invoice_id: str
    subscription_ref: str | None
    our_id: int | None
    amount_paid: int
    currency: str
    starts_at: datetime
    ends_at: datetime
    payment_ref: str | None
    pay_url: str | None

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> InvoiceFacts:
        currency = str(obj.get("currency") or "").upper()
        parent = (obj.get("parent") or {}).get("subscription_details") or {}
        details = obj.get("subscription_details") or parent
        lines = ((obj.get("lines") or {}).get("data")) or [{}]
        period = lines[0].get("period") or {}
        starts = _instant(period.get("start")) or _instant(obj.get("period_start"))
        ends = _instant(period.get("end")) or _instant(obj.get("period_end"))
        assert starts is not None and ends is not None
        return cls(
            invoice_id=str(obj["id"]),
            subscription_ref=_id(obj.get("subscription") or details.get("subscription")),
            our_id=our_id(details.get("metadata")),
            amount_paid=from_stripe(int(obj.get("amount_paid") or 0), currency) or 0,
            currency=currency,
            starts_at=starts,
            ends_at=ends,
            payment_ref=_id(obj.get("payment_intent")) or _id(obj.get("charge")),
            pay_url=obj.get("hosted_invoice_url") or None,
        )


@dataclass(frozen=True)
class SubscriptionFacts:
    subscription_ref: str
    our_id: int | None
    customer: str | None
    status: str
    cancel_at_period_end: bool
    price_id: str | None
    cancellation_reason: str | None

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> SubscriptionFacts:
        items = ((obj.get("items") or {}).get("data")) or [{}]
        return cls(
            subscription_ref=str(obj["id"]),
            our_id=our_id(obj.get("metadata")),
            customer=_id(obj.get("customer")),
            status=str(obj.get("status") or ""),
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            price_id=_id(items[0].get("price")),
            cancellation_reason=(obj.get("cancellation_details") or {}).get("reason"),
        )


# -- talking to Stripe ------------------------------------------------------------------------


def price_lookup_key(plan: Plan, amount_minor: int, currency: str) -> str:
    return f"mentorbot-plan-{plan.id}-{amount_minor}{currency.lower()}"


async def ensure_price(payments: StripePayments, plan: Plan, amount: int, currency: str) -> str:
    """The recurring monthly Price for the plan at this amount: found by lookup key, or
    created once (the idempotency key is the lookup key)."""
    key = price_lookup_key(plan, amount, currency)
    client = payments.client.v1
    try:
        found = await client.prices.list_async({"lookup_keys": [key], "limit": 1})
        for price in found.data:
            return str(price.id)
        created = await client.prices.create_async(
            {
                "currency": currency.lower(),
                "unit_amount": to_stripe(amount, currency),
                "recurring": {"interval": "month"},
                "lookup_key": key,
                "product_data": {"name": plan.name_en},
                "metadata": {"source": METADATA_SOURCE, "plan_id": str(plan.id)},
            },
            {"idempotency_key": key},
        )
    except stripe.StripeError as exc:
        log.warning("stripe price failed", extra={"plan_id": plan.id, "error": type(exc).__name__})
        raise BillingUnavailable from None
    return str(created.id)


async def ensure_coupon(payments: StripePayments, promo: PromoCode, currency: str) -> str:
    """The Stripe Coupon of a first-period promo code (`once`), found or created once: its id
    comes from the code's row and the currency, so a retry, a second learner or another
    process gets the same one. Stripe takes it off the first invoice only. Raises
    `BillingUnavailable`."""
    coupon_id = f"mentorbot-promo-{promo.id}-{currency.lower()}"
    coupons = payments.client.v1.coupons
    try:
        try:
            return str((await coupons.retrieve_async(coupon_id)).id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
        params: dict[str, Any] = {
            "id": coupon_id,
            "duration": "once",
            "name": promo.code[:40],
            "metadata": {"source": METADATA_SOURCE, "promo_id": str(promo.id)},
        }
        if promo.kind == "percent":
            params["percent_off"] = promo.value
        else:
            params["amount_off"] = to_stripe(promo.value, currency)
            params["currency"] = currency.lower()
        created = await coupons.create_async(
            params,  # type: ignore[arg-type]
            {"idempotency_key": coupon_id},
        )
    except stripe.StripeError as exc:
        log.warning("stripe coupon failed", extra={"promo": promo.id, "error": type(exc).__name__})
        raise BillingUnavailable from None
    return str(created.id)


async def open_checkout(
    payments: StripePayments,
    sub: Subscription,
    plan: Plan,
    price_id: str,
    trial_days: int,
    language: str,
    coupon: str | None = None,
) -> tuple[str, str]:
    """A subscription-mode Checkout Session for `sub` (once per subscription): (id, url);
    `coupon` (`ensure_coupon`) takes a first-period promo code off the first invoice. Two
    presses at once get the same session (`StripePayments.create_session_once`)."""
    metadata = {
        "source": METADATA_SOURCE,
        "subscription_id": str(sub.id),
        "user_id": str(sub.user_id),
        "plan_id": str(plan.id),
    }
    data: dict[str, Any] = {"metadata": metadata}
    if trial_days:
        data["trial_period_days"] = trial_days
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "client_reference_id": f"sub-{sub.id}",
        "metadata": metadata,
        "subscription_data": data,
        "success_url": payments.settings.success_url,
        "cancel_url": payments.settings.cancel_url,
        "locale": LOCALES.get(language, "auto"),
    }
    if coupon is not None:
        params["discounts"] = [{"coupon": coupon}]
    created = int(sub.created_at.timestamp() * 1000)
    key = f"mentorbot-subscription-{sub.id}-u{sub.user_id}-p{plan.id}-{created}"
    try:
        session = await payments.create_session_once(key, params)
    except stripe.StripeError as exc:
        log.warning("stripe checkout failed", extra={"sub": sub.id, "error": type(exc).__name__})
        raise BillingUnavailable from None
    return str(session.id), str(session.url)


async def set_cancel(payments: StripePayments, subscription_ref: str, cancel: bool) -> None:
    try:
        await payments.client.v1.subscriptions.update_async(
            subscription_ref, {"cancel_at_period_end": cancel}
        )
    except stripe.StripeError as exc:
        log.warning("stripe cancel failed", extra={"error": type(exc).__name__})
        raise BillingUnavailable from None


async def portal_url(payments: StripePayments, customer: str, language: str) -> str:
    try:
        portal = await payments.client.v1.billing_portal.sessions.create_async(
            {
                "customer": customer,
                "return_url": payments.settings.portal_return_url,
                "locale": LOCALES.get(language, "auto"),
            }
        )
    except stripe.StripeError as exc:
        log.warning("stripe portal failed", extra={"error": type(exc).__name__})
        raise BillingUnavailable from None
    return str(portal.url)


@dataclass(frozen=True)
class Unwanted:
    """What an erased account's subscription left at Stripe to give back: the Stripe
    subscription, cancelled at once, and a paid invoice's payment, refunded in full.
    `marker` is recorded (`first_time`) once it is given back."""

    subscription_id: int
    subscription_ref: str | None
    marker: str
    invoice: InvoiceFacts | None = None


async def give_back(payments: StripePayments, unwanted: Unwanted) -> None:
    """Cancel the Stripe subscription now and refund the invoice's payment, with no
    transaction open; each call is safe to repeat (a cancelled subscription is one Stripe no
    longer finds, a refund is keyed by the invoice). Raises `BillingUnavailable`."""
    invoice = unwanted.invoice
    try:
        if unwanted.subscription_ref is not None:
            await _cancel_now(payments, unwanted.subscription_ref)
        if invoice is not None and invoice.amount_paid and invoice.payment_ref:
            await payments.refund_in_full(
                invoice.payment_ref,
                f"mentorbot-refund-invoice-{invoice.invoice_id}",
                {"subscription_id": str(unwanted.subscription_id), "invoice": invoice.invoice_id},
            )
    except stripe.StripeError as exc:
        log.warning(
            "stripe give-back failed",
            extra={"sub": unwanted.subscription_id, "error": type(exc).__name__},
        )
        raise BillingUnavailable from None


async def _cancel_now(payments: StripePayments, subscription_ref: str) -> None:
    try:
        await payments.client.v1.subscriptions.cancel_async(subscription_ref)
    except stripe.InvalidRequestError as exc:
        if exc.code != "resource_missing":  # Stripe no longer finds one already cancelled
            raise


async def retrieve(payments: StripePayments, subscription_ref: str) -> SubscriptionFacts:
    sub = await payments.client.v1.subscriptions.retrieve_async(subscription_ref)
    return SubscriptionFacts.parse(sub.to_dict())


# -- settling events ---------------------------------------------------------------------------


async def _ours(uow: UnitOfWork, ref: str | None, our: int | None) -> Subscription | None:
    """Our subscription for a Stripe subscription id (linked), or by the id in its metadata."""
    if ref is not None:
        found = await uow.session.execute(
            select(Subscription.id)
            .where(Subscription.provider == PROVIDER)
            .where(Subscription.provider_ref == ref)
        )
        linked = found.scalar_one_or_none()
        if linked is not None:
            return await lock_subscription(uow, linked)
    if our is None:
        return None
    sub = await uow.lock(Subscription, our)
    if sub is None or sub.provider != PROVIDER:
        return None
    if sub.provider_ref is None and ref is not None:
        sub.provider_ref = ref  # an invoice before the checkout's completion links it too
    return sub


async def _erased(uow: UnitOfWork, sub: Subscription) -> bool:
    user = await uow.get(User, sub.user_id)
    return user is not None and user.deleted_at is not None


async def _erased_subscription(
    uow: UnitOfWork, ref: str | None, our: int | None
) -> Subscription | None:
    """Our subscription (by its Stripe id, else the id in the metadata) if its account is
    erased; reads without locking, as an erasure is never undone."""
    if ref is not None:
        linked = await uow.session.execute(
            select(Subscription.id)
            .where(Subscription.provider == PROVIDER)
            .where(Subscription.provider_ref == ref)
        )
        our = linked.scalar_one_or_none() or our
    sub = None if our is None else await uow.get(Subscription, our)
    if sub is None or sub.provider != PROVIDER or not await _erased(uow, sub):
        return None
    return sub


async def unwanted_checkout(uow: UnitOfWork, obj: Mapping[str, Any]) -> Unwanted | None:
    """A subscription Checkout completed for an erased account, not yet given back."""
    ref = _id(obj.get("subscription"))
    sub = await _erased_subscription(uow, ref, our_id(obj.get("metadata")))
    marker = f"unwanted:{obj['id']}"
    if sub is None or await recorded(uow, marker):
        return None
    return Unwanted(sub.id, ref or sub.provider_ref, marker)


async def unwanted_invoice(uow: UnitOfWork, facts: InvoiceFacts) -> Unwanted | None:
    """A paid invoice of an erased account's subscription that is not a period (one paid
    before the erasure stays, like a paid order) and was not given back yet."""
    sub = await _erased_subscription(uow, facts.subscription_ref, facts.our_id)
    marker = f"unwanted:{facts.invoice_id}"
    if sub is None or await recorded(uow, marker):
        return None
    if await period_recorded(uow, PROVIDER, facts.invoice_id):
        return None
    return Unwanted(sub.id, facts.subscription_ref or sub.provider_ref, marker, facts)


async def settle_given_back(uow: UnitOfWork, unwanted: Unwanted, now: datetime) -> Settled:
    """Stripe gave back what an erased account's subscription took (`give_back`): record it
    once, link the Stripe subscription (so a later event finds it ended here) and tell the
    admins, who may see it in the Stripe dashboard: money refunded, or a trial's subscription
    cancelled with nothing paid (its $0 first invoice). Nobody else is told: the account is
    gone."""
    sub = await lock_subscription(uow, unwanted.subscription_id)
    if sub.provider_ref is None and unwanted.subscription_ref is not None:
        sub.provider_ref = unwanted.subscription_ref
    if not await first_time(uow, unwanted.marker, None, now):
        return Settled("already")
    invoice = unwanted.invoice
    if invoice is None:  # the Checkout's completion: its invoice, paid or not, says the rest
        log.warning("stripe subscription of an erased account cancelled", extra={"sub": sub.id})
        return Settled("cancelled_unwanted")
    if not invoice.amount_paid:  # a trial's $0 first invoice
        await alert_admins(
            uow,
            _(
                "Stripe subscription {ref} (subscription #{id}) started after the account was "
                "erased: it was cancelled at Stripe. Nothing had been paid.",
                ref=unwanted.subscription_ref or "?",
                id=sub.id,
            ),
            now,
            subscription_id=sub.id,
        )
        return Settled("cancelled_unwanted")
    await alert_admins(
        uow,
        _(
            "Stripe payment {ref} of {price} for subscription #{id} came after the account "
            "was erased: it was refunded in full and the subscription cancelled at Stripe.",
            ref=invoice.payment_ref or invoice.invoice_id,
            price=Money(invoice.amount_paid, invoice.currency),
            id=sub.id,
        ),
        now,
        subscription_id=sub.id,
    )
    return Settled("refunded_unwanted")


async def _not_given_back_yet(uow: UnitOfWork, marker: str) -> Settled:
    """An erased account's event on the general path: given back already, or not yet."""
    if await recorded(uow, marker):
        return Settled("already")
    raise GiveBackFirst


async def settle_session(uow: UnitOfWork, obj: Mapping[str, Any], now: datetime) -> Settled:
    """A subscription Checkout completed: link the customer and subscription."""
    sub = await _ours(uow, None, our_id(obj.get("metadata")))
    if sub is None:
        return Settled("ignored")
    if await _erased(uow, sub):
        return await _not_given_back_yet(uow, f"unwanted:{obj['id']}")
    sub.provider_ref = sub.provider_ref or _id(obj.get("subscription"))
    sub.customer_ref = sub.customer_ref or _id(obj.get("customer"))
    return Settled("linked")


async def settle_invoice_paid(uow: UnitOfWork, facts: InvoiceFacts, now: datetime) -> Settled:
    sub = await _ours(uow, facts.subscription_ref, facts.our_id)
    if sub is None:
        return Settled("ignored")
    if await _erased(uow, sub) and not await period_recorded(uow, PROVIDER, facts.invoice_id):
        return await _not_given_back_yet(uow, f"unwanted:{facts.invoice_id}")
    plan = await uow.get(Plan, sub.plan_id)
    assert plan is not None
    if (
        facts.amount_paid == 0
        and sub.status == "incomplete"
        and await trial_allowed(uow, sub, plan)
    ):
        await begin_trial(uow, sub, plan, facts.ends_at, now)
        return Settled("trial")
    if facts.amount_paid == 0:
        return Settled("nothing paid")
    paid = PeriodPaid(
        PROVIDER,
        facts.invoice_id,
        facts.starts_at,
        facts.ends_at,
        facts.amount_paid,
        facts.currency,
        facts.payment_ref,
    )
    return Settled("period" if await record_period(uow, sub, paid, now) else "already")


async def settle_invoice_failed(
    uow: UnitOfWork, config: Config, facts: InvoiceFacts, now: datetime
) -> Settled:
    sub = await _ours(uow, facts.subscription_ref, facts.our_id)
    if sub is None:
        return Settled("ignored")
    fix = None
    if facts.pay_url:
        fix = Choice(_("Update payment"), facts.pay_url, url=True)
    moved = await record_failure(uow, config, sub, now, fix)
    return Settled("past due" if moved else "already")


async def settle_updated(uow: UnitOfWork, facts: SubscriptionFacts, now: datetime) -> Settled:
    sub = await _ours(uow, facts.subscription_ref, facts.our_id)
    if sub is None or sub.ended_at is not None:
        return Settled("ignored")
    outcome = "unchanged"
    if facts.customer and not sub.customer_ref:
        sub.customer_ref = facts.customer
    if sub.status != "incomplete" and facts.status not in ("canceled", "incomplete_expired"):
        want = facts.cancel_at_period_end
        if await set_cancel_at_period_end(uow, sub, want, now):
            outcome = "cancelling" if want else "resumed"
    if facts.price_id:
        plan = (
            await uow.session.execute(select(Plan).where(Plan.stripe_price_id == facts.price_id))
        ).scalar_one_or_none()
        if plan is not None and plan.id != sub.plan_id:
            sub.plan_id = plan.id
            sub.amount_minor, sub.currency = plan.price_minor, plan.currency
            outcome = "plan changed"
    return Settled(outcome)


async def settle_deleted(uow: UnitOfWork, facts: SubscriptionFacts, now: datetime) -> Settled:
    sub = await _ours(uow, facts.subscription_ref, facts.our_id)
    if sub is None:
        return Settled("ignored")
    unpaid = facts.cancellation_reason == "payment_failed" or sub.status == "past_due"
    if sub.status == "incomplete":
        advance("subscription", sub, "cancelled")  # never paid: nothing to end
        sub.ended_at = now
        return Settled("abandoned")
    done = await end(uow, sub, "lapsed" if unpaid else "cancelled", now)
    return Settled("ended" if done else "already")


async def period_for_payment(uow: UnitOfWork, payment_ref: str) -> SubscriptionPeriod | None:
    found = await uow.session.execute(
        select(SubscriptionPeriod)
        .where(SubscriptionPeriod.provider == PROVIDER)
        .where(SubscriptionPeriod.payment_ref == payment_ref)
    )
    return found.scalar_one_or_none()


async def settle_period_refund(uow: UnitOfWork, period_id: int, now: datetime) -> Settled:
    taken = await refund_period(uow, period_id, now)
    return Settled("already" if taken is None else "refunded")


async def settle_event(
    uow: UnitOfWork, config: Config, event_type: str, obj: Mapping[str, Any], now: datetime
) -> Settled:
    """Apply one subscription event (the webhook records its id in the same transaction)."""
    if event_type == "checkout.session.completed":
        return await settle_session(uow, obj, now)
    if event_type == "invoice.paid":
        return await settle_invoice_paid(uow, InvoiceFacts.parse(obj), now)
    if event_type == "invoice.payment_failed":
        return await settle_invoice_failed(uow, config, InvoiceFacts.parse(obj), now)
    if event_type == "customer.subscription.updated":
        return await settle_updated(uow, SubscriptionFacts.parse(obj), now)
    if event_type == "customer.subscription.deleted":
        return await settle_deleted(uow, SubscriptionFacts.parse(obj), now)
    return Settled("ignored")


async def reconcile_subscriptions(
    payments: StripePayments, new_uow: Any, config: Config, now_fn: Any
) -> int:
    """List our subscriptions and their paid invoices; apply what no webhook brought."""
    repaired = 0
    page = await payments.client.v1.subscriptions.list_async({"status": "all", "limit": 100})
    async for sub in page.auto_paging_iter():
        obj = sub.to_dict()
        facts = SubscriptionFacts.parse(obj)
        if facts.our_id is None:
            continue
        invoices = await payments.client.v1.invoices.list_async(
            {"subscription": facts.subscription_ref, "status": "paid", "limit": 100}
        )
        paid = [InvoiceFacts.parse(i.to_dict()) async for i in invoices.auto_paging_iter()]
        for invoice in sorted(paid, key=lambda i: i.ends_at):
            try:
                async with new_uow() as uow:
                    settled = await settle_invoice_paid(uow, invoice, now_fn())
                    await uow.commit()
            except GiveBackFirst:  # an erased account's: Stripe gives it back first
                repaired += await _give_back_once(payments, new_uow, invoice, now_fn)
                continue
            repaired += settled.outcome in ("period", "trial")
        async with new_uow() as uow:
            if facts.status in ("canceled", "incomplete_expired"):
                settled = await settle_deleted(uow, facts, now_fn())
                repaired += settled.outcome == "ended"
            else:
                settled = await settle_updated(uow, facts, now_fn())
                repaired += settled.outcome in ("cancelling", "resumed", "plan changed")
            await uow.commit()
    return repaired


async def _give_back_once(
    payments: StripePayments, new_uow: Any, invoice: InvoiceFacts, now_fn: Any
) -> int:
    """Reconciliation's give-back of an erased account's invoice: 1 when done now, 0 when
    Stripe failed (the next pass tries again) or it was done meanwhile."""
    async with new_uow() as uow:
        unwanted = await unwanted_invoice(uow, invoice)
    if unwanted is None:
        return 0
    try:
        await give_back(payments, unwanted)
    except BillingUnavailable:
        return 0
    async with new_uow() as uow:
        settled = await settle_given_back(uow, unwanted, now_fn())
        await uow.commit()
    return int(settled.outcome != "already")
