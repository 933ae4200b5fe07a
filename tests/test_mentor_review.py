"""Admins see mentors and applications in words, approve or reject with a reason the applicant
reads in their own language, and anyone can write to the admins with /support."""

from __future__ import annotations

import re
from datetime import timedelta

from babel.messages.pofile import read_po

from bot.core.clock import FakeClock
from tests.support import Harness, snapshot
from tests.test_translations import ZH_PO_PATH


async def test_admin_mentors_shows_topics_load_rating_and_status_in_words(
    market: Harness,
) -> None:
    """Each mentor: topics with levels, mentees of capacity, sessions booked, rating words."""
    out = await market.send("admin", "/admin mentors")
    assert "#1 ada: approved, taking requests" in out
    assert "Topics: python (advanced), testing (advanced)" in out
    assert "Load: 0 of 3 mentees · 0 sessions booked" in out
    assert "Rating: no ratings yet" in out
    assert "— approved, —" not in out and "None" not in out


async def test_an_application_is_listed_with_the_profile_and_approve_reject_buttons(
    market: Harness,
) -> None:
    """The admin sees the applicant's name, topics, bio, timezone, languages and when."""
    out = await market.send("zed", "/becomementor")
    assert "Review it with /admin applications" in out
    await market.send("zed", "/profile topics sql:intermediate")
    await market.send("zed", "/profile bio I teach SQL at night school")
    out = await market.send("admin", "/admin applications")
    assert "#4 zed, applied" in out
    assert "Topics: sql (intermediate)" in out and "I teach SQL at night school" in out
    assert "Languages: en · timezone UTC" in out
    assert "[1] Approve #4" in out and "[2] Reject #4" in out
    out = await market.send("admin", "1")
    assert "Mentor #4 (zed) is approved and told." in out
    assert "message for zed" in out and "/availability" in out


async def test_rejecting_asks_for_a_reason_and_tells_the_applicant_in_their_language(
    market: Harness, clock: FakeClock
) -> None:
    """Pressing Reject asks why; the reason reaches the applicant in Chinese with the way on,
    and they can apply again (the admins hear of the second application in the next digest:
    it came within `[notices] digest_seconds` of the first)."""
    await market.send("mei2", "/language zh")
    await market.send("mei2", "/becomementor")
    out = await market.send("admin", "/admin reject 4")
    assert "Why is application #4 (mei2) rejected?" in out
    out = await market.send("admin", "Please add your topics first")
    assert "Application #4 (mei2) is rejected" in out
    assert "message for mei2" in out
    assert "“Please add your topics first”" in out and "/becomementor" in out
    assert "您" in out or "你" in out  # the applicant's notice is in Chinese
    out = await market.send("admin", "/admin applications")
    assert "No mentor applications are waiting" in out
    out = await market.send("mei2", "/becomementor")
    clock.advance(timedelta(seconds=market.app.config.notices.digest_seconds + 1))
    out = await market.tick()
    assert "mei2 applied to mentor (profile #4)" in out


async def test_reject_takes_the_reason_inline_and_refuses_an_approved_mentor(
    market: Harness,
) -> None:
    """/admin reject ID REASON rejects at once; an approved mentor cannot be rejected."""
    await market.send("zed", "/becomementor")
    out = await market.send("admin", "/admin reject 4 Not enough experience yet")
    assert "“Not enough experience yet”" in out
    before = await snapshot(market)
    out = await market.send("admin", "/admin reject 1 no")
    assert "cannot be rejected" in out
    assert await snapshot(market) == before


async def test_support_relays_a_message_inertly_and_the_admin_can_answer(
    market: Harness,
) -> None:
    """/support TEXT reaches the admins with a Reply button; the answer reaches the sender."""
    out = await market.send("alice", "/support I paid twice @everyone <b>help</b>")
    assert "Sent to the admins" in out
    assert "message for admin" in out
    assert "Message from alice (user #" in out and "“I paid twice @everyone <b>help</b>”" in out
    out = await market.send("admin", "1")
    assert "Your answer to alice?" in out
    out = await market.send("admin", "Refunded the second order")
    assert "message for alice" in out and "“Refunded the second order”" in out


async def test_support_is_rate_limited_and_says_when_to_write_again(
    market: Harness, clock: FakeClock
) -> None:
    """Three messages an hour; the fourth is refused with the time, and relays nothing."""
    for n in range(3):
        assert "Sent to the admins" in await market.send("bob", f"/support message {n}")
        clock.advance(timedelta(minutes=1))
    out = await market.send("bob", "/support one more")
    assert "You can write again after" in out and "message for admin" not in out
    clock.advance(timedelta(hours=1))
    assert "Sent to the admins" in await market.send("bob", "/support later")


async def test_support_without_text_asks_for_the_message(market: Harness) -> None:
    """The Write to the admins button sends /support, which asks for the message."""
    out = await market.send("alice", "/support")
    assert "What would you like to tell the admins?" in out
    out = await market.send("alice", "Where is my invoice?")
    assert "Sent to the admins" in out and "“Where is my invoice?”" in out


async def test_free_text_over_its_limit_is_refused_with_the_limit_inline_or_next(
    market: Harness,
) -> None:
    """A reject reason over 500 characters, a /support message or an admin's answer over
    1,000, typed inline or in the next message, is refused naming the limit and relays nothing;
    the question stays open, so a shorter one then goes through."""
    await market.send("zed", "/becomementor")
    before = await snapshot(market)
    out = await market.send("admin", "/admin reject 4 " + "x" * 501)
    assert "A reason can be at most 500 characters; yours has 501" in out
    assert "message for zed" not in out
    assert await snapshot(market) == before
    await market.send("admin", "/admin reject 4")
    out = await market.send("admin", "y" * 600)
    assert "at most 500 characters; yours has 600" in out and "message for zed" not in out
    assert "is rejected" in await market.send("admin", "Too few topics")
    out = await market.send("alice", "/support " + "z" * 1001)
    assert "Your message can be at most 1000 characters; yours has 1001" in out
    assert "message for admin" not in out
    await market.send("alice", "/support")
    out = await market.send("alice", "z" * 1200)
    assert "at most 1000 characters; yours has 1200" in out and "message for admin" not in out
    assert "Sent to the admins" in await market.send("alice", "Where is my invoice?")
    out = await market.send("admin", "/admin reply 1 " + "a" * 1001)
    assert "Your answer can be at most 1000 characters" in out and "message for" not in out
    await market.send("admin", "/language zh")
    await market.send("admin", "/admin reply 1")
    out = await market.send("admin", "a" * 1001)
    assert "你的回答最多 1000 个字符，你的有 1001 个" in out
    assert "message for" not in out and "消息" not in out.split("。", 1)[0]


async def test_a_suspended_mentor_is_told_how_to_reach_the_admins(market: Harness) -> None:
    """Suspension is no dead end: the notice names /support and offers it as a button."""
    out = await market.send("admin", "/admin mentor suspend 2")
    assert "Mentor #2 (linus) is suspended and told." in out
    assert "/support" in out and "Write to the admins" in out


def test_every_message_that_sends_people_to_the_admins_names_the_way() -> None:
    """No "contact an admin" dead end: a message asking the reader to reach the admins names
    /support (which also comes as a button where the reply has one)."""
    with ZH_PO_PATH.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans_CN")
    asks = re.compile(r"\b(contact|ask) (an|the) admins?\b", re.IGNORECASE)
    dead_ends = [
        m.id
        for m in catalog
        if isinstance(m.id, str) and asks.search(m.id) and "/support" not in m.id
    ]
    assert dead_ends == []
