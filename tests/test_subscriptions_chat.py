"""Plans in chat on the demo provider: an admin adds a plan, a learner subscribes, the clock
renews it, reminds before renewals and ends it after a cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sqlalchemy import func, select

from bot.accounts.data_rights import export_user
from bot.core import ledger
from bot.core.clock import FakeClock
from bot.core.users import Incoming
from storage.models import (
    Identity,
    LedgerEntry,
    MentorProfile,
    MentorshipRequest,
    OutboxMessage,
    RequestOffer,
    Subscription,
    User,
)
from tests.support import Harness, apologies_in, buy, request_mentor, snapshot

ADD = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 rollover=1"
)


async def test_admin_adds_a_plan_and_a_learner_walks_the_whole_demo_flow(
    market: Harness, clock: FakeClock
) -> None:
    """Subscribe, start, see the status, renew by the clock, get reminded, cancel, end."""
    out = await market.send("admin", ADD)
    assert "Plan 'monthly' added" in out, out
    out = await market.send("alice", "/plans")
    assert "Monthly Python" in out and "/subscribe monthly" in out, out
    out = await market.send("alice", "/subscribe monthly")
    assert "Subscription #1" in out and "$29.00" in out, out
    out = await market.send("alice", "/subscription pay 1")
    assert "has started" in out, out
    out = await market.send("alice", "/subscription")
    assert "2 sessions left this period" in out and "renews on" in out, out
    clock.advance(timedelta(days=27, hours=1))
    out = await market.tick()
    assert "renews on" in out and "2 sessions left" in out, out
    assert "renews on" not in await market.tick()  # once per period
    clock.advance(timedelta(days=3))
    out = await market.tick()
    assert "period paid" in out and "3 sessions" in out, out  # one rolled over
    out = await market.send("alice", "/subscription cancel 1")
    assert "ends on" in out, out
    out = await market.send("alice", "/subscription")
    assert "ending at the end of the period" in out and "Resume" in out, out
    clock.advance(timedelta(days=31))
    out = await market.tick()
    assert "has ended, as you asked" in out, out
    assert "no subscription" in await market.send("alice", "/subscription")


async def test_a_free_trial_starts_without_credits_then_the_first_period_grants_them(
    market: Harness, clock: FakeClock
) -> None:
    """A trial gives access but no sessions; its end is announced ahead, then it is paid."""
    await market.send("admin", ADD + " trial=7")
    await market.send("alice", "/subscribe monthly")
    out = await market.send("alice", "/subscription pay 1")
    assert "free trial" in out, out
    assert "0 sessions left" in await market.send("alice", "/subscription")
    clock.advance(timedelta(days=4, hours=1))
    out = await market.tick()
    assert "Your free trial of Monthly Python ends on" in out, out
    clock.advance(timedelta(days=3))
    out = await market.tick()
    assert "period paid" in out and "2 sessions" in out, out


async def test_wrong_plan_input_is_refused_politely_and_changes_nothing(market: Harness) -> None:
    """Unknown plans, fields, numbers and other people's subscriptions change nothing."""
    await market.send("admin", ADD)
    await market.send("alice", "/subscribe monthly")
    await market.send("bob", "/start")
    before = await snapshot(market, every_table=True)
    cases = {
        ("alice", "/subscribe nope"): "There is no plan called 'nope'",
        ("admin", "/admin plan add monthly course=python-basics"): "already exists",
        ("admin", "/admin plan add other course=python-basics name=x price=1"): "Missing",
        ("admin", "/admin plan edit monthly sessions=0"): "sessions must be a whole number",
        ("admin", "/admin plan edit monthly colour=red"): "Unknown plan field 'colour'",
        ("admin", "/admin plan edit monthly price=1.234"): "price must be an amount in USD",
        ("admin", "/admin subscriptions weird"): "/admin subscriptions does not take 'weird'",
        ("bob", "/subscription pay 1"): "You have no subscription #1",
        ("alice", "/subscription cancel 1"): "cannot be changed",
        ("alice", "/plan"): "",
    }
    for (who, line), expected in cases.items():
        out = await market.send(who, line)
        assert expected in out, (line, out)
        assert "went wrong" not in out and "Traceback" not in out
    assert await snapshot(market, every_table=True) == before


