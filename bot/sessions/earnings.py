"""The mentor earnings ledger and the refund policy: the money rules around a course.

A completed session credits its mentor with the course price ÷ sessions included × (1 − the
platform fee), in the order's currency, once per session (a unique row per session). A course
can be refunded in full within `payments.refund_window_days` of payment if none of its sessions
was used (completed or missed); outside that, only an admin's explicit override refunds it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.config import Config
from storage.models import Course, Enrollment, MentorEarning, MentorSession, Order
from storage.uow import UnitOfWork


async def credit_mentor(
    uow: UnitOfWork, config: Config, session: MentorSession, now: datetime
) -> MentorEarning | None:
    """Record what `session` earned its mentor (None if already recorded)."""
    existing = (
        await uow.session.execute(
            select(MentorEarning).where(MentorEarning.session_id == session.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return None
    enrollment = await uow.get(Enrollment, session.enrollment_id)
    assert enrollment is not None
    order = await uow.get(Order, enrollment.order_id)
    course = await uow.get(Course, enrollment.course_id)
    assert order is not None and course is not None
    keep = 100 - config.payments.platform_fee_percent
    amount = order.amount_minor * keep // (100 * max(course.sessions_included, 1))
    earning = MentorEarning(
        session_id=session.id,
        mentor_id=session.mentor_id,
        order_id=order.id,
        amount_minor=amount,
        currency=order.currency,
        created_at=now,
    )
    uow.add(earning)
    await uow.flush()
    return earning


async def within_refund_policy(
    uow: UnitOfWork, config: Config, order: Order, now: datetime
) -> bool:
    """Paid within the window and no session of the course used (completed or missed)."""
    if order.paid_at is None:
        return False
    if now - order.paid_at > timedelta(days=config.payments.refund_window_days):
        return False
    used = await uow.session.execute(
        select(func.count(MentorSession.id))
        .join(Enrollment, Enrollment.id == MentorSession.enrollment_id)
        .where(Enrollment.order_id == order.id)
        .where(MentorSession.status.in_(("completed", "no_show")))
    )
    return used.scalar_one() == 0
