"""Offer rounds, the waitlist, refunds, cancellations and languages, through the console."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.runtime.demo_data import seed_demo
from storage.models import Enrollment, MentorSession, MentorshipRequest, Reminder, RequestOffer
from tests.support import (
    AppFactory,
    Harness,
    add_lessons,
    buy,
    harness_for,
    make_config,
    matched_pair,
    refused,
    request_mentor,
)


async def request_status(h: Harness, request_id: int = 1) -> str:
    async with h.app.new_uow() as uow:
        request = await uow.get(MentorshipRequest, request_id)
        assert request is not None
        return request.status


async def test_declines_move_the_request_to_the_next_mentors(make_app: AppFactory) -> None:
    """When every mentor offered a request declines, the next candidate gets it."""
    app = await make_app(make_config(matching={"offer_size": 1}))
    h = harness_for(app)
    await seed_demo(app)
    await buy(h, "alice")
    await request_mentor(h, "alice")
    first = [n for n in ("ada", "linus", "mei") if "Accept" in await h.send(n, "/requests")]
    assert len(first) == 1
    out = await h.send(first[0], "/decline 1")
    assert "You declined request #1." in out and "New mentorship request #1" in out
    second = [n for n in ("ada", "linus", "mei") if "Accept" in await h.send(n, "/requests")]
    assert len(second) == 1 and second != first
    assert "Request #1 is no longer open to you." in await h.send(first[0], "/accept 1")


async def test_unanswered_offers_time_out_then_waitlist_then_new_mentor(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Nobody answers → next mentors; nobody left → waitlist with honest notices; a newly
    approved mentor gets the waitlisted request."""
    app = await make_app(make_config(matching={"offer_size": 2, "offer_timeout_minutes": 60}))
    h = harness_for(app)
    await seed_demo(app)
    await buy(h, "alice")
    await request_mentor(h, "alice")
    assert await request_status(h) == "offered"
    clock.advance(timedelta(minutes=61))
    out = await h.tick()
    assert "New mentorship request #1" in out  # the third mentor
    clock.advance(timedelta(minutes=61))
    out = await h.tick()
    assert await request_status(h) == "waitlisted"
    assert "Your request #1 is on the waitlist" in out
    assert "message for admin" in out and "Request #1 (Python from zero) is waitlisted" in out
    assert "#1 alice" in await h.send("admin", "/admin waitlist")

    out = await h.send("zed", "/becomementor")
    assert "Thanks for applying" in out and "zed applied to mentor" in out
    await h.send("zed", "/profile topics python:advanced")
    out = await h.send("admin", "/admin mentor approve 4")
    assert "Mentor #4 (zed) is approved and told." in out
    assert "message for zed" in out and "New mentorship request #1" in out
    assert await request_status(h) == "offered"
    out = await h.send("zed", "/accept 1")
    assert "You are now mentoring alice" in out


async def test_cancelling_returns_the_credit_and_silences_reminders(
    market: Harness, clock: FakeClock
) -> None:
    """A cancelled session gives the credit back, tells the other side, and never reminds."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "3")
    out = await market.send("ada", "/cancelsession 1")
    assert "Session #1 is cancelled. The session credit is back." in out
    assert "message for alice" in out and "ada cancelled session #1" in out
    assert "4 sessions left" in await market.send("alice", "/mycourses")
    clock.advance(timedelta(days=2))
    assert "Reminder" not in await market.tick()
    async with market.app.new_uow() as uow:
        reminders = (await uow.session.execute(select(Reminder))).scalars().all()
        assert reminders and all(r.sent_at is None and r.skipped_at for r in reminders)


async def test_refund_revokes_enrollment_and_cancels_future_sessions(market: Harness) -> None:
    """An admin refund revokes the course, cancels booked sessions and tells both sides."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "3")
    out = await market.send("admin", "/admin refund 1")
    assert "Order #1 refunded; 1 future session cancelled." in out
    assert "message for ada" in out and "course was refunded" in out
    assert "message for alice" in out and "Order #1 is refunded ($49.00)" in out
    async with market.app.new_uow() as uow:
        enrollment = (await uow.session.execute(select(Enrollment))).scalar_one()
        session = (await uow.session.execute(select(MentorSession))).scalar_one()
        assert (enrollment.status, enrollment.credits_remaining) == ("revoked", 0)
        assert session.status == "cancelled"
    out = await market.send("admin", "/admin refund 1")
    assert "Order #1 is already refunded." in out
    assert "no courses yet" in await market.send("alice", "/mycourses")


