"""The session and ordering rules called directly with a unit of work, as a webhook, a sweep or
data erasure would call them: no chat in between, only the database to check."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.config import Config
from bot.core.clock import FakeClock
from bot.core.errors import BadInput
from bot.core.users import mentor_profile_of
from bot.payments import fulfil_order, place_order
from bot.sessions import booking
from bot.sessions.booking import SlotNotFree
from bot.sessions.rating import rate
from bot.sessions.scheduling import slot_token
from storage.models import (
    Course,
    Enrollment,
    Identity,
    LedgerEntry,
    MentorSession,
    Order,
    OutboxMessage,
    Reminder,
    User,
)
from storage.uow import UnitOfWork
from tests.support import Harness, matched_pair


def config(h: Harness) -> Config:
    return h.app.config


async def user_id(uow: UnitOfWork, name: str) -> int:
    found = await uow.session.execute(
        select(Identity.user_id)
        .where(Identity.platform == "console")
        .where(Identity.external_id == name)
    )
    return found.scalar_one()


async def credits_of(h: Harness, name: str) -> int:
    async with h.app.new_uow() as uow:
        learner = await user_id(uow, name)
        found = await uow.session.execute(
            select(Enrollment.credits_remaining).where(Enrollment.user_id == learner)
        )
        return found.scalar_one()


def days_ahead(clock: FakeClock, days: int) -> datetime:
    """A start ada (09:00-12:00 London, which is UTC in early March) has free."""
    return (clock.now() + timedelta(days=days)).replace(hour=9, minute=0)


async def book(h: Harness, clock: FakeClock, learner: str, request_id: int, start: datetime) -> int:
    async with h.app.new_uow() as uow:
        booked = await booking.book(
            uow, await user_id(uow, learner), request_id, start, clock.now(), config(h)
        )
        await uow.commit()
    return booked.session.id


async def test_book_spends_a_credit_and_refuses_a_taken_slot(
    market: Harness, clock: FakeClock
) -> None:
    """Booking takes one credit, schedules reminders and tells the mentor; another learner
    asking for the same start is refused with the times still free, and keeps their credit."""
    alice_request = await matched_pair(market, "alice", "ada")
    bob_request = await matched_pair(market, "bob", "ada")
    start = days_ahead(clock, 3)
    async with market.app.new_uow() as uow:
        ada = await user_id(uow, "ada")
        notices_before = (
            await uow.session.execute(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.user_id == ada)
            )
        ).scalar_one()
    session_id = await book(market, clock, "alice", alice_request, start)
    assert await credits_of(market, "alice") == 3
    async with market.app.new_uow() as uow:
        session = await uow.get(MentorSession, session_id)
        assert session is not None and session.start_at == start
        reminders = await uow.session.execute(
            select(func.count(Reminder.id)).where(Reminder.session_id == session_id)
        )
        assert reminders.scalar_one() >= 2
        notices = await uow.session.execute(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.user_id == ada)
        )
        assert notices.scalar_one() == notices_before + 1
    async with market.app.new_uow() as uow:
        bob = await user_id(uow, "bob")
        with pytest.raises(SlotNotFree) as refused:
            await booking.book(uow, bob, bob_request, start, clock.now(), config(market))
        assert start not in refused.value.free and refused.value.free
    assert await credits_of(market, "bob") == 4


async def test_learner_cancel_returns_the_credit_outside_the_window_and_uses_it_inside(
    market: Harness, clock: FakeClock
) -> None:
    """A learner cancelling more than the window ahead gets the credit back; within it, the
    credit is used up."""
    request_id = await matched_pair(market)
    early = await book(market, clock, "alice", request_id, days_ahead(clock, 3))
    async with market.app.new_uow() as uow:
        alice = await user_id(uow, "alice")
        outcome = await booking.cancel(uow, alice, early, clock.now(), config(market))
        await uow.commit()
    assert outcome.credit_back and outcome.session.status == "cancelled"
    assert await credits_of(market, "alice") == 4
    start = days_ahead(clock, 4)
    late = await book(market, clock, "alice", request_id, start)
    clock.set(start - timedelta(hours=5))
    async with market.app.new_uow() as uow:
        outcome = await booking.cancel(uow, alice, late, clock.now(), config(market))
        await uow.commit()
    assert not outcome.credit_back
    assert await credits_of(market, "alice") == 3


async def test_mentor_cancel_always_returns_the_credit(market: Harness, clock: FakeClock) -> None:
    """A mentor cancelling two hours before the start still gives the learner the credit back."""
    request_id = await matched_pair(market)
    start = days_ahead(clock, 3)
    session_id = await book(market, clock, "alice", request_id, start)
    clock.set(start - timedelta(hours=2))
    async with market.app.new_uow() as uow:
        outcome = await booking.cancel(
            uow, await user_id(uow, "ada"), session_id, clock.now(), config(market)
        )
        await uow.commit()
    assert outcome.credit_back
    assert await credits_of(market, "alice") == 4


async def test_complete_credits_the_mentor_once(market: Harness, clock: FakeClock) -> None:
    """The mentor's completed answer records one earning; answering again only says what is
    recorded, and the learner's confirmation adds none."""
    request_id = await matched_pair(market)
    start = days_ahead(clock, 3)
    session_id = await book(market, clock, "alice", request_id, start)
    clock.set(start + timedelta(minutes=65))
    async with market.app.new_uow() as uow:
        ada = await user_id(uow, "ada")
        closed = await booking.close(uow, ada, session_id, "completed", clock.now(), config(market))
        await uow.commit()
    assert closed.result == "completed" and closed.session.status == "completed"
    async with market.app.new_uow() as uow:
        again = await booking.close(uow, ada, session_id, "completed", clock.now(), config(market))
        assert again.result == "known"
    async with market.app.new_uow() as uow:
        alice = await user_id(uow, "alice")
        closed = await booking.close(
            uow, alice, session_id, "completed", clock.now(), config(market)
        )
        await uow.commit()
    assert closed.result == "known"  # the mentor's answer stands: nothing to wait for
    async with market.app.new_uow() as uow:
        earnings = list((await uow.session.execute(select(LedgerEntry))).scalars())
        earnings = [e for e in earnings if e.kind == "mentor_earning"]
        assert [e.session_id for e in earnings] == [session_id]
        assert earnings[0].amount_minor > 0


