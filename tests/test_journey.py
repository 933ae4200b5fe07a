"""The whole journey through the console adapter, driven by typed input."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.runtime.demo_data import seed_demo
from storage.models import MentorProfile, MentorSession, User
from tests.support import Harness


async def mentor_average(h: Harness, name: str) -> tuple[int, int]:
    async with h.app.new_uow() as uow:
        profile = (
            await uow.session.execute(
                select(MentorProfile)
                .join(User, User.id == MentorProfile.user_id)
                .where(User.display_name == name)
            )
        ).scalar_one()
        return profile.rating_sum, profile.rating_count


async def only_session_start(h: Harness) -> datetime:
    async with h.app.new_uow() as uow:
        return (await uow.session.execute(select(MentorSession.start_at))).scalar_one()


async def buy_and_request(h: Harness, who: str = "alice") -> None:
    await h.send(who, "/buy python-basics")
    out = await h.send(who, "1")  # the Pay button
    assert "demo — no money moved" in out
    await h.send(who, "/mentor python-basics")
    await h.send(who, "I want to automate my spreadsheets")
    await h.send(who, "beginner")
    out = await h.send(who, "evening")
    assert "Request #1 is out to" in out


async def test_learner_buys_meets_books_is_reminded_and_rates(
    harness: Harness, clock: FakeClock
) -> None:
    """Demo purchase → request → accept → booking → reminder → completion → both rate."""
    h = harness
    await seed_demo(h.app)
    out = await h.send("alice", "/courses")
    assert "Python from zero" in out and "$49.00" in out

    await buy_and_request(h)
    out = await h.send("alice", "/mycourses")
    assert "Python from zero: 4 sessions left" in out

    out = await h.send("ada", "/requests")
    assert "I want to automate my spreadsheets" in out
    out = await h.send("ada", "1")  # Accept
    assert "You are now mentoring alice" in out
    assert "message for alice" in out and "ada accepted your request #1" in out

    out = await h.send("alice", "/book")
    assert "Free times on Monday 2 March (your timezone, UTC):" in out
    out = await h.send("alice", "3")  # a slot a few hours ahead
    assert "Booked: session #1 with ada" in out
    assert "Sessions left after this one: 3." in out
    assert "message for ada" in out and "alice booked session #1" in out

    # Nothing is due yet; then move the clock to 1 hour before the session.
    assert "Reminder" not in await h.tick()
    start = await only_session_start(h)
    clock.set(start - timedelta(minutes=59))
    out = await h.tick()
    assert out.count("Reminder: session #1") == 2  # learner and mentor
    assert "message for alice" in out and "message for ada" in out
    assert "Reminder" not in await h.tick()  # exactly once

    clock.set(start + timedelta(minutes=61))
    out = await h.tick()
    assert "Session #1 with alice has ended. Did it take place?" in out
    before = await mentor_average(h, "ada")
    out = await h.send("ada", "1")  # Yes, completed
    assert "Session #1 is marked completed" in out
    assert "message for alice" in out and "Rate it from 1 to 5" in out

    out = await h.send("alice", "5")  # five stars from the notice's choices
    assert "You rated session #1 5★" in out
    out = await h.send("alice", "Ada explained loops so clearly!")
    assert "Your comment is saved" in out
    out = await h.send("ada", "/rate 1 4 punctual and prepared")
    assert "You rated session #1 4★" in out

    assert before == (0, 0)
    assert await mentor_average(h, "ada") == (5, 1)
    out = await h.send("admin", "/admin stats")
    assert "Sessions completed: 1" in out
    # The two directions apart: alice gave ada 5★, ada gave alice 4★ (they were mixed to 4.50).
    assert "Learners rating their mentors: 5.0 ★ from 1 rating" in out
    assert "Mentors rating their learners: 4.0 ★ from 1 rating" in out
    assert "of which 1 paid with demo payments" in out
    assert "(the demo orders left out): none yet" in out
    out = await h.send("alice", "/sessions")
    assert "completed" in out
