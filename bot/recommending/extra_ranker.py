"""Ranking the plans and workshops beside the suggested courses, from the course ranker's
signals. Pure and deterministic: the same model, candidates and learner give the same order.

Each candidate's score blends, each on 0–1:

- **fit** (50): the courses the learner takes (active enrollments, the newest first, the i-th
  weighing `1/i`) and those they were just suggested (the i-th weighing `0.7/i`: a plan to
  keep going with a course of theirs comes before one for a course they might take): a plan
  or workshop of that very course scores the weight, one of a similar course (the TF-IDF
  cosine of the two courses, `model.similar`) half the weight times that similarity; the best
  course counts. A workshop sold alone has no course to fit.
- **goal** (20): the cosine of the learner's goals against the candidate's words in the
  model's vocabulary (`ranker.text_query`, the same tokens as the courses', Chinese cut by
  jieba): a plan reads as its course, a workshop as its title and topics.
- **topic** (15): the share of the candidate's topics the learner follows (their courses'
  topics and those they asked a mentor about).
- **peers** (10): learners who share a course with this one and subscribed to the plan (got
  access) or took a seat in the workshop, `n/(n + 2)`.
- **soon** (5, workshops): `48/(48 + hours to the start)`, 1.5× with three seats or fewer left.
- **popular** (5): the candidate's popularity (a plan's live subscribers, a workshop's seats
  taken) over the highest among the candidates of its kind.

The sum over 100 is multiplied by the candidate's quality (0.7–1.3): a plan's course outcome
(`model.quality`: ratings and completion), a workshop host's mean rating (their sessions and
workshops, pulled towards the prior), 1 when unknown. A hybrid candidate needs some relevance
(fit, goal, topic or peers): timing alone does not make a workshop worth a line. The baseline
arm orders by popularity alone (a plan's live subscribers, a workshop's seats taken), as the
baseline's courses are. Ties go to the lower id (a workshop: the sooner). The reason is the
strongest weighted signal's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bot.recommending.ranker import (
    Arm,
    Model,
    course_row,
    goal_match,
    shared_words,
    text_query,
)

Kind = Literal["plan", "workshop"]
ExtraReason = Literal["course", "picked", "related", "goal", "topic", "peers", "soon", "popular"]
WEIGHTS: dict[str, float] = {
    "fit": 50,
    "goal": 20,
    "topic": 15,
    "peers": 10,
    "soon": 5,
    "popular": 5,
}
TOTAL = sum(WEIGHTS.values())
ORDER = {name: i for i, name in enumerate(WEIGHTS)}  # ties: the earlier signal names it
RELEVANT = ("fit", "goal", "topic", "peers")
FEW_SEATS = 3
SOON_HOURS = 48.0
TEXT_ROWS = 4096  # workshop texts kept vectorised per model


@dataclass(frozen=True)
class Candidate:
    """A plan or an upcoming workshop the learner could take, with what was read about it."""

    kind: Kind
    id: int
    course_id: int | None  # the plan's course; the course a workshop is for (None: none)
    text: str = ""  # a workshop's titles and topics (a plan reads as its course)
    topics: tuple[str, ...] = ()
    popularity: int = 0  # live subscribers; seats taken
    peers: int = 0  # learners sharing a course with this one who subscribed or took a seat
    stars: float | None = None  # the workshop host's mean rating (None: a plan, or unknown)
    hours: float | None = None  # to the workshop's start
    seats_left: int | None = None


@dataclass(frozen=True)
class Fit:
    """What of the learner the extras are ranked against."""

    courses: tuple[tuple[int, float], ...]  # course, weight: taken, then suggested
    owned: frozenset[int] = frozenset()
    goals: str = ""
    follows: frozenset[str] = frozenset()  # topics, lowercase


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reason: ExtraReason
    course_id: int | None = None  # the course behind a "course"/"related" reason
    words: tuple[str, ...] = ()  # the goal words or topics behind a "goal"/"topic" reason


def _row(model: Model, text: str) -> dict[int, float]:
    rows = model.extra_rows
    found = rows.get(text)
    if found is None:
        if len(rows) >= TEXT_ROWS:
            rows.clear()
        found = rows[text] = text_query(model, text)[0]
    return found


@dataclass(frozen=True)
class _Learner:
    """What every candidate is scored against, computed once per call over all courses."""

    fit: Fit
    query: dict[int, float]  # the goals' TF-IDF row
    words: list[str]
    goal: Any  # each course's cosine to the goals
    fitted: Any  # each course's best fit …
    because: Any  # … and the learner's course (index) giving it


def _learner(model: Model, fit: Fit) -> _Learner:
    n = len(model.courses)
    goal, query, words = goal_match(model, fit.goals)
    fitted, because = np.zeros(n), np.full(n, -1)
    for c, weight in fit.courses:
        i = model.index.get(c)
        if i is None:
            continue
        value = 0.5 * weight * model.similar[i]
        value[i] = weight
        better = value > fitted
        fitted, because = np.where(better, value, fitted), np.where(better, i, because)
    return _Learner(fit, query, words, goal, fitted, because)


def _fit(model: Model, me: _Learner, course_id: int | None) -> tuple[float, int | None]:
    if course_id is None:
        return 0.0, None
    j = model.index.get(course_id)
    if j is None:  # a course newer than the model: only itself fits
        weights = dict(me.fit.courses)
        return (weights[course_id], course_id) if course_id in weights else (0.0, None)
    if me.because[j] < 0:
        return 0.0, None
    return float(me.fitted[j]), model.courses[int(me.because[j])].id


def _quality(model: Model, c: Candidate) -> float:
    if c.kind == "plan":
        i = model.index.get(c.course_id) if c.course_id is not None else None
        return 1.0 if i is None else 0.7 + 0.6 * float(model.quality[i])
    if c.stars is None:
        return 1.0
    return 0.7 + 0.6 * (min(5.0, max(1.0, c.stars)) - 1.0) / 4.0


def _goal_of(model: Model, me: _Learner, c: Candidate) -> float:
    """The candidate's cosine to the goals: a plan's is its course's."""
    if not me.query:
        return 0.0
    if c.kind == "plan":
        i = model.index.get(c.course_id) if c.course_id is not None else None
        return 0.0 if i is None else float(me.goal[i])
    row = _row(model, c.text)
    return sum(v * row.get(j, 0.0) for j, v in me.query.items())


