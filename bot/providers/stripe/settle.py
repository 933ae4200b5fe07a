"""What a Stripe payment means for its order, decided once for webhooks and reconciliation.

Each function runs inside the caller's transaction, locks the order row and checks its state,
so applying the same fact twice (a duplicate webhook, a webhook racing reconciliation) changes
nothing the second time. A paid Checkout Session fulfils its order through the shared
`fulfil_order` only when everything matches: the order's own session, learner, course, amount
and currency; anything else is left unfulfilled and the admins are alerted. A payment that
arrives for an order that can no longer take it (expired, cancelled, paid another way) is
refunded rather than kept: `settle_paid` raises `RefundFirst` and its caller refunds with no
transaction open, then records it (`settle_refunded_unwanted`). A refund that Stripe reports
before the payment's completion still ends with the order refunded and no access.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.config import Config
from bot.core.errors import STATUS_NAMES
from bot.core.i18n import Money, Msg, _, ngettext
from bot.core.outbox import tell, tell_admins
from bot.core.replies import Choice
from bot.core.states import advance
from bot.learning.courses import course_title
from bot.payments import fulfil_order, refund_money, revoke_refunded
from bot.providers.stripe.amounts import from_stripe
from bot.providers.stripe.checkout import PROVIDER, SessionFacts
from storage.models import Course, Order, PaymentEvent
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    """What applying a fact did (recorded with the event), and to which order."""

    outcome: str
    order_id: int | None = None


class RefundFirst(Exception):
    """A payment its order can no longer take reached the transaction that would record it
    before Stripe gave it back: nothing is applied. The caller refunds it with no transaction
    open (a slow Stripe then holds no order lock, and on SQLite not the whole database), then
    records the refund and tells the learner with `settle_refunded_unwanted`. Should Stripe
    be unreachable, nothing was recorded, and the retry (the webhook sent again, the next
    reconciliation) refunds it: the refund's idempotency key makes a repeat the same refund."""

    def __init__(self, order_id: int, payment_ref: str) -> None:
        super().__init__(order_id, payment_ref)
        self.order_id = order_id
        self.payment_ref = payment_ref


@dataclass(frozen=True)
class ChargeFacts:
    """What we act on in a refunded Charge."""

    charge_id: str
    payment_intent: str | None
    amount: int
    amount_refunded: int
    currency: str
    refunded: bool

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> ChargeFacts:
        intent = obj.get("payment_intent")
        if isinstance(intent, Mapping):
            intent = intent.get("id")
        currency = str(obj.get("currency") or "").upper()
        return cls(
            charge_id=str(obj["id"]),
            payment_intent=str(intent) if intent else None,
            amount=from_stripe(int(obj.get("amount") or 0), currency) or 0,
            amount_refunded=from_stripe(int(obj.get("amount_refunded") or 0), currency) or 0,
            currency=currency,
            refunded=bool(obj.get("refunded")),
        )

    @property
    def payment_ref(self) -> str:
        return self.payment_intent or self.charge_id


async def recorded(uow: UnitOfWork, event_id: str) -> bool:
    """Whether a Stripe event, or a consequence recorded under its own key, was applied."""
    done = await uow.session.execute(
        select(PaymentEvent.id)
        .where(PaymentEvent.provider == PROVIDER)
        .where(PaymentEvent.event_id == event_id)
    )
    return done.first() is not None


async def first_time(uow: UnitOfWork, marker: str, order_id: int | None, now: datetime) -> bool:
    """Record a one-off consequence (an alert, an automatic refund) under the events' unique
    key; False when it was recorded before, by a webhook or by reconciliation."""
    if await recorded(uow, marker):
        return False
    uow.add(
        PaymentEvent(
            provider=PROVIDER,
            event_id=marker,
            event_type="mentorbot.consequence",
            order_id=order_id,
            outcome="done",
            received_at=now,
        )
    )
    return True


async def alert_admins(uow: UnitOfWork, msg: Msg, now: datetime, **facts: Any) -> None:
    """Every admin hears about a payment that needs a person; the log keeps it too."""
    log.error("stripe payment needs an admin: %s", msg.msgid, extra=facts)
    await tell_admins(uow, msg, now)


def mismatch(order: Order, facts: SessionFacts) -> Msg | None:
    """Why a paid session cannot pay this order, or None when it can."""
    if facts.user_id != order.user_id or facts.course_id != order.course_id:
        return _("it names another learner or course than the order")
    if facts.session_id != order.checkout_ref:
        return _("it is not the Checkout Session this order opened")
    if facts.amount_total != order.amount_minor or facts.currency != order.currency.upper():
        return _(
            "{paid} was paid but the order is for {price}",
            paid=Money(facts.amount_total or 0, facts.currency or order.currency),
            price=Money(order.amount_minor, order.currency),
        )
    return None


