"""Subscriptions' rules, provider by provider alike: periods paid once, grace, lapse, cancel and
resume, rollover, refunds of one period, and the ledger's invariants throughout."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.core.ledger import credits_left, violations
from bot.subscriptions.lifecycle import (
    PeriodPaid,
    lock_subscription,
    record_failure,
    record_period,
    set_cancel_at_period_end,
    start,
)
from bot.subscriptions.refunds import refund_period
from storage.models import (
    Course,
    Enrollment,
    LedgerEntry,
    OutboxMessage,
    Plan,
    Subscription,
    SubscriptionPeriod,
    User,
)
from tests.support import Harness

MONTH = timedelta(days=30)


async def make_plan(
    h: Harness,
    slug: str = "monthly",
    *,
    sessions: int = 2,
    rollover: int = 1,
    trial_days: int = 0,
    price: int = 2900,
) -> int:
    async with h.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        plan = Plan(
            slug=slug,
            name_en="Monthly mentoring",
            name_zh="每月辅导",
            course_id=course.id,
            currency="USD",
            price_minor=price,
            price_stars=500,
            sessions_per_period=sessions,
            rollover_max=rollover,
            trial_days=trial_days,
            intro_session=False,
            status="active",
            created_at=h.app.clock.now(),
        )
        uow.add(plan)
        await uow.commit()
        return plan.id


async def user_id(h: Harness, name: str) -> int:
    await h.send(name, "/start")
    async with h.app.new_uow() as uow:
        return (
            await uow.session.execute(select(User.id).where(User.display_name == name))
        ).scalar_one()


async def subscribe(h: Harness, plan_id: int, who: str = "alice") -> int:
    uid = await user_id(h, who)
    async with h.app.new_uow() as uow:
        plan = await uow.get(Plan, plan_id)
        assert plan is not None
        sub, _created = await start(uow, uid, plan, "stripe", h.app.clock.now())
        await uow.commit()
        return sub.id


def invoice(ref: str, starts: datetime, amount: int = 2900) -> PeriodPaid:
    return PeriodPaid("stripe", ref, starts, starts + MONTH, amount, "USD", f"pi_{ref}")


async def pay(h: Harness, sub_id: int, paid: PeriodPaid) -> bool:
    async with h.app.new_uow() as uow:
        sub = await lock_subscription(uow, sub_id)
        done = await record_period(uow, sub, paid, h.app.clock.now())
        await uow.commit()
        return done is not None


async def fail(h: Harness, sub_id: int) -> bool:
    async with h.app.new_uow() as uow:
        sub = await lock_subscription(uow, sub_id)
        moved = await record_failure(uow, h.app.config, sub, h.app.clock.now())
        await uow.commit()
        return moved


async def state(h: Harness, sub_id: int) -> tuple[str, int]:
    """The subscription's status and the credits left on its enrollment."""
    async with h.app.new_uow() as uow:
        sub = await uow.get(Subscription, sub_id)
        assert sub is not None
        left = 0 if sub.enrollment_id is None else await credits_left(uow, sub.enrollment_id)
        return sub.status, left


async def no_violations(h: Harness) -> None:
    async with h.app.new_uow() as uow:
        assert await violations(uow) == []


async def notices(h: Harness, name: str) -> list[str]:
    async with h.app.new_uow() as uow:
        uid = (
            await uow.session.execute(select(User.id).where(User.display_name == name))
        ).scalar_one()
        rows = await uow.session.execute(
            select(OutboxMessage.body).where(OutboxMessage.user_id == uid)
        )
        return [str(body.get("text", "")) for body in rows.scalars()]


async def test_renewals_failure_grace_recovery_and_lapse(market: Harness, clock: FakeClock) -> None:
    """Subscribe, renew three times, fail, recover in grace, fail again and lapse: credits
    come only from paid periods, rollover caps what carries over, the lapse revokes the rest."""
    plan = await make_plan(market, sessions=2, rollover=1)
    sub = await subscribe(market, plan)
    t0 = clock.now()
    assert await pay(market, sub, invoice("in_1", t0))
    assert await state(market, sub) == ("active", 2)
    for n in range(2, 5):  # three renewals; one unused credit rolls over each time
        clock.advance(MONTH)
        assert await pay(market, sub, invoice(f"in_{n}", t0 + MONTH * (n - 1)))
    assert await state(market, sub) == ("active", 3)
    clock.advance(MONTH)
    assert await fail(market, sub)
    assert not await fail(market, sub)  # Stripe's retry failing again changes nothing
    assert await state(market, sub) == ("past_due", 3)
    assert any("did not go through" in t for t in await notices(market, "alice"))
    clock.advance(timedelta(days=3))
    assert await pay(market, sub, invoice("in_5", t0 + MONTH * 4))  # the card was fixed
    assert await state(market, sub) == ("active", 3)
    clock.advance(MONTH)
    assert await fail(market, sub)
    clock.advance(timedelta(days=6))
    await market.tick()
    assert (await state(market, sub))[0] == "past_due"  # still in grace
    clock.advance(timedelta(days=2))
    await market.tick()
    assert await state(market, sub) == ("lapsed", 0)
    assert any("has ended" in t for t in await notices(market, "alice"))
    await no_violations(market)


