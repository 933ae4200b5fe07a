"""Restarts lose nothing, and concurrent clicks or processes never double anything."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.core.replies import Reply
from bot.core.users import Incoming
from bot.runtime.demo_data import seed_demo
from storage.models import Enrollment, Identity, MentorSession, Order, Reminder
from tests.support import AppFactory, buy, harness_for, make_config, matched_pair


async def test_restart_mid_flow_loses_nothing_and_reminds_once(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Stop with an open request, a booked session, a pending reminder and a half-finished
    conversation; a new process on the same database carries on, and the reminder fires once."""
    first = harness_for(await make_app())
    await seed_demo(first.app)
    request_id = await matched_pair(first, "alice", "ada")
    await first.send("alice", f"/book {request_id}")
    await first.send("alice", "3")
    await buy(first, "bob")
    await first.send("bob", "/mentor python-basics")
    await first.send("bob", "I want to pass my exam")  # mid-conversation: level is next
    await buy(first, "carol", "git-teamwork")
    await first.send("carol", "/mentor git-teamwork")
    await first.send("carol", "Untangle merges")
    await first.send("carol", "beginner")
    await first.send("carol", "any")  # carol's request stays open (offered)
    await first.app.engine.dispose()

    second = harness_for(await make_app())
    out = await second.send("bob", "intermediate")  # resumes at the level step
    assert "When do you prefer to meet?" in out
    out = await second.send("carol", "/requests")
    assert "Untangle merges" in out and "offered" in out
    out = await second.send("alice", "/sessions")
    assert "scheduled" in out

    async with second.app.new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()
    clock.set(start - timedelta(minutes=30))
    out = await second.tick()
    assert out.count("Reminder: session #1") == 2
    assert "Reminder" not in await second.tick()
    third = harness_for(await make_app())
    assert "Reminder" not in await third.tick()


async def test_twenty_mentors_accept_at_once_exactly_one_wins(
    make_app: AppFactory,
) -> None:
    """20 mentors press Accept at the same moment: one wins, 19 are told it was taken."""
    app = await make_app(make_config(matching={"offer_size": 20}), pool_size=25)
    h = harness_for(app)
    await seed_demo(app)
    mentors = [f"m{i:02d}" for i in range(20)]
    for name in mentors:
        await h.chat.become(name, "mentor")
        await h.send(name, "/profile topics python:advanced")
    async with app.new_uow() as uow:  # demo mentors out of the way: only our 20 compete
        demo_ids = [await _profile_id(uow, name) for name in ("ada", "linus", "mei")]
    for profile_id in demo_ids:
        await h.send("admin", f"/admin mentor suspend {profile_id}")
    await buy(h, "alice")
    await h.send("alice", "/mentor python-basics")
    await h.send("alice", "Get good at Python")
    await h.send("alice", "beginner")
    out = await h.send("alice", "any")
    assert "Request #1 is out to 20 mentors." in out

    replies = await asyncio.gather(
        *(app.handle(Incoming("console", name, name, "/accept 1")) for name in mentors)
    )
    texts = [r[0].text for r in replies]
    winners = [t for t in texts if t.startswith("You are now mentoring alice")]
    losers = [t for t in texts if t == "Request #1 was already taken by another mentor."]
    assert len(winners) == 1, texts
    assert len(losers) == 19, texts


async def _profile_id(uow: object, name: str) -> int:
    from storage.models import MentorProfile, User

    session = uow.session  # type: ignore[attr-defined]
    return (
        await session.execute(
            select(MentorProfile.id)
            .join(User, User.id == MentorProfile.user_id)
            .where(User.display_name == name)
        )
    ).scalar_one()


