"""The payment port, the demo provider, and every order rule: fulfil, expire, refund.

Providers only move money; what an order means (an enrollment with session credits, revoked on
refund) is decided here once, so a Stars payment, a Stripe webhook and the demo button cannot
fulfil differently. Fulfilment runs under a lock on the order row and goes through the order's
transition table, so a second confirmation of the same payment is refused and changes nothing.

A refund is one flow whoever starts it. An admin's (`check_refund`, then `refund_order`) checks
the policy, moves the money through the provider with no transaction open, then revokes; a
refund the provider reports itself (Stripe's dashboard) only revokes. Both revoke through
`revoke_refunded`: the enrollment, the upcoming sessions and their reminders, the mentors'
earnings from the order, and the notices to the learner and the mentors. A subscription's
anchor order is refunded one paid period at a time, by the same steps
(bot/subscriptions/refunds.py).

Every movement (payment, refund, credits granted and revoked) posts its ledger entry in the
same transaction, keyed by the order, so a retried confirmation or refund posts nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, or_, select, update

from bot.community.access import revoke_course_access
from bot.config import Config
from bot.core.errors import BadInput, MentorbotError, NotFound
from bot.core.i18n import Money, Msg, When, _
from bot.core.ledger import Kind, order_balance, post
from bot.core.metrics import PAYMENTS
from bot.core.outbox import tell
from bot.core.states import advance
from bot.learning.courses import course_title
from bot.sessions.credits import move_credits
from bot.sessions.earnings import reverse_order_earnings
from bot.sessions.reminders import skip_for_session
from bot.sessions.workshops import drop_seats_paid_by, take_paid_seat, unused_seat_orders
from storage.models import (
    Course,
    Enrollment,
    Identity,
    MentorProfile,
    MentorSession,
    Order,
)
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkout:
    """How the learner pays: a button label and the command or URL behind it.

    `ref` is the provider's id for a payment page it opened for the order (a Stripe Checkout
    Session); `/buy` keeps it and `url` on the order, so buying again shows the same page.
    """

    label: Msg
    pay_command: str | None = None
    url: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Refund:
    """A paid order's money, as a provider needs it to give it back: plain data, read before
    the call so that no transaction is open while the provider answers.

    `payer` is the learner's latest id on each chat platform (Stars refunds go to the Telegram
    account). `subject` is what is refunded in the words its reader knows, for a provider's
    refusal to name: a subscription's period names its period, subscription and plan, never
    the anchor order nobody bought (`named`; by default "order #N"). `order_id` is None only
    for a period paid while its subscription had no order (it never got access).
    """

    order_id: int | None
    user_id: int
    provider: str
    provider_ref: str | None
    amount_minor: int
    currency: str
    payer: Mapping[str, str]
    subject: Msg | None = None

    def named(self) -> Msg:
        return self.subject if self.subject is not None else order_named(self.order_id)


def order_named(order_id: int | None) -> Msg:
    """An order as a refusal names what it could not refund."""
    return _("order #{id}", id=order_id)


class PaymentUnavailable(MentorbotError):
    """A provider cannot take this payment right now (e.g. Stripe unreachable); its message
    says so to the learner, and nothing was changed."""


class PaymentProvider(Protocol):
    """A way to pay. Several can be configured; each offers a button where it is available."""

    name: str

    def available_on(self, platform: str) -> bool: ...

    async def start_checkout(self, order: Order, course: Course) -> Checkout:
        """The learner's way to pay `order`. Runs after the order's transaction committed, with
        no transaction open, so it may call the network; it must not change `order` (a page it
        opened comes back as `Checkout.ref`). Raises `PaymentUnavailable` when it cannot."""
        ...

    async def refund(self, refund: Refund) -> None:
        """Give the order's whole payment back, with no transaction open. Raises a
        `MentorbotError` saying why when it cannot; a payment the provider already gave back
        counts as done, so an admin may try again after a failure."""
        ...

    async def close_checkout(self, ref: str) -> bool:
        """Close the page `start_checkout` opened (`Checkout.ref`) so that it can no longer
        be paid, with no transaction open: its order was cancelled or its account erased. A
        page already closed or paid counts as done (a payment that came first is given back
        by the rule for payments on cancelled orders); False when the provider could not be
        reached, which is logged."""
        ...


# Each provider by the name people read (the orders list, the earnings CSV), by its code.
PROVIDER_NAMES: dict[str, Msg | str] = {
    "demo": _("demo payment"),
    "stripe": "Stripe",
    "stars": "Telegram Stars",
    "subscription": _("subscription"),  # an anchor order: its periods name their providers
}


def provider_name(code: str | None) -> Msg | str:
    """How a reader sees the provider of an order named; an order not paid yet has none."""
    if code is None:
        return _("no payment")
    return PROVIDER_NAMES.get(code, code)


class DemoPayments:
    """Moves no money; every message it causes says so. Only enabled by `payments.demo`."""

    name = "demo"

    def available_on(self, platform: str) -> bool:
        return True

    async def start_checkout(self, order: Order, course: Course) -> Checkout:
        return Checkout(label=_("Pay (demo — no money moved)"), pay_command=f"/pay {order.id}")

    async def refund(self, refund: Refund) -> None:
        return None

    async def close_checkout(self, ref: str) -> bool:
        return True  # its page is a chat command: a cancelled order refuses `/pay`


async def enroll(uow: UnitOfWork, order: Order, now: datetime) -> Enrollment:
    """The learner's enrollment in the order's course, active, with no credits yet: whoever
    fulfils the order (a payment, a subscription's first period) posts the credits it grants."""
    enrollment = Enrollment(
        order_id=order.id,
        user_id=order.user_id,
        course_id=order.course_id,
        credits_remaining=0,
        status="active",
        created_at=now,
    )
    uow.add(enrollment)
    await uow.flush()
    return enrollment


@dataclass(frozen=True)
class Fulfilled:
    enrollment: Enrollment
    seat: bool  # a workshop's seat: its own notice told the buyer, not "the course is yours"


async def fulfil_order(
    uow: UnitOfWork,
    config: Config,
    order: Order,
    now: datetime,
    provider: str,
    provider_ref: str | None = None,
) -> Fulfilled:
    """Mark a locked, pending order paid by `provider` and grant its enrollment the sessions
    the order sold, posting the payment and the credits to the ledger. An order for a seat in
    a workshop sold alone takes the seat in the same transaction (`take_paid_seat`), whose
    notice then says what the payment got.

    `provider_ref` is the provider's id for the payment, unique per provider, so one payment
    can never fulfil two orders.
    """
    advance("order", order, "paid")
    order.paid_at = now
    order.provider = provider
    order.provider_ref = provider_ref
    PAYMENTS.labels(provider, "fulfilled").inc()
    await post(
        uow,
        f"paid:order:{order.id}",
        Kind.ORDER_PAID,
        now,
        user_id=order.user_id,
        order_id=order.id,
        currency=order.currency,
        amount_minor=order.amount_minor,
        demo=provider == DemoPayments.name,
    )
    enrollment = await enroll(uow, order, now)
    await move_credits(
        uow,
        enrollment,
        Kind.CREDIT_GRANTED,
        f"granted:order:{order.id}",
        order.sessions_included,
        now,
    )
    seat = await take_paid_seat(uow, enrollment, now, config)  # a workshop sold alone
    return Fulfilled(enrollment, seat)


@dataclass(frozen=True)
class Revoked:
    """What revoking a refunded order did: the upcoming sessions it cancelled; `already` when
    the provider's own report of the refund had revoked the order first."""

    order_id: int
    cancelled: int
    already: bool = False


async def revoke_refunded(uow: UnitOfWork, order: Order, now: datetime) -> Revoked:
    """The refund's bookkeeping, once for every way a refund happens, on a locked paid order.

    The enrollment is revoked, its upcoming sessions are cancelled with their reminders, the
    mentors lose what the order's sessions earned them (no earnings from a refunded order), and
    the learner and each mentor are told.
    """
    advance("order", order, "refunded")
    order.refunded_at = now
    PAYMENTS.labels(order.provider or "none", "refunded").inc()
    await refund_money(uow, order, f"refunded:order:{order.id}", None, now)
    await reverse_order_earnings(uow, order.id, now)
    enrollment = (
        await uow.session.execute(select(Enrollment).where(Enrollment.order_id == order.id))
    ).scalar_one_or_none()
    cancelled: list[MentorSession] = []
    if enrollment is not None:
        if enrollment.status != "revoked":  # erasure (/deleteme) revokes it before any refund
            advance("enrollment", enrollment, "revoked")
        await revoke_course_access(uow, enrollment.user_id, enrollment.course_id, "refund", now)
        cancelled = await _cancel_upcoming(uow, enrollment, now)
        await drop_seats_paid_by(uow, enrollment.id, now)  # workshop seats it paid for
        await move_credits(
            uow,
            enrollment,
            Kind.CREDIT_REVOKED,
            f"revoked:order:{order.id}",
            -enrollment.credits_remaining,
            now,
        )
    for session in cancelled:
        mentor = await uow.get(MentorProfile, session.mentor_id)
        assert mentor is not None
        await tell(
            uow,
            mentor.user_id,
            _(
                "Session #{id} on {when} is cancelled: the learner's course was refunded.",
                id=session.id,
                when=When(session.start_at),
            ),
            now,
        )
    await tell(
        uow,
        order.user_id,
        _(
            "Order #{id} is refunded ({price}). Its sessions are cancelled.",
            id=order.id,
            price=Money(order.amount_minor, order.currency),
        ),
        now,
    )
    return Revoked(order.id, len(cancelled))


async def refund_money(
    uow: UnitOfWork, order: Order, key: str, refunded_total: int | None, now: datetime
) -> int:
    """Post the part of the order's payment given back, so that refunds never pass what was
    paid: up to `refunded_total` refunded in all (a provider's running total), or the whole
    rest when None. Returns the minor units posted (0 on a retry or when nothing is left)."""
    paid, refunded = await order_balance(uow, order.id)
    target = paid if refunded_total is None else min(refunded_total, paid)
    part = target - refunded
    if part <= 0:
        return 0
    entry = await post(
        uow,
        key,
        Kind.ORDER_REFUNDED,
        now,
        user_id=order.user_id,
        order_id=order.id,
        currency=order.currency,
        amount_minor=-part,
        demo=order.provider == DemoPayments.name,
    )
    return part if entry is not None else 0


async def _cancel_upcoming(
    uow: UnitOfWork, enrollment: Enrollment, now: datetime
) -> list[MentorSession]:
    """Cancel the enrollment's sessions that have not started, and skip their reminders."""
    upcoming = await uow.session.execute(
        select(MentorSession)
        .where(MentorSession.enrollment_id == enrollment.id)
        .where(MentorSession.status == "scheduled")
        .where(MentorSession.start_at > now)
    )
    cancelled = list(upcoming.scalars())
    for session in cancelled:
        advance("session", session, "cancelled")
        await skip_for_session(uow, session.id, now)
    return cancelled


async def within_refund_policy(
    uow: UnitOfWork, config: Config, order: Order, now: datetime
) -> bool:
    """Paid within `payments.refund_window_days` and none of the course's sessions used.

    Used means what the session rules charge a credit for: a session completed, missed, or
    already started, and a late cancellation by the learner (inside
    `sessions.cancel_window_hours`, which keeps the credit). A late cancellation leaves no mark
    on the session itself, so it shows as a credit that is neither left nor booked.
    """
    if order.paid_at is None:
        return False
    if now - order.paid_at > timedelta(days=config.payments.refund_window_days):
        return False
    enrollment = (
        await uow.session.execute(select(Enrollment).where(Enrollment.order_id == order.id))
    ).scalar_one_or_none()
    if enrollment is None:
        return True
    counts = await uow.session.execute(
        select(MentorSession.status, func.count(MentorSession.id))
        .where(MentorSession.enrollment_id == enrollment.id)
        .group_by(MentorSession.status)
    )
    statuses: dict[str, int] = {status: n for status, n in counts}
    if statuses.get("completed", 0) or statuses.get("no_show", 0):
        return False
    started = await uow.session.execute(
        select(func.count(MentorSession.id))
        .where(MentorSession.enrollment_id == enrollment.id)
        .where(MentorSession.status == "scheduled")
        .where(MentorSession.start_at <= now)
    )
    if started.scalar_one():
        return False
    booked = statuses.get("scheduled", 0)
    return enrollment.credits_remaining + booked >= order.sessions_included


async def check_refund(
    uow: UnitOfWork,
    config: Config,
    providers: Sequence[PaymentProvider],
    order_id: int,
    now: datetime,
    *,
    force: bool = False,
) -> Refund:
    """Whether an admin may refund the order now: it exists, is paid, is inside the policy
    (unless `force`), and its provider is configured here. Reads only; raises the refusal."""
    order = await uow.get(Order, order_id)
    if order is None:
        raise NotFound(_("There is no order #{id}.", id=order_id))
    if order.status != "paid":
        advance("order", order, "refunded")  # raises the refusal naming the state
    if order.provider == "subscription":  # a subscription's anchor (bot/subscriptions/)
        raise BadInput(
            _(
                "Order #{id} holds a subscription's payments: refund one period at a time. "
                "See /admin refund {id}",
                id=order.id,
            )
        )
    if not force and not await within_refund_policy(uow, config, order, now):
        raise BadInput(
            _(
                "Order #{id} is outside the refund policy (paid more than {days} days ago, or "
                "a session was used). To refund it anyway: /admin refund {id} force",
                id=order.id,
                days=config.payments.refund_window_days,
            )
        )
    if not any(p.name == order.provider for p in providers):
        raise BadInput(
            _(
                "Order #{id} was paid with {provider}, which is not configured here.",
                id=order.id,
                provider=order.provider,
            )
        )
    assert order.provider is not None
    return Refund(
        order_id=order.id,
        user_id=order.user_id,
        provider=order.provider,
        provider_ref=order.provider_ref,
        amount_minor=order.amount_minor,
        currency=order.currency,
        payer=await payer_ids(uow, order.user_id),
    )


async def payer_ids(uow: UnitOfWork, user_id: int) -> dict[str, str]:
    """The user's latest id on each chat platform, for a provider giving money back."""
    identities = await uow.session.execute(
        select(Identity.platform, Identity.external_id)
        .where(Identity.user_id == user_id)
        .order_by(Identity.last_seen_at)
    )
    return {platform: external_id for platform, external_id in identities}  # latest wins


REFUND_LEASE = timedelta(minutes=2)  # longer than a provider's call with its retries


class RefundUnderway(BadInput):
    """Another process (a second sweep, another admin) is giving this order's money back now."""


async def refund_order(
    new_uow: Callable[[], UnitOfWork],
    providers: Sequence[PaymentProvider],
    refund: Refund,
    now: datetime,
    lease: timedelta,
) -> Revoked:
    """Give a checked order's money back through its provider, then revoke the order.

    The provider is called with no transaction open, as it may take seconds; its refusal
    changes nothing. Revoking comes after, in a short transaction of its own: if the
    provider's own report of the refund (a Stripe webhook) revoked the order first, nothing is
    done twice.

    The call is made under a lease on the order (`refund_claimed_until`, claimed with
    `UPDATE … RETURNING` as the outbox's rows are; `lease` is `REFUND_LEASE` in the clock's
    time, `real_span`, as every lease here is), so two processes refunding the same order
    at once call the provider once: Telegram Stars has no idempotency key. The other is
    refused with `RefundUnderway` (or finds the order refunded). A refusal by the provider
    ends the lease at once, so the refund can be tried again; a process that dies during the
    call leaves it to run out, and whoever tries next calls the provider again, which a
    refund already made answers harmlessly (Stripe's idempotency key, Stars'
    CHARGE_ALREADY_REFUNDED).
    """
    order_id = refund.order_id
    assert order_id is not None, "a period paid with no order is refunded by its own rule"
    provider = next(p for p in providers if p.name == refund.provider)
    async with new_uow() as uow:
        claimed = (
            await uow.session.execute(
                update(Order)
                .where(Order.id == order_id)
                .where(Order.status == "paid")
                .where(or_(Order.refund_claimed_until.is_(None), Order.refund_claimed_until < now))
                .values(refund_claimed_until=now + lease)
                .returning(Order.id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        current = await uow.get(Order, order_id) if claimed is None else None
        await uow.commit()
    if claimed is None:
        if current is not None and current.status != "paid":  # refunded meanwhile
            return Revoked(order_id, 0, already=True)
        raise RefundUnderway(
            _(
                "Order #{id} is being refunded right now, by another refund that started a "
                "moment ago. Nothing more was done; see /admin orders in a few minutes.",
                id=order_id,
            )
        )
    try:
        await provider.refund(refund)
    except Exception:
        async with new_uow() as uow:
            await uow.session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(refund_claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            await uow.commit()
        raise
    async with new_uow() as uow:
        order = await uow.lock(Order, order_id)
        assert order is not None
        order.refund_claimed_until = None
        if order.status != "paid":
            await uow.commit()
            return Revoked(order.id, 0, already=True)
        revoked = await revoke_refunded(uow, order, now)
        await uow.commit()
    return revoked


async def refund_unused_seats(
    new_uow: Callable[[], UnitOfWork],
    config: Config,
    providers: Sequence[PaymentProvider],
    now: datetime,
    lease: timedelta,
) -> int:
    """The sweep: give back the money of each seat in a workshop sold alone that went unused
    (`unused_seat_orders`: the workshop cancelled or started without the buyer in it, or the
    buyer left), through the one refund flow an admin's refund takes, outside the refund
    policy's window since the seat was never had. A provider that refuses (or is not
    configured here) is logged, and the next sweep tries again; an order another process is
    refunding now (`RefundUnderway`) is left to it. Returns the orders refunded."""
    async with new_uow() as uow:
        due = await unused_seat_orders(uow, now)
    done = 0
    for order_id in due:
        try:
            async with new_uow() as uow:
                refund = await check_refund(uow, config, providers, order_id, now, force=True)
            revoked = await refund_order(new_uow, providers, refund, now, lease)
            done += 0 if revoked.already else 1
        except RefundUnderway:
            continue
        except MentorbotError as refused:
            log.warning("unused workshop seat not refunded: order %s: %s", order_id, refused)
    return done


async def expire_orders(uow: UnitOfWork, now: datetime) -> int:
    """Pending orders past their time expire, so a stale payment cannot complete them."""
    stale = await uow.session.execute(
        select(Order)
        .where(Order.status == "pending")
        .where(Order.expires_at <= now)
        .with_for_update(skip_locked=True)
    )
    count = 0
    for order in stale.scalars():
        advance("order", order, "expired")
        count += 1
    return count


@dataclass(frozen=True)
class OrderPlaced:
    """The learner's pending order for a course: a new one, or the open one reused."""

    order: Order
    course: Course
    reused: bool


async def place_order(
    uow: UnitOfWork, user_id: int, course_id: int, now: datetime, config: Config
) -> OrderPlaced:
    """The user's pending order for the course, opened unless one is still open, at the
    course's current price for `payments.order_ttl_minutes`.

    Refused while the user has the course with sessions left. Reusing the open order means a
    double tap or a second /buy pays one order, with one payment page. An open order whose
    course changed price or sessions since is cancelled and replaced, so the learner pays what
    /buy shows, on a new payment page.
    """
    course = await uow.get(Course, course_id)
    assert course is not None
    owned = (
        await uow.session.execute(
            select(Enrollment)
            .where(Enrollment.user_id == user_id)
            .where(Enrollment.course_id == course.id)
            .where(Enrollment.status == "active")
            .where(Enrollment.credits_remaining > 0)
            .order_by(Enrollment.id)
            .limit(1)  # a subscription's enrollment may sit beside a bought one
        )
    ).scalar_one_or_none()
    if owned is not None:
        raise BadInput(
            _(
                "You already have {title} with {n} sessions left. See /mycourses.",
                title=course_title(course),
                n=owned.credits_remaining,
            )
        )
    still_open = (
        await uow.session.execute(
            select(Order)
            .where(Order.user_id == user_id)
            .where(Order.course_id == course.id)
            .where(Order.status == "pending")
            .where(Order.expires_at > now)
            .order_by(Order.id.desc())
        )
    ).scalars()
    # Two accounts linked while each had an open order for the course bring two: the newest
    # that still sells the course is reused, the rest cancelled (one paid anyway is refunded,
    # as any payment for a cancelled order is).
    reused: Order | None = None
    for open_order in still_open:
        if reused is None and _sells(open_order, course):
            reused = open_order
        else:
            advance("order", open_order, "cancelled")
    if reused is not None:
        return OrderPlaced(reused, course, reused=True)
    order = Order(
        user_id=user_id,
        course_id=course.id,
        status="pending",
        amount_minor=course.price_minor,
        currency=course.currency,
        sessions_included=course.sessions_included,
        created_at=now,
        expires_at=now + timedelta(minutes=config.payments.order_ttl_minutes),
    )
    uow.add(order)
    await uow.flush()
    return OrderPlaced(order, course, reused=False)


def _sells(order: Order, course: Course) -> bool:
    """Whether the pending order still sells what the course offers now."""
    return (order.amount_minor, order.currency, order.sessions_included) == (
        course.price_minor,
        course.currency,
        course.sessions_included,
    )
