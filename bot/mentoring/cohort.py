"""Cohort mode: assign many open requests at once, maximising the total score.

Offering requests one by one is first come, first served: an early request may take the one
mentor a later request could not do without. When an admin has a whole cohort to place, the
best total comes from solving the assignment at once. Each mentor becomes as many columns as
they have free places, and the problem becomes a rectangular assignment, solved exactly by
SciPy's `linear_sum_assignment`.

The objective, shared by the optimal and the greedy plan so they can be compared:
  * each assigned pair scores as in `bot.matching`, except load: a mentor's j-th new mentee in
    the cohort counts the load the mentor would then have (`active + j` of `capacity`), so
    piling everyone onto one mentor costs what it should;
  * a pair breaking a hard rule (language, capacity, blocked, no shared topic) is never made;
  * a request may stay unassigned; it then adds nothing.
Because the load term shrinks with j, the solver always fills a mentor's columns in order, so
"j-th column" and "j-th mentee" agree. Infeasible cells cost 0, like leaving the request
unassigned, and are dropped from the answer, so the solver never needs a dummy column.

Exploration does not apply here: an admin's cohort is a one-off optimisation, not a stream of
offers in which new mentors need exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.config import MatchingSection
from bot.matching import DEFAULT_PARAMS, MentorCandidate, MentorPool, Ranked, RequestNeeds


@dataclass(frozen=True)
class Assignment:
    request_id: int
    mentor_id: int
    score: float  # the pair's contribution to the total, load as in the cohort
    ranked: Ranked  # the pair as ranking sees it, for the explanation


@dataclass(frozen=True)
class CohortPlan:
    assignments: tuple[Assignment, ...]  # in the order the requests were given
    unassigned: tuple[int, ...]
    total: float


@dataclass(frozen=True)
class CohortComparison:
    optimal: CohortPlan
    greedy: CohortPlan

    @property
    def ratio(self) -> float:
        """optimal / greedy total (1.0 when both are 0)."""
        if self.greedy.total == 0:
            return 1.0 if self.optimal.total == 0 else float("inf")
        return self.optimal.total / self.greedy.total


@dataclass(frozen=True)
class _Problem:
    """Every request scored against every mentor once; both plans read from this."""

    pool: MentorPool
    requests: tuple[RequestNeeds, ...]
    feasible: np.ndarray  # (requests, mentors) bool
    score: np.ndarray  # (requests, mentors) score without load
    shared: np.ndarray
    overlap: np.ndarray
    preferred: np.ndarray
    free: np.ndarray  # free places per mentor
    weight_load: float

    def load_term(self, mentor: int, j: int) -> float:
        """The load factor of the mentor's j-th new mentee (0-based) in this cohort."""
        p = self.pool
        return self.weight_load * (1 - (float(p.active[mentor]) + j) / float(p.capacity[mentor]))

    def ranked(self, r: int, m: int) -> Ranked:
        p = self.pool
        return Ranked(
            mentor_id=int(p.ids[m]),
            shared_topics=int(self.shared[r, m]),
            rating=float(p.average[m]),
            rating_count=int(p.rating_count[m]),
            score=float(self.score[r, m] + self.load_term(m, 0)),
            overlap_minutes=int(self.overlap[r, m]),
            worked_before=bool(self.preferred[r, m]),
        )

    def plan(self, pairs: Iterable[tuple[int, int, int]]) -> CohortPlan:
        """(request index, mentor index, slot j) triples → a plan in request order."""
        by_request = {r: (m, j) for r, m, j in pairs}
        assignments: list[Assignment] = []
        unassigned: list[int] = []
        total = 0.0
        for r, needs in enumerate(self.requests):
            if r not in by_request:
                unassigned.append(needs.request_id)
                continue
            m, j = by_request[r]
            value = float(self.score[r, m]) + self.load_term(m, j)
            total += value
            assignments.append(
                Assignment(needs.request_id, int(self.pool.ids[m]), value, self.ranked(r, m))
            )
        return CohortPlan(tuple(assignments), tuple(unassigned), total)


