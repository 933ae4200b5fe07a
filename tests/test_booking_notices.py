"""What each side is told around a booking: `/reminders` lists what the bot will send the
reader and when; a cancellation says what happened to the credit; a refunded course's
mentorship is not bookable until the course is bought again. English and Chinese."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.core.states import LIVE_REQUEST_STATES
from storage.models import MentorshipRequest
from tests.support import Harness, add_lessons, buy, matched_pair, request_mentor, snapshot


async def test_reminders_lists_the_readers_own_reminders_and_lessons_in_their_timezone(
    market: Harness, clock: FakeClock
) -> None:
    """Empty, it says so and what would schedule something; then it lists the next drip
    lesson and each reminder of the reader's session, soonest first, in their timezone;
    the mentor sees theirs, someone else nothing; cancelling the session removes them."""
    await market.send("alice", "/timezone Asia/Shanghai")
    out = await market.send("alice", "/reminders")
    assert (
        "Nothing is scheduled to be sent to you. Booking a session (/book) schedules its "
        "reminders; a course that sends its lessons on a schedule (/mycourses) schedules them."
        in out
    )
    await add_lessons(market, 2)
    await market.send("admin", "/admin lesson drip python-basics 1")
    request_id = await matched_pair(market)
    out = await market.send("alice", "/upcoming")
    assert "In a minute or so: the next lesson of Python from zero" in out
    await market.tick()  # lesson 1 goes out; lesson 2 is due at 09:00 tomorrow, Shanghai time
    assert "Booked" in await market.send("alice", f"/book {request_id} 2026-03-04 18:00")
    out = await market.send("alice", "/reminders")
    assert out.splitlines() == [
        "What I will send you (your timezone, Asia/Shanghai):",
        "Tue 3 Mar 2026, 09:00 (Asia/Shanghai): the next lesson of Python from zero",
        "Tue 3 Mar 2026, 18:00 (Asia/Shanghai): a reminder of session #1 with ada, which starts "
        "Wed 4 Mar 2026, 18:00 (Asia/Shanghai)",
        "Wed 4 Mar 2026, 17:00 (Asia/Shanghai): a reminder of session #1 with ada, which starts "
        "Wed 4 Mar 2026, 18:00 (Asia/Shanghai)",
        "Wed 4 Mar 2026, 19:00 (Asia/Shanghai): whether session #1 with ada took place",
    ]
    out = await market.send("ada", "/reminders")
    assert "Tue 3 Mar 2026, 10:00 (Europe/London): a reminder of session #1 with alice" in out
    assert "lesson" not in out
    assert "Nothing is scheduled to be sent to you." in await market.send("bob", "/reminders")
    await market.send("alice", "/language zh")
    out = await market.send("alice", "/reminders")
    assert "我将发给你的消息（按你的时区 Asia/Shanghai 显示）：" in out
    assert (
        "2026年3月3日 周二 18:00 (Asia/Shanghai)：提醒你与 ada 的辅导 #1，该辅导于 "
        "2026年3月4日 周三 18:00 (Asia/Shanghai) 开始" in out
    )
    assert "2026年3月3日 周二 09:00 (Asia/Shanghai)：《零基础学 Python》的下一课" in out
    await market.send("alice", "/cancelsession 1")
    out = await market.send("alice", "/reminders")
    assert "辅导 #1" not in out and "《零基础学 Python》的下一课" in out


async def test_a_mentors_cancellation_returns_the_credit_says_how_many_and_offers_book_again(
    market: Harness, clock: FakeClock
) -> None:
    """The learner is told the credit came back with the count left, and a Book again button
    opens the mentor's free times; in Chinese too."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id} 2026-03-04 09:00")
    out = await market.send("ada", "/cancelsession 1")
    assert (
        "ada cancelled session #1 on Wed 4 Mar 2026, 09:00 (UTC). Your session credit is back: "
        "4 sessions left in Python from zero." in out
    )
    assert [c.label for c in market.chat.last_choices["alice"]] == ["Book again"]
    out = await market.send("alice", "1")
    assert "Free times on Monday 2 March (your timezone, UTC):" in out
    await market.send("alice", f"/book {request_id} 2026-03-05 09:00")
    await market.send("alice", "/language zh")
    out = await market.send("ada", "/cancelsession 2")
    assert (
        "ada 取消了 2026年3月5日 周四 09:00 (UTC) 的辅导 #2。你的辅导次数已退回："
        "《零基础学 Python》还剩 4 次辅导。" in out
    )
    assert [c.label for c in market.chat.last_choices["alice"]] == ["重新预约"]


