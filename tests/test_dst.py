"""Sessions across daylight-saving changes remind at the right instant and show local times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import FakeClock
from bot.sessions.scheduling import slot_token
from tests.support import Harness, buy


async def dst_pair(h: Harness, mentor_tz: str, learner_tz: str, weekday: str) -> int:
    """A course only `tzmentor` (in `mentor_tz`, free 10:00-11:00 on `weekday`) can teach."""
    await h.send(
        "admin",
        "/admin course add dst title=Timezones price=10 sessions=3 topics=timezones",
    )
    await h.chat.become("tzmentor", "mentor")
    await h.send("tzmentor", f"/timezone {mentor_tz}")
    await h.send("tzmentor", "/profile topics timezones:advanced")
    await h.send("tzmentor", "/profile languages en")
    await h.send("tzmentor", f"/availability add {weekday} 10:00-11:00")
    await h.send("alice", f"/timezone {learner_tz}")
    await buy(h, "alice", "dst")
    await h.send("alice", "/mentor dst")
    await h.send("alice", "Understand time")
    await h.send("alice", "beginner")
    await h.send("alice", "any")
    out = await h.send("tzmentor", "/accept 1")
    assert "You are now mentoring alice" in out, out
    return 1


async def reminders_fire_at(h: Harness, clock: FakeClock, start: datetime) -> None:
    for offset in (timedelta(hours=24), timedelta(hours=1)):
        clock.set(start - offset - timedelta(minutes=1))
        assert "Reminder" not in await h.tick()
        clock.set(start - offset)
        out = await h.tick()
        assert out.count("Reminder: session #1") == 2, (offset, out)


@pytest.mark.parametrize(
    (
        "mentor_tz",
        "learner_tz",
        "weekday",
        "now",
        "start",
        "mentor_sees",
        "learner_sees",
        "offered",
    ),
    [
        (  # New York springs forward on Sunday 2026-03-08; Berlin still on winter time.
            "America/New_York",
            "Europe/Berlin",
            "sun",
            datetime(2026, 3, 5, 12, tzinfo=UTC),
            datetime(2026, 3, 8, 14, tzinfo=UTC),
            "Sun 8 Mar 2026, 10:00 (America/New_York)",
            "Sun 8 Mar 2026, 15:00 (Europe/Berlin)",
            "Free times on Sunday 8 March (your timezone, Europe/Berlin):\n  [1] 15:00",
        ),
        (  # Berlin falls back on Sunday 2026-10-25; New York is still on summer time.
            "Europe/Berlin",
            "America/New_York",
            "sun",
            datetime(2026, 10, 22, 12, tzinfo=UTC),
            datetime(2026, 10, 25, 9, tzinfo=UTC),
            "Sun 25 Oct 2026, 10:00 (Europe/Berlin)",
            "Sun 25 Oct 2026, 05:00 (America/New_York)",
            "Free times on Sunday 25 October (your timezone, America/New_York):\n  [1] 05:00",
        ),
    ],
)
async def test_session_on_a_dst_day(
    harness: Harness,
    clock: FakeClock,
    mentor_tz: str,
    learner_tz: str,
    weekday: str,
    now: datetime,
    start: datetime,
    mentor_sees: str,
    learner_sees: str,
    offered: str,
) -> None:
    """The slot is the mentor's 10:00 wall-clock on the change day; each side sees it in their
    zone; reminders come exactly 24 h and 1 h before the real instant."""
    clock.set(now)
    request_id = await dst_pair(harness, mentor_tz, learner_tz, weekday)
    out = await harness.send("alice", f"/book {request_id}")
    assert offered in out  # offered on the learner's day, at the learner's time
    out = await harness.send("alice", f"/book {request_id} {slot_token(start)}")
    assert f"Booked: session #1 with tzmentor on {learner_sees}" in out
    assert f"alice booked session #1 (Timezones) on {mentor_sees}" in out
    await reminders_fire_at(harness, clock, start)
