"""Mentor earnings from completed sessions, and the refund policy admins refund under."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.core.ledger import Kind, post
from bot.core.users import Incoming
from storage.models import MentorProfile, User
from tests.support import Harness, buy, complete_one_session, matched_pair, snapshot


async def test_a_completed_session_credits_its_mentor_once(
    market: Harness, clock: FakeClock
) -> None:
    """$49.00 for 4 sessions at a 20% fee earns the mentor $9.80 per completed session, once;
    the CSV lists it."""
    await complete_one_session(market, clock)
    out = await market.send("ada", "/complete 1")  # a second answer changes nothing
    assert "Session #1 is recorded as completed. Rate it from 1 to 5:" in out
    out = await market.send("admin", "/admin earnings")
    assert "Mentor earnings (platform fee 20%)" in out
    assert "#1 ada: $9.80 from 1 session" in out
    replies = await market.app.handle(Incoming("console", "admin", "admin", "/admin earnings csv"))
    (attachment,) = replies[0].attachments
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
    assert [(r["mentor"], r["session_id"], r["amount_minor"], r["currency"]) for r in rows] == [
        ("ada", "1", "980", "USD")
    ]
    assert "Only marketplace admins can do that." in await market.send("ada", "/admin earnings")


async def test_refund_policy_is_shown_and_enforced(market: Harness, clock: FakeClock) -> None:
    """Learners see the policy; a used course is refused unless the admin forces it."""
    assert "Refunds: in full within 14 days of payment if no session has been used." in (
        await market.send("alice", "/course python-basics")
    )
    await complete_one_session(market, clock)
    before = await snapshot(market)
    out = await market.send("admin", "/admin refund 1")
    assert "Order #1 is outside the refund policy" in out
    assert "/admin refund 1 force" in out
    assert await snapshot(market) == before
    out = await market.send("admin", "/admin refund 1 force")
    assert "Order #1 refunded" in out


async def test_refund_within_the_window_and_unused_goes_through(
    market: Harness, clock: FakeClock
) -> None:
    """An unused course paid less than 14 days ago is refunded; after 15 days it is not."""
    await market.send("bob", "/buy git-teamwork")
    await market.send("bob", "/pay 1")
    await market.send("carol", "/buy git-teamwork")
    await market.send("carol", "/pay 2")
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")
    clock.advance(timedelta(days=15))
    assert "outside the refund policy" in await market.send("admin", "/admin refund 2")


async def book_one_session(h: Harness) -> str:
    request_id = await matched_pair(h)
    await h.send("alice", f"/book {request_id}")
    return await h.send("alice", "1")


async def test_a_late_cancellation_uses_the_course_for_the_refund_policy(
    market: Harness, clock: FakeClock
) -> None:
    """A learner who cancels inside the cancel window keeps no credit, so the course counts as
    used: the refund is refused unless forced."""
    await book_one_session(market)
    out = await market.send("alice", "/cancelsession 1 confirm")
    assert "the session credit is used up" in out
    before = await snapshot(market)
    assert "Order #1 is outside the refund policy" in await market.send("admin", "/admin refund 1")
    assert await snapshot(market) == before
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")


async def test_a_cancellation_that_gives_the_credit_back_keeps_the_refund(
    market: Harness, clock: FakeClock
) -> None:
    """A mentor's cancellation returns the credit, so the course is still unused."""
    await book_one_session(market)
    assert "The session credit is back" in await market.send("ada", "/cancelsession 1")
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")


async def test_a_session_that_has_started_counts_as_used(market: Harness, clock: FakeClock) -> None:
    """Once a booked session's time has come, the course is used even before /complete."""
    await book_one_session(market)
    clock.advance(timedelta(days=1))
    assert "Order #1 is outside the refund policy" in await market.send("admin", "/admin refund 1")


async def test_a_session_completed_after_its_refund_earns_nothing(
    market: Harness, clock: FakeClock
) -> None:
    """An order refunded while its session was under way: completing the session afterwards
    credits the mentor nothing."""
    await book_one_session(market)
    clock.advance(timedelta(days=1))
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")
    await market.send("ada", "/complete 1")
    out = await market.send("admin", "/admin earnings")
    assert "No completed sessions have earned anything yet." in out


async def test_a_forced_refund_takes_back_what_the_order_earned(
    market: Harness, clock: FakeClock
) -> None:
    """Refunding a course whose session was completed reverses the mentor's earning from it."""
    await complete_one_session(market, clock)
    assert "#1 ada: $9.80 from 1 session" in await market.send("admin", "/admin earnings")
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")
    out = await market.send("admin", "/admin earnings")
    assert "No completed sessions have earned anything yet." in out


async def my_earnings_csv(h: Harness, who: str) -> list[dict[str, str]]:
    """The rows of `who`'s own `/earnings csv`."""
    replies = await h.app.handle(Incoming("console", who, who, "/earnings csv"))
    (attachment,) = replies[0].attachments
    assert attachment.filename == "my-earnings.csv"
    return list(csv.DictReader(io.StringIO(attachment.data.decode())))


