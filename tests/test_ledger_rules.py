"""The money and credit rules post to the ledger: balances agree with it whatever the order of
actions, and an order pays out what was sold, not what the course says now."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core import ledger
from bot.core.clock import FakeClock
from storage.models import Course, Enrollment, LedgerEntry, Order
from tests.fakes.fake_stripe import StripeWorld
from tests.support import Harness, buy, matched_pair, request_mentor


async def assert_balances_agree(h: Harness) -> None:
    async with h.app.new_uow() as uow:
        enrollments = list((await uow.session.execute(select(Enrollment))).scalars())
        assert enrollments
        for e in enrollments:
            assert e.credits_remaining == await ledger.credits_left(uow, e.id), e.id
        assert await ledger.violations(uow) == []


async def test_a_journey_keeps_every_cached_balance_equal_to_the_ledger(
    market: Harness, clock: FakeClock
) -> None:
    """Buy, book, a mentor's and a late learner's cancellation, complete, complete again,
    refund: each enrollment's credits equal the ledger's sum, the session earns once, and the
    refund reverses it."""
    request_id = await matched_pair(market)
    await buy(market, "bob", "git-teamwork")
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    assert "The session credit is back" in await market.send("ada", "/cancelsession 1")
    await market.send("ada", "/cancelsession 1")  # again: no second credit
    await assert_balances_agree(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    assert "used up" in await market.send("alice", "/cancelsession 2 confirm")
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    clock.advance(timedelta(days=1))
    await market.send("ada", "/complete 3")
    await market.send("ada", "/complete 3")
    await assert_balances_agree(market)
    async with market.app.new_uow() as uow:
        assert await ledger.credits_left(uow, 1) == 2
        assert await ledger.mentor_earnings(uow) == {(1, "USD"): 980}
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")
    assert "Order #2 refunded" in await market.send("admin", "/admin refund 2")
    await assert_balances_agree(market)
    async with market.app.new_uow() as uow:
        assert await ledger.credits_left(uow, 1) == 0
        assert await ledger.mentor_earnings(uow) == {(1, "USD"): 0}
        assert await ledger.order_balance(uow, 1) == (4900, 4900)
        assert await ledger.revenue(uow) == {}  # demo payments move no money


async def test_a_session_completed_after_its_refund_earns_nothing(
    market: Harness, clock: FakeClock
) -> None:
    """A refund while a session is under way, then the mentor's /complete: no earning posted."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    clock.advance(timedelta(days=1))
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")
    await market.send("ada", "/complete 1")
    async with market.app.new_uow() as uow:
        assert await ledger.mentor_earnings(uow) == {}
        assert await ledger.violations(uow) == []


async def test_editing_a_course_after_the_sale_pays_what_the_order_sold(
    market: Harness, clock: FakeClock
) -> None:
    """A $49 order for 4 sessions, then the course is cut to 1 session at $199: the completed
    session still earns $9.80 (a quarter of the order, less the 20% fee)."""
    request_id = await matched_pair(market)
    async with market.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        course.sessions_included, course.price_minor = 1, 19900
        await uow.commit()
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    clock.advance(timedelta(days=1))
    await market.send("ada", "/complete 1")
    assert "#1 ada: $9.80 from 1 session" in await market.send("admin", "/admin earnings")
    await assert_balances_agree(market)


async def test_a_price_change_replaces_the_pending_order_on_the_next_buy(
    world: StripeWorld,
) -> None:
    """/buy, then the price goes up: the next /buy cancels the old order and offers a new one at
    the new price on a new payment page."""
    old_id, old_session = await world.buy("alice")
    async with world.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        course.price_minor = 5900
        await uow.commit()
    new_id, new_session = await world.buy("alice")
    assert new_id != old_id and new_session != old_session
    assert (await world.order(old_id)).status == "cancelled"
    new = await world.order(new_id)
    assert (new.status, new.amount_minor) == ("pending", 5900)
    again_id, again_session = await world.buy("alice")
    assert (again_id, again_session) == (new_id, new_session)


