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


async def test_a_typed_local_time_in_a_dst_gap_is_refused_and_said(
    harness: Harness, clock: FakeClock
) -> None:
    """01:30 on the day London springs forward never happens there: the refusal says so, in
    English and Chinese, and offers the free times around it; nothing is booked."""
    clock.set(datetime(2026, 3, 26, 12, tzinfo=UTC))
    request_id = await dst_pair(harness, "UTC", "Europe/London", "sun")
    await harness.send("tzmentor", "/availability add sun 00:00-03:00")
    out = await harness.send("alice", f"/book {request_id} 2026-03-29 01:30")
    assert (
        "01:30 on Sunday 29 March does not exist in Europe/London: the clocks skip that hour "
        "for daylight saving. The free times nearest to it:" in out
    )
    offered = [c.label for c in harness.chat.last_choices["alice"]]
    assert offered[:3] == [
        "Sun 29 Mar 2026, 00:00 (Europe/London)",
        "Sun 29 Mar 2026, 02:00 (Europe/London)",
        "Sun 29 Mar 2026, 03:00 (Europe/London)",
    ]
    await harness.send("alice", "/language zh")
    out = await harness.send("alice", f"/book {request_id} 2026-03-29 01:30")
    assert "3月29日星期日的 01:30 在 Europe/London 并不存在：夏令时调整跳过了这一小时。" in out
    out = await harness.send("alice", "2")
    assert "2026年3月29日 周日 02:00 (Europe/London)" in out
    assert "Booked" not in out and "预约成功" in out


async def test_a_typed_local_time_the_clocks_repeat_books_the_free_one_or_asks(
    harness: Harness, clock: FakeClock
) -> None:
    """01:00 on the day London falls back happens twice: with both free the learner is asked
    which, as buttons; once the first is taken, typing it again books the second and says so."""
    clock.set(datetime(2026, 10, 22, 12, tzinfo=UTC))
    request_id = await dst_pair(harness, "Asia/Shanghai", "Europe/London", "sun")
    await harness.send("tzmentor", "/availability add sun 08:00-10:00")  # 00:00-02:00 UTC
    out = await harness.send("alice", f"/book {request_id} 2026-10-25 01:00")
    assert (
        "01:00 happens twice on Sunday 25 October in Europe/London, as the clocks go back an "
        "hour, and both are free. Which one?" in out
    )
    labels = [c.label for c in harness.chat.last_choices["alice"]]
    assert labels == ["The first 01:00 (before the change)", "The second 01:00 (after the change)"]
    out = await harness.send("alice", "1")
    assert "Booked: session #1 with tzmentor on Sun 25 Oct 2026, 01:00 (Europe/London)" in out
    assert "on Sun 25 Oct 2026, 08:00 (Asia/Shanghai)" in out  # the mentor: 00:00 UTC
    await harness.send("alice", "/language zh")
    out = await harness.send("alice", f"/book {request_id} 2026-10-25 01:00")
    assert (
        "由于时钟回拨，10月25日星期日的 01:00 在 Europe/London 会出现两次；第二个（调整后）有空，"
        "因此选择了它。" in out
    )
    assert "预约成功：与 tzmentor 的辅导 #2" in out
    assert "booked session #2 (Timezones) on Sun 25 Oct 2026, 09:00 (Asia/Shanghai)" in out
