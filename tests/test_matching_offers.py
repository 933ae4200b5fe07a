"""Matching through the database: history, timezones and explanations reach real offers, and
an admin places the open requests with `/admin match-cohort`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.matching import explanation_from_code
from bot.runtime.demo_data import seed_demo
from storage.models import (
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Rating,
    RequestOffer,
    User,
)
from tests.support import Harness, buy


async def _past_session(h: Harness, learner: str, mentor: str, rater: str, stars: int) -> None:
    """A completed session between the two on the learner's first course, rated by `rater`."""
    now = h.app.clock.now()
    async with h.app.new_uow() as uow:
        users = {
            u.display_name: u
            for u in (await uow.session.execute(select(User))).scalars()
            if u.display_name in (learner, mentor)
        }
        profile = (
            await uow.session.execute(
                select(MentorProfile).where(MentorProfile.user_id == users[mentor].id)
            )
        ).scalar_one()
        enrollment = (
            await uow.session.execute(
                select(Enrollment).where(Enrollment.user_id == users[learner].id).limit(1)
            )
        ).scalar_one()
        request = MentorshipRequest(
            learner_id=users[learner].id,
            enrollment_id=enrollment.id,
            topic="git",
            goals="an earlier course",
            level=1,
            preferred_times=["any"],
            status="cancelled",
            mentor_id=profile.id,
            created_at=now - timedelta(days=30),
        )
        uow.add(request)
        await uow.flush()
        session = MentorSession(
            request_id=request.id,
            enrollment_id=enrollment.id,
            mentor_id=profile.id,
            learner_id=users[learner].id,
            start_at=now - timedelta(days=20),
            duration_minutes=60,
            meeting_link="https://example.invalid",
            status="completed",
            created_at=now - timedelta(days=25),
        )
        uow.add(session)
        await uow.flush()
        rater_id = users[rater].id
        ratee_id = users[mentor if rater == learner else learner].id
        uow.add(
            Rating(
                session_id=session.id,
                rater_id=rater_id,
                ratee_id=ratee_id,
                stars=stars,
                comment="",
                created_at=now - timedelta(days=19),
            )
        )
        await uow.commit()


async def test_history_and_explanations_reach_offers_and_the_cohort_command(
    harness: Harness, clock: FakeClock
) -> None:
    """Ada rated alice 2★ once, so ada never gets alice's requests again; alice rated mei 5★,
    so mei comes first and the offer says they worked together. Then the admin's cohort
    command shows the plan against greedy and, applied, leaves mei the only one asked."""
    h = harness
    await seed_demo(h.app)
    await buy(h, "alice", "git-teamwork")
    await _past_session(h, "alice", "ada", rater="ada", stars=2)
    await _past_session(h, "alice", "mei", rater="alice", stars=5)
    await buy(h, "alice", "python-basics")
    await h.send("alice", "/timezone Asia/Shanghai")

    await h.send("alice", "/mentor python-basics")
    await h.send("alice", "Learn to write tested code")
    await h.send("alice", "beginner")
    # Alice's evenings are 18–23 in Shanghai (10–15 UTC). Mei (Shanghai) is free 18–21 every
    # day, inside them; linus (Helsinki, UTC+2 in March) 07–10 and 16–19 UTC, outside.
    out = await h.send("alice", "evening")
    assert "Request #3 is out to 2 mentors" in out, out
    assert "message for ada" not in out
    mei = out.split("── message for mei ──", 1)[1]
    assert (
        "Why you: 1 shared topic · 21 h/week overlap · new mentor · worked together before" in mei
    )
    linus = out.split("── message for linus ──", 1)[1]
    assert "Why you: 1 shared topic · no overlap with the preferred times · new mentor" in linus

    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(RequestOffer.mentor_id, RequestOffer.explanation).where(
                RequestOffer.request_id == 3
            )
        )
        offers = dict(rows.all())
    assert set(offers) == {2, 3}  # linus and mei, never ada (#1)
    stored = explanation_from_code(offers[3])
    assert stored is not None and "worked together before" in stored.render("en")
    assert "曾经合作过" in stored.render("zh")

    out = await h.send("admin", "/admin match-cohort")
    assert "Cohort: 1 open requests, 3 mentors" in out, out
    assert "Optimal: 1 assigned" in out and "First come, first served: 1 assigned" in out
    assert "#3 alice → mei (#3): 1 shared topic · 21 h/week overlap" in out
    assert "Nothing is sent yet." in out and "message for" not in out

    out = await h.send("admin", "/admin match-cohort apply")
    assert "Offered 1 request to its assigned mentor" in out, out
    assert "message for linus" in out and "Request #3 is no longer open to you" in out
    assert "message for mei" not in out  # mei already holds the offer
    assert "Request #3 is no longer open to you." in await h.send("linus", "/accept 3")
    out = await h.send("mei", "/accept 3")
    assert "You are now mentoring alice" in out, out
    out = await h.send("admin", "/admin match-cohort")
    assert "There are no open requests to match." in out
    out = await h.send("admin", "/admin match-cohort now")
    assert "Usage: /admin match-cohort [apply]" in out
