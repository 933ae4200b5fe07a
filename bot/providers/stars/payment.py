"""Telegram Stars: the payment provider, and the two answers Telegram needs from a seller.

Digital goods sold inside Telegram are paid in Stars (currency XTR, no provider token). The
learner presses Pay (`/paystars ORDER`, which answers with an invoice); before taking the Stars
Telegram asks whether the checkout may go ahead (`check_checkout`, to be answered within 10 s);
afterwards it reports the payment (`record_payment`), possibly more than once, or never when
the update is lost (then `bot.providers.stars.reconcile` finds the payment in the bot's Star
transactions
and records it through the same function). The payment's charge id becomes the order's
`provider_ref`, unique per provider, so one payment fulfils one order once; a payment that finds
its order no longer payable (paid by another invoice, expired, cancelled) is handed back for a
refund rather than kept.

The core never talks to Telegram: the adapter connects a refund function at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.core.errors import STATUS_NAMES, BadInput
from bot.core.i18n import Msg, _, ngettext
from bot.core.outbox import keep_reply, tell_admins
from bot.core.replies import Choice, Invoice, Reply, Say, render
from bot.core.users import Incoming, resolve_user
from bot.learning.courses import course_title
from bot.payments import Checkout, Refund, fulfil_order
from bot.providers.stars.payloads import parse_payload, payload
from bot.providers.stars.subscriptions import (
    SUBSCRIPTION_PERIOD,
    record_subscription_payment,
    subscription_refusal,
)
from bot.sessions.workshops import on_sale
from bot.subscriptions.lifecycle import period_recorded
from storage.models import Course, Order
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.front_door import Ports

log = logging.getLogger(__name__)

PROVIDER = "stars"
PLATFORM = "telegram"
CURRENCY = "XTR"
MAX_STARS = 100_000

# Gives a payment back: (the payer's Telegram user id, the payment's charge id).
Refunder = Callable[[str, str], Awaitable[None]]
# Cancels (True) or resumes (False) a Stars subscription: (payer's Telegram id, first charge id).
Editor = Callable[[str, str, bool], Awaitable[None]]


def invoice_payload(order_id: int, stars: int) -> str:
    return payload("order", order_id, stars)


def parse_invoice_payload(text: str) -> tuple[int, int] | None:
    return parse_payload(text, "order")


def stars_invoice(order: Order, course: Course) -> Invoice:
    assert course.price_stars is not None
    return Invoice(
        title=course_title(course),
        description=ngettext(
            "{title}: {n} mentor session (order #{id})",
            "{title}: {n} mentor sessions (order #{id})",
            course.sessions_included,
            title=course_title(course),
            id=order.id,
        ),
        label=course_title(course),
        payload=invoice_payload(order.id, course.price_stars),
        currency=CURRENCY,
        amount=course.price_stars,
    )


class StarsPayments:
    """Pay with Telegram Stars; offered in Telegram only, for courses with a Stars price."""

    name = PROVIDER

    def __init__(self) -> None:
        self._refunder: Refunder | None = None
        self._editor: Editor | None = None

    def connect(self, refunder: Refunder | None, editor: Editor | None = None) -> None:
        """Called by the Telegram adapter when it starts (and with None when it stops)."""
        self._refunder = refunder
        self._editor = editor

    async def edit_subscription(self, payer: str, charge_id: str, canceled: bool) -> None:
        """Stop (or restart) a Stars subscription's renewals: editUserStarSubscription."""
        if self._editor is None:
            raise BadInput(
                _("Telegram is not connected right now; nothing was changed. Please try again.")
            )
        await self._editor(payer, charge_id, canceled)

    def available_on(self, platform: str) -> bool:
        return platform == PLATFORM

    async def start_checkout(self, order: Order, course: Course) -> Checkout:
        if not course.price_stars:
            return Checkout(label=_("Not sold for Telegram Stars"))
        return Checkout(
            label=_("Pay {stars} ⭐ (Telegram Stars)", stars=course.price_stars),
            pay_command=f"/paystars {order.id}",
        )

    async def refund(self, refund: Refund) -> None:
        """Give the Stars back through Telegram, to the learner's Telegram account."""
        if self._refunder is None:
            raise BadInput(
                _(
                    "Telegram is not connected, so Stars cannot be refunded right now. "
                    "Nothing was changed."
                )
            )
        payer = refund.payer.get(PLATFORM)
        if payer is None or not refund.provider_ref:
            raise BadInput(
                _(
                    "There is no Telegram payment to refund for {what}. Nothing was changed.",
                    what=refund.named(),
                )
            )
        await self._refunder(payer, refund.provider_ref)

    async def close_checkout(self, ref: str) -> bool:
        """Nothing to close: the invoice is sent when the learner presses Pay, and Telegram
        asks the bot before charging (`checkout_refusal` refuses a cancelled order)."""
        return True