async def test_double_pay_click_fulfils_once(make_app: AppFactory) -> None:
    """Ten concurrent presses of Pay give one enrollment; the others are told it is paid."""
    app = await make_app(pool_size=12)
    h = harness_for(app)
    await seed_demo(app)
    await h.send("alice", "/buy python-basics")
    replies = await asyncio.gather(
        *(app.handle(Incoming("console", "alice", "alice", "/pay 1")) for _ in range(10))
    )
    texts = [r[0].text for r in replies]
    assert sum("is yours" in t for t in texts) == 1, texts
    assert sum(t == "Order #1 is already paid. See /mycourses." for t in texts) == 9
    async with app.new_uow() as uow:
        assert (await uow.session.execute(select(func.count(Enrollment.id)))).scalar_one() == 1
        assert (await uow.session.execute(select(Order.status))).scalar_one() == "paid"


async def test_two_learners_booking_one_slot_at_once_one_gets_it(
    make_app: AppFactory,
) -> None:
    """Two learners of one mentor book the same instant together: one booking, one refusal."""
    app = await make_app(pool_size=12)
    h = harness_for(app)
    await seed_demo(app)
    a = await matched_pair(h, "alice", "ada")
    b = await matched_pair(h, "bob", "ada")
    await h.send("alice", f"/book {a}")
    payload = h.chat.last_choices["alice"][0].payload
    token = payload.split()[-1]
    replies = await asyncio.gather(
        app.handle(Incoming("console", "alice", "alice", f"/book {a} {token}")),
        app.handle(Incoming("console", "bob", "bob", f"/book {b} {token}")),
    )
    texts = [r[0].text for r in replies]
    assert sum(t.startswith("Booked:") for t in texts) == 1, texts
    assert sum("not free" in t or "just taken" in t for t in texts) == 1, texts
    async with app.new_uow() as uow:
        sessions = await uow.session.execute(select(func.count(MentorSession.id)))
        assert sessions.scalar_one() == 1
        credits = sorted(
            (await uow.session.execute(select(Enrollment.credits_remaining))).scalars()
        )
        assert credits == [3, 4]


async def test_two_processes_send_each_reminder_once(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Two bot processes sweeping the same database at once deliver each reminder once."""
    apps = [await make_app(pool_size=8) for _ in range(2)]
    h = harness_for(apps[0])
    await seed_demo(apps[0])
    request_id = await matched_pair(h, "alice", "ada")
    await h.send("alice", f"/book {request_id}")
    await h.send("alice", "3")
    delivered: list[tuple[str, str]] = []

    async def sender(identity: Identity, reply: Reply) -> None:
        delivered.append((identity.external_id, reply.text))

    for app in apps:
        app.notifier.register("console", sender)
    async with apps[0].new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()
    clock.set(start - timedelta(minutes=10))
    await asyncio.gather(*(app.run_due() for app in apps for _ in range(3)))
    reminders = [d for d in delivered if d[1].startswith("Reminder:")]
    assert sorted(who for who, _text in reminders) == ["ada", "alice"]
    async with apps[1].new_uow() as uow:
        sent = (
            await uow.session.execute(select(func.count()).where(Reminder.sent_at.is_not(None)))
        ).scalar_one()
        assert sent == 1  # the 1 h reminder; the 24 h one fell before the booking


async def test_the_same_booking_sent_twice_confirms_instead_of_booking_again(
    make_app: AppFactory,
) -> None:
    """A redelivered or double-tapped booking shows the session it made; no second credit."""
    app = await make_app()
    h = harness_for(app)
    await seed_demo(app)
    request_id = await matched_pair(h, "alice", "ada")
    await h.send("alice", f"/book {request_id}")
    payload = h.chat.last_choices["alice"][0].payload
    assert "Booked: session #1" in await h.send("alice", payload)
    out = await h.send("alice", payload)
    assert "You already booked session #1" in out
    async with app.new_uow() as uow:
        sessions = await uow.session.execute(select(func.count(MentorSession.id)))
        assert sessions.scalar_one() == 1
        assert (await uow.session.execute(select(Enrollment.credits_remaining))).scalar_one() == 3
