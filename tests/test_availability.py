"""A mentor's availability: timezone changes ask, clearing asks, overlaps merge, blocks warn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.sessions.availability import merged, shifted
from bot.sessions.scheduling import Window, slot_token
from storage.models import AvailabilityBlock, MentorSession
from tests.support import Harness, matched_pair, snapshot


async def mentor_with(h: Harness, name: str, tz: str, *windows: str) -> None:
    await h.chat.become(name, "mentor")
    await h.send(name, f"/timezone {tz}")
    for window in windows:
        await h.send(name, f"/availability add {window}")


async def offered(h: Harness, who: str, request_id: int) -> list[str]:
    await h.send(who, f"/book {request_id}")
    return [c.payload.split()[-1] for c in h.chat.last_choices[who]]


# --- changing timezone ------------------------------------------------------------------------


async def test_mentor_changing_timezone_is_asked_and_same_local_time_comes_first(
    harness: Harness,
) -> None:
    """A mentor with weekly hours is asked before anything moves; the first button keeps the
    hours at the same local time, and the timezone changes only once they answer."""
    await mentor_with(harness, "grace", "Europe/London", "mon 18:00-20:00")
    out = await harness.send("grace", "/timezone Asia/Shanghai")
    assert "Same local time (Asia/Shanghai):\nMon 18:00–20:00\n" in out
    assert "Same instants (Asia/Shanghai):\nTue 02:00–04:00" in out
    assert "Booked sessions keep their times either way." in out
    payloads = [c.payload for c in harness.chat.last_choices["grace"]]
    assert payloads == ["/timezone Asia/Shanghai local", "/timezone Asia/Shanghai instants"]
    assert "Your timezone is Europe/London" in await harness.send("grace", "/timezone")
    await harness.send("grace", "/timezone Asia/Shanghai")
    out = await harness.send("grace", "1")
    assert "Timezone set to Asia/Shanghai. Booked sessions keep their times" in out
    assert "Your weekly hours (Asia/Shanghai):\nMon 18:00–20:00" in out
    out = await harness.send("grace", "/availability")
    assert "Your weekly availability (Asia/Shanghai)" in out and "Mon 18:00–20:00" in out


async def test_same_instants_keeps_the_learners_slots_and_the_booked_session(
    market: Harness, clock: FakeClock
) -> None:
    """Keeping the same instants rewrites the windows in the new zone, so a learner is offered
    exactly the times as before; the booked session does not move."""
    request_id = await matched_pair(market)
    target = (clock.now() + timedelta(days=3)).replace(hour=9, minute=0)
    assert "Booked: session #1" in await market.send(
        "alice", f"/book {request_id} {slot_token(target)}"
    )
    before = await offered(market, "alice", request_id)
    out = await market.send("ada", "/timezone Asia/Shanghai instants")
    assert "Mon 17:00–20:00" in out and "Tue 02:00–05:00" in out, out
    assert await offered(market, "alice", request_id) == before
    async with market.app.new_uow() as uow:
        session = await uow.get(MentorSession, 1)
        assert session is not None and session.start_at == target


async def test_same_local_time_moves_the_slots_by_the_offset(
    market: Harness, clock: FakeClock
) -> None:
    """Keeping the same local time (London 09:00 becomes Shanghai 09:00) offers the learner
    instants eight hours earlier."""
    request_id = await matched_pair(market)
    before = await offered(market, "alice", request_id)
    await market.send("ada", "/timezone Asia/Shanghai local")
    after = await offered(market, "alice", request_id)
    assert after != before
    first = datetime.strptime(after[0], "%Y%m%d%H%M").replace(tzinfo=UTC)
    assert first.hour in (1, 10)  # Shanghai 09:00 and 18:00 are 01:00 and 10:00 UTC


async def test_learners_are_not_asked(market: Harness) -> None:
    """A learner has no weekly hours, so the timezone changes at once."""
    out = await market.send("alice", "/timezone Asia/Shanghai")
    assert out == "Timezone set to Asia/Shanghai. Times are now shown in it."


async def test_timezone_question_in_chinese(market: Harness) -> None:
    """The question and the answer typed in Chinese: 同一时刻 keeps the instants."""
    await market.send("ada", "/language zh")
    out = await market.send("ada", "/timezone Asia/Shanghai")
    assert "保持相同的本地时间" in out and "已预约的辅导时间都不变" in out, out
    assert "保持同一时刻（Asia/Shanghai）：\n周一 02:00–05:00" in out, out
    assert [c.label for c in market.chat.last_choices["ada"]] == ["保持本地时间", "保持同一时刻"]
    out = await market.send("ada", "/timezone Asia/Shanghai 同一时刻")
    assert "时区已设置为 Asia/Shanghai" in out and "周一 17:00–20:00" in out, out


# --- clearing ---------------------------------------------------------------------------------


async def test_clear_asks_once_and_does_nothing_until_confirmed(market: Harness) -> None:
    """`/availability clear` names how many windows go and changes nothing; the button clears."""
    before = await market.send("ada", "/availability")
    out = await market.send("ada", "/availability clear")
    assert "This removes all 14 weekly windows: clear anyway?" in out
    assert await market.send("ada", "/availability") == before
    await market.send("ada", "/availability clear")
    out = await market.send("ada", "1")
    assert "Cleared 14 weekly windows. Booked sessions stay booked." in out
    assert "You have no availability yet" in out
    assert "no weekly windows to clear" in await market.send("ada", "/availability clear")


async def test_clear_in_chinese_is_confirmed_with_queren(market: Harness) -> None:
    """In Chinese the question is Chinese and 确认 confirms it."""
    await market.send("mei", "/language zh")
    out = await market.send("mei", "/availability clear")
    assert "这将删除你全部 14 个每周时段：仍要清除吗？" in out
    out = await market.send("mei", "/availability clear 确认")
    assert "已清除 14 个每周时段" in out


async def test_other_destructive_actions_ask_first(market: Harness, clock: FakeClock) -> None:
    """Cancelling inside the window (losing the credit) and /deleteme ask before acting."""
    request_id = await matched_pair(market)
    soon = (clock.now() + timedelta(hours=3)).replace(minute=0)
    while soon.hour not in range(9, 12) and soon.hour not in range(18, 21):
        soon += timedelta(hours=1)
    assert "Booked" in await market.send("alice", f"/book {request_id} {slot_token(soon)}")
    before = await snapshot(market)
    assert "Cancel anyway?" in await market.send("alice", "/cancelsession 1")
    assert "Continue?" in await market.send("alice", "/deleteme")
    assert "Nothing was deleted." in await market.send("alice", "no")
    assert await snapshot(market) == before


# --- overlapping windows ----------------------------------------------------------------------


async def test_overlapping_windows_are_merged_and_the_reply_says_so(harness: Harness) -> None:
    """A window overlapping another on its day joins it; one inside another changes nothing."""
    await mentor_with(harness, "grace", "Europe/London", "mon 18:00-20:00")
    out = await harness.send("grace", "/availability add mon 17:00-19:00")
    assert "Merged with Mon 18:00–20:00 → Mon 17:00–20:00." in out
    out = await harness.send("grace", "/availability add mon 18:30-19:00")
    assert "Mon 18:30–19:00 is already inside Mon 17:00–20:00; nothing changed." in out
    out = await harness.send("grace", "/availability add Tuesday 17:00–19:00")
    assert "Added Tue 17:00–19:00." in out
    assert out.count("Mon ") == 1 and "Mon 17:00–20:00" in out


async def test_merging_in_chinese_with_full_width_digits(harness: Harness) -> None:
    """周一 and full-width times are read; the reply names both windows in Chinese."""
    await mentor_with(harness, "mei2", "Asia/Shanghai", "周一 18:00-20:00")
    await harness.send("mei2", "/language zh")
    out = await harness.send("mei2", "/availability add 星期一 １９：００－２１：００")
    assert "已与周一 18:00–20:00 合并 → 周一 18:00–21:00。" in out, out
    assert "已添加周二 08:00–09:00。" in await harness.send(
        "mei2", "/availability add 周二 8:00至9:00"
    )


def test_merge_joins_a_chain_and_shift_splits_at_midnight() -> None:
    """A window bridging two others absorbs both; a shift past midnight splits into two days
    and wraps Sunday into Monday."""
    joined, absorbed = merged(
        [Window(0, 60, 120), Window(0, 180, 240), Window(1, 0, 60)], Window(0, 100, 200)
    )
    assert joined == Window(0, 60, 240) and len(absorbed) == 2
    assert shifted([Window(6, 22 * 60, 24 * 60)], 120) == [Window(0, 0, 120)]
    assert shifted([Window(0, 23 * 60, 24 * 60)], 30) == [
        Window(0, 23 * 60 + 30, 1440),
        Window(1, 0, 30),
    ]


# --- blocks -----------------------------------------------------------------------------------


async def test_block_over_a_booked_session_warns_and_keeps_it(
    market: Harness, clock: FakeClock
) -> None:
    """A block covering a booked session lists it (learner's name as written, the mentor's
    time), says it stays booked and offers to cancel it; the session is still scheduled."""
    learner = "<b>Eve</b> {list}"
    request_id = await matched_pair(market, learner=learner)
    target = (clock.now() + timedelta(days=3)).replace(hour=9, minute=0)
    await market.send(learner, f"/book {request_id} {slot_token(target)}")
    day = target.date().isoformat()
    out = await market.send("ada", f"/availability block {day} 08:00-12:00")
    assert "1 booked session falls inside it. It stays booked unless you cancel it" in out
    assert f"#1 Thu 5 Mar 2026, 09:00 (Europe/London) with {learner}" in out, out
    assert [c.payload for c in market.chat.last_choices["ada"]] == ["/cancelsession 1"]
    async with market.app.new_uow() as uow:
        session = await uow.get(MentorSession, 1)
        assert session is not None and session.status == "scheduled"


async def test_blocks_in_chinese(market: Harness, clock: FakeClock) -> None:
    """In Chinese, a block over free time says when it runs; one over a booked session lists
    it with the learner's name and says it stays booked."""
    request_id = await matched_pair(market)
    target = (clock.now() + timedelta(days=3)).replace(hour=18, minute=0)
    await market.send("alice", f"/book {request_id} {slot_token(target)}")
    await market.send("ada", "/language zh")
    day = (clock.now() + timedelta(days=2)).date().isoformat()
    out = await market.send("ada", f"/availability block {day} 14:00-16:00")
    assert "不接受新的预约" in out and "已预约" not in out
    out = await market.send("ada", f"/availability off {target.date().isoformat()}")
    assert "其中有 1 次已预约的辅导。除非你取消，否则仍保持预约" in out, out
    assert "#1 2026年3月5日 周四 18:00 (Europe/London)，学员：alice" in out, out


