"""Many learners pressing Join at once for too few seats, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.core.users import Incoming
from bot.payments import fulfil_order, place_order
from storage.models import (
    Course,
    Identity,
    LedgerEntry,
    WorkshopSeat,
    WorkshopWaitlist,
)
from tests.support import Harness

LEARNERS = 30
SEATS = 8


async def _with_credits(h: Harness, names: list[str]) -> None:
    """Each learner exists and owns the python-basics course (paid, demo)."""
    for name in names:
        await h.send(name, "/courses")
    async with h.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        ids = await uow.session.execute(
            select(Identity.user_id).where(Identity.external_id.in_(names))
        )
        for user_id in ids.scalars():
            placed = await place_order(uow, user_id, course.id, h.app.clock.now(), h.app.config)
            await fulfil_order(uow, h.app.config, placed.order, h.app.clock.now(), "demo")
        await uow.commit()


async def test_thirty_press_join_for_eight_seats(market: Harness) -> None:
    """30 learners pressing Join at once for 8 seats: 8 seated (8 credits spent), 22
    waitlisted at places 1 to 22 in the order their presses were taken, and a freed seat is
    offered to place 1."""
    names = [f"learner{i:02d}" for i in range(LEARNERS)]
    await _with_credits(market, names)
    out = await market.send(
        "ada",
        f'/workshop new title="Race" start="2026-03-05 18:00" seats={SEATS} course=python-basics',
    )
    wid = int(out.split("#", 1)[1].split(" ", 1)[0])
    app = market.app
    replies = await asyncio.gather(
        *(app.handle(Incoming("console", n, n, f"/join {wid}")) for n in names)
    )
    texts = {n: "\n".join(r.text for r in rs) for n, rs in zip(names, replies, strict=True)}
    seated = [n for n, t in texts.items() if "You have a seat" in t]
    places = {
        n: int(t.split("You are number ", 1)[1].split(" ", 1)[0])
        for n, t in texts.items()
        if "You are number " in t
    }
    assert len(seated) == SEATS, texts
    assert sorted(places.values()) == list(range(1, LEARNERS - SEATS + 1)), texts
    async with app.new_uow() as uow:
        n_seats = await uow.session.execute(
            select(func.count(WorkshopSeat.id)).where(WorkshopSeat.status == "seated")
        )
        assert n_seats.scalar_one() == SEATS
        line = await uow.session.execute(
            select(Identity.external_id)
            .join(WorkshopWaitlist, WorkshopWaitlist.user_id == Identity.user_id)
            .order_by(WorkshopWaitlist.id)
        )
        in_order = list(line.scalars())
        used = await uow.session.execute(
            select(func.sum(LedgerEntry.credits)).where(LedgerEntry.kind == "workshop_credit_used")
        )
        assert used.scalar_one() == -SEATS
    assert [places[n] for n in in_order] == list(range(1, LEARNERS - SEATS + 1))
    out = await market.send(seated[0], f"/leave {wid}")
    assert f"message for {in_order[0]}" in out and "A seat is free for you" in out, out