def _problem(
    requests: Sequence[RequestNeeds],
    candidates: Iterable[MentorCandidate] | MentorPool,
    params: MatchingSection,
) -> _Problem:
    ids = [r.request_id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError("request ids must be unique")
    pool = candidates if isinstance(candidates, MentorPool) else MentorPool(candidates)
    n_r, n_m = len(requests), len(pool)
    feasible = np.zeros((n_r, n_m), dtype=bool)
    score = np.zeros((n_r, n_m))
    shared = np.zeros((n_r, n_m), dtype=np.int64)
    overlap = np.zeros((n_r, n_m), dtype=np.int64)
    preferred = np.zeros((n_r, n_m), dtype=bool)
    for r, needs in enumerate(requests):
        ev = pool.evaluate(needs, params)
        feasible[r], score[r] = ev.eligible, ev.score
        shared[r], overlap[r], preferred[r] = ev.shared, ev.overlap, ev.preferred
    free = np.maximum(pool.capacity - pool.active, 0).astype(np.int64)
    return _Problem(
        pool,
        tuple(requests),
        feasible,
        score,
        shared,
        overlap,
        preferred,
        np.minimum(free, n_r),
        float(params.weight_load),
    )


def assign_optimal(
    requests: Sequence[RequestNeeds],
    candidates: Iterable[MentorCandidate] | MentorPool,
    params: MatchingSection = DEFAULT_PARAMS,
) -> CohortPlan:
    """The assignment with the highest total score under every mentor's free places."""
    return _optimal(_problem(requests, candidates, params))


def _optimal(problem: _Problem) -> CohortPlan:
    free = problem.free
    if not len(problem.requests) or not free.sum():
        return problem.plan(())
    column_mentor = np.repeat(np.arange(len(free)), free)
    starts = np.cumsum(free) - free
    column_slot = np.arange(column_mentor.size) - np.repeat(starts, free)
    p = problem.pool
    load = problem.weight_load * (
        1 - (p.active[column_mentor] + column_slot) / p.capacity[column_mentor]
    )
    feasible = problem.feasible[:, column_mentor]
    value = np.where(feasible, problem.score[:, column_mentor] + load, 0.0)
    # Imported on use: scipy.optimize takes most of a second to load, and only /cohort needs it.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(value, maximize=True)
    keep = feasible[rows, cols]
    return problem.plan(
        zip(
            rows[keep].tolist(),
            column_mentor[cols[keep]].tolist(),
            column_slot[cols[keep]].tolist(),
            strict=True,
        )
    )


def assign_greedy(
    requests: Sequence[RequestNeeds],
    candidates: Iterable[MentorCandidate] | MentorPool,
    params: MatchingSection = DEFAULT_PARAMS,
) -> CohortPlan:
    """First come, first served: each request in turn takes its best mentor with room left.

    This is what offering requests one at a time amounts to, and the baseline cohort mode is
    measured against. Ties go to the lower mentor id.
    """
    return _greedy(_problem(requests, candidates, params))


def _greedy(problem: _Problem) -> CohortPlan:
    p = problem.pool
    order = np.argsort(p.ids, kind="stable")  # ties → lower mentor id
    taken = np.zeros(len(p), dtype=np.int64)
    pairs: list[tuple[int, int, int]] = []
    for r in range(len(problem.requests)):
        ok = problem.feasible[r] & (taken < problem.free)
        if not ok.any():
            continue
        load = problem.weight_load * (1 - (p.active + taken) / np.maximum(p.capacity, 1))
        value = np.where(ok, problem.score[r] + load, -np.inf)[order]
        m = int(order[int(np.argmax(value))])
        pairs.append((r, m, int(taken[m])))
        taken[m] += 1
    return problem.plan(pairs)


def compare_cohort(
    requests: Sequence[RequestNeeds],
    candidates: Iterable[MentorCandidate] | MentorPool,
    params: MatchingSection = DEFAULT_PARAMS,
) -> CohortComparison:
    """The optimal plan and the greedy one, scored once, for the admin's report."""
    problem = _problem(requests, candidates, params)
    return CohortComparison(_optimal(problem), _greedy(problem))