async def _session_order(uow: UnitOfWork, facts: SessionFacts) -> Order | None:
    """The locked order a session was opened for, if it is this order's own session."""
    if facts.order_id is None:
        return None
    order = await uow.lock(Order, facts.order_id)
    if order is None or order.checkout_ref != facts.session_id:
        return None
    return order


async def settle_paid(
    uow: UnitOfWork, config: Config, facts: SessionFacts, now: datetime
) -> Settled:
    """A paid Checkout Session: fulfil its order once, or refuse and tell someone why; a
    payment the order can no longer take raises `RefundFirst` (once: not after its refund was
    recorded)."""
    order = await uow.lock(Order, facts.order_id) if facts.order_id is not None else None
    if order is None:
        if not await first_time(uow, f"unknown:{facts.session_id}", None, now):
            return Settled("already")
        await alert_admins(
            uow,
            _(
                "Stripe payment needs attention: Checkout Session {session} was paid for "
                "order #{id}, which does not exist here. Nothing was fulfilled.",
                session=facts.session_id,
                id=facts.order_id or "?",
            ),
            now,
            session=facts.session_id,
        )
        return Settled("unknown_order")
    if order.provider == PROVIDER and order.provider_ref == facts.payment_ref:
        return Settled("already", order.id)
    problem = mismatch(order, facts)
    if problem is not None:
        if not await first_time(uow, f"mismatch:{facts.session_id}", order.id, now):
            return Settled("already", order.id)
        await alert_admins(
            uow,
            _(
                "Stripe payment needs attention: order #{id} was not fulfilled because its "
                "payment (Checkout Session {session}) does not match: {problem}.",
                id=order.id,
                session=facts.session_id,
                problem=problem,
            ),
            now,
            order_id=order.id,
            session=facts.session_id,
        )
        return Settled("mismatch", order.id)
    if order.status == "pending":
        return await fulfil_matching(uow, config, order, facts, now)
    if await recorded(uow, _unwanted(facts)):
        return Settled("already", order.id)
    raise RefundFirst(order.id, facts.payment_ref)


def can_fulfil(order: Order | None, facts: SessionFacts) -> bool:
    """True when `fulfil_matching` applies: a pending order this paid session matches."""
    return (
        order is not None
        and order.status == "pending"
        and facts.paid
        and mismatch(order, facts) is None
    )


async def fulfil_matching(
    uow: UnitOfWork, config: Config, order: Order, facts: SessionFacts, now: datetime
) -> Settled:
    """The common case: a locked pending order, paid by its own session; confirm in chat."""
    paid = await fulfil_order(uow, config, order, now, PROVIDER, facts.payment_ref)
    enrollment = paid.enrollment
    course = await uow.get(Course, order.course_id)
    assert course is not None
    if paid.seat:  # the seat's own notice said it
        return Settled("fulfilled", order.id)
    await tell(
        uow,
        order.user_id,
        ngettext(
            "Payment received for order #{id}: {title} is yours, with {n} mentor session.",
            "Payment received for order #{id}: {title} is yours, with {n} mentor sessions.",
            enrollment.credits_remaining,
            id=order.id,
            title=course_title(course),
        ),
        now,
        (Choice(_("Find a mentor"), f"/mentor {course.slug}"),),
    )
    return Settled("fulfilled", order.id)


def _unwanted(facts: SessionFacts) -> str:
    return f"unwanted:{facts.payment_ref}"


async def settle_refunded_unwanted(
    uow: UnitOfWork, order_id: int, facts: SessionFacts, now: datetime
) -> Settled:
    """The learner paid an order that had closed or was paid another way, and Stripe gave it
    back: record that once and say so."""
    order = await uow.lock(Order, order_id)
    assert order is not None  # orders are never deleted
    if not await first_time(uow, _unwanted(facts), order.id, now):
        return Settled("already", order.id)
    status = STATUS_NAMES.get(order.status, Msg(order.status))
    price = Money(facts.amount_total or 0, facts.currency or order.currency)
    await tell(
        uow,
        order.user_id,
        _(
            "Your card payment of {price} for order #{id} came after the order was {status}, "
            "so it has been refunded in full.",
            price=price,
            id=order.id,
            status=status,
        ),
        now,
    )
    await alert_admins(
        uow,
        _(
            "Stripe payment {ref} for order #{id} ({status}) was refunded automatically: "
            "the order could no longer take it.",
            ref=facts.payment_ref,
            id=order.id,
            status=status,
        ),
        now,
        order_id=order.id,
    )
    return Settled("refunded_unwanted", order.id)


