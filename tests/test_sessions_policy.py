"""Moving, cancelling and closing sessions: policy windows, invites, outcomes, progress."""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar
from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.sessions.scheduling import slot_token
from storage.models import Enrollment, MentorSession
from tests.support import Harness, matched_pair, snapshot


async def session_row(h: Harness, session_id: int = 1) -> MentorSession:
    async with h.app.new_uow() as uow:
        row = await uow.get(MentorSession, session_id)
        assert row is not None
        await uow.commit()  # keeps the loaded attributes readable after the session closes
        return row


async def credits(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        return (await uow.session.execute(select(Enrollment.credits_remaining))).scalar_one()


async def book_days_ahead(h: Harness, clock: FakeClock, days: int = 3) -> MentorSession:
    """Alice (matched with ada) books ada's first free slot at least `days` ahead."""
    request_id = await matched_pair(h)
    target = clock.now() + timedelta(days=days)
    token = slot_token(target.replace(hour=9, minute=0))  # ada is free 09:00-12:00 London
    out = await h.send("alice", f"/book {request_id} {token}")
    assert "Booked: session #1" in out, out
    return await session_row(h)


async def test_booking_confirmation_carries_an_ics_with_the_right_instant(
    market: Harness, clock: FakeClock
) -> None:
    """The learner's confirmation and the mentor's notice carry a calendar invite that parses
    back to the session's start, end and meeting link."""
    session = await book_days_ahead(market, clock)
    reply_invites = []
    original = market.chat._show

    def capture(name, reply, notice=False):  # type: ignore[no-untyped-def]
        reply_invites.extend((name, a) for a in reply.attachments)
        original(name, reply, notice)

    market.chat._show = capture  # type: ignore[method-assign]
    await market.send("alice", "/reschedule 1")
    await market.send("alice", "1")
    assert {name for name, _a in reply_invites} == {"alice", "ada"}
    for _name, attachment in reply_invites:
        assert attachment.filename == "session-1.ics"
        event = Calendar.from_ical(attachment.data).walk("VEVENT")[0]
        moved = await session_row(market)
        assert event.decoded("dtstart") == moved.start_at
        assert event.decoded("dtend") == moved.start_at + timedelta(minutes=60)
        assert str(event.get("location")) == session.meeting_link
        assert int(event.get("sequence")) == 1


async def test_reschedule_outside_the_window_moves_and_reminds_at_the_new_time(
    market: Harness, clock: FakeClock
) -> None:
    """Moving a session tells the other side and its reminders follow it; the old time is
    silent."""
    session = await book_days_ahead(market, clock)
    old = session.start_at
    out = await market.send("ada", f"/reschedule 1 {slot_token(old + timedelta(days=1))}")
    assert "Session #1 moved to" in out and "ada moved session #1" in out
    new = (await session_row(market)).start_at
    assert new == old + timedelta(days=1)
    clock.set(old - timedelta(minutes=30))
    assert await market.tick() == ""  # nothing at the old time
    clock.set(new - timedelta(minutes=30))
    assert "Reminder: session #1" in await market.tick()


async def test_inside_the_window_moving_is_refused_and_learner_cancel_uses_the_credit(
    market: Harness, clock: FakeClock
) -> None:
    """Within 24 h: no moving; a learner's cancellation consumes the credit."""
    session = await book_days_ahead(market, clock)
    assert await credits(market) == 3
    clock.set(session.start_at - timedelta(hours=5))
    out = await market.send("alice", "/reschedule 1")
    assert "Sessions can be moved until 24 h before they start" in out
    before = await snapshot(market)
    out = await market.send("alice", "/cancelsession 1")
    assert "cancelling now uses up its session credit. Cancel anyway?" in out
    assert "[1] Cancel and lose the credit" in out and "[2] Keep the session" in out
    assert await snapshot(market) == before
    out = await market.send("alice", "1")
    assert "the session credit is used up" in out
    assert await credits(market) == 3


async def test_mentor_cancelling_late_still_returns_the_credit(
    market: Harness, clock: FakeClock
) -> None:
    """A mentor's late cancellation is not the learner's doing: the credit comes back."""
    session = await book_days_ahead(market, clock)
    clock.set(session.start_at - timedelta(hours=2))
    out = await market.send("ada", "/cancelsession 1")
    assert "The session credit is back." in out
    assert await credits(market) == 4


async def test_both_sides_are_asked_and_a_missing_mentor_is_reported(
    market: Harness, clock: FakeClock
) -> None:
    """After the end both sides are asked; a learner saying the mentor did not come waits for
    the mentor (no credit back yet); a contrary answer from the mentor is a dispute."""
    session = await book_days_ahead(market, clock)
    clock.set(session.start_at + timedelta(minutes=61))
    out = await market.tick()
    assert out.count("has ended. Did it take place?") == 2
    out = await market.send("alice", "/outcome 1 noshow")
    assert "Your mentor is asked about session #1" in out
    assert "message for ada" in out and "says you did not come" in out
    assert await credits(market) == 3
    out = await market.send("ada", "/outcome 1 completed")
    assert "an admin will look at it" in out
    assert "mentor says completed, learner says no-show" in out
    assert "Only completed sessions can be rated." in await market.send("alice", "/rate 1 5")


async def test_no_show_by_the_learner_cannot_be_rated_and_counts_for_admins(
    market: Harness, clock: FakeClock
) -> None:
    """The mentor marks a no-show: the credit stays used, nobody can rate, stats count it."""
    session = await book_days_ahead(market, clock)
    clock.set(session.start_at + timedelta(minutes=5))
    await market.send("ada", "/noshow 1")
    assert await credits(market) == 3
    assert "Only completed sessions can be rated." in await market.send("ada", "/rate 1 1")
    assert "There is no session #1." in await market.send("mallory", "/rate 1 5")
    assert "no-shows: 1" in await market.send("admin", "/admin stats")


async def test_progress_shows_sessions_goals_and_mentor_notes(
    market: Harness, clock: FakeClock
) -> None:
    """/progress lists sessions done and left, the learner's goals and the mentor's note."""
    session = await book_days_ahead(market, clock)
    clock.set(session.start_at + timedelta(minutes=65))
    await market.send("ada", "/complete 1")
    out = await market.send("ada", "/note 1 Practise list comprehensions before next time")
    assert "message for alice" in out and "left a note on session #1" in out
    out = await market.send("alice", "/progress")
    assert "Sessions done: 1 · booked: 0 · left to book: 3" in out
    assert "Goals: Learn to write tested code" in out
    assert "Practise list comprehensions" in out
    assert "Only the session's mentor can do that." in await market.send(
        "alice", "/note 1 I was great"
    )


async def test_blocks_and_days_off_remove_slots(market: Harness, clock: FakeClock) -> None:
    """A mentor's day off removes that day's slots; unblocking brings them back."""
    request_id = await matched_pair(market)
    day = (clock.now() + timedelta(days=2)).date()
    await market.send("alice", f"/book {request_id}")
    before = {c.payload.split()[-1][:8] for c in market.chat.last_choices["alice"]}
    out = await market.send("ada", f"/availability off {day.isoformat()}")
    assert "Block #1: no new bookings from" in out
    await market.send("alice", f"/book {request_id}")
    # The learner is shown 8 slots: only those on other days remain.
    after = [c.payload.split()[-1] for c in market.chat.last_choices["alice"]]
    assert all(not p.startswith(day.strftime("%Y%m%d")) for p in after)
    assert day.strftime("%Y%m%d") in before or len(before) >= 1
    out = await market.send("ada", "/availability off 2026-02-30")
    assert "Could not read that" in out
    await market.send("ada", "/availability unblock 1")
    assert "block #1" not in await market.send("ada", "/availability")