async def test_place_order_reuses_the_open_order_and_refuses_an_owned_course(
    market: Harness, clock: FakeClock
) -> None:
    """Placing an order twice gives the same pending order; once paid, the course is owned
    and another order is refused."""
    await market.send("alice", "/start")
    async with market.app.new_uow() as uow:
        alice = await user_id(uow, "alice")
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "python-basics"))
        ).scalar_one()
        first = await place_order(uow, alice, course.id, clock.now(), config(market))
        again = await place_order(uow, alice, course.id, clock.now(), config(market))
        assert not first.reused and again.reused and again.order.id == first.order.id
        assert first.order.amount_minor == course.price_minor
        order = await uow.lock(Order, first.order.id)
        assert order is not None
        await fulfil_order(uow, config(market), order, clock.now(), "demo")
        with pytest.raises(BadInput):
            await place_order(uow, alice, course.id, clock.now(), config(market))


async def test_rating_feeds_the_mentors_average_and_a_re_rating_replaces_it(
    market: Harness, clock: FakeClock
) -> None:
    """A learner's stars count once in the mentor's average; changing them within the edit
    window moves the average instead of adding a second rating."""
    request_id = await matched_pair(market)
    start = days_ahead(clock, 3)
    session_id = await book(market, clock, "alice", request_id, start)
    clock.set(start + timedelta(minutes=65))
    async with market.app.new_uow() as uow:
        ada = await user_id(uow, "ada")
        alice = await user_id(uow, "alice")
        await booking.close(uow, ada, session_id, "completed", clock.now(), config(market))
        first = await rate(uow, alice, session_id, 5, " great ", clock.now(), config(market))
        again = await rate(uow, alice, session_id, 3, "", clock.now(), config(market))
        assert first.previous is None and again.previous == 5
        assert again.rating.comment == "great"
        profile = await mentor_profile_of(uow, ada)
        assert profile is not None
        assert (profile.rating_count, profile.rating_sum) == (1, 3)


async def test_a_person_is_never_booked_in_two_roles_at_once(
    market: Harness, clock: FakeClock
) -> None:
    """Defect 7: a mentor who is also a learner could be booked as mentor and as learner for
    the same hour. The hour ada teaches alice is refused, and not offered, when ada books as
    linus's learner; her other hours still are."""
    request_id = await matched_pair(market)  # alice learns from ada
    start = (clock.now() + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    assert "Booked" in await market.send("alice", f"/book {request_id} {slot_token(start)}")
    own = await matched_pair(market, learner="ada", mentor="linus")  # ada learns from linus
    out = await market.send("ada", f"/book {own} {slot_token(start)}")
    assert "That time is not free" in out
    async with market.app.new_uow() as uow:
        ada = select(User.id).where(User.display_name == "ada")
        user_id = (await uow.session.execute(ada)).scalar_one()
        free = await booking.bookable_times(uow, user_id, own, clock.now(), market.app.config)
    assert free and start not in free