async def settle_processing(uow: UnitOfWork, facts: SessionFacts, now: datetime) -> Settled:
    """Checkout completed with a payment that clears later (bank debits): tell the learner."""
    order = await _session_order(uow, facts)
    if order is None or order.status != "pending":
        return Settled("ignored", order.id if order else None)
    await tell(
        uow,
        order.user_id,
        _(
            "Order #{id}: your payment is being processed. You will get a message here when "
            "it clears.",
            id=order.id,
        ),
        now,
    )
    return Settled("processing", order.id)


async def settle_failed(uow: UnitOfWork, facts: SessionFacts, now: datetime) -> Settled:
    """A delayed payment failed: the order is cancelled and the learner may buy again."""
    order = await _session_order(uow, facts)
    if order is None or order.status != "pending":
        return Settled("ignored", order.id if order else None)
    advance("order", order, "cancelled")
    course = await uow.get(Course, order.course_id)
    assert course is not None
    await tell(
        uow,
        order.user_id,
        _(
            "The payment for order #{id} did not go through, so the order is cancelled and "
            "nothing was charged.",
            id=order.id,
        ),
        now,
        (Choice(_("Buy again"), f"/buy {course.slug}"),),
    )
    return Settled("failed", order.id)


async def settle_expired(uow: UnitOfWork, facts: SessionFacts, now: datetime) -> Settled:
    """The Checkout Session expired unpaid: so does the order, and the learner is told."""
    order = await _session_order(uow, facts)
    if order is None or order.status not in ("pending", "expired"):
        return Settled("ignored", order.id if order else None)
    if order.status == "pending":
        advance("order", order, "expired")
    course = await uow.get(Course, order.course_id)
    assert course is not None
    await tell(
        uow,
        order.user_id,
        _(
            "Order #{id} for {title} expired before it was paid; nothing was charged.",
            id=order.id,
            title=course_title(course),
        ),
        now,
        (Choice(_("Buy again"), f"/buy {course.slug}"),),
    )
    return Settled("expired", order.id)


async def order_for_payment(uow: UnitOfWork, payment_ref: str) -> int | None:
    """The order a Stripe payment fulfilled, if any."""
    found = await uow.session.execute(
        select(Order.id).where(Order.provider == PROVIDER).where(Order.provider_ref == payment_ref)
    )
    return found.scalar_one_or_none()


async def settle_refunded(
    uow: UnitOfWork,
    config: Config,
    charge: ChargeFacts,
    order_id: int | None,
    session: SessionFacts | None,
    now: datetime,
) -> Settled:
    """Stripe refunded a payment (our refund, or one from the dashboard): revoke its order.

    A partial refund only posts the part given back (refunds never pass what was paid); the
    learner keeps the course and the admins decide about the rest.

    `session` is the payment's Checkout Session when the order was found through it, i.e.
    when the refund came before we saw the payment complete.
    """
    order = await uow.lock(Order, order_id) if order_id is not None else None
    if order is None:
        return Settled("ignored")
    if not charge.refunded:
        if order.provider_ref == charge.payment_ref:
            if order.status == "paid":
                await refund_money(
                    uow,
                    order,
                    f"refunded:order:{order.id}:{charge.charge_id}:{charge.amount_refunded}",
                    charge.amount_refunded,
                    now,
                )
            await alert_admins(
                uow,
                _(
                    "Stripe refunded {amount} of order #{id}'s payment; the learner keeps the "
                    "course. Use /admin refund to refund the rest and revoke it.",
                    amount=Money(charge.amount_refunded, charge.currency),
                    id=order.id,
                ),
                now,
                order_id=order.id,
            )
        return Settled("partial_refund", order.id)
    if order.status == "refunded":
        return Settled("already", order.id)
    if order.status == "paid":
        if order.provider != PROVIDER or order.provider_ref != charge.payment_ref:
            return Settled("ignored", order.id)  # an unwanted second payment, given back
        await revoke_refunded(uow, order, now)
        return Settled("revoked", order.id)
    if order.status == "pending" and session is not None and mismatch(order, session) is None:
        # The refund overtook the completion: record the payment and its refund together, so
        # the completion that follows finds the order refunded and grants nothing.
        await fulfil_order(uow, config, order, now, PROVIDER, charge.payment_ref)
        await revoke_refunded(uow, order, now)
        return Settled("refunded_before_completion", order.id)
    return Settled("ignored", order.id)
