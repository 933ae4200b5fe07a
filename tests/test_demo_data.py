"""The demo's history: a few weeks of use played through the real commands, so every view
has something to show, none of it waiting to be announced as news."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from bot.runtime.demo_data import seed_demo
from storage.models import LessonDelivery, LessonRating, Order, OutboxMessage, Rating
from tests.support import AppFactory, harness_for


async def test_the_demo_history_fills_every_view_and_keeps_no_old_notice(
    make_app: AppFactory,
) -> None:
    """Paid demo orders, completed and missed sessions, ratings both ways, lessons read; the
    stats, breakdowns and chart show them; no notice of the past is delivered as news."""
    h = harness_for(await make_app())
    assert await seed_demo(h.app, history=True)
    async with h.app.new_uow() as uow:

        async def count(stmt: object) -> int:
            return int((await uow.session.execute(stmt)).scalar_one())  # type: ignore[call-overload]

        paid = await count(select(func.count(Order.id)).where(Order.status == "paid"))
        assert paid == await count(select(func.count(Order.id)).where(Order.provider == "demo"))
        assert await count(select(func.count(Rating.id))) >= 8
        assert await count(select(func.count(LessonDelivery.id))) >= 4
        assert await count(select(func.count(LessonRating.id))) >= 4
        assert (
            await count(select(func.count(OutboxMessage.id)).where(OutboxMessage.sent_at.is_(None)))
            == 0
        )
    out = await h.send("admin", "/admin stats")
    assert re.search(r"Sessions completed: \d+ · no-shows: 1", out)
    assert f"of which {paid} paid with demo payments" in out
    assert "Mentors rating their learners: " in out and "no ratings yet" not in out
    assert "stats.png" in out
    out = await h.send("admin", "/admin stats mentors")
    assert "#1 ada (approved): sessions " in out and "sessions 0 " not in out
    assert "(4 learners)" in await h.send("admin", "/admin stats")
    out = await h.send("sam", "/sessions")
    assert "completed" in out and "no-show" in out
    assert not await seed_demo(h.app, history=True)  # a catalogue exists: nothing added