async def test_a_learners_cancellation_tells_the_mentor_whether_the_credit_was_lost(
    market: Harness, clock: FakeClock
) -> None:
    """Cancelling days ahead, the mentor reads that the learner keeps the credit; inside the
    window, that it is used up (in the mentor's language)."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id} 2026-03-04 09:00")
    out = await market.send("alice", "/cancelsession 1")
    assert (
        "alice cancelled session #1 on Wed 4 Mar 2026, 09:00 (Europe/London), early enough to "
        "get the session credit back." in out
    )
    await market.send("alice", f"/book {request_id} 2026-03-02 18:00")
    await market.send("ada", "/language zh")
    await market.send("alice", "/cancelsession 2")
    out = await market.send("alice", "1")  # Cancel and lose the credit
    assert (
        "alice 取消了 2026年3月2日 周一 18:00 (Europe/London) 的辅导 #2，距开始已不足 24 小时，"
        "因此学员的本次辅导次数已用掉。" in out
    )


async def test_a_refunded_mentorship_is_not_offered_and_books_again_once_rebought(
    market: Harness, clock: FakeClock
) -> None:
    """After a refund `/book` offers nothing and says why (nothing changes); bought again,
    the same mentorship books against the new enrollment instead of "no sessions left"."""
    request_id = await matched_pair(market)
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")
    before = await snapshot(market)
    out = await market.send("alice", "/book")
    assert (
        "Your course was refunded, so there is nothing to book. Buy it again with /courses to "
        "go on with the same mentor." in out
    )
    out = await market.send("alice", f"/book {request_id} 2026-03-04 09:00")
    assert "Your course was refunded, so there is nothing to book." in out
    await market.send("alice", "/language zh")
    out = await market.send("alice", "/book")
    assert "你的课程已退款，因此无法预约。通过 /courses 重新购买后，可继续与同一位导师学习。" in out
    assert await snapshot(market) == before
    await market.send("alice", "/language en")
    await buy(market, "alice")
    out = await market.send("alice", "/book")
    assert "Free times on Monday 2 March" in out
    out = await market.send("alice", f"/book {request_id} 2026-03-04 09:00")
    assert "Booked: session #1 with ada" in out and "Sessions left after this one: 3." in out


async def test_asking_for_a_mentor_after_buying_again_goes_on_with_the_same_mentor(
    market: Harness,
) -> None:
    """Refunded and bought again, `/mentor` does not open a second mentorship beside the one
    that moves to the new enrollment: it offers to book with the same mentor, and after that
    `/mentor` still answers (once a second request existed on one enrollment, it crashed)."""
    request_id = await matched_pair(market)
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")
    await buy(market, "alice")
    out = await market.send("alice", "/mentor python-basics")
    assert "You already have a mentor for Python from zero. Book a session:" in out, out
    out = await market.send("alice", f"/book {request_id} 2026-03-04 09:00")
    assert "Booked: session #1 with ada" in out, out
    out = await market.send("alice", "/mentor python-basics")
    assert "You already have a mentor for Python from zero." in out, out
    async with market.app.new_uow() as uow:
        live = (
            await uow.session.execute(
                select(MentorshipRequest.enrollment_id, func.count())
                .where(MentorshipRequest.status.in_(LIVE_REQUEST_STATES))
                .group_by(MentorshipRequest.enrollment_id)
            )
        ).all()
    assert [n for _e, n in live] == [1]


async def test_a_mentorship_does_not_move_onto_an_enrollment_that_has_its_own(
    market: Harness,
) -> None:
    """A learner who asked anew while their old mentorship's course was refunded keeps the
    new mentorship on the new enrollment; the old one is not moved beside it."""
    old = await matched_pair(market)
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")
    await buy(market, "alice")
    async with market.app.new_uow() as uow:  # the old mentorship ended: a new one is asked for
        request = await uow.get(MentorshipRequest, old)
        assert request is not None
        request.status = "cancelled"
        await uow.commit()
    out = await request_mentor(market, "alice")
    new = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    assert "You are now mentoring" in await market.send("mei", f"/accept {new}")
    async with market.app.new_uow() as uow:
        request = await uow.get(MentorshipRequest, old)
        assert request is not None
        request.status = "accepted"  # as it was before the new one came (an older database)
        await uow.commit()
    out = await market.send("alice", "/book")
    assert "Free times on Monday 2 March" in out, out  # one mentorship to book: the new one
    async with market.app.new_uow() as uow:
        moved = await uow.get(MentorshipRequest, old)
        new_one = await uow.get(MentorshipRequest, new)
        assert moved is not None and new_one is not None
        assert moved.enrollment_id != new_one.enrollment_id