async def test_blocks_in_the_past_are_refused(market: Harness) -> None:
    """A block that has already ended is refused in either language and nothing is stored."""
    before = await snapshot(market)
    out = await market.send("ada", "/availability block 2026-03-01 10:00-12:00")
    assert "That time is already over" in out
    await market.send("ada", "/language zh")
    assert "这段时间已经过去" in await market.send("ada", "/availability off 2026-02-27")
    assert await snapshot(market) == before
    async with market.app.new_uow() as uow:
        assert not (await uow.session.execute(select(AvailabilityBlock))).first()


async def test_block_across_a_dst_gap(harness: Harness, clock: FakeClock) -> None:
    """Berlin skips 02:00–03:00 on 29 March 2026: a block 01:30–02:30 runs to the jump (03:00
    summer time), and a block entirely inside the gap is refused as a time that never comes."""
    clock.set(datetime(2026, 3, 27, 12, tzinfo=UTC))
    await mentor_with(harness, "hans", "Europe/Berlin", "sun 01:00-05:00")
    out = await harness.send("hans", "/availability block 2026-03-29 01:30-02:30")
    assert "from Sun 29 Mar 2026, 01:30 (Europe/Berlin) to Sun 29 Mar 2026, 03:00" in out, out
    async with harness.app.new_uow() as uow:
        block = (await uow.session.execute(select(AvailabilityBlock))).scalar_one()
        assert block.end_at - block.start_at == timedelta(minutes=30)
    out = await harness.send("hans", "/availability block 2026-03-29 02:00-03:00")
    assert "does not happen in Europe/Berlin" in out
    out = await harness.send("hans", "/availability off 2026-03-29")
    assert "to Mon 30 Mar 2026, 00:00 (Europe/Berlin)" in out


async def test_a_missing_argument_is_answered_with_an_example_of_that_action(
    harness: Harness,
) -> None:
    """Each action left incomplete is answered with an example of that action, to copy, in the
    mentor's language, not the command's whole grammar; nothing changes."""
    await mentor_with(harness, "grace", "Europe/London")
    before = await snapshot(harness)
    out = await harness.send("grace", "/availability add mon")
    assert "Usage: /availability add mon 18:00-20:00 (a weekly window, in your timezone)" in out
    assert "HH:MM" not in out and "YYYY" not in out, out
    out = await harness.send("grace", "/availability off")
    assert "/availability off 2026-03-12 (away all day)" in out, out
    out = await harness.send("grace", "/availability unblock")
    assert "/availability unblock 3 (the block's number, as /availability lists it)" in out, out
    await harness.send("grace", "/language zh")
    out = await harness.send("grace", "/availability remove")
    assert "/availability remove 2（时段编号，见 /availability 列表）" in out, out
    assert await snapshot(harness) == before
