"""The mentor earnings ledger: what completed sessions earned their mentors.

A completed session credits its mentor with the course price ÷ sessions included × (1 − the
platform fee), in the order's currency, once per session (a unique row per session). A refunded
order earns nothing: its rows are removed when it is refunded, and a session completed after
the refund credits nobody. The refund policy itself is an order rule (`bot.payments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from bot.config import Config
from storage.models import (
    Course,
    Enrollment,
    MentorEarning,
    MentorProfile,
    MentorSession,
    Order,
    User,
)
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


@dataclass(frozen=True)
class MentorTotal:
    """What one mentor earned in one currency, over how many sessions."""

    mentor_id: int
    name: str
    currency: str
    sessions: int
    amount_minor: int


@dataclass(frozen=True)
class LedgerRow:
    """One session's earning, with what an accountant needs beside it."""

    earning: MentorEarning
    mentor: str
    session_start: datetime
    provider: str | None


async def mentor_totals(uow: UnitOfWork) -> list[MentorTotal]:
    """Each mentor's earnings per currency, by mentor id."""
    rows = await uow.session.execute(
        select(
            MentorProfile.id,
            User.display_name,
            MentorEarning.currency,
            func.count(MentorEarning.id),
            func.sum(MentorEarning.amount_minor),
        )
        .join(MentorProfile, MentorProfile.id == MentorEarning.mentor_id)
        .join(User, User.id == MentorProfile.user_id)
        .group_by(MentorProfile.id, User.display_name, MentorEarning.currency)
        .order_by(MentorProfile.id, MentorEarning.currency)
    )
    return [MentorTotal(m, name, cur, n, int(total)) for m, name, cur, n, total in rows]


async def ledger(uow: UnitOfWork) -> Sequence[LedgerRow]:
    """Every earning in the order it was recorded."""
    rows = await uow.session.execute(
        select(MentorEarning, User.display_name, MentorSession.start_at, Order.provider)
        .join(MentorSession, MentorSession.id == MentorEarning.session_id)
        .join(Order, Order.id == MentorEarning.order_id)
        .join(MentorProfile, MentorProfile.id == MentorEarning.mentor_id)
        .join(User, User.id == MentorProfile.user_id)
        .order_by(MentorEarning.id)
    )
    return [LedgerRow(e, name, start, provider) for e, name, start, provider in rows]