async def test_admin_manages_the_catalogue(market: Harness) -> None:
    """Admins add, edit, archive and restore courses; learners see the result."""
    out = await market.send(
        "admin",
        '/admin course add rust-intro title="Rust in practice" title_zh="Rust 实战" '
        "price=59.50 currency=eur sessions=3 topics=rust",
    )
    assert "Course 'rust-intro' added: Rust in practice, €59.50." in out
    await market.send("admin", "/admin course edit rust-intro price=45")
    assert "€45.00" in await market.send("alice", "/course rust-intro")
    await market.send("admin", "/admin course archive rust-intro")
    assert "Rust in practice" not in await market.send("alice", "/courses")
    assert "There is no course called" in await market.send("alice", "/buy rust-intro")
    await market.send("admin", "/admin course restore rust-intro")
    assert "Rust in practice" in await market.send("alice", "/courses")


async def test_expired_order_cannot_be_paid(market: Harness, clock: FakeClock) -> None:
    """An order left past its time expires and paying it is refused politely."""
    await market.send("alice", "/buy python-basics")
    clock.advance(timedelta(hours=2))
    await market.tick()
    out = await market.send("alice", "/pay 1")
    assert "Order #1 is expired, so it can no longer be paid." in out
    assert "no courses yet" in await market.send("alice", "/mycourses")


