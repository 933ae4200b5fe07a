"""Mentor earnings from completed sessions, and the refund policy admins refund under."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from bot.core.clock import FakeClock
from bot.core.users import Incoming
from tests.support import Harness, complete_one_session, matched_pair, snapshot


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
