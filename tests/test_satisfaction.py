"""The satisfaction model: each quality normalised to 0–100 and weighted as documented."""

from __future__ import annotations

import pytest

from bot.reporting.satisfaction import (
    Inputs,
    Weights,
    growth_percent,
    learning_efficiency,
    reliability_quality,
    satisfaction,
    speed_quality,
    stars_quality,
)

DEFAULT = Weights(0.4, 0.3, 0.3)


def test_the_index_on_a_hand_computed_example() -> None:
    """Lessons 5/4/3★ → 75; sessions 5/4★ → 87.5; waits 0/24/72 h at T=24 → 100/50/25 → 58⅓;
    3 held of 4 → 75; support = (58⅓ + 75)/2 = 66⅔; 0.4·75 + 0.3·87.5 + 0.3·66⅔ = 76.25."""
    result = satisfaction(
        Inputs(
            lesson_stars=[5, 4, 3],
            session_stars=[5, 4],
            wait_hours=[0, 24, 72],
            sessions_completed=3,
            sessions_no_show=1,
        ),
        DEFAULT,
        target_hours=24,
    )
    assert result.resources == pytest.approx(75)
    assert result.mentors == pytest.approx(87.5)
    assert result.speed == pytest.approx(175 / 3)
    assert result.reliability == pytest.approx(75)
    assert result.support == pytest.approx(200 / 3)
    assert result.index == pytest.approx(76.25)


def test_weights_from_config_are_relative() -> None:
    """Weights 40/30/30 give the same index as 0.4/0.3/0.3."""
    inputs = Inputs(lesson_stars=[2], session_stars=[5], wait_hours=[10])
    assert satisfaction(inputs, Weights(40, 30, 30), 24).index == pytest.approx(
        satisfaction(inputs, DEFAULT, 24).index
    )


def test_unknown_qualities_are_left_out_not_counted_as_zero() -> None:
    """Without session ratings or requests, the index is the known qualities reweighted; with
    no data at all it is unknown."""
    only_lessons = satisfaction(Inputs(lesson_stars=[4]), DEFAULT, 24)
    assert only_lessons.mentors is None and only_lessons.support is None
    assert only_lessons.index == pytest.approx(75)
    lessons_and_reliability = satisfaction(
        Inputs(lesson_stars=[5], sessions_completed=1, sessions_no_show=1), DEFAULT, 24
    )
    assert lessons_and_reliability.support == pytest.approx(50)
    assert lessons_and_reliability.index == pytest.approx((0.4 * 100 + 0.3 * 50) / 0.7)
    assert satisfaction(Inputs(), DEFAULT, 24).index is None


@pytest.mark.parametrize(
    ("stars", "expected"), [([1], 0), ([3], 50), ([5], 100), ([1, 5], 50), ([], None)]
)
def test_stars_map_linearly_onto_0_to_100(stars: list[int], expected: float | None) -> None:
    """1★ is 0, 3★ is 50, 5★ is 100; no ratings is unknown."""
    assert stars_quality(stars) == expected


def test_speed_and_reliability_normalisations() -> None:
    """No wait scores 100, the target wait 50, three times it 25; no-shows lower reliability."""
    assert speed_quality([0], 24) == 100
    assert speed_quality([24], 24) == 50
    assert speed_quality([72], 24) == 25
    assert speed_quality([], 24) is None
    assert reliability_quality(9, 1) == 90
    assert reliability_quality(0, 0) is None


def test_learning_efficiency_and_revenue_growth() -> None:
    """3 sessions and 5 lessons over 4 learners is 2 per learner; 150 after 100 is +50%."""
    assert learning_efficiency(3, 5, 4) == 2
    assert learning_efficiency(3, 5, 0) == 0
    assert growth_percent(150, 100) == 50
    assert growth_percent(50, 100) == -50
    assert growth_percent(10, 0) is None
