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


Press = tuple[str, tuple[str, ...]] | None  # a button pressed and what its reply says


@pytest.mark.parametrize(
    ("now", "mentor_tz", "window", "typed", "said", "buttons", "press", "said_zh", "press_zh"),
    [
        pytest.param(  # London springs forward: 01:30 never happens there
            datetime(2026, 3, 26, 12, tzinfo=UTC),
            "UTC",
            "00:00-03:00",
            "2026-03-29 01:30",
            (
                "01:30 on Sunday 29 March does not exist in Europe/London: the clocks skip that "
                "hour for daylight saving. The free times nearest to it:",
            ),
            [
                "Sun 29 Mar 2026, 00:00 (Europe/London)",
                "Sun 29 Mar 2026, 02:00 (Europe/London)",
                "Sun 29 Mar 2026, 03:00 (Europe/London)",
            ],
            None,
            ("3月29日星期日的 01:30 在 Europe/London 并不存在：夏令时调整跳过了这一小时。",),
            ("2", ("2026年3月29日 周日 02:00 (Europe/London)", "预约成功")),
            id="gap",
        ),
        pytest.param(  # London falls back: 01:00 happens twice (00:00 and 01:00 UTC)
            datetime(2026, 10, 22, 12, tzinfo=UTC),
            "Asia/Shanghai",
            "08:00-10:00",  # 00:00-02:00 UTC
            "2026-10-25 01:00",
            (
                "01:00 happens twice on Sunday 25 October in Europe/London, as the clocks go back "
                "an hour, and both are free. Which one?",
            ),
            ["The first 01:00 (before the change)", "The second 01:00 (after the change)"],
            (
                "1",
                (
                    "Booked: session #1 with tzmentor on Sun 25 Oct 2026, 01:00 (Europe/London)",
                    "on Sun 25 Oct 2026, 08:00 (Asia/Shanghai)",  # the mentor: 00:00 UTC
                ),
            ),
            (
                "由于时钟回拨，10月25日星期日的 01:00 在 Europe/London 会出现两次；第二个（调整后）"
                "有空，因此选择了它。",
                "预约成功：与 tzmentor 的辅导 #2",
                "booked session #2 (Timezones) on Sun 25 Oct 2026, 09:00 (Asia/Shanghai)",
            ),
            None,
            id="overlap",
        ),
    ],
)
async def test_a_typed_local_time_a_dst_change_skips_or_repeats(
    harness: Harness,
    clock: FakeClock,
    now: datetime,
    mentor_tz: str,
    window: str,
    typed: str,
    said: tuple[str, ...],
    buttons: list[str],
    press: Press,
    said_zh: tuple[str, ...],
    press_zh: Press,
) -> None:
    """A London time the clocks skip is refused, saying so, with the free times around it;
    one they repeat, both free, asks which as buttons, and once the first is taken typing it
    again books the second and says so. In English and Chinese; nothing booked on a refusal."""
    clock.set(now)
    request_id = await dst_pair(harness, mentor_tz, "Europe/London", "sun")
    await harness.send("tzmentor", f"/availability add sun {window}")

    async def pressed(step: Press) -> None:
        if step is not None:
            out = await harness.send("alice", step[0])
            assert all(text in out for text in step[1]), out

    out = await harness.send("alice", f"/book {request_id} {typed}")
    assert all(text in out for text in said), out
    assert [c.label for c in harness.chat.last_choices["alice"]][: len(buttons)] == buttons
    await pressed(press)
    await harness.send("alice", "/language zh")
    out = await harness.send("alice", f"/book {request_id} {typed}")
    assert all(text in out for text in said_zh), out
    await pressed(press_zh)
    assert "Booked" not in out
