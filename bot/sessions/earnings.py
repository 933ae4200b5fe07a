"""The mentor earnings ledger: what completed sessions earned their mentors.

A completed session credits its mentor with the course price ÷ sessions included × (1 − the
platform fee), in the order's currency, once per session (a unique row per session). A refunded
order earns nothing: its rows are removed when it is refunded, and a session completed after
the refund credits nobody. The refund policy itself is an order rule (`bot.payments`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from bot.config import Config
from storage.models import Course, Enrollment, MentorEarning, MentorSession, Order
from storage.uow import UnitOfWork


async def credit_mentor(
    uow: UnitOfWork, config: Config, session: MentorSession, now: datetime
) -> MentorEarning | None:
    """Record what `session` earned its mentor (None if already recorded, or if its order is
    no longer paid)."""
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
    if order.status != "paid":
        return None
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


async def reverse_order_earnings(uow: UnitOfWork, order_id: int) -> None:
    """Take back what the order's sessions earned (its refund gave the money back)."""
    await uow.session.execute(delete(MentorEarning).where(MentorEarning.order_id == order_id))
