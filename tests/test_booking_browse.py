"""Booking browses the mentor's free times by day and by week in the reader's timezone, and
takes a local date and time typed in it; refusals offer the free times nearest to the one
asked for. In English and Chinese, through the console."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.clock import FakeClock
from storage.models import MentorSession
from tests.support import Harness, matched_pair, snapshot


def labels(h: Harness, who: str) -> list[str]:
    return [c.label for c in h.chat.last_choices[who]]


async def press(h: Harness, who: str, label: str) -> str:
    """Press the button of `who`'s last reply labelled `label`."""
    number = labels(h, who).index(label) + 1
    return await h.send(who, str(number))


async def shanghai_alice(h: Harness) -> int:
    """alice, in Shanghai, mentored by ada (London, free 09:00-12:00 and 18:00-21:00 daily:
    17:00-19:00 and 02:00-04:00 in Shanghai in March)."""
    request_id = await matched_pair(h)
    await h.send("alice", "/timezone Asia/Shanghai")
    return request_id


async def session_starts(h: Harness) -> list[str]:
    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(select(MentorSession.start_at).order_by(MentorSession.id))
        return [s.strftime("%Y-%m-%d %H:%M") for s in rows.scalars()]


async def test_book_shows_a_day_in_the_readers_timezone_and_browses_to_next_monday_evening(
    market: Harness, clock: FakeClock
) -> None:
    """`/book` shows the first day with free times, in the learner's zone, its times as
    buttons; "later" and "earlier" step through the days, the week view counts each day's
    times, and next Monday evening is three presses away and books."""
    request_id = await shanghai_alice(market)
    out = await market.send("alice", f"/book {request_id}")
    assert "Free times on Monday 2 March (your timezone, Asia/Shanghai):" in out
    assert labels(market, "alice") == [
        "17:00",
        "18:00",
        "19:00",
        "Later: Tue 3 Mar »",
        "The whole week",
    ]
    out = await press(market, "alice", "Later: Tue 3 Mar »")
    assert "Free times on Tuesday 3 March (your timezone, Asia/Shanghai):" in out
    assert labels(market, "alice")[:6] == ["02:00", "03:00", "04:00", "17:00", "18:00", "19:00"]
    assert "« Earlier: Mon 2 Mar" in labels(market, "alice")
    out = await press(market, "alice", "The whole week")
    assert "The week of Monday 2 March (your timezone, Asia/Shanghai):" in out
    assert "Monday 2 March: 3 free times" in out and "Tuesday 3 March: 6 free times" in out
    out = await press(market, "alice", "Later week »")
    assert "The week of Monday 9 March" in out
    out = await press(market, "alice", "Mon 9 Mar")
    assert "Free times on Monday 9 March (your timezone, Asia/Shanghai):" in out
    out = await press(market, "alice", "18:00")
    assert "Booked: session #1 with ada on Mon 9 Mar 2026, 18:00 (Asia/Shanghai)" in out
    assert "alice booked session #1 (Python from zero) on Mon 9 Mar 2026, 10:00" in out
    assert await session_starts(market) == ["2026-03-09 10:00"]


async def test_a_day_without_free_times_says_so_and_offers_the_next_day_with_some(
    market: Harness, clock: FakeClock
) -> None:
    """A day the mentor took off is named as having no free times, and the next day that
    has some is shown instead; in Chinese the days are named in Chinese."""
    request_id = await matched_pair(market)
    await market.send("ada", "/availability off 2026-03-04")
    out = await market.send("alice", f"/book {request_id} 2026-03-04")
    assert (
        "No free times on Wednesday 4 March. The next day with free times is Thursday 5 March "
        "(your timezone, UTC):" in out
    )
    assert labels(market, "alice")[0] == "09:00"
    await market.send("alice", "/language zh")
    out = await market.send("alice", f"/book {request_id} 2026-03-04")
    assert (
        "3月4日星期三没有空闲时间。下一个有空闲时间的日子是 3月5日星期四（按你的时区 UTC 显示）："
        in out
    )
    assert "« 之前：3月3日 周二" in labels(market, "alice")
    assert "之后：3月6日 周五 »" in labels(market, "alice")
    out = await press(market, "alice", "查看整周")
    assert "3月2日星期一这一周（按你的时区 UTC 显示）：" in out
    assert "3月4日星期三：没有空闲时间" in out and "3月5日星期四：6 个空闲时间" in out


