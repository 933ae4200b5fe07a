"""The design's three models against hand-computed values, including the rescaling when a
component has no data, and where an admin reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ModelsSection
from bot.core.clock import FakeClock
from bot.reporting import design
from bot.reporting.design import (
    EfficiencyInputs,
    gather,
    learner_growth,
    learning_efficiency,
    revenue_growth,
)
from bot.reporting.files import build_report
from bot.reporting.satisfaction import Inputs, Weights, satisfaction
from tests.support import Harness, complete_one_session, make_config, matched_pair

WEIGHTS = ModelsSection()  # 40/30/30 and 50/30/20, richness target 10
NO_INTERACTION = {"discussion": None, "workshops": None, "questions": None}
WEEK = EfficiencyInputs(
    sessions=4,
    fitting=3,  # 75
    noted=2,  # 50
    wait_hours=[0.0, 24.0],  # 100 and 50: speed 75
    interactivity=NO_INTERACTION,
    resources_per_learner=10.0,  # 100·10/(10 + 10) = 50
    lesson_stars=[5, 3],  # 4★: 75
)


def test_satisfaction_matches_the_hand_computed_value() -> None:
    """Satisfaction = 0.4·75 + 0.3·100 + 0.3·75 = 82.5."""
    score = satisfaction(
        Inputs([5, 3], [5], [0.0, 24.0], sessions_completed=3, sessions_no_show=1),
        Weights(),
        24,
    )
    assert score.index == pytest.approx(82.5)


def test_learning_efficiency_rescales_without_interactivity() -> None:
    """Support (75 + 50 + 75)/3, no interactivity data, resources (50 + 75)/2: the index is
    (40·66.67 + 30·62.5)/70, the interactivity weight left out."""
    score = learning_efficiency(WEEK, WEIGHTS, 24)
    assert score.part("support") == pytest.approx(200 / 3)
    assert score.part("interactivity") is None
    assert score.part("resources") == pytest.approx(62.5)
    assert score.index == pytest.approx((40 * 200 / 3 + 30 * 62.5) / 70)


def test_learning_efficiency_counts_interactivity_once_it_has_data() -> None:
    """A plugged-in interactivity part of 40 enters with its full 30 % weight."""
    week = EfficiencyInputs(**{**WEEK.__dict__, "interactivity": {"discussion": 40.0}})
    score = learning_efficiency(week, WEIGHTS, 24)
    assert score.index == pytest.approx((40 * 200 / 3 + 30 * 40 + 30 * 62.5) / 100)


def test_learning_efficiency_with_no_data_is_unknown() -> None:
    """With nothing measured, the model is unknown rather than 0."""
    assert learning_efficiency(EfficiencyInputs(), WEIGHTS, 24).index is None


def test_revenue_growth_leaves_out_competitiveness() -> None:
    """Satisfaction 80 and learners 10 → 12 (+20 %: 60), no market data: (50·80 + 30·60)/80."""
    score = revenue_growth(80.0, 12, 10, WEIGHTS)
    assert score.part("learners") == pytest.approx(60)
    assert score.part("competitiveness") is None
    assert score.index == pytest.approx(72.5)
    assert revenue_growth(80.0, 12, 0, WEIGHTS).index == pytest.approx(80)  # no week before
    assert revenue_growth(None, 0, 0, WEIGHTS).index is None


def test_learner_growth_is_bounded() -> None:
    """No change 50, doubling 100, halving 25, tripling still 100."""
    assert [learner_growth(c, 10) for c in (10, 20, 5, 30, 0)] == [50, 100, 25, 100, 0]


async def test_weeks_from_the_database(market: Harness, clock: FakeClock) -> None:
    """One completed session with a mentor who fits and no note, no lessons: support is the
    mean of fit 100, notes 0 and the speed of the request; resources and interactivity (a
    conversation with no messages) score 0."""
    await complete_one_session(market, clock)
    config = make_config()
    async with market.app.new_uow() as uow:
        report = await build_report(uow, config, clock.now())
        weeks = await gather(uow, report, config.models, 24)
    assert len(weeks) == 12
    week = next(w for w in weeks if w.efficiency.part("support") is not None)
    support = week.efficiency.part("support")
    assert support is not None and 66 < support <= 200 / 3 + 0.01
    assert week.efficiency.part("resources") == 0
    # The accepted request opened a conversation in which nobody wrote: 0 messages, scored 0.
    assert week.efficiency.part("interactivity") == 0
    assert design.competitiveness() is None
    async with market.app.new_uow() as uow:
        assert await gather(uow, report, config.models, 24, last=2) == weeks[-2:]


async def test_admin_stats_shows_the_models_with_their_components(market: Harness) -> None:
    """/admin stats names both models, their components and what was left out for no data."""
    out = await market.send("admin", "/admin stats")
    assert "Learning efficiency:" in out and "personalised support" in out
    assert "Revenue growth:" in out and "competitiveness no data" in out
    assert "no market data" in out


async def test_interactivity_counts_relayed_messages_and_answered_questions(
    market: Harness, clock: FakeClock
) -> None:
    """One mentorship; alice asks, ada answers, alice asks again: 3 messages for 1 pair is
    100·3/(3 + 5) = 37.5; 1 of 2 questions answered is 50; no workshop: no data. Interactivity
    is their mean, 43.75."""
    await matched_pair(market)
    await market.send("alice", "/ask How do I start with tests?")
    await market.send("ada", "1")  # Reply
    await market.send("ada", "Write one test first.")
    await market.send("alice", "/ask And then?")
    config = make_config()
    async with market.app.new_uow() as uow:
        report = await build_report(uow, config, clock.now())
        (week,) = await gather(uow, report, config.models, 24, last=1)
        start, end = week.start, week.start + timedelta(days=7)
        assert await design.discussion_messages(uow, start, end) == 37.5
        assert await design.questions_answered(uow, start, end) == 50.0
        assert await design.workshop_attendance(uow, start, end) is None
    assert week.efficiency.part("interactivity") == 43.75
