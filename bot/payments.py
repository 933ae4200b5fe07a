"""The payment port, the demo provider, and the one fulfilment path every provider shares.

Providers only move money; what an order means (an enrollment with session credits, revoked on
refund) is decided here once, so a Stars payment, a Stripe webhook and the demo button cannot
fulfil differently. Fulfilment runs under a lock on the order row and goes through the order's
transition table, so a second confirmation of the same payment is refused and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update

from bot.config import Config
from bot.core.errors import BadInput, MentorbotError
from bot.core.i18n import Msg, _
from bot.core.metrics import PAYMENTS
from bot.core.states import advance
from bot.learning.courses import course_title
from storage.models import Course, Enrollment, MentorSession, Order, Reminder
from storage.uow import UnitOfWork


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

    async def refund(self, order: Order) -> None: ...


class DemoPayments:
    """Moves no money; every message it causes says so. Only enabled by `payments.demo`."""

    name = "demo"

    def available_on(self, platform: str) -> bool:
        return True

    async def start_checkout(self, order: Order, course: Course) -> Checkout:
        return Checkout(label=_("Pay (demo — no money moved)"), pay_command=f"/pay {order.id}")

    async def refund(self, order: Order) -> None:
        return None


async def fulfil_order(
    uow: UnitOfWork, order: Order, now: datetime, provider: str, provider_ref: str | None = None
) -> Enrollment:
    """Mark a locked, pending order paid by `provider` and grant its enrollment.

    `provider_ref` is the provider's id for the payment, unique per provider, so one payment
    can never fulfil two orders.
    """
    course = await uow.get(Course, order.course_id)
    assert course is not None
    advance("order", order, "paid")
    order.paid_at = now
    order.provider = provider
    order.provider_ref = provider_ref
    PAYMENTS.labels(provider, "fulfilled").inc()
    enrollment = Enrollment(
        order_id=order.id,
        user_id=order.user_id,
        course_id=order.course_id,
        credits_remaining=course.sessions_included,
        status="active",
        created_at=now,
    )
    uow.add(enrollment)
    await uow.flush()
    return enrollment


async def revoke_order(uow: UnitOfWork, order: Order, now: datetime) -> list[MentorSession]:
    """Refund bookkeeping: order refunded, enrollment revoked, future sessions cancelled.

    Returns the cancelled sessions so the caller can tell both sides.
    """
    advance("order", order, "refunded")
    order.refunded_at = now
    PAYMENTS.labels(order.provider or "none", "refunded").inc()
    enrollment = (
        await uow.session.execute(select(Enrollment).where(Enrollment.order_id == order.id))
    ).scalar_one_or_none()
    cancelled: list[MentorSession] = []
    if enrollment is None:
        return cancelled
    advance("enrollment", enrollment, "revoked")
    enrollment.credits_remaining = 0
    future = await uow.session.execute(
        select(MentorSession)
        .where(MentorSession.enrollment_id == enrollment.id)
        .where(MentorSession.status == "scheduled")
        .where(MentorSession.start_at > now)
    )
    for session in future.scalars():
        advance("session", session, "cancelled")
        cancelled.append(session)
    if cancelled:
        await uow.session.execute(
            update(Reminder)
            .where(Reminder.session_id.in_([s.id for s in cancelled]))
            .where(Reminder.sent_at.is_(None))
            .values(skipped_at=now)
        )
    return cancelled


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
    double tap or a second /buy pays one order, with one payment page.
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
    order = (
        await uow.session.execute(
            select(Order)
            .where(Order.user_id == user_id)
            .where(Order.course_id == course.id)
            .where(Order.status == "pending")
            .where(Order.expires_at > now)
        )
    ).scalar_one_or_none()
    if order is not None:
        return OrderPlaced(order, course, reused=True)
    order = Order(
        user_id=user_id,
        course_id=course.id,
        status="pending",
        amount_minor=course.price_minor,
        currency=course.currency,
        created_at=now,
        expires_at=now + timedelta(minutes=config.payments.order_ttl_minutes),
    )
    uow.add(order)
    await uow.flush()
    return OrderPlaced(order, course, reused=False)