async def test_a_typed_local_date_and_time_books_in_the_readers_timezone(
    market: Harness, clock: FakeClock
) -> None:
    """`/book R 2026-03-09 18:00` is 18:00 where the learner lives; `6pm` and `下午7点` are
    read too, and the usage people are shown is the local form."""
    request_id = await shanghai_alice(market)
    help_text = await market.send("alice", "/help")
    assert "/book [REQUEST] [YYYY-MM-DD HH:MM]" in help_text
    out = await market.send("alice", f"/book {request_id} 2026-03-09 18:00")
    assert "Booked: session #1 with ada on Mon 9 Mar 2026, 18:00 (Asia/Shanghai)" in out
    out = await market.send("alice", f"/book {request_id} 2026-03-10 6pm")
    assert "Booked: session #2 with ada on Tue 10 Mar 2026, 18:00 (Asia/Shanghai)" in out
    out = await market.send("alice", f"/book {request_id} 2026-03-10 6pm")  # sent twice
    assert "You already booked session #2 at Tue 10 Mar 2026, 18:00 (Asia/Shanghai)" in out
    out = await market.send("alice", f"/book {request_id} 19:00")  # today, 16:00 now
    assert "Booked: session #3 with ada on Mon 2 Mar 2026, 19:00 (Asia/Shanghai)" in out
    out = await market.send("alice", "/reschedule 1 2026-03-12 17:00")
    assert "Session #1 moved to Thu 12 Mar 2026, 17:00 (Asia/Shanghai)." in out
    await market.send("alice", "/language zh")
    out = await market.send("alice", f"/book {request_id} 2026-03-11 下午7点")
    assert "预约成功：与 ada 的辅导 #4，时间 2026年3月11日 周三 19:00 (Asia/Shanghai)。" in out
    assert await session_starts(market) == [
        "2026-03-12 09:00",
        "2026-03-10 10:00",
        "2026-03-02 11:00",
        "2026-03-11 11:00",
    ]


async def test_a_time_that_is_not_free_is_refused_with_the_nearest_free_times(
    market: Harness, clock: FakeClock
) -> None:
    """20:00 in Shanghai is noon in London, where ada's morning ends: refused politely,
    nothing changes, and the free times around it are buttons, one press away from booked."""
    request_id = await shanghai_alice(market)
    before = await snapshot(market)
    out = await market.send("alice", f"/book {request_id} 2026-03-09 20:00")
    assert (
        "Mon 9 Mar 2026, 20:00 (Asia/Shanghai) is not a free time. The free times nearest to it:"
        in out
    )
    nearest = labels(market, "alice")
    assert nearest[-6:] == [
        "Mon 9 Mar 2026, 17:00 (Asia/Shanghai)",
        "Mon 9 Mar 2026, 18:00 (Asia/Shanghai)",
        "Mon 9 Mar 2026, 19:00 (Asia/Shanghai)",
        "Tue 10 Mar 2026, 02:00 (Asia/Shanghai)",
        "Tue 10 Mar 2026, 03:00 (Asia/Shanghai)",
        "Tue 10 Mar 2026, 04:00 (Asia/Shanghai)",
    ]  # the eight nearest, in time order: the two before are that morning's 03:00 and 04:00
    assert await snapshot(market) == before
    out = await press(market, "alice", "Mon 9 Mar 2026, 19:00 (Asia/Shanghai)")
    assert "Booked: session #1 with ada on Mon 9 Mar 2026, 19:00 (Asia/Shanghai)" in out
    await market.send("alice", "/language zh")
    out = await market.send("alice", f"/book {request_id} 2026-03-09 明天")
    assert "无法识别日期和时间“2026-03-09 明天”" in out
    assert f"请按 /book {request_id} 2026-12-07 18:00 的格式输入" in out
    out = await market.send("alice", f"/book {request_id} 2026-03-09 20:00")
    assert "2026年3月9日 周一 20:00 (Asia/Shanghai) 没有空。离它最近的空闲时间：" in out
    assert await session_starts(market) == ["2026-03-09 11:00"]