async def test_admin_lists_plans_and_subscriptions_by_status(market: Harness) -> None:
    """`/admin plans` counts subscribers; `/admin subscriptions active` lists live ones."""
    await market.send("admin", ADD)
    await market.send("alice", "/subscribe monthly")
    await market.send("alice", "/subscription pay 1")
    out = await market.send("admin", "/admin plans")
    assert "monthly" in out and "1 subscriber" in out, out
    out = await market.send("admin", "/admin subscriptions active")
    assert "#1 alice" in out, out
    order = out.split("· order #", 1)[1].split(":", 1)[0]
    assert f"/admin refund {order} refunds a period" in out, out
    assert "Refund period 1" in await market.send("admin", f"/admin refund {order}")
    assert "No subscriptions." in await market.send("admin", "/admin subscriptions lapsed")
    assert "Only marketplace admins" in await market.send("alice", "/admin plans")


async def paid_demo_plan(market: Harness) -> int:
    """alice subscribes to the monthly plan on the demo provider; returns its anchor order."""
    await market.send("admin", ADD)
    await market.send("alice", "/subscribe monthly")
    assert "has started" in await market.send("alice", "/subscription pay 1")
    async with market.app.new_uow() as uow:
        sub = await uow.get(Subscription, 1)
        assert sub is not None and sub.order_id is not None
        return sub.order_id


async def period_money(market: Harness) -> list[tuple[str, int]]:
    async with market.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount_minor)
            .where(LedgerEntry.kind.in_(("period_paid", "period_refunded")))
            .order_by(LedgerEntry.id)
        )
        return [(str(k), int(a)) for k, a in rows]


async def test_an_admin_refunds_one_demo_period_once_and_the_subscription_goes_on(
    market: Harness,
) -> None:
    """`/admin refund ORDER` on a subscription's order lists its periods; `period=N` refunds
    that one (its unused sessions taken back, the learner told), the subscription going on;
    a second press changes nothing, and `/admin unsubscribe` ends it when the admin asks."""
    order = await paid_demo_plan(market)
    out = await market.send("admin", f"/admin refund {order}")
    assert "Period 1 from" in out and "$29.00 (demo payment)" in out, out
    assert "[1] Refund period 1" in out, out
    assert await period_money(market) == [("period_paid", 2900)]
    out = await market.send("admin", "1")  # the button: /admin refund ORDER period=1
    assert "Period 1 of subscription #1 refunded ($29.00); 2 sessions taken back." in out, out
    assert "goes on and renews on" in out and "/admin unsubscribe 1" in out, out
    assert "a period's payment was refunded ($29.00); 2 of its sessions" in "\n".join(market.output)
    assert await period_money(market) == [("period_paid", 2900), ("period_refunded", -2900)]
    status = await market.send("alice", "/subscription")
    assert "— active · renews on" in status and "0 sessions left" in status, status
    before = await snapshot(market, every_table=True)
    out = await market.send("admin", f"/admin refund {order} period=1 force")
    assert "was refunded on" in out and "nothing more to do" in out, out
    assert "Period 1 from" in await market.send("admin", f"/admin refund {order}")
    assert await snapshot(market, every_table=True) == before
    for line, said in {
        f"/admin refund {order} period=2": "has no paid period 2",
        f"/admin refund {order} period=x": "'x' is not a number",
        "/admin refund 99 period=1": "There is no order #99",
        "/admin unsubscribe 7": "There is no subscription #7",
    }.items():
        assert said in await market.send("admin", line), line
    assert await snapshot(market, every_table=True) == before
    out = await market.send("admin", "/admin unsubscribe 1")
    assert "Subscription #1 ends on" in out and "does not renew" in out, out
    assert "An admin has ended your subscription to Monthly Python" in "\n".join(market.output)
    assert "ending at the end of the period" in await market.send("alice", "/subscription")
    assert "already set to end" in await market.send("admin", "/admin unsubscribe 1")
    async with market.app.new_uow() as uow:
        assert not await ledger.violations(uow)


