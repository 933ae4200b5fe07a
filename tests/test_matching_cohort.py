"""Cohort mode, pure: the optimal assignment respects every rule, beats or equals greedy,
and equals a brute force over every possible assignment on small cases."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import MatchingSection
from bot.matching import MentorCandidate, RequestNeeds, score_pair
from bot.mentoring.cohort import CohortPlan, assign_greedy, assign_optimal, compare_cohort
from tests.test_matching import mentor, mentors, needs, params_st, requests

PARAMS = MatchingSection()


@st.composite
def cohorts(
    draw: st.DrawFn, max_requests: int = 8, max_mentors: int = 6
) -> tuple[list[RequestNeeds], list[MentorCandidate]]:
    """Mostly-compatible requests and mentors, more requests than places now and then."""
    topics = ("python", "git")  # few topics and languages: most pairs are allowed
    reqs = draw(st.lists(requests(topics, dense=True), min_size=1, max_size=max_requests))
    reqs = [replace(r, request_id=i + 1) for i, r in enumerate(reqs)]
    cands = draw(mentors(max_size=max_mentors, topics=topics, dense=True).filter(bool))
    return reqs, cands


def pair_value(
    n: RequestNeeds, c: MentorCandidate, j: int, params: MatchingSection
) -> float | None:
    """The j-th new mentee of `c` in the cohort scores as if `c` already had j more."""
    ranked = score_pair(n, replace(c, active_mentees=c.active_mentees + j), params)
    return None if ranked is None else ranked.score


def check_plan(
    plan: CohortPlan,
    reqs: list[RequestNeeds],
    cands: list[MentorCandidate],
    params: MatchingSection,
) -> None:
    """Every request once; capacities held; no forbidden pair; the total adds up."""
    by_id = {c.mentor_id: c for c in cands}
    by_request = {r.request_id: r for r in reqs}
    seen = [a.request_id for a in plan.assignments] + list(plan.unassigned)
    assert sorted(seen) == sorted(by_request)
    load = Counter(a.mentor_id for a in plan.assignments)
    for mentor_id, count in load.items():
        c = by_id[mentor_id]
        assert c.active_mentees + count <= c.capacity
    expected = 0.0
    taken: Counter[int] = Counter()
    for a in plan.assignments:
        n, c = by_request[a.request_id], by_id[a.mentor_id]
        assert score_pair(n, c, params) is not None  # language, blocked, topics, exclusion
        value = pair_value(n, c, taken[a.mentor_id], params)
        assert value is not None
        taken[a.mentor_id] += 1
        expected += value
    assert plan.total == pytest.approx(expected, abs=1e-6)


def brute_force(reqs: list[RequestNeeds], cands: list[MentorCandidate], p: MatchingSection):
    """The best total over every way of giving each request one mentor or none."""
    options = [[None, *range(len(cands))] for _ in reqs]
    best = 0.0
    for choice in itertools.product(*options):
        counts: Counter[int] = Counter()
        total = 0.0
        for n, m in zip(reqs, choice, strict=True):
            if m is None:
                continue
            value = pair_value(n, cands[m], counts[m], p)
            if value is None:
                break
            counts[m] += 1
            total += value
        else:
            best = max(best, total)
    return best


@settings(max_examples=150, deadline=None)
@given(cohorts(), params_st)
def test_optimal_keeps_every_rule_and_is_at_least_greedy(cohort, p) -> None:
    reqs, cands = cohort
    result = compare_cohort(reqs, cands, p)
    check_plan(result.optimal, reqs, cands, p)
    check_plan(result.greedy, reqs, cands, p)
    assert result.optimal.total >= result.greedy.total - 1e-9


@settings(max_examples=150, deadline=None)
@given(cohorts(max_requests=4, max_mentors=3), params_st)
def test_optimal_equals_brute_force_on_small_cases(cohort, p) -> None:
    reqs, cands = cohort
    assert assign_optimal(reqs, cands, p).total == pytest.approx(
        brute_force(reqs, cands, p), abs=1e-6
    )


@settings(max_examples=60, deadline=None)
@given(cohorts(), params_st, st.randoms(use_true_random=False))
def test_the_same_cohort_gives_the_same_plan(cohort, p, rnd: random.Random) -> None:
    reqs, cands = cohort
    first = assign_optimal(reqs, cands, p)
    assert assign_optimal(reqs, cands, p) == first
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert assign_optimal(reqs, shuffled, p).total == pytest.approx(first.total, abs=1e-9)


def test_optimal_beats_first_come_first_served_when_an_early_request_takes_the_only_fit() -> None:
    """Request 1 could go to either mentor, request 2 only to mentor 1. Greedy gives request 1
    its favourite (mentor 1) and strands request 2; the optimal plan serves both."""
    reqs = [needs(request_id=1, topics=("python", "git")), needs(request_id=2, topics=("git",))]
    cands = [
        mentor(1, topics={"python": 3, "git": 3}, capacity=1),
        mentor(2, topics={"python": 3}, capacity=1),
    ]
    greedy = assign_greedy(reqs, cands, PARAMS)
    assert [(a.request_id, a.mentor_id) for a in greedy.assignments] == [(1, 1)]
    assert greedy.unassigned == (2,)
    optimal = assign_optimal(reqs, cands, PARAMS)
    assert [(a.request_id, a.mentor_id) for a in optimal.assignments] == [(1, 2), (2, 1)]
    assert optimal.total > greedy.total
    assert compare_cohort(reqs, cands, PARAMS).ratio == pytest.approx(optimal.total / greedy.total)


def test_load_spreads_requests_over_mentors_within_a_cohort() -> None:
    """Two equal mentors with room for two each: two requests go one to each."""
    reqs = [needs(request_id=1), needs(request_id=2)]
    cands = [mentor(1, capacity=2), mentor(2, capacity=2)]
    plan = assign_optimal(reqs, cands, PARAMS)
    assert sorted(a.mentor_id for a in plan.assignments) == [1, 2]


def test_assignments_carry_their_explanation() -> None:
    plan = assign_optimal([needs(request_id=5)], [mentor(9, rating_sum=9, rating_count=2)])
    [a] = plan.assignments
    assert (a.request_id, a.mentor_id) == (5, 9)
    assert a.ranked.explanation().render("en").startswith("1 shared topic · ")


def test_empty_cohorts_and_full_mentors() -> None:
    assert assign_optimal([], [mentor(1)]).assignments == ()
    plan = assign_optimal([needs(request_id=1)], [mentor(1, active_mentees=3, capacity=3)])
    assert plan.assignments == () and plan.unassigned == (1,)
    assert compare_cohort([], []).ratio == 1.0


def test_duplicate_request_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="request ids"):
        assign_optimal([needs(request_id=1), needs(request_id=1)], [mentor(1)])
