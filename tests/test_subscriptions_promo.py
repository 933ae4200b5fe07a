"""Promo codes: made by admins, used at /subscribe, /buy and /start promo_CODE, once per
learner, and their caps holding when many learners race for the last uses."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.core.errors import BadInput
from bot.subscriptions.promo import redeem
from storage.models import LedgerEntry, PromoUse, User
from tests.support import Harness

ADD = '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 sessions=2'


async def test_twenty_learners_racing_for_a_code_with_five_uses_get_five(
    market: Harness,
) -> None:
    """Exactly five of twenty concurrent redemptions succeed; the rest are told it is used up."""
    out = await market.send("admin", "/admin promo add FIVE percent=10 max=5")
    assert "added" in out, out
    now = market.app.clock.now()
    async with market.app.new_uow() as uow:
        users = [
            User(display_name=f"racer{i}", language="en", timezone="UTC", created_at=now)
            for i in range(20)
        ]
        for user in users:
            uow.add(user)
        await uow.flush()
        ids = [u.id for u in users]
        await uow.commit()

    async def race(user_id: int) -> bool:
        try:
            async with market.app.new_uow() as uow:
                await redeem(uow, user_id, "five", 2900, "USD", now)
                await uow.commit()
                return True
        except BadInput:
            return False

    won = await asyncio.gather(*(race(i) for i in ids))
    assert sum(won) == 5
    async with market.app.new_uow() as uow:
        uses = (await uow.session.execute(select(func.count()).select_from(PromoUse))).scalar()
        entries = await uow.session.execute(
            select(LedgerEntry.amount_minor).where(LedgerEntry.kind == "promo_used")
        )
        assert uses == 5 and list(entries.scalars()) == [-290] * 5
    assert "used 5 of 5" in await market.send("admin", "/admin promos")


async def test_a_code_lowers_a_subscription_once_per_learner(market: Harness) -> None:
    """A forever code lowers every period's price; the same learner cannot use it twice."""
    await market.send("admin", ADD)
    await market.send("admin", "/admin promo add SAVE20 percent=20 duration=forever")
    out = await market.send("alice", "/start promo_save20")
    assert "20% off every period" in out and "Monthly Python" in out, out
    out = await market.send("alice", "1")  # the plan's button: /subscribe monthly SAVE20
    assert "$23.20 a month" in out, out
    await market.send("alice", "/subscription pay 1")
    assert "$23.20" in await market.send("alice", "/subscription")
    await market.send("alice", "/subscription cancel 1")
    out = await market.send("alice", "/buy data-analysis SAVE20")
    assert "used promo code SAVE20 already" in out, out


async def test_a_code_at_buy_lowers_the_order_and_expired_or_unknown_codes_are_refused(
    market: Harness, clock: FakeClock
) -> None:
    """`/buy SLUG CODE` opens the order at the lower price; a wrong code changes nothing."""
    await market.send("admin", "/admin promo add HALF percent=50 expires=2026-03-10")
    out = await market.send("bob", "/buy python-basics NOPE")
    assert "There is no promo code 'NOPE'" in out, out
    out = await market.send("alice", "/buy python-basics half")
    assert "Order #" in out and "$24.50" in out, out
    clock.advance(timedelta(days=10))
    out = await market.send("bob", "/buy python-basics HALF")
    assert "expired" in out, out
    assert "percent=N" in await market.send("admin", "/admin promo add BAD")


async def test_the_suggestions_word_cannot_be_a_promo_code(market: Harness) -> None:
    """A suggested plan's Subscribe button ends in "suggested" (it counts the suggestion
    opened), so no promo code may be spelt so: the admin is told and nothing is made; the
    button subscribes at the plan's price."""
    await market.send("admin", ADD)
    out = await market.send("admin", "/admin promo add suggested percent=50")
    assert "Promo code SUGGESTED cannot be made" in out, out
    out = await market.send("bob", "/subscribe monthly suggested")
    assert "Subscription #1: Monthly Python, $29.00 a month." in out, out
