"""Shared steps for tests: a snapshot of what the database holds, and common journeys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import (
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    RequestOffer,
)
from tests.conftest import Harness

SNAPSHOT_MODELS = (
    Course,
    Order,
    Enrollment,
    MentorProfile,
    MentorshipRequest,
    RequestOffer,
    MentorSession,
    Rating,
)


async def snapshot(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every business row's columns, to prove that a refused action changed nothing."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with h.app.new_uow() as uow:
        for model in SNAPSHOT_MODELS:
            rows = (await uow.session.execute(select(model))).scalars().all()
            cols = [c.key for c in model.__table__.columns]
            result[model.__tablename__] = sorted(
                (tuple(getattr(r, c) for c in cols) for r in rows), key=repr
            )
    return result


async def buy(h: Harness, who: str, slug: str = "python-basics") -> None:
    out = await h.send(who, f"/buy {slug}")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    out = await h.send(who, f"/pay {order_id}")
    assert "is yours" in out, out


async def request_mentor(h: Harness, who: str, slug: str = "python-basics") -> str:
    await h.send(who, f"/mentor {slug}")
    await h.send(who, "Learn to write tested code")
    await h.send(who, "beginner")
    return await h.send(who, "any")


async def matched_pair(h: Harness, learner: str = "alice", mentor: str = "ada") -> int:
    """A learner with a paid course whose request `mentor` accepted; returns the request id."""
    await buy(h, learner)
    out = await request_mentor(h, learner)
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    out = await h.send(mentor, f"/accept {request_id}")
    assert "You are now mentoring" in out, out
    return request_id
