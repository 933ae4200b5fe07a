"""Benchmark of logging one reply's suggestions as shown (`bot.recommending.log.log_shown`).

    python bench/impressions.py [--backend sqlite|postgres] [--learners 200] [--history 200]
                                [--n 300]

On a migrated database holding `--learners` learners with `--history` impressions each (spread
over the last 30 days), times `--n` transactions of each kind, cycling through the learners:

- empty: BEGIN, `SELECT 1`, COMMIT (the floor of a transaction that reaches the database);
- new: five suggestions (three courses, a plan, a workshop) logged, none shown to that learner
  in that slot within the hour;
- repeat: the same five again a minute later (the database's dedupe finds them all; code
  without it inserts them again).

Prints wall p50 and p99 in ms, each kind's p50 less the empty transaction's, and CPU p50.
Run it in another tree (the same file copied) to compare code before and after. Asserts
nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bench import timing
from bench.timing import Times, cuts, timed
from bot.recommending.log import Item, log_shown
from bot.recommending.ranker import Suggestion
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Course, RecommendationShown, User
from storage.uow import UnitOfWork, make_uow_factory

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_impressions"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
PICKS = [
    Suggestion(1, 1.0, "popular"),
    Suggestion(2, 0.9, "popular"),
    Suggestion(3, 0.8, "popular"),
    Item("plan", 1, 1, "plan-course"),
    Item("workshop", 1, None, "workshop-soon"),
]


async def fill(uow: UnitOfWork, learners: int, history: int) -> None:
    async with uow:
        for i in range(1, 4):
            uow.add(
                Course(
                    id=i,
                    slug=f"course-{i}",
                    title_en=f"Course {i}",
                    price_minor=1000,
                    currency="USD",
                    sessions_included=1,
                    created_at=NOW - timedelta(days=60),
                )
            )
        for uid in range(1, learners + 1):
            uow.add(
                User(
                    id=uid,
                    display_name=f"learner{uid}",
                    language="en",
                    timezone="UTC",
                    created_at=NOW - timedelta(days=60),
                )
            )
        await uow.flush()
        step = timedelta(days=30) / max(history, 1)
        rows = [
            {
                "user_id": uid,
                "kind": "course",
                "item_id": None,
                "course_id": 1 + n % 3,
                "slot": ("start", "courses", "recommend")[n % 3],
                "arm": "hybrid",
                "reason": "popular",
                "rank": 1 + n % 3,
                "shown_at": NOW - timedelta(hours=2) - n * step,
                "opened_at": None,
            }
            for uid in range(1, learners + 1)
            for n in range(history)
        ]
        for start in range(0, len(rows), 5000):
            await uow.session.execute(insert(RecommendationShown), rows[start : start + 5000])
        await uow.commit()


async def each(step: Callable[[int], Awaitable[None]], n: int) -> Times:
    """`step(i)` for i = 0 … n-1, each timed (`bench.timing.timed`: wall and this process's
    CPU, aiosqlite's thread too)."""
    count = iter(range(n))
    return await timed(lambda: step(next(count)), n)


async def run(backend: str, learners: int, history: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = PG_URL if backend == "postgres" else f"sqlite+aiosqlite:///{tmp}/bench.db"
        engine: Any = create_engine(url)
        if backend == "postgres":
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            await engine.dispose()
            engine = create_engine(url, search_path=SCHEMA)
        await upgrade(engine)
        uow = UnitOfWork(make_uow_factory(engine))
        await fill(uow, learners, history)
        if backend == "postgres":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))

        def when(i: int) -> datetime:  # a learner comes round again `learners` minutes later
            return NOW + timedelta(hours=2 * (i // learners + 1))

        async def empty(_i: int) -> None:
            async with uow:
                await uow.session.execute(text("SELECT 1"))  # BEGIN reaches the database
                await uow.commit()

        async def new(i: int) -> None:
            async with uow:
                await log_shown(uow, 1 + i % learners, PICKS, "recommend", "hybrid", when(i))
                await uow.commit()

        async def repeat(i: int) -> None:
            async with uow:
                later = when(i) + timedelta(minutes=1)
                await log_shown(uow, 1 + i % learners, PICKS, "recommend", "hybrid", later)
                await uow.commit()

        await empty(0)
        floor = await each(empty, n)
        fresh = await each(new, n)
        again = await each(repeat, n)
        base = statistics.median(floor.wall)
        rows = learners * history
        print(f"{backend}: {rows:,} impressions before, {n} transactions each")
        print(f"{'transaction':<34} {'p50 ms':>8} {'p99 ms':>8} {'p50 - empty':>12} {'CPU p50':>8}")
        for name, times in (
            ("empty (BEGIN, SELECT 1, COMMIT)", floor),
            ("log 5 new", fresh),
            ("log the same 5 again within 1 h", again),
        ):
            median, p99 = cuts(times.wall)
            cpu = times.medians()[1]
            print(f"{name:<34} {median:8.3f} {p99:8.3f} {median - base:12.3f} {cpu:8.3f}")
        if backend == "postgres":
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        await engine.dispose()


def main() -> None:
    parser = timing.parser(__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.backend, args.learners, args.history, args.n))


if __name__ == "__main__":
    main()