async def test_a_mentor_sees_only_their_own_earnings_net_of_a_refund(
    market: Harness, clock: FakeClock
) -> None:
    """ada earns $9.80 for a completed session and $9.80 for an attended workshop seat, linus
    $9.80 for a session of his: each sees their own totals and ledger rows alone; a refund
    of ada's session's order reverses it, counted in March, when it was earned, so April
    starts empty."""
    await complete_one_session(market, clock)  # alice with ada: order 1, session 1
    await buy(market, "bob")  # order 2, for the workshop seat
    out = await market.send(
        "ada", '/workshop new title="Pytest" start="2026-03-05 18:00" seats=2 course=python-basics'
    )
    workshop = int(out.split("#", 1)[1].split(" ", 1)[0])
    await market.send("bob", f"/join {workshop}")
    request = await matched_pair(market, learner="carol", mentor="linus")  # order 3
    await market.send("carol", f"/book {request}")
    assert "Booked" in await market.send("carol", "1")
    clock.advance(timedelta(days=3))
    await market.send("linus", "/complete 2")
    await market.send("ada", f"/workshop attendance {workshop} all")

    out = await market.send("ada", "/earnings")
    both = "• $19.60 — 1 one-on-one session ($9.80), 1 workshop seat ($9.80)"
    assert f"This month:\n{both}\nAll time:\n{both}\n" in out, out
    assert "Platform fee taken: $4.90 (20%)" in out
    out = await market.send("linus", "/earnings")
    assert "All time:\n• $9.80 — 1 one-on-one session ($9.80)\n" in out, out
    assert "workshop seat" not in out
    assert "does not take 'linus'" in await market.send("ada", "/earnings linus")
    rows = await my_earnings_csv(market, "ada")
    assert {r["mentor"] for r in rows} == {"ada"}
    assert [(r["session_id"], r["order_id"], r["amount_minor"], r["currency"]) for r in rows] == [
        ("1", "1", "980", "USD"),
        ("", "2", "980", "USD"),
    ]
    assert rows[1]["workshop_seat_id"] != ""
    assert [(r["mentor"], r["session_id"]) for r in await my_earnings_csv(market, "linus")] == [
        ("linus", "2")
    ]

    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1 force")
    clock.advance(timedelta(days=30))  # April, in ada's Europe/London too
    out = await market.send("ada", "/earnings")
    assert "This month:\n• nothing yet\n" in out, out
    assert (
        "All time:\n• $9.80 — 1 workshop seat ($9.80), net of 1 reversal (-$9.80)\n"
        "Platform fee taken: $2.45 (20%)"
    ) in out, out
    assert [r["amount_minor"] for r in await my_earnings_csv(market, "ada")] == [
        "980",
        "980",
        "-980",
    ]
    assert "All time:\n• $9.80 — 1 one-on-one session ($9.80)\n" in (
        await market.send("linus", "/earnings")
    )


async def test_earnings_keep_currencies_apart_and_months_in_the_mentors_timezone_in_chinese(
    market: Harness, clock: FakeClock
) -> None:
    """Dollars and yen are never added up; an earning at 23:30 UTC on 31 March is April's in
    London (BST); Chinese readers get their catalog's words, full-width brackets and
    Chinese CSV headings, and a name that looks like a formula stays text in the CSV."""
    await complete_one_session(market, clock)  # ada's $9.80 on 3 March, from order 1
    clock.set(datetime(2026, 4, 2, 12, 0, tzinfo=UTC))
    march = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 April in London
    async with market.app.new_uow() as uow:
        ada = await uow.session.scalar(select(MentorProfile).where(MentorProfile.id == 1))
        assert ada is not None
        for subject, at, earned, fee, currency in (
            ("a", march, 980, 245, "USD"),
            ("b", march - timedelta(days=3), 1333, 334, "JPY"),
        ):
            paid_for = dict(mentor_id=ada.id, order_id=1, session_id=1, currency=currency)
            await post(uow, f"earning:x:{subject}", Kind.MENTOR_EARNING, at, amount_minor=earned,
                       **paid_for)  # fmt: skip
            await post(uow, f"fee:x:{subject}", Kind.PLATFORM_FEE, at, amount_minor=fee,
                       **paid_for)  # fmt: skip
        user = await uow.get(User, ada.user_id)
        assert user is not None
        user.display_name = "=HYPERLINK(1)"
        await uow.commit()
    await market.send("ada", "/language zh")
    out = await market.send("ada", "/earnings")
    assert "本月：\n• US$9.80 — 1 次一对一辅导（US$9.80）\n累计：\n" in out, out
    assert (
        "累计：\n• JP¥1,333 — 1 次一对一辅导（JP¥1,333）\n• US$19.60 — 2 次一对一辅导（US$19.60）"
        in out
    )
    assert "平台服务费：JP¥334（20%）、US$4.90（20%）" in out, out
    replies = await market.app.handle(Incoming("console", "ada", "ada", "/earnings 表格"))
    (attachment,) = replies[0].attachments
    lines = attachment.data.decode().splitlines()
    assert lines[0].startswith("导师编号,导师,辅导编号,"), lines
    assert [line.split(",")[1] for line in lines[1:]] == ["'=HYPERLINK(1)"] * 3


async def test_earnings_refuse_learners_point_admins_and_say_when_they_will_fill(
    market: Harness,
) -> None:
    """A learner is told the command is for mentors and how to apply, an admin with no
    mentor profile where every mentor's earnings are, and nothing changes; a mentor with none
    yet is told they come after the first completed session; /help offers it to mentors."""
    before = await snapshot(market)
    out = await market.send("alice", "/earnings")
    assert "/earnings is for mentors" in out and "/becomementor" in out, out
    assert "Every mentor's earnings are in /admin earnings." in await market.send(
        "admin", "/earnings csv"
    )
    assert await snapshot(market) == before
    out = await market.send("mei", "/earnings")
    assert "No earnings yet. After your first completed session" in out, out
    assert "/earnings — " in await market.send("mei", "/help")
    assert "/earnings — " not in await market.send("alice", "/help")