async def test_duplicate_and_out_of_order_invoices_grant_each_period_once(
    market: Harness, clock: FakeClock
) -> None:
    """The same invoice twice grants once; an older invoice arriving after a newer one adds its
    sessions without moving the renewal date back."""
    plan = await make_plan(market, sessions=2, rollover=10)
    sub = await subscribe(market, plan)
    t0 = clock.now()
    assert await pay(market, sub, invoice("in_2", t0 + MONTH))
    assert not await pay(market, sub, invoice("in_2", t0 + MONTH))
    assert await pay(market, sub, invoice("in_1", t0))
    assert not await pay(market, sub, invoice("in_1", t0))
    assert await state(market, sub) == ("active", 4)
    async with market.app.new_uow() as uow:
        row = await uow.get(Subscription, sub)
        assert row is not None and row.current_period_end == t0 + 2 * MONTH
        periods = (await uow.session.execute(select(SubscriptionPeriod))).scalars().all()
        assert len(periods) == 2
    await no_violations(market)


async def test_cancel_at_period_end_then_resume_keeps_renewing(
    market: Harness, clock: FakeClock
) -> None:
    """Cancelling keeps access to the period's end; resuming before it renews as before."""
    plan = await make_plan(market)
    sub = await subscribe(market, plan)
    assert await pay(market, sub, invoice("in_1", clock.now()))
    async with market.app.new_uow() as uow:
        row = await lock_subscription(uow, sub)
        assert await set_cancel_at_period_end(uow, row, True, clock.now())
        assert not await set_cancel_at_period_end(uow, row, True, clock.now())
        await uow.commit()
    assert await state(market, sub) == ("cancelling", 2)
    async with market.app.new_uow() as uow:
        row = await lock_subscription(uow, sub)
        assert await set_cancel_at_period_end(uow, row, False, clock.now())
        await uow.commit()
    assert await state(market, sub) == ("active", 2)


async def test_refunding_one_period_takes_back_only_its_unused_credits(
    market: Harness, clock: FakeClock
) -> None:
    """A refunded invoice gives its money back and revokes its credits, once; the other
    period's credits stay."""
    plan = await make_plan(market, sessions=2, rollover=5)
    sub = await subscribe(market, plan)
    assert await pay(market, sub, invoice("in_1", clock.now()))
    clock.advance(MONTH)
    assert await pay(market, sub, invoice("in_2", clock.now()))
    for _ in range(2):
        async with market.app.new_uow() as uow:
            period = (
                await uow.session.execute(
                    select(SubscriptionPeriod.id).where(SubscriptionPeriod.provider_ref == "in_2")
                )
            ).scalar_one()
            await refund_period(uow, period, clock.now())
            await uow.commit()
    assert await state(market, sub) == ("active", 2)
    async with market.app.new_uow() as uow:
        refunds = await uow.session.execute(
            select(LedgerEntry.amount_minor).where(LedgerEntry.kind == "period_refunded")
        )
        assert list(refunds.scalars()) == [-2900]
    await no_violations(market)


async def test_plan_sessions_can_be_booked_like_a_bought_course(
    market: Harness, clock: FakeClock
) -> None:
    """A paid period's sessions are the learner's to ask a mentor for and book."""
    plan = await make_plan(market, sessions=2)
    sub = await subscribe(market, plan)
    assert await pay(market, sub, invoice("in_1", clock.now()))
    await market.send("alice", "/mentor python-basics")
    await market.send("alice", "Learn to write tested code")
    await market.send("alice", "beginner")
    out = await market.send("alice", "any")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    assert "You are now mentoring" in await market.send("ada", f"/accept {request_id}")
    await market.send("alice", f"/book {request_id}")
    assert "Booked" in await market.send("alice", "1")
    assert await state(market, sub) == ("active", 1)
    async with market.app.new_uow() as uow:
        enrollment = (
            await uow.session.execute(select(Enrollment).where(Enrollment.user_id.is_not(None)))
        ).scalar_one()
        assert enrollment.credits_remaining == 1
    await no_violations(market)


async def test_credits_without_a_paid_period_are_a_violation(market: Harness) -> None:
    """The ledger's check names period credits posted with no payment for that period."""
    from bot.core.ledger import Kind, post

    async with market.app.new_uow() as uow:
        await post(uow, "credits:period:99", Kind.PERIOD_CREDITS, market.app.clock.now(), credits=2)
        found = await violations(uow)
    assert any("never paid" in f for f in found)


async def test_admin_stats_show_mrr_and_churn_by_month(market: Harness, clock: FakeClock) -> None:
    """MRR per month is the periods paid minus refunded; churn counts who ended of those live."""
    plan = await make_plan(market)
    first, second = await subscribe(market, plan), await subscribe(market, plan, "bob")
    t0 = clock.now()  # 2 March
    assert await pay(market, first, invoice("in_a1", t0))
    assert await pay(market, second, invoice("in_b1", t0))
    clock.advance(MONTH)  # 1 April
    assert await pay(market, first, invoice("in_a2", t0 + MONTH))
    assert await fail(market, second)
    clock.advance(timedelta(days=8))
    await market.tick()  # bob's grace is over: lapsed in April
    out = await market.send("admin", "/admin stats")
    assert "2026-03: MRR $58.00 · churn — (0 of 0 ended)" in out, out
    assert "2026-04: MRR $29.00 · churn 50% (1 of 2 ended)" in out, out