async def checkout_refusal(
    uow: UnitOfWork, user_id: int, payload: str, currency: str, amount: int, now: datetime
) -> Msg | None:
    """Why this checkout must not go ahead, or None: the order is the payer's, still pending,
    its course on sale, and the price on the invoice is the course's Stars price now."""
    if payload.startswith("sub:"):
        return await subscription_refusal(uow, user_id, payload, currency, amount)
    parsed = parse_invoice_payload(payload)
    order = await uow.get(Order, parsed[0]) if parsed else None
    if parsed is None or order is None or order.user_id != user_id or currency != CURRENCY:
        return _(
            "This invoice is not valid any more; nothing was charged. Buy again with /courses."
        )
    if order.status == "paid":
        return _("Order #{id} is already paid. See /mycourses.", id=order.id)
    if order.status != "pending" or order.expires_at <= now:
        return _(
            "Order #{id} is {status}; nothing was charged. Buy again with /courses.",
            id=order.id,
            status=STATUS_NAMES["expired" if order.status == "pending" else order.status],
        )
    course = await uow.get(Course, order.course_id)
    assert course is not None
    if not await on_sale(uow, course, now):
        return _("{title} is no longer on sale; nothing was charged.", title=course_title(course))
    if course.price_stars != amount or parsed[1] != amount:
        return _(
            "The price of {title} has changed; nothing was charged. Buy again with /courses "
            "to see the new price.",
            title=course_title(course),
        )
    return None


async def check_checkout(
    app: Ports, payer: Incoming, payload: str, currency: str, amount: int
) -> str | None:
    """Telegram's pre-checkout question: None to go ahead, else the refusal in the payer's
    language."""
    now = app.clock.now()
    async with app.new_uow() as uow:
        user, _roles = await resolve_user(uow, app.config, payer, now)
        refusal = await checkout_refusal(uow, user.id, payload, currency, amount, now)
        lang, tz = user.language, user.timezone
        await uow.commit()
    return None if refusal is None else refusal.render(lang, tz)


@dataclass(frozen=True)
class PaymentOutcome:
    """What a reported payment did: `replies` for the payer; `refund` when it must go back;
    `fulfilled` when it paid its order now (not before, by another delivery)."""

    replies: list[Reply] = field(default_factory=list)
    duplicate: bool = False
    refund: bool = False
    fulfilled: bool = False

    def label(self) -> str:
        """For the metrics: fulfilled, duplicate or refunded."""
        if self.duplicate:
            return "duplicate"
        return "refunded" if self.refund else "fulfilled"


