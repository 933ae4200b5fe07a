"""Workshops (group sessions) through the chat: seats, the waitlist, leaving and cancelling,
attendance, ratings, reminders, and where the meeting link is shown."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from storage.models import LedgerEntry, MentorProfile, WorkshopSeat
from tests.support import Harness, buy, snapshot

NEW = '/workshop new title="Testing with pytest" start="2026-03-05 18:00" seats={seats}'
LINK = "meet.jit.si/mentorbot-w"


async def new_workshop(h: Harness, seats: int = 2, extra: str = "", who: str = "ada") -> int:
    out = await h.send(who, NEW.format(seats=seats) + " " + extra)
    assert "Workshop created" in out, out
    return int(out.split("#", 1)[1].split(" ", 1)[0])


async def credits_used(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        found = await uow.session.execute(
            select(func.coalesce(func.sum(LedgerEntry.credits), 0)).where(
                LedgerEntry.kind.in_(["workshop_credit_used", "workshop_credit_returned"])
            )
        )
        return -int(found.scalar_one())


async def test_a_seat_is_taken_with_a_credit_and_shows_the_link(market: Harness) -> None:
    """Joining a paid workshop spends its credit, and the seat's reply carries the link."""
    await buy(market, "alice")
    wid = await new_workshop(market, extra="course=python-basics credits=1")
    out = await market.send("alice", f"/join {wid}")
    assert "You have a seat" in out and LINK in out, out
    assert "3 session credits left" in out, out
    assert await credits_used(market) == 1