async def test_two_admins_pressing_refund_at_once_refund_the_period_once(market: Harness) -> None:
    """Two presses of Refund period 1 at the same moment: the money goes back once, the
    learner is told once, and both admins get a polite answer."""
    order = await paid_demo_plan(market)
    line = f"/admin refund {order} period=1"
    told_before = await notices_to(market, "alice")
    replies = await asyncio.gather(
        *(market.app.handle(Incoming("console", "admin", "admin", line, "en")) for _ in "ab")
    )
    outs = ["\n".join(r.text for r in rs) for rs in replies]
    assert sum("2 sessions taken back" in out for out in outs) == 1, outs
    assert all("refunded" in out and not apologies_in(out) for out in outs), outs
    assert await period_money(market) == [("period_paid", 2900), ("period_refunded", -2900)]
    assert await notices_to(market, "alice") == told_before + 1


async def notices_to(market: Harness, who: str) -> int:
    async with market.app.new_uow() as uow:
        found = await uow.session.execute(
            select(func.count(OutboxMessage.id))
            .join(Identity, Identity.user_id == OutboxMessage.user_id)
            .where(Identity.external_id == who)
        )
        return int(found.scalar_one())


async def test_a_period_whose_sessions_were_booked_or_paid_long_ago_needs_force(
    market: Harness, clock: FakeClock
) -> None:
    """Like an order, a period is refunded without `force` only within the refund window and
    with none of its sessions booked; with `force` the booked session stays booked, the
    mentor is told, and earns nothing the subscription's money no longer covers."""
    order = await paid_demo_plan(market)
    out = await request_mentor(market, "alice")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    assert "You are now mentoring" in await market.send("ada", f"/accept {request_id}")
    await market.send("alice", f"/book {request_id}")
    assert "Booked" in await market.send("alice", "1")
    before = await snapshot(market, every_table=True)
    out = await market.send("admin", f"/admin refund {order} period=1")
    assert "outside the refund policy" in out and f"/admin refund {order} period=1 force" in out
    assert await snapshot(market, every_table=True) == before
    out = await market.send("admin", f"/admin refund {order} period=1 force")
    assert "refunded ($29.00); 1 session taken back." in out, out
    told = "\n".join(market.output)
    assert "alice's payment for one period of Monthly Python was refunded" in told, told
    clock.advance(timedelta(days=1))
    assert "completed" in await market.send("ada", "/complete 1")
    async with market.app.new_uow() as uow:
        assert sum((await ledger.mentor_earnings(uow)).values()) == 0
        assert not await ledger.violations(uow)


async def test_admin_stats_count_course_orders_apart_from_subscription_payments(
    market: Harness, clock: FakeClock
) -> None:
    """`Paid orders` counts course orders only; a subscription's paid periods are counted
    beside them (not its anchor order), refunded ones left out, in English and Chinese. A
    period paid longer ago than the refund window needs `force`, as an order does."""
    order = await paid_demo_plan(market)
    await buy(market, "carol")
    clock.advance(timedelta(days=30))
    assert "period paid" in await market.tick()
    out = await market.send("admin", "/admin stats")
    assert (
        "Paid orders: 1 course order, of which 1 paid with demo payments (no money moved) · "
        "subscription payments: 2 paid periods, of which 2 demo"
    ) in out, out
    out = await market.send("admin", f"/admin refund {order} period=1")  # paid 30 days ago
    assert "outside the refund policy (paid more than 14 days ago" in out, out
    out = await market.send("admin", f"/admin refund {order} period=1 force")
    # Credits go oldest first: of the 3 left, 2 are period 2's, 1 rolled over from period 1.
    assert "Period 1 of subscription #1 refunded ($29.00); 1 session taken back." in out, out
    await market.send("admin", "/language zh")
    out = await market.send("admin", "/admin stats")
    assert "已支付订单：1 个课程订单，其中 1 个为演示支付" in out, out
    assert "订阅付款：1 个已付周期，其中 1 个为演示" in out, out  # the refunded one left out


