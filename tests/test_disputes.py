"""Sessions whose two sides disagree: a learner's claim alone never returns a credit, admins
settle disputes (defect 1 of "Money and trust that hold under any sequence of actions")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from storage.models import Enrollment, LedgerEntry, MentorSession
from tests.support import Harness, matched_pair


async def session_row(h: Harness, session_id: int) -> MentorSession:
    async with h.app.new_uow() as uow:
        row = await uow.get(MentorSession, session_id)
        assert row is not None
        await uow.commit()
        return row


async def credits(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        return (await uow.session.execute(select(Enrollment.credits_remaining))).scalar_one()


async def earnings(h: Harness) -> int:
    """How many sessions earned their mentor (ledger earnings, none reversed)."""
    async with h.app.new_uow() as uow:
        earned = select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "mentor_earning")
        reversed_ = select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "earning_reversed")
        return int((await uow.session.execute(earned)).scalar_one()) - int(
            (await uow.session.execute(reversed_)).scalar_one()
        )


async def book_next(h: Harness, request_id: int) -> str:
    """Alice books ada's first free time (the first button of /book)."""
    out = await h.send("alice", f"/book {request_id}")
    return out + "\n" + await h.send("alice", "1")


async def ended_session(h: Harness, clock: FakeClock) -> MentorSession:
    """Alice's booked session #1 with ada, the clock just after its end."""
    request_id = await matched_pair(h)
    assert "Booked: session #1" in await book_next(h, request_id)
    session = await session_row(h, 1)
    clock.set(session.start_at + timedelta(minutes=session.duration_minutes + 1))
    return session


async def test_claiming_noshow_on_every_session_never_buys_more_sessions(
    market: Harness, clock: FakeClock
) -> None:
    """Defect 1: a learner answering "noshow" on every session of a 4-session course gets 4
    sessions, not more, and the claims wait for the mentor instead of returning credits."""
    request_id = await matched_pair(market)
    booked = 0
    for _attempt in range(8):
        out = await book_next(market, request_id)
        if "Booked: session #" not in out:
            assert "You have no sessions left in this course." in out
            break
        booked += 1
        session = await session_row(market, booked)
        clock.set(session.start_at + timedelta(minutes=session.duration_minutes + 1))
        out = await market.send("alice", f"/outcome {booked} noshow")
        assert "the session credit is back" not in out
    assert booked == 4
    assert await credits(market) == 0
    assert await earnings(market) == 0


async def test_a_learner_cannot_claim_before_the_session_ends(
    market: Harness, clock: FakeClock
) -> None:
    """A claim while the session is still running is refused, naming when it can be made."""
    request_id = await matched_pair(market)
    await book_next(market, request_id)
    session = await session_row(market, 1)
    clock.set(session.start_at + timedelta(minutes=1))
    out = await market.send("alice", "/outcome 1 noshow")
    assert "Session #1 has not ended yet. You can say whether it took place from" in out
    assert (await session_row(market, 1)).learner_outcome is None
    assert await credits(market) == 3


async def test_mentor_completed_then_learner_noshow_is_a_dispute(
    market: Harness, clock: FakeClock
) -> None:
    """The learner's noshow first waits for the mentor; the mentor saying it took place makes
    it disputed: admins are told both answers, the credit stays used, nobody is paid."""
    await ended_session(market, clock)
    out = await market.send("alice", "/outcome 1 noshow")
    assert "message for ada" in out and "says you did not come to session #1" in out
    assert "message for admin" not in out
    assert await credits(market) == 3
    out = await market.send("ada", "/outcome 1 completed")
    assert "an admin will look at it" in out
    assert "message for admin" in out and "mentor says completed, learner says no-show" in out
    row = await session_row(market, 1)
    assert row.status == "disputed"
    assert await credits(market) == 3
    assert await earnings(market) == 0
    assert "Only completed sessions can be rated." in await market.send("alice", "/rate 1 5")