async def record_payment(
    app: Ports,
    payer: Incoming,
    payload: str,
    currency: str,
    amount: int,
    charge_id: str,
    *,
    via_outbox: bool = False,
    paid_at: datetime | None = None,
    expires: datetime | None = None,
) -> PaymentOutcome:
    """Fulfil the order a successful payment names, exactly once per charge id.

    Telegram approves a payment only while its order is pending (pre-checkout), but its report
    can arrive after the order expired: a lost update found by reconciliation, or a webhook
    redelivered after an outage. A payment made (`paid_at`) before the order expired still
    fulfils it; the learner paid in time. Any other unpayable order is refunded.

    `via_outbox`: there is no update to answer (reconciliation), so the confirmation is kept in
    the outbox in the transaction that fulfils, for the notifier to deliver; the refund notice
    is still returned, to be kept once the refund went through.

    A `sub:` payload is a subscription's charge (`expires`: its subscription_expiration_date),
    granted once per charge id by bot.providers.stars.subscriptions; without `expires` (a
    charge found by reconciliation) its period runs 30 days from `paid_at`.
    """
    now = app.clock.now()
    if payload.startswith("sub:"):  # a subscription's first charge or a renewal
        if expires is None and paid_at is not None:
            expires = paid_at + timedelta(seconds=SUBSCRIPTION_PERIOD)
        async with app.new_uow() as uow:
            if await period_recorded(uow, PROVIDER, charge_id):
                return PaymentOutcome(duplicate=True)
            reply, refund = await record_subscription_payment(
                uow, app.config, payer, payload, amount, charge_id, expires, now
            )
            await uow.commit()
        return PaymentOutcome([reply] if reply else [], refund=refund, fulfilled=not refund)
    parsed = parse_invoice_payload(payload)
    async with app.new_uow() as uow:
        user, _roles = await resolve_user(uow, app.config, payer, now)
        # Lock the order before looking for the charge, so a concurrent delivery of the same
        # payment waits here and then finds it recorded.
        order = await uow.lock(Order, parsed[0]) if parsed else None
        recorded = (
            await uow.session.execute(
                select(Order.id)
                .where(Order.provider == PROVIDER)
                .where(Order.provider_ref == charge_id)
            )
        ).scalar_one_or_none()
        if recorded is not None:
            await uow.commit()
            return PaymentOutcome(duplicate=True)
        if (
            order is None
            or order.user_id != user.id
            or not _payable(order, paid_at)
            or currency != CURRENCY
        ):
            log.warning(
                "a Stars payment matched no payable order; refunding",
                extra={"user_id": user.id, "payload": payload, "amount": amount},
            )
            say = Say(
                _(
                    "Your payment of {stars} ⭐ could not be applied to an open order (it may "
                    "have been paid already or expired), so the Stars are being returned to you.",
                    stars=amount,
                )
            )
            reply = render(user.id, say, user.language, user.timezone)
            await uow.commit()
            return PaymentOutcome([reply], refund=True)
        invoiced = parsed[1] if parsed else None
        if amount != invoiced:
            log.warning(
                "a Stars payment's amount differs from its invoice; refunding",
                extra={"user_id": user.id, "order_id": order.id, "amount": amount},
            )
            await tell_admins(
                uow,
                _(
                    "A Stars payment of {stars} ⭐ for order #{id} did not match its invoice "
                    "({invoiced} ⭐); it is being returned and the order stays open.",
                    stars=amount,
                    id=order.id,
                    invoiced=invoiced,
                ),
                now,
            )
            say = Say(
                _(
                    "Your payment of {stars} ⭐ did not match the invoice for order #{id} "
                    "({invoiced} ⭐), so the Stars are being returned to you. Nothing else "
                    "changed.",
                    stars=amount,
                    id=order.id,
                    invoiced=invoiced,
                )
            )
            reply = render(user.id, say, user.language, user.timezone)
            await uow.commit()
            return PaymentOutcome([reply], refund=True)
        order.amount_minor = amount
        order.currency = CURRENCY
        paid = await fulfil_order(uow, app.config, order, now, PROVIDER, charge_id)
        enrollment = paid.enrollment
        course = await uow.get(Course, order.course_id)
        assert course is not None
        say = Say(
            ngettext(
                "Paid with {stars} ⭐. {title} is yours, with {n} mentor session.",
                "Paid with {stars} ⭐. {title} is yours, with {n} mentor sessions.",
                enrollment.credits_remaining,
                stars=amount,
                title=course_title(course),
            ),
            (Choice(_("Find a mentor"), f"/mentor {course.slug}"),),
        )
        if paid.seat:  # the seat's own notice says the rest
            say = Say(_("Paid with {stars} ⭐.", stars=amount))
        reply = render(user.id, say, user.language, user.timezone)
        if via_outbox:
            await keep_reply(uow, reply, now)
        await uow.commit()
    return PaymentOutcome([] if via_outbox else [reply], fulfilled=True)


def _payable(order: Order, paid_at: datetime | None) -> bool:
    """Pending, or expired after a payment made while it was still open."""
    if order.status == "pending":
        return True
    return order.status == "expired" and paid_at is not None and paid_at <= order.expires_at