async def test_a_chinese_date_without_its_year_books_browses_and_blocks(
    market: Harness, clock: FakeClock
) -> None:
    """`3月9日 18:00` and `3月10日下午6点` (no year, no space) book the next such day in the
    learner's timezone; `3月4日` alone browses that day; a mentor's `/availability off 3月4日`
    takes that day off; `3月1日`, already past this year, is next year's and not free."""
    request_id = await shanghai_alice(market)
    await market.send("ada", "/availability off 3月4日")
    await market.send("alice", "/language zh")
    out = await market.send("alice", f"/book {request_id} 3月9日 18:00")
    assert "预约成功：与 ada 的辅导 #1，时间 2026年3月9日 周一 18:00 (Asia/Shanghai)。" in out
    out = await market.send("alice", f"/book {request_id} 3月10日下午6点")
    assert "预约成功：与 ada 的辅导 #2，时间 2026年3月10日 周二 18:00 (Asia/Shanghai)。" in out
    out = await market.send("alice", f"/book {request_id} 3月4日")
    assert "3月4日星期三的空闲时间" in out  # ada's London evening before; her day is off
    assert "02:00" in labels(market, "alice") and "17:00" not in labels(market, "alice")
    out = await market.send("alice", f"/book {request_id} 3月1日 18:00")
    assert "2027年3月1日" in out, out
    assert await session_starts(market) == ["2026-03-09 10:00", "2026-03-10 10:00"]


async def test_the_request_and_session_numbers_may_be_left_out(
    market: Harness, clock: FakeClock
) -> None:
    """The usage says `/book [REQUEST] …`, so `/book 2026-03-09 18:00` books with the one
    mentor and `/book week` shows the week; `/reschedule` and `/cancelsession` without a
    number take the only coming session, or ask which, and never cancel on a guess."""
    await shanghai_alice(market)
    out = await market.send("alice", "/reschedule")
    assert "You have no booked sessions to move. Book one with /book." in out
    assert "You have no booked sessions to cancel." in await market.send("alice", "/cancelsession")
    out = await market.send("alice", "/book 2026-03-09 18:00")
    assert "Booked: session #1 with ada on Mon 9 Mar 2026, 18:00 (Asia/Shanghai)" in out, out
    assert "is not a number" not in await market.send("alice", "/book week")
    out = await market.send("alice", "/reschedule 2026-03-12 17:00")  # the only one
    assert "Session #1 moved to Thu 12 Mar 2026, 17:00 (Asia/Shanghai)." in out, out
    await market.send("alice", "/book 2026-03-10 18:00")
    out = await market.send("alice", "/reschedule")
    assert out.startswith("Which session do you want to move?")
    assert labels(market, "alice") == [
        "#2 Tue 10 Mar 2026, 18:00 (Asia/Shanghai) with ada",
        "#1 Thu 12 Mar 2026, 17:00 (Asia/Shanghai) with ada",
    ]
    before = await snapshot(market)
    out = await market.send("alice", "/cancelsession")
    assert out.startswith("Which session do you want to cancel?")
    assert await snapshot(market) == before  # asked, nothing cancelled
    out = await press(market, "alice", "#1 Thu 12 Mar 2026, 17:00 (Asia/Shanghai) with ada")
    assert "Session #1 is cancelled." in out
    out = await market.send("ada", "/reschedule")  # the mentor's side: the one left
    assert out.startswith("Move session #2."), out