def _score(model: Model, me: _Learner, c: Candidate, top: int) -> Ranked | None:
    fitted, because = _fit(model, me, c.course_id)
    goal = _goal_of(model, me, c)
    topics = sorted({t.lower() for t in c.topics} & me.fit.follows)
    signals = {
        "fit": fitted,
        "goal": goal,
        "topic": len(topics) / len(c.topics) if c.topics else 0.0,
        "peers": c.peers / (c.peers + 2.0),
        "soon": 0.0,
        "popular": c.popularity / top,
    }
    if c.hours is not None:
        few = c.seats_left is not None and c.seats_left <= FEW_SEATS
        signals["soon"] = min(
            1.0, SOON_HOURS / (SOON_HOURS + max(0.0, c.hours)) * (1.5 if few else 1)
        )
    parts = {name: WEIGHTS[name] * v for name, v in signals.items()}
    if not any(parts[name] > 0 for name in RELEVANT):
        return None
    score = sum(parts.values()) / TOTAL * _quality(model, c)
    strongest = max(parts, key=lambda name: (parts[name], -ORDER[name]))
    if strongest == "fit":
        if because != c.course_id:
            return Ranked(c, score, "related", because)
        return Ranked(c, score, "course" if because in me.fit.owned else "picked", because)
    if strongest == "goal":
        return Ranked(c, score, "goal")  # its words are found for those shown (`_worded`)
    if strongest == "topic":
        return Ranked(c, score, "topic", words=tuple(topics))
    if strongest in ("peers", "soon"):
        return Ranked(c, score, "peers" if strongest == "peers" else "soon")
    return Ranked(c, score, "popular")


def _worded(model: Model, me: _Learner, r: Ranked) -> Ranked:
    """A goal reason with the goal's words the candidate shares (only for those shown)."""
    if r.reason != "goal":
        return r
    c = r.candidate
    i = model.index.get(c.course_id) if c.course_id is not None else None
    if c.kind == "plan":
        row = course_row(model, me.query, i) if i is not None else {}
    else:
        row = _row(model, c.text)
    return dataclasses.replace(r, words=shared_words(model, me.query, me.words, row))


def fit_of(
    owned: Sequence[int], suggested: Sequence[int], goals: str, follows: Iterable[str]
) -> Fit:
    """The learner's courses weighted as `fit` reads them: taken (newest first) `1/i`, then
    suggested (in rank order) `0.7/i`."""
    weights: dict[int, float] = {}
    for i, c in enumerate(dict.fromkeys(owned), start=1):
        weights.setdefault(c, 1.0 / i)
    for i, c in enumerate(suggested, start=1):
        weights.setdefault(c, 0.7 / i)
    return Fit(
        tuple(weights.items()),
        frozenset(owned),
        goals,
        frozenset(t.lower() for t in follows),
    )


def rank_extras(
    model: Model, candidates: list[Candidate], fit: Fit, k: int, arm: Arm = "hybrid"
) -> list[Ranked]:
    """Up to `k` plans, then up to `k` workshops, each kind best first."""
    found: list[Ranked] = []
    me = _learner(model, fit) if arm == "hybrid" else None
    for kind in ("plan", "workshop"):
        mine = [c for c in candidates if c.kind == kind]
        top = max((c.popularity for c in mine), default=0) or 1
        if me is None:
            ranked = [Ranked(c, c.popularity / top, "popular") for c in mine]
        else:
            scored = (_score(model, me, c, top) for c in mine)
            ranked = [r for r in scored if r is not None]
        ranked.sort(key=lambda r: (-r.score, r.candidate.hours or 0.0, r.candidate.id))
        found.extend(r if me is None else _worded(model, me, r) for r in ranked[:k])
    return found