async def test_mentor_only_actions_are_checked(market: Harness, clock: FakeClock) -> None:
    """Only the assigned mentor completes a session, and not before it starts."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "3")
    assert "Only the session's mentor can do that." in await market.send("alice", "/complete 1")
    assert "There is no session #1." in await market.send("linus", "/complete 1")
    assert "Session #1 has not started yet." in await market.send("ada", "/complete 1")
    clock.advance(timedelta(days=1))
    out = await market.send("ada", "/noshow 1")
    assert "marked as a no-show" in out and "marked session #1" in out


async def test_demo_payments_off_means_no_buying(make_app: AppFactory) -> None:
    """Without a payment provider, buying in the console says no way to pay is set up and
    how its operator turns demo payments on (`shell --demo` or [payments] demo)."""
    app = await make_app(make_config(payments={"demo": False}))
    h = harness_for(app)
    await seed_demo(app)
    out = await h.send("alice", "/buy python-basics")
    assert "No way to pay is set up" in out
    assert "mentorbot shell --demo" in out and "demo = true under [payments]" in out


async def test_cancel_stops_a_half_finished_step(market: Harness) -> None:
    """/cancel in the middle of the /mentor questions stops them; free text is then refused."""
    await buy(market, "alice")
    await market.send("alice", "/mentor")
    assert "Stopped. Nothing was saved from that step." in await market.send("alice", "/cancel")
    assert "Commands start with /" in await market.send("alice", "I want a mentor")
    assert "There is nothing to cancel." in await market.send("alice", "/cancel")


async def test_skip_leaves_only_an_optional_question_unanswered(market: Harness) -> None:
    """/skip at a question that needs its answer (a mentor request's goals, level) keeps the
    question open and says so; the request is then made as answered. /skip with nothing
    asked says so too, and after a rating it leaves the comment out."""
    assert "There is nothing to skip." in await market.send("alice", "/skip")
    await buy(market, "alice")
    await market.send("alice", "/mentor python-basics")
    for answer in ("Learn to write tested code", "beginner"):
        out = await market.send("alice", "/skip")
        assert "This question needs an answer, so it cannot be skipped." in out
        assert "Skipped." not in out
        await market.send("alice", answer)
    assert "Request #1 is out to" in await market.send("alice", "any")
    async with market.app.new_uow() as uow:
        request = await uow.get(MentorshipRequest, 1)
        assert request is not None and request.goals == "Learn to write tested code"
    await add_lessons(market, 1)
    await market.send("alice", "/nextlesson")
    assert "Add a comment?" in await market.send("alice", "/ratelesson 1 4")
    assert "Skipped." in await market.send("alice", "/skip")
    assert "There is nothing to skip." in await market.send("alice", "/skip")


def labels(h: Harness, who: str) -> list[str]:
    return [c.label for c in h.chat.last_choices[who]]


async def test_mentor_says_why_there_is_nothing_to_ask_on(market: Harness) -> None:
    """A learner whose sessions are all used is told so, with a button to buy the course
    again, not to "buy a course first"; naming a course they do not hold says that, with the
    course's page one press away; nothing changes either way."""
    out = await refused(market, "alice", "/mentor")
    assert "A mentor comes with a course. Buy one first" in out
    out = await refused(market, "alice", "/mentor git-teamwork")
    assert "Git for teams is not one of your courses yet." in out
    assert labels(market, "alice") == ["See Git for teams"]
    await buy(market, "alice")
    async with market.app.new_uow() as uow:
        enrollment = (await uow.session.execute(select(Enrollment))).scalar_one()
        enrollment.credits_remaining = 0  # every session used
        await uow.commit()
    out = await refused(market, "alice", "/mentor")
    assert "You have used every session of Python from zero. To meet a mentor again" in out
    assert labels(market, "alice") == ["Buy Python from zero again"]
    assert "Order #" in await market.send("alice", "1")
    await market.send("alice", "/language zh")
    out = await refused(market, "alice", "/mentor python-basics")
    assert "《零基础学 Python》的辅导次数已全部用完。" in out


async def _two_requests_mentors_of_capacity_one(
    make_app: AppFactory, offer_size: int
) -> tuple[Any, Harness]:
    """bob's request #1 and alice's #2, offered while every demo mentor takes one mentee."""
    app = await make_app(
        make_config(matching={"offer_size": offer_size, "offer_timeout_minutes": 600})
    )
    h = harness_for(app)
    await seed_demo(app)
    for mentor in ("ada", "linus", "mei"):
        await h.send(mentor, "/profile capacity 1")
    await buy(h, "bob")
    await request_mentor(h, "bob")
    await buy(h, "alice")
    await request_mentor(h, "alice")
    return app, h


async def test_offers_to_a_mentor_who_filled_up_pass_on_without_waiting(
    make_app: AppFactory,
) -> None:
    """A mentor who reaches capacity cannot say yes to their other open offers: the next
    sweep withdraws them, and a request left with no open offer goes to the next mentor at
    once instead of after the offer timeout."""
    app, h = await _two_requests_mentors_of_capacity_one(make_app, offer_size=1)
    async with app.new_uow() as uow:
        offers = (await uow.session.execute(select(RequestOffer))).scalars().all()
        first = {o.request_id: o.mentor_id for o in offers}
    assert first[1] == first[2]  # both went to the best match
    names = {1: "ada", 2: "linus", 3: "mei"}
    full = names[first[1]]
    assert "You are now mentoring bob" in await h.send(full, "/accept 1")
    passed_on = await h.tick()
    async with app.new_uow() as uow:
        offers = {
            (o.request_id, o.mentor_id): o.status
            for o in (await uow.session.execute(select(RequestOffer))).scalars()
        }
        request = await uow.session.get(MentorshipRequest, 2)
        assert request is not None
        assert (request.status, request.offer_round) == ("offered", 2)
    assert offers[(2, first[1])] == "withdrawn"
    nxt = [m for (r, m), status in offers.items() if r == 2 and status == "offered"]
    assert len(nxt) == 1 and nxt[0] != first[1]
    assert f"message for {names[nxt[0]]}" in passed_on
    assert "New mentorship request #2" in passed_on
    assert "Request #2 is no longer open to you." in await h.send(full, "/accept 2")
    out = await h.send(names[nxt[0]], "/accept 2")
    assert "You are now mentoring alice" in out


async def test_a_round_with_another_open_offer_waits_for_it(make_app: AppFactory) -> None:
    """Only the full mentor's offer is withdrawn while someone else in the round may still
    accept: no new round, nobody new is asked."""
    app, h = await _two_requests_mentors_of_capacity_one(make_app, offer_size=2)
    async with app.new_uow() as uow:
        rows = (await uow.session.execute(select(RequestOffer))).scalars().all()
        round_of = {r: sorted(o.mentor_id for o in rows if o.request_id == r) for r in (1, 2)}
    shared = sorted(set(round_of[1]) & set(round_of[2]))
    assert shared
    names = {1: "ada", 2: "linus", 3: "mei"}
    assert "You are now mentoring bob" in await h.send(names[shared[0]], "/accept 1")
    out = await h.tick()
    assert "New mentorship request #2" not in out
    async with app.new_uow() as uow:
        offers = {
            o.mentor_id: o.status
            for o in (await uow.session.execute(select(RequestOffer))).scalars()
            if o.request_id == 2
        }
        request = await uow.session.get(MentorshipRequest, 2)
        assert request is not None and request.offer_round == 1
    assert offers[shared[0]] == "withdrawn"
    assert sorted(m for m, status in offers.items() if status == "offered") == sorted(
        set(round_of[2]) - {shared[0]}
    )
