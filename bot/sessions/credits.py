"""Session credits move only through the ledger: each move posts its entry and, only when it
was posted (not a retry), updates the enrollment's cached `credits_remaining`.

So the cached balance the queries filter on can never drift from `credits_left()`, and a
cancellation or a no-show handled twice gives the credit back once.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.ledger import Kind, post
from storage.models import Enrollment, MentorSession
from storage.uow import UnitOfWork


async def move_credits(
    uow: UnitOfWork,
    enrollment: Enrollment,
    kind: Kind,
    key: str,
    credits: int,
    now: datetime,
    *,
    session: MentorSession | None = None,
) -> bool:
    """Post `credits` (signed, towards the learner) on the locked enrollment; False on a retry."""
    entry = await post(
        uow,
        key,
        kind,
        now,
        user_id=enrollment.user_id,
        order_id=enrollment.order_id,
        enrollment_id=enrollment.id,
        session_id=session.id if session is not None else None,
        credits=credits,
    )
    if entry is None:
        return False
    enrollment.credits_remaining += credits
    return True


async def use_credit(
    uow: UnitOfWork, enrollment: Enrollment, session: MentorSession, now: datetime
) -> None:
    """The booked session spends one credit."""
    await move_credits(
        uow, enrollment, Kind.CREDIT_USED, f"used:session:{session.id}", -1, now, session=session
    )


async def return_credit(
    uow: UnitOfWork, enrollment: Enrollment, session: MentorSession, now: datetime
) -> bool:
    """Give the session's credit back, at most once per session."""
    return await move_credits(
        uow,
        enrollment,
        Kind.CREDIT_RETURNED,
        f"returned:session:{session.id}",
        1,
        now,
        session=session,
    )
