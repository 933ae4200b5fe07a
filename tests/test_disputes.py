"""Sessions whose two sides disagree: a learner's claim alone never returns a credit, admins
settle disputes (defect 1 of "Money and trust that hold under any sequence of actions")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import FakeClock
from storage.models import Enrollment, LedgerEntry, MentorSession
from tests.support import Harness, matched_pair, snapshot


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


async def test_an_outcome_in_other_words_is_read_and_a_wrong_one_refused(
    market: Harness, clock: FakeClock
) -> None:
    """`/outcome 1 no show` (two words, not the choice `noshow`) is the learner's claim, as
    the table of answers reads it; `/outcome 1 maybe` is refused naming the word and both
    choices, recording nothing."""
    await ended_session(market, clock)
    before = await snapshot(market)
    out = await market.send("alice", "/outcome 1 maybe")
    assert "/outcome does not take 'maybe'. Choose one of: completed, noshow." in out, out
    assert await snapshot(market) == before
    await market.send("alice", "/outcome 1 no show")
    assert (await session_row(market, 1)).learner_outcome == "no_show"


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
    assert "Session #1 is recorded as missed by the mentor, so the learner's session" in out
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


# What `/outcome` answers on a session whose outcome is already known, in each language.
KNOWN = {
    "en": {
        "rated": "Session #1 is recorded as completed, and you rated it 5★.",
        "unrated": "Session #1 is recorded as completed. Rate it from 1 to 5:",
        "missed_by_learner": "Session #1 is recorded as missed by the learner",
        "missed_by_mentor": "Session #1 is recorded as missed by the mentor",
        "disputed": "Session #1 is disputed: the two answers differ, and an admin decides.",
        "awaiting": "You already said session #1 took place.",
        "claimed": "You already said your mentor did not come to session #1.",
        "cancelled": "Session #1 was cancelled",
        "wrong": "wait",
    },
    "zh": {
        "rated": "辅导 #1 已记录为完成，你的评分是 5★。",
        "unrated": "辅导 #1 已记录为完成。请打 1 到 5 分：",
        "missed_by_learner": "辅导 #1 已记录为学员缺席",
        "missed_by_mentor": "辅导 #1 已记录为导师缺席",
        "disputed": "辅导 #1 有争议：双方的回答不一致，由管理员裁决。",
        "awaiting": "你已经说过辅导 #1 已进行。",
        "claimed": "你已经说过导师没有来参加辅导 #1。",
        "cancelled": "辅导 #1 已被取消",
        "wrong": "待你的导师确认",
    },
}
COMPLETED = {"en": "completed", "zh": "完成"}
NOSHOW = {"en": "noshow", "zh": "缺席"}


async def speaking(h: Harness, lang: str) -> None:
    for who in ("alice", "ada"):
        await h.send(who, f"/language {lang}")


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_outcome_on_a_completed_and_rated_session_says_so(
    market: Harness, clock: FakeClock, lang: str
) -> None:
    """A learner answering "completed" (in English or Chinese) after the mentor completed the
    session and they rated it is told it is recorded as completed with their stars, not to
    wait for the mentor; before rating, the same answer offers the rating."""
    await ended_session(market, clock)
    await speaking(market, lang)
    await market.send("ada", f"/outcome 1 {COMPLETED[lang]}")
    out = await market.send("alice", f"/outcome 1 {COMPLETED[lang]}")
    assert KNOWN[lang]["unrated"] in out and "★★★★★" in out, out
    await market.send("alice", "/rate 1 5 Great")
    for typed in (COMPLETED[lang], "completed"):
        out = await market.send("alice", f"/outcome 1 {typed}")
        assert KNOWN[lang]["rated"] in out, out
        assert KNOWN[lang]["wrong"] not in out and "★★★★★" not in out, out
    assert (await session_row(market, 1)).status == "completed"
    assert await earnings(market) == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_outcome_says_what_is_true_in_every_state(
    market: Harness, clock: FakeClock, lang: str
) -> None:
    """Answering again, or after the session was decided, is answered with what is recorded:
    the mentor's own completed session (with the rating offer), a learner's no-show, a
    dispute, a credit returned by an admin, the learner's answers waiting for the mentor, and
    a cancelled session; none of it changes the session."""
    known = KNOWN[lang]
    request_id = await matched_pair(market)
    await speaking(market, lang)
    for _n in range(4):
        await book_next(market, request_id)
    async with market.app.new_uow() as uow:
        last = (await uow.session.execute(select(func.max(MentorSession.start_at)))).scalar_one()
    clock.set(last + timedelta(hours=2))

    async def answers(who: str, session: int, answer: dict[str, str]) -> str:
        out = await market.send(who, f"/outcome {session} {answer[lang]}")
        return out.replace(f"#{session}", "#1")

    # 1: the mentor completed it; saying so again offers the mentor's rating of the learner
    await answers("ada", 1, COMPLETED)
    assert known["unrated"] in await answers("ada", 1, COMPLETED)
    # 2: the learner already said it took place; the mentor has not answered
    await answers("alice", 2, COMPLETED)
    assert known["awaiting"] in await answers("alice", 2, COMPLETED)
    assert known["awaiting"] in await answers("alice", 2, NOSHOW)
    # 3: the learner claimed the mentor did not come, then the mentor says it took place
    await answers("alice", 3, NOSHOW)
    assert known["claimed"] in await answers("alice", 3, NOSHOW)
    await answers("ada", 3, COMPLETED)
    for who in ("alice", "ada"):
        assert known["disputed"] in await answers(who, 3, COMPLETED)
    await market.send("admin", "/admin settle 3 refund-credit")
    for who in ("alice", "ada"):
        assert known["missed_by_mentor"] in await answers(who, 3, COMPLETED)
    # 4: the mentor marked the learner absent
    await answers("ada", 4, NOSHOW)
    assert known["missed_by_learner"] in await answers("ada", 4, NOSHOW)
    before = await snapshot(market)
    assert known["missed_by_learner"] in await answers("ada", 4, COMPLETED)
    assert await snapshot(market) == before
    statuses = [(await session_row(market, n)).status for n in (1, 2, 3, 4)]
    assert statuses == ["completed", "scheduled", "no_show", "no_show"]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_outcome_on_a_cancelled_session_says_it_was_cancelled(
    market: Harness, clock: FakeClock, lang: str
) -> None:
    """A cancelled session has nothing to record, and the reply says why."""
    request_id = await matched_pair(market)
    await book_next(market, request_id)
    await speaking(market, lang)
    await market.send("alice", "/cancelsession 1 confirm")
    clock.advance(timedelta(days=30))
    out = await market.send("alice", f"/outcome 1 {COMPLETED[lang]}")
    assert KNOWN[lang]["cancelled"] in out, out