async def test_a_partial_stripe_refund_posts_its_part_and_never_more_than_paid(
    world: StripeWorld,
) -> None:
    """$9 refunded in Stripe's dashboard, reported twice, then the rest: the ledger shows $9,
    then $49 refunded of $49 paid, and revenue back to nothing."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    await world.send(world.fake.event("checkout.session.completed", paid))
    partial = world.fake.refund_charge(paid["payment_intent"], amount=900)
    await world.send(world.fake.event("charge.refunded", partial))
    await world.send(world.fake.event("charge.refunded", partial))
    async with world.app.new_uow() as uow:
        assert await ledger.order_balance(uow, order_id) == (4900, 900)
        assert await ledger.revenue(uow) == {"USD": 4000}
    full = world.fake.refund_charge(paid["payment_intent"])
    await world.send(world.fake.event("charge.refunded", full))
    async with world.app.new_uow() as uow:
        assert await ledger.order_balance(uow, order_id) == (4900, 4900)
        assert await ledger.revenue(uow) == {"USD": 0}
        order = await uow.get(Order, order_id)
        assert order is not None and order.status == "refunded"
    await assert_balances_agree(world.h)


async def entries_of(h: Harness, *kinds: ledger.Kind) -> list[tuple[str, int | None, int]]:
    """(kind, session, amount) of the entries of `kinds`, in the order they were posted."""
    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(LedgerEntry.kind, LedgerEntry.session_id, LedgerEntry.amount_minor)
            .where(LedgerEntry.kind.in_([k.value for k in kinds]))
            .order_by(LedgerEntry.id)
        )
        return [(str(k), s, int(a)) for k, s, a in rows]


async def test_a_card_paid_session_posts_the_platform_fee_and_a_refund_reverses_it(
    world: StripeWorld, clock: FakeClock
) -> None:
    """$49 by card for 4 sessions, one completed: the mentor earns $9.80 and the platform's fee
    is the rest of that session's $12.25, both shown by /admin stats; a refund reverses both."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    await world.send(world.fake.event("checkout.session.completed", paid))
    out = await request_mentor(world.h, "alice")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    await world.h.send("ada", f"/accept {request_id}")
    await world.h.send("alice", f"/book {request_id}")
    await world.h.send("alice", "1")
    clock.advance(timedelta(days=1))
    await world.h.send("ada", "/complete 1")
    await world.h.send("ada", "/complete 1")  # again: nothing more is posted
    fees = (ledger.Kind.MENTOR_EARNING, ledger.Kind.PLATFORM_FEE)
    assert await entries_of(world.h, *fees) == [
        ("mentor_earning", 1, 980),
        ("platform_fee", 1, 245),
    ]
    out = await world.h.send("admin", "/admin stats")
    assert "Of that, earned by mentors: $9.80 · platform fees: $2.45" in out
    assert f"Order #{order_id} refunded" in await world.h.send(
        "admin", f"/admin refund {order_id} force"
    )
    reversals = (ledger.Kind.EARNING_REVERSED, ledger.Kind.FEE_REVERSED)
    assert await entries_of(world.h, *reversals) == [
        ("earning_reversed", 1, -980),
        ("fee_reversed", 1, -245),
    ]
    out = await world.h.send("admin", "/admin stats")
    assert "Of that, earned by mentors: none yet · platform fees: none yet" in out
    await assert_balances_agree(world.h)


async def test_an_orders_earnings_and_fees_never_exceed_what_it_brought_in(
    market: Harness, clock: FakeClock
) -> None:
    """$49.99 for 3 sessions, all completed: each earns $13.33 and leaves a $3.33 fee, so the
    order pays out $49.98 of $49.99 (the odd cent stays with the order, never overpaid)."""
    async with market.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        course.sessions_included, course.price_minor = 3, 4999
        await uow.commit()
    request_id = await matched_pair(market)
    for session in (1, 2, 3):
        await market.send("alice", f"/book {request_id}")
        await market.send("alice", "1")
        clock.advance(timedelta(days=1))
        await market.send("ada", f"/complete {session}")
    fees = (ledger.Kind.MENTOR_EARNING, ledger.Kind.PLATFORM_FEE)
    posted = await entries_of(market, *fees)
    assert [a for _k, _s, a in posted] == [1333, 333] * 3
    assert sum(a for _k, _s, a in posted) == 4998
    await assert_balances_agree(market)


async def test_violations_name_an_order_paying_out_more_than_it_brought_in(
    market: Harness, clock: FakeClock
) -> None:
    """An earning and a fee that together exceed the order's payment are named."""
    await buy(market, "alice")
    async with market.app.new_uow() as uow:
        now = clock.now()
        await ledger.post(
            uow, "t:earn", ledger.Kind.MENTOR_EARNING, now, order_id=1, amount_minor=4000
        )
        assert await ledger.violations(uow) == []
        await ledger.post(
            uow, "t:fee", ledger.Kind.PLATFORM_FEE, now, order_id=1, amount_minor=1000
        )
        assert await ledger.violations(uow) == [
            "order 1: earnings and fees 5000 exceed 4900 it brought"
        ]