async def test_a_claim_after_the_mentor_completed_keeps_the_credit_used(
    market: Harness, clock: FakeClock
) -> None:
    """Once the mentor said it took place, the learner's later noshow goes to the admins but
    returns no credit."""
    await ended_session(market, clock)
    await market.send("ada", "/outcome 1 completed")
    out = await market.send("alice", "/outcome 1 noshow")
    assert "message for admin" in out and "mentor says completed, learner says no-show" in out
    assert "the session credit is back" not in out
    assert (await session_row(market, 1)).status == "completed"
    assert await credits(market) == 3 and await earnings(market) == 1


async def test_each_settlement_decides_credit_and_earnings(
    market: Harness, clock: FakeClock
) -> None:
    """completed pays the mentor; noshow keeps the credit used unpaid; refund-credit returns
    the credit; each tells both sides, and a second settlement is refused."""
    request_id = await matched_pair(market)
    for number in (1, 2, 3):
        assert f"Booked: session #{number}" in await book_next(market, request_id)
        session = await session_row(market, number)
        clock.set(session.start_at + timedelta(minutes=session.duration_minutes + 1))
        await market.send("alice", f"/outcome {number} noshow")
        await market.send("ada", f"/outcome {number} completed")
        assert (await session_row(market, number)).status == "disputed"
    assert await credits(market) == 1

    out = await market.send("admin", "/admin settle 1 completed")
    assert "Session #1 is settled as completed." in out
    assert "message for alice" in out and "message for ada" in out
    assert "the mentor is paid" in out
    assert await earnings(market) == 1 and await credits(market) == 1

    out = await market.send("admin", "/admin settle 2 noshow")
    assert "Session #2 is settled as no-show." in out and "the learner missed it" in out
    assert await earnings(market) == 1 and await credits(market) == 1

    out = await market.send("admin", "/admin settle 3 refund-credit")
    assert "the learner's session credit is back" in out
    assert await earnings(market) == 1 and await credits(market) == 2

    out = await market.send("admin", "/admin settle 3 refund-credit")
    assert "Session #3 is not disputed; nothing to settle." in out
    assert await credits(market) == 2


async def test_an_unanswered_claim_can_be_settled_by_an_admin(
    market: Harness, clock: FakeClock
) -> None:
    """A mentor who never answers does not leave the learner stuck: an admin returns the
    credit, and the mentor can no longer overturn it."""
    await ended_session(market, clock)
    await market.send("alice", "/outcome 1 noshow")
    out = await market.send("admin", "/admin settle 1 refund-credit")
    assert "the learner's session credit is back" in out
    assert await credits(market) == 4
    out = await market.send("ada", "/outcome 1 completed")
    assert "An admin already settled session #1." in out
    assert (await session_row(market, 1)).status == "no_show"
    assert await credits(market) == 4 and await earnings(market) == 0


async def test_only_admins_can_settle(market: Harness, clock: FakeClock) -> None:
    """Neither side (nor anyone else) can settle their own dispute."""
    await ended_session(market, clock)
    await market.send("alice", "/outcome 1 noshow")
    await market.send("ada", "/outcome 1 completed")
    for who in ("alice", "ada", "mallory"):
        out = await market.send(who, "/admin settle 1 refund-credit")
        assert "Only marketplace admins can do that." in out
    assert (await session_row(market, 1)).status == "disputed"
    assert await credits(market) == 3


async def test_admin_disputes_lists_both_answers_and_repeated_claims(
    market: Harness, clock: FakeClock
) -> None:
    """/admin disputes shows each open case with both answers and how many no-show claims
    that learner has made; settled cases leave the list."""
    assert "No disputed sessions." in await market.send("admin", "/admin disputes")
    request_id = await matched_pair(market)
    for number in (1, 2):
        await book_next(market, request_id)
        session = await session_row(market, number)
        clock.set(session.start_at + timedelta(minutes=session.duration_minutes + 1))
        await market.send("alice", f"/outcome {number} noshow")
    await market.send("ada", "/outcome 1 completed")
    out = await market.send("admin", "/admin disputes")
    assert "#1" in out and "(disputed): mentor ada" in out
    assert "says completed, learner alice" in out
    assert "#2" in out and "mentor ada" in out and "says —" in out
    assert out.count("no-show claims by this learner: 2") == 2
    await market.send("admin", "/admin settle 1 noshow")
    out = await market.send("admin", "/admin disputes")
    assert "#1 " not in out and "#2 " in out
