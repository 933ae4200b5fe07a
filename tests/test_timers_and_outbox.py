"""Timers are re-armed from the database; notices wait in the outbox until they can go out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.core.i18n import _
from bot.core.outbox import enqueue
from bot.core.replies import Reply, Say
from bot.runtime.demo_data import seed_demo
from bot.runtime.timers import NEXT_JOB, Timers
from storage.models import Identity, MentorSession, OutboxMessage, Reminder
from tests.support import AppFactory, Harness, complete_one_session, harness_for, matched_pair


def armed(timers: Timers) -> datetime | None:
    job = timers.scheduler.get_job(NEXT_JOB)
    return None if job is None else job.next_run_time.astimezone(UTC)


async def test_booking_arms_timers_and_a_restart_rearms_them(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """The timer is armed at the earliest pending reminder, with misfires never dropped; a new
    process re-arms it from the database."""
    clock.set(datetime.now(UTC) + timedelta(days=30))  # timers in the real future stay armed
    app = await make_app()
    h = harness_for(app)
    timers = Timers(app)
    await timers.start()
    try:
        await seed_demo(app)
        request_id = await matched_pair(h)
        await h.send("alice", f"/book {request_id}")
        assert "Booked" in await h.send("alice", "1")  # the first free time, whatever the day
        async with app.new_uow() as uow:
            due = min((await uow.session.execute(select(Reminder.due_at))).scalars())
        assert armed(timers) == due
        sweep = timers.scheduler.get_job("sweep")
        assert sweep is not None and sweep.misfire_grace_time is None
    finally:
        timers.shutdown()

    restarted = Timers(await make_app())
    await restarted.start()
    try:
        assert armed(restarted) == due
    finally:
        restarted.shutdown()


async def test_notice_for_an_unreachable_user_waits_in_the_outbox(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """A notice for a user whose platform is not connected stays queued, and goes out once
    it is; a failing send is retried after its lease."""
    app = await make_app()
    h = harness_for(app)
    await seed_demo(app)
    from bot.core.users import Incoming

    # A learner on "telegram" (no telegram adapter in this process) gets the acceptance notice.
    await app.handle(Incoming("telegram", "42", "tg-user", "/buy python-basics"))
    await app.handle(Incoming("telegram", "42", "tg-user", "/pay 1"))
    for line in ("/mentor", "Learn", "beginner", "any"):
        await app.handle(Incoming("telegram", "42", "tg-user", line))
    await h.send("ada", "/accept 1")
    async with app.new_uow() as uow:
        waiting = (
            (
                await uow.session.execute(
                    select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
                )
            )
            .scalars()
            .all()
        )
        assert [m.body["text"] for m in waiting if "accepted" in m.body["text"]]

    attempts: list[str] = []

    async def flaky(identity: Identity, reply: Reply) -> None:
        attempts.append(reply.text)
        if len(attempts) == 1:
            raise ConnectionError("platform down")

    app.notifier.register("telegram", flaky)
    await app.notifier.deliver_pending()
    assert len(attempts) == 1
    await app.notifier.deliver_pending()  # still leased: not retried yet
    assert len(attempts) == 1
    clock.advance(timedelta(minutes=2))
    await app.notifier.deliver_pending()
    assert len(attempts) == 2 and "ada accepted your request #1" in attempts[-1]
    clock.advance(timedelta(minutes=2))
    await app.notifier.deliver_pending()
    assert len(attempts) == 2  # delivered once, never again


async def test_reminder_that_fell_due_while_down_goes_out_only_if_still_useful(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """After downtime, a reminder still before the session is sent; one past its start is
    skipped."""
    app = await make_app()
    h = harness_for(app)
    await seed_demo(app)
    request_id = await matched_pair(h)
    # A slot more than a day ahead (ada's 09:00 in London is 09:00 UTC): both reminders exist.
    assert "Booked" in await h.send("alice", f"/book {request_id} 2026-03-04 09:00")
    async with app.new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()
    clock.set(start - timedelta(minutes=30))  # "down" through the 24 h and the 1 h marks
    out = await h.tick()
    assert out.count("Reminder: session #1") == 4  # both reminders, to both sides
    clock.set(start + timedelta(minutes=5))
    assert "Reminder" not in await h.tick()


async def test_the_interval_tick_skips_while_a_sweep_runs(make_app: AppFactory) -> None:
    """A sweep that overruns its interval is neither queued behind nor warned about by the
    next tick: the tick returns at once, and the next one after it does the work."""
    app = await make_app()
    h = harness_for(app)
    await seed_demo(app)
    async with app.new_uow() as uow:
        ada = (
            await uow.session.execute(select(Identity.user_id).where(Identity.external_id == "ada"))
        ).scalar_one()
        await enqueue(uow, ada, Say(_("Skipped.")), app.clock.now())
        await uow.commit()
    timers = Timers(app)
    async with timers._sweeping:  # a sweep in progress
        await asyncio.wait_for(timers.tick(), 5)
    assert "Skipped." not in "\n".join(h.output)
    await asyncio.wait_for(timers.tick(), 5)
    assert "Skipped." in h.output[-1]


async def test_a_burst_of_low_ratings_reaches_the_admin_as_one_digest(
    market: Harness, clock: FakeClock
) -> None:
    """Ten low-rating edits within a minute reach the admin as two messages: the first alert
    at once, then, when the 300 s window closes, one digest naming the other nine; a notice of
    another kind meanwhile is not held."""
    h = market
    await complete_one_session(h, clock)
    await h.send("alice", "/rate 1 5 fine")
    heard = len(h.output)
    for take in range(10):
        clock.advance(timedelta(seconds=5))
        out = await h.send("alice", f"/rate 1 {1 + take % 2} take-{take}")
        assert "Your rating of session #1 is now" in out
    assert "bob applied to mentor" in await h.send("bob", "/becomementor")
    clock.advance(timedelta(minutes=5))
    await h.tick()
    to_admin = [o for o in h.output[heard:] if o.startswith("── message for admin ──")]
    alerts = [o for o in to_admin if "Low rating" in o]
    assert len(alerts) == 2 and len(to_admin) == 3
    first, digest = alerts
    assert "take-0" in first and "take-1" not in first
    assert "9 notices of the same kind, collected into one message:" in digest
    items = [line for line in digest.splitlines() if line.startswith("• ")]
    assert items == [
        f"• Low rating: alice gave session #1 {1 + take % 2}★. take-{take}" for take in range(1, 10)
    ]

    clock.advance(timedelta(minutes=1))
    out = await h.send("alice", "/rate 1 1 take-10")
    assert "take-10" not in out  # the digest opened a new window: this one waits
    clock.advance(timedelta(minutes=5))
    assert "Low rating: alice gave session #1 1★. take-10" in await h.tick()
