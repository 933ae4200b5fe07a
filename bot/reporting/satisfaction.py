"""The satisfaction model: how well the marketplace serves learners, as numbers from 0 to 100.

    satisfaction = (w1·resources + w2·mentors + w3·support) / (w1 + w2 + w3)

with the weights from `[satisfaction]` (default 40/30/30, i.e. 0.4/0.3/0.3). Each quality is
normalised to 0–100 as follows:

- **resources**: the average of learners' lesson ratings, mapped linearly from the 1–5 star
  scale: 1★ → 0, 3★ → 50, 5★ → 100, i.e. `25 · (average − 1)`.
- **mentors**: the same mapping for learners' ratings of their sessions (a mentor's rating of a
  learner is not counted).
- **support**: the mean of two parts.
  - *speed*: for each request for a mentor, the wait `w` from asking to having a mentor
    (waitlist time included; a request still waiting counts with its age so far; cancelled
    ones not at all) scores `100 · T / (T + w)`, where `T` is `accept_target_hours`
    (default 24): no wait 100, `T` hours 50, `3T` hours 25. Speed is the mean over requests.
  - *reliability*: `100 · (1 − no-show rate)`, the share of held-or-missed sessions that took
    place (a no-show by either side counts against it).

A quality with no data (no ratings yet, no requests) is unknown rather than 0: it is left out
and the other weights are rescaled, and with nothing known the index itself is unknown (None).

Two further measures, reported beside it:

- **learning efficiency**: sessions completed plus lessons completed in a week, per learner
  enrolled that week.
- **revenue growth**: a week's revenue against the week before, in percent, per currency
  (unknown when the week before had none).

Everything here is pure: plain numbers in, plain numbers out. `bot/reporting/files.py` gathers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from bot.config import SatisfactionSection


@dataclass(frozen=True)
class Weights:
    resources: float = 0.4
    mentors: float = 0.3
    support: float = 0.3

    @classmethod
    def from_config(cls, section: SatisfactionSection) -> Weights:
        return cls(section.weight_resources, section.weight_mentors, section.weight_support)


@dataclass(frozen=True)
class Inputs:
    """What the model reads, for one period or one slice (a course, a mentor)."""

    lesson_stars: Sequence[int] = ()
    session_stars: Sequence[int] = ()
    wait_hours: Sequence[float] = ()
    sessions_completed: int = 0
    sessions_no_show: int = 0


@dataclass(frozen=True)
class Satisfaction:
    resources: float | None
    mentors: float | None
    speed: float | None
    reliability: float | None
    support: float | None
    index: float | None


def stars_quality(stars: Sequence[int]) -> float | None:
    """The average of 1–5 star ratings on 0–100: 1★ → 0, 5★ → 100; None without ratings."""
    if not stars:
        return None
    return 25.0 * (fmean(stars) - 1.0)


def speed_quality(wait_hours: Sequence[float], target_hours: float) -> float | None:
    """The mean of `100·T/(T + wait)` over requests; None without requests."""
    if not wait_hours:
        return None
    return fmean(100.0 * target_hours / (target_hours + max(0.0, w)) for w in wait_hours)


def reliability_quality(completed: int, no_shows: int) -> float | None:
    """The share of sessions that took place, on 0–100; None when none were due."""
    held_or_missed = completed + no_shows
    if held_or_missed == 0:
        return None
    return 100.0 * completed / held_or_missed


def weighted(parts: Sequence[tuple[float, float | None]]) -> float | None:
    """The weighted mean of the known parts, weights rescaled over them; None if none."""
    known = [(w, v) for w, v in parts if v is not None and w > 0]
    total = sum(w for w, _v in known)
    if not total:
        return None
    return sum(w * v for w, v in known) / total


def satisfaction(inputs: Inputs, weights: Weights, target_hours: float) -> Satisfaction:
    resources = stars_quality(inputs.lesson_stars)
    mentors = stars_quality(inputs.session_stars)
    speed = speed_quality(inputs.wait_hours, target_hours)
    reliability = reliability_quality(inputs.sessions_completed, inputs.sessions_no_show)
    support = weighted([(1.0, speed), (1.0, reliability)])
    index = weighted(
        [
            (weights.resources, resources),
            (weights.mentors, mentors),
            (weights.support, support),
        ]
    )
    return Satisfaction(resources, mentors, speed, reliability, support, index)


def learning_efficiency(sessions_completed: int, lessons_completed: int, learners: int) -> float:
    """Sessions plus lessons completed per enrolled learner (0 with no learners)."""
    if learners <= 0:
        return 0.0
    return (sessions_completed + lessons_completed) / learners


def growth_percent(current: int, previous: int) -> float | None:
    """`current` against `previous` in percent (+25.0 = a quarter more); None from nothing."""
    if previous <= 0:
        return None
    return 100.0 * (current - previous) / previous