async def test_deleteme_ends_the_subscription_and_mydata_shows_it_first(
    market: Harness, clock: FakeClock
) -> None:
    """/mydata lists the learner's subscriptions; /deleteme ends them at once, so the clock
    renews nothing and grants no credits to an erased account."""
    await market.send("admin", ADD)
    await market.send("alice", "/subscribe monthly")
    assert "has started" in await market.send("alice", "/subscription pay 1")
    async with market.app.new_uow() as uow:
        user = await uow.session.scalar(
            select(User).join(Identity).where(Identity.external_id == "alice")
        )
        assert user is not None
        exported = await export_user(uow, user)
    assert [s["status"] for s in exported["subscriptions"]] == ["active"]
    assert "Continue?" in await market.send("alice", "/deleteme")
    await market.send("alice", "yes")
    assert "erased" in await market.send("alice", "delete")
    clock.advance(timedelta(days=31))
    assert "period paid" not in await market.tick()
    async with market.app.new_uow() as uow:
        sub = await uow.session.scalar(select(Subscription))
        assert sub is not None and sub.status == "cancelled" and sub.ended_at is not None
        assert not await ledger.violations(uow)


async def test_a_plan_sold_with_one_mentor_offers_its_subscribers_requests_to_that_mentor_only(
    market: Harness,
) -> None:
    """`mentor=ID` on a plan: /plans names the mentor, and a subscriber's request goes to that
    mentor alone, however the others rank; a one-off buyer of the same course still meets
    every mentor who fits."""
    async with market.app.new_uow() as uow:
        mentors = dict(
            (
                await uow.session.execute(
                    select(User.display_name, MentorProfile.id).join(
                        MentorProfile, MentorProfile.user_id == User.id
                    )
                )
            ).all()
        )
    await market.send("admin", f"{ADD} mentor={mentors['linus']}")
    assert "per period (Python from zero, with mentor linus)" in await market.send(
        "alice", "/plans"
    )
    await market.send("alice", "/subscribe monthly")
    await market.send("alice", "/subscription pay 1")
    await request_mentor(market, "alice")
    await buy(market, "bob")
    await request_mentor(market, "bob")
    async with market.app.new_uow() as uow:
        offered = (
            await uow.session.execute(
                select(MentorshipRequest.learner_id, RequestOffer.mentor_id).join(
                    MentorshipRequest, MentorshipRequest.id == RequestOffer.request_id
                )
            )
        ).all()
        learners = dict((await uow.session.execute(select(User.display_name, User.id))).all())
    assert {m for who, m in offered if who == learners["alice"]} == {mentors["linus"]}
    assert len({m for who, m in offered if who == learners["bob"]}) > 1, offered


