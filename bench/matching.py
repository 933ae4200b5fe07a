"""Benchmark of the matching engine: prints figures, asserts nothing.

    python bench/matching.py [--seed N]

Ranking: 10,000 mentors against one request at a time (the pool laid out once, as a running
bot would keep it between rounds), p50/p95 over many requests, for the top `offer_size` and
for the full order; laying out the pool is timed separately.
Cohort: 2,000 requests × 500 mentors with capacities 1–5, the optimal assignment's wall time
and total score against the greedy (first come, first served) one.

Synthetic data: 40 topics, mentors know 1–4 of them at levels 1–3; languages en (most), zh,
es, de; mentors and learners spread over eight timezones; mentors have 2–8 weekly windows;
ratings 0–60 with averages 3–5; load 0–capacity. Fixed seeds, so runs are comparable.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import TypeVar

from bot.config import MatchingSection
from bot.matching import (
    DAYPARTS,
    MentorCandidate,
    MentorPool,
    RequestNeeds,
    mentor_week,
    preferred_week,
    rank_mentors,
)
from bot.mentoring.cohort import assign_optimal, compare_cohort

T = TypeVar("T")
TOPICS = [f"topic{i}" for i in range(40)]
LANGUAGES = ["en"] * 6 + ["zh"] * 3 + ["es", "de"]
ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
]
WEEK = date(2026, 3, 2)


def make_mentors(rng: random.Random, n: int, capacity: tuple[int, int]) -> list[MentorCandidate]:
    mentors = []
    for i in range(n):
        topics = {t: rng.randint(1, 3) for t in rng.sample(TOPICS, rng.randint(1, 4))}
        langs = frozenset({rng.choice(LANGUAGES)} | ({"en"} if rng.random() < 0.5 else set()))
        windows = []
        for _ in range(rng.randint(2, 8)):
            start = rng.randrange(0, 22 * 60, 30)
            windows.append((rng.randrange(7), start, min(1440, start + rng.choice((60, 120, 180)))))
        count = rng.randint(0, 60) if rng.random() < 0.8 else 0
        cap = rng.randint(*capacity)
        mentors.append(
            MentorCandidate(
                mentor_id=i + 1,
                topics=topics,
                languages=langs,
                rating_sum=round(count * rng.uniform(3, 5)),
                rating_count=count,
                active_mentees=rng.randint(0, cap),
                capacity=cap,
                availability=mentor_week(windows, rng.choice(ZONES), WEEK),
            )
        )
    return mentors


def make_request(rng: random.Random, request_id: int) -> RequestNeeds:
    times = rng.sample(list(DAYPARTS), rng.randint(1, 2))
    return RequestNeeds(
        topics=tuple(rng.sample(TOPICS, rng.randint(1, 3))),
        level=rng.randint(1, 3),
        language=rng.choice(LANGUAGES),
        request_id=request_id,
        preferred_windows=preferred_week(times, rng.choice(ZONES), WEEK),
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return q[49], q[94]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times in milliseconds of `repeat` calls."""
    return per_item(lambda _i: fn(), list(range(repeat)))


def per_item(fn: Callable[[T], object], items: Sequence[T]) -> list[float]:
    """Wall time in milliseconds of `fn` on each item."""
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(label: str, samples: list[float]) -> None:
    p50, p95 = percentiles(samples)
    print(f"  {label:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")


def bench_ranking(seed: int, params: MatchingSection) -> None:
    rng = random.Random(seed)
    mentors = make_mentors(rng, 10_000, (1, 5))
    layout = timed(lambda: MentorPool(mentors), 5)
    pool = MentorPool(mentors)
    requests = [make_request(rng, i) for i in range(300)]
    broad = [
        RequestNeeds(
            topics=tuple(rng.sample(TOPICS, 12)),
            level=1,
            language="en",
            request_id=i,
            preferred_windows=preferred_week(["any"], "UTC", WEEK),
        )
        for i in range(100)
    ]
    for needs in requests[:10]:  # warm-up
        pool.rank(needs, params, params.offer_size)
    k = params.offer_size
    top = per_item(lambda n: pool.rank(n, params, k), requests)
    full = per_item(lambda n: pool.rank(n, params), requests)
    broad_top = per_item(lambda n: pool.rank(n, params, k), broad)
    broad_full = per_item(lambda n: pool.rank(n, params), broad)
    cold = timed(lambda: rank_mentors(requests[0], mentors, params, k), 5)
    typical = statistics.mean(len(pool.rank(r, params)) for r in requests[:50])
    wide = statistics.mean(len(pool.rank(r, params)) for r in broad[:20])
    print("Ranking 10,000 mentors for one request")
    print(
        f"  pool layout, once per mentor set:            median {statistics.median(layout):7.1f} ms"
    )
    print(f"  typical requests (300; ~{typical:.0f} mentors eligible):")
    report(f"top {k} (what an offer round needs)", top)
    report("full order", full)
    print(f"  broad requests (100; 12 topics, any time; ~{wide:.0f} eligible):")
    report(f"top {k}", broad_top)
    report("full order", broad_full)
    print(
        f"  rank_mentors on a plain list (layout included): median {statistics.median(cold):.1f} ms"
    )


def bench_cohort(seed: int, params: MatchingSection) -> None:
    rng = random.Random(seed + 1)
    mentors = [
        MentorCandidate(
            m.mentor_id,
            m.topics,
            m.languages,
            m.rating_sum,
            m.rating_count,
            0,
            m.capacity,
            m.availability,
        )
        for m in make_mentors(rng, 500, (1, 5))
    ]
    requests = [make_request(rng, i) for i in range(2_000)]
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        result = compare_cohort(requests, mentors, params)
        runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    assign_optimal(requests, mentors, params)
    optimal_only = time.perf_counter() - start
    seats = sum(m.capacity for m in mentors)
    opt, greedy = result.optimal, result.greedy
    print(f"Cohort: 2,000 requests × 500 mentors (capacities 1–5, {seats} places)")
    print(f"  scoring + optimal + greedy: median {statistics.median(runs):5.2f} s (of 3)")
    print(f"  scoring + optimal alone:           {optimal_only:5.2f} s")
    print(f"  optimal: {len(opt.assignments):5d} assigned, total score {opt.total:10.1f}")
    print(f"  greedy:  {len(greedy.assignments):5d} assigned, total score {greedy.total:10.1f}")
    print(f"  optimal / greedy total: {result.ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    params = MatchingSection()
    bench_ranking(args.seed, params)
    bench_cohort(args.seed, params)


if __name__ == "__main__":
    main()
