"""The ledger's sums and its invariants, on entries posted directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.core.ledger import (
    REVENUE_KINDS,
    Kind,
    credits_by_enrollment,
    credits_left,
    mentor_earnings,
    order_balance,
    post,
    revenue,
    totals_by_currency,
    violations,
)
from storage.models import Enrollment, LedgerEntry, LedgerTotal, MentorProfile
from tests.support import Harness, buy


@dataclass(frozen=True)
class Bought:
    id: int
    order_id: int


@pytest.fixture
async def bought(market: Harness) -> tuple[Harness, Bought]:
    """The demo marketplace with one course bought: its enrollment's and order's ids."""
    await buy(market, "alice")
    async with market.app.new_uow() as uow:
        enrollment = (await uow.session.execute(select(Enrollment))).scalars().one()
        return market, Bought(enrollment.id, enrollment.order_id)


async def test_posting_the_same_movement_twice_posts_it_once(
    bought: tuple[Harness, Bought], clock: FakeClock
) -> None:
    """An entry's key names its movement: a retry returns None and the sum does not move."""
    h, enrollment = bought
    async with h.app.new_uow() as uow:
        first = await post(
            uow,
            "test:grant",
            Kind.CREDIT_GRANTED,
            clock.now(),
            enrollment_id=enrollment.id,
            credits=3,
        )
        again = await post(
            uow,
            "test:grant",
            Kind.CREDIT_GRANTED,
            clock.now(),
            enrollment_id=enrollment.id,
            credits=3,
        )
        assert first is not None and again is None
        before = await credits_left(uow, enrollment.id)
        await post(
            uow, "test:use", Kind.CREDIT_USED, clock.now(), enrollment_id=enrollment.id, credits=-1
        )
        assert await credits_left(uow, enrollment.id) == before - 1
        assert (await credits_by_enrollment(uow, [enrollment.id, 999]))[999] == 0
        await uow.commit()


async def test_revenue_leaves_demo_money_out_and_refunds_subtract(
    bought: tuple[Harness, Bought], clock: FakeClock
) -> None:
    """Revenue is paid minus refunded per currency, without demo payments."""
    h, enrollment = bought
    async with h.app.new_uow() as uow:
        order_id = enrollment.order_id
        baseline = await revenue(uow)
        await post(
            uow,
            "t:paid",
            Kind.ORDER_PAID,
            clock.now(),
            order_id=order_id,
            currency="EUR",
            amount_minor=4900,
        )
        await post(
            uow,
            "t:demo",
            Kind.ORDER_PAID,
            clock.now(),
            order_id=order_id,
            currency="EUR",
            amount_minor=999,
            demo=True,
        )
        await post(
            uow,
            "t:refund",
            Kind.ORDER_REFUNDED,
            clock.now(),
            order_id=order_id,
            currency="EUR",
            amount_minor=-900,
        )
        assert (await revenue(uow))["EUR"] == baseline.get("EUR", 0) + 4000
        paid, refunded = await order_balance(uow, order_id)
        assert refunded == 900 and paid >= 4900
        await uow.commit()


async def test_violations_name_a_refund_above_what_was_paid_and_negative_credits(
    bought: tuple[Harness, Bought], clock: FakeClock
) -> None:
    """The invariant check finds an over-refund and credits below zero, and nothing else."""
    h, enrollment = bought
    async with h.app.new_uow() as uow:
        await uow.session.execute(LedgerEntry.__table__.delete())
        assert await violations(uow) == []
        order_id = enrollment.order_id
        await post(
            uow,
            "t:paid",
            Kind.ORDER_PAID,
            clock.now(),
            order_id=order_id,
            currency="USD",
            amount_minor=4900,
        )
        await post(
            uow,
            "t:refund",
            Kind.ORDER_REFUNDED,
            clock.now(),
            order_id=order_id,
            currency="USD",
            amount_minor=-5000,
        )
        await post(
            uow, "t:use", Kind.CREDIT_USED, clock.now(), enrollment_id=enrollment.id, credits=-1
        )
        found = await violations(uow)
        assert found == [
            f"order {order_id}: refunded 5000 of 4900 paid",
            f"enrollment {enrollment.id}: -1 credits left",
        ]


async def test_a_mentors_earnings_are_net_of_reversals(
    bought: tuple[Harness, Bought], clock: FakeClock
) -> None:
    """Earnings sum per mentor and currency; a reversal cancels its earning."""
    h, _enrollment = bought
    async with h.app.new_uow() as uow:
        mentor = (await uow.session.execute(select(MentorProfile))).scalars().first()
        assert mentor is not None
        earning = await post(
            uow,
            "t:earn",
            Kind.MENTOR_EARNING,
            clock.now(),
            mentor_id=mentor.id,
            currency="USD",
            amount_minor=1000,
        )
        await post(
            uow,
            "t:earn2",
            Kind.MENTOR_EARNING,
            clock.now(),
            mentor_id=mentor.id,
            currency="USD",
            amount_minor=500,
        )
        assert earning is not None
        await post(
            uow,
            "t:rev",
            Kind.EARNING_REVERSED,
            clock.now(),
            mentor_id=mentor.id,
            currency="USD",
            amount_minor=-1000,
            reverses_id=earning.id,
        )
        assert (await mentor_earnings(uow, mentor.id))[(mentor.id, "USD")] == 500


async def test_all_time_totals_from_kept_sums_equal_every_entry_summed(
    bought: tuple[Harness, Bought], clock: FakeClock
) -> None:
    """`/admin stats` reads all-time revenue from a kept sum of what is over a day old plus
    the entries after it: over days of payments and refunds, with an entry posted late with an
    instant from before the kept sum, and a demo payment, it says what summing every entry
    says, and it keeps one row per day rather than summing the past again."""
    h, enrollment = bought
    start = clock.now()
    steps = [
        (timedelta(0), Kind.ORDER_PAID, "EUR", 4900, start),
        (timedelta(hours=30), Kind.ORDER_PAID, "USD", 2500, None),
        (timedelta(hours=2), Kind.ORDER_REFUNDED, "EUR", -900, None),
        (timedelta(days=3), Kind.ORDER_PAID, "EUR", 1200, None),
        (timedelta(0), Kind.ORDER_PAID, "EUR", 700, start - timedelta(days=2)),  # posted late
        (timedelta(days=1), Kind.ORDER_REFUNDED, "USD", -2500, None),
        (timedelta(hours=1), Kind.ORDER_PAID, "EUR", 10_000, None),
    ]
    kept_rows = []
    for i, (jump, kind, currency, amount, at) in enumerate(steps):
        clock.advance(jump)
        async with h.app.new_uow() as uow:
            await post(
                uow,
                f"t:{i}",
                kind,
                at or clock.now(),
                order_id=enrollment.order_id,
                currency=currency,
                amount_minor=amount,
                demo=i == 3,
            )
            every = await revenue(uow)
            (kept,) = await totals_by_currency(uow, clock.now(), REVENUE_KINDS)
            assert kept == every, (i, kept, every)
            await uow.commit()
        async with h.app.new_uow() as uow:
            kept_rows = list((await uow.session.execute(select(LedgerTotal.through_at))).scalars())
            assert await totals_by_currency(uow, clock.now(), REVENUE_KINDS) == [every]
    assert len(set(kept_rows)) == len(kept_rows) >= 3  # one kept sum per day
    assert every["EUR"] == 4900 - 900 + 700 + 10_000  # the demo payment moved no money
    assert every["USD"] == 0