async def test_a_plan_with_a_free_intro_session_grants_one_per_learner_and_mentor(
    market: Harness, clock: FakeClock
) -> None:
    """`intro=yes`: the first paid period brings one more session, said so; renewals do not,
    and neither does subscribing again to a plan with the same mentor; the books balance."""
    async with market.app.new_uow() as uow:
        linus = (
            await uow.session.execute(
                select(MentorProfile.id)
                .join(User, User.id == MentorProfile.user_id)
                .where(User.display_name == "linus")
            )
        ).scalar_one()
    assert "a free intro session" in await market.send("admin", f"{ADD} mentor={linus} intro=yes")
    assert "intro takes yes or no, got 'maybe'" in await market.send(
        "admin", "/admin plan edit monthly intro=maybe"
    )
    await market.send("alice", "/subscribe monthly")
    out = await market.send("alice", "/subscription pay 1")
    assert "One of them is the plan's free intro session" in out, out
    assert "3 sessions left this period" in await market.send("alice", "/subscription")
    clock.advance(timedelta(days=30, hours=1))
    out = await market.tick()
    assert "period paid" in out and "intro" not in out, out
    await market.send(
        "admin",
        '/admin plan add again course=python-basics name="Again" '
        f"price=19.00 sessions=1 mentor={linus} intro=yes",
    )
    await market.send("alice", "/subscribe again")
    out = await market.send("alice", "/subscription pay 2")
    assert "has started" in out and "intro session" not in out, out
    async with market.app.new_uow() as uow:
        assert await ledger.violations(uow) == []


async def test_refunding_a_period_leaves_the_free_intro_session(market: Harness) -> None:
    """The first period of an `intro=yes` plan brought 2 sessions and the free one; with one
    booked (the period's own, spent first) its refund needs `force` and takes back its other
    one, never the gift."""
    await market.send("admin", f"{ADD} intro=yes")
    await market.send("alice", "/subscribe monthly")
    await market.send("alice", "/subscription pay 1")
    out = await request_mentor(market, "alice")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    await market.send("ada", f"/accept {request_id}")
    await market.send("alice", f"/book {request_id}")
    assert "Booked" in await market.send("alice", "1")
    async with market.app.new_uow() as uow:
        order = (await uow.session.execute(select(Subscription.order_id))).scalar_one()
    out = await market.send("admin", f"/admin refund {order} period=1")
    assert "outside the refund policy" in out, out
    out = await market.send("admin", f"/admin refund {order} period=1 force")
    assert "refunded ($29.00); 1 session taken back." in out, out
    assert "1 session left this period" in await market.send("alice", "/subscription")


async def test_a_mentor_sells_a_plan_of_their_own_where_the_marketplace_allows_it(
    market: Harness,
) -> None:
    """`[subscriptions] mentor_plans`: off, /myplans says admins set plans; on, a mentor adds a
    plan sold with them alone, the admins are told, and the mentor can change only their own
    plans; a learner cannot use the command at all."""
    out = await market.send("linus", "/myplans")
    assert "Plans are set by the admins on this marketplace" in out, out
    app = market.app
    app.config = dataclasses.replace(
        app.config,
        subscriptions=dataclasses.replace(app.config.subscriptions, mentor_plans=True),
    )
    assert "You sell no plans yet" in await market.send("linus", "/myplans")
    out = await market.send(
        "linus",
        '/myplans add linus-monthly course=python-basics name="With Linus" price=39.00 '
        "sessions=2 intro=yes",
    )
    assert "Plan 'linus-monthly' added" in out and "a free intro session" in out, out
    assert "── message for admin ──" in out, out
    assert "Mentor linus added the plan 'linus-monthly'" in out, out
    assert "with mentor linus" in await market.send("alice", "/plans")
    out = await market.send("linus", "/myplans edit linus-monthly mentor=1")
    assert "always sold with you" in out, out
    await market.send("admin", ADD)  # the admins' plan, sold with any mentor
    before = await snapshot(market)
    out = await market.send("ada", "/myplans archive monthly")
    assert "You have no plan called 'monthly'" in out, out
    out = await market.send("ada", "/myplans archive linus-monthly")
    assert "You have no plan called 'linus-monthly'" in out, out
    assert await snapshot(market) == before
    assert "You are not a mentor" in await market.send("alice", "/myplans")
    out = await market.send("linus", "/myplans")
    assert "linus-monthly: With Linus — $39.00 a month" in out and "\nmonthly:" not in out, out
