"""Benchmark of the question every suggestion asks: did anything the model reads change?

    python bench/model_key.py [--rows 200000] [--backend sqlite|postgres] [--reads 300]

Prints the time of one `versions` read (bot/recommending/signals.py: the newest change noted
in `model_changes` plus the learner's maxima) against the read it replaced, which counted
completed sessions, lessons done, active lessons and ratings and summed course revisions (the
baseline, rebuilt here), on one database holding `--rows` sessions (half completed), as many
lesson deliveries (half done) and ratings, and `--rows` / 10 noted changes. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text

from bot.recommending.signals import versions
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import (
    Course,
    Enrollment,
    Lesson,
    LessonDelivery,
    LessonRating,
    MentorSession,
    Order,
    Rating,
)
from storage.uow import UnitOfWork, make_uow_factory

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _count(column: Any, *where: Any) -> Any:
    return select(func.count(column)).where(*where).scalar_subquery()


def _latest(column: Any) -> Any:
    return select(func.max(column)).scalar_subquery()


# The model's part of the key as it was read before `model_changes` (migration 0019), less the
# courses' summed revision (the column is gone; summing 300 courses was never the cost).
BASELINE = select(
    _latest(Order.id),
    _latest(Enrollment.id),
    _latest(Rating.id),
    _count(Rating.id),
    _latest(Rating.updated_at),
    _latest(LessonRating.id),
    _count(MentorSession.id, MentorSession.status == "completed"),
    _count(LessonDelivery.done_at),
    _count(Lesson.id, Lesson.status == "active"),
    _count(Course.id),
    _latest(Course.id),
)


SESSION = (
    "INSERT INTO sessions (id, request_id, enrollment_id, mentor_id, learner_id, start_at, "
    "duration_minutes, meeting_link, status, created_at, mentor_note, rescheduled_count) "
    "VALUES (:id, 1, 1, :id, :id, :at, 60, '', :status, :at, '', 0)"
)
DELIVERY = (
    "INSERT INTO lesson_deliveries (id, user_id, lesson_id, via, delivered_at, done_at) "
    "VALUES (:id, :id, 1, 'demand', :at, :done)"
)
RATING = (
    "INSERT INTO ratings (id, session_id, rater_id, ratee_id, stars, comment, created_at, "
    "updated_at) VALUES (:id, :id, 1, 2, 4, '', :at, :at)"
)
CHANGE = "INSERT INTO model_changes (tables) VALUES ('bench')"


def batches(rows: int, at: Any) -> list[list[dict[str, Any]]]:
    ids = range(1, rows + 1)
    return [
        [{"id": i, "at": at, "status": "completed" if i % 2 else "scheduled"} for i in ids],
        [{"id": i, "at": at, "done": at if i % 2 else None} for i in ids],
        [{"id": i, "at": at} for i in ids],
    ]


async def fill(engine: Any, path: str, rows: int) -> None:
    """Rows straight in SQL, foreign keys off: only the tables' sizes matter here."""
    if engine.dialect.name == "sqlite":
        sessions, deliveries, ratings = batches(rows, "2026-01-01 00:00:00.000000")
        with sqlite3.connect(path) as db:
            for sql, params in ((SESSION, sessions), (DELIVERY, deliveries), (RATING, ratings)):
                db.executemany(sql, params)
            db.executemany(CHANGE, [() for _ in range(rows // 10)])
        return
    sessions, deliveries, ratings = batches(rows, datetime(2026, 1, 1))
    async with engine.begin() as conn:
        await conn.execute(text("SET session_replication_role = replica"))
        for sql, params in ((SESSION, sessions), (DELIVERY, deliveries), (RATING, ratings)):
            await conn.execute(text(sql), params)
        await conn.execute(text(CHANGE), [{} for _ in range(rows // 10)])
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))


async def timed(read: Any, reads: int) -> list[float]:
    found = []
    for _ in range(reads):
        began = time.perf_counter()
        await read()
        found.append((time.perf_counter() - began) * 1000)
    return found


async def run(backend: str, rows: int, reads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = PG_URL if backend == "postgres" else f"sqlite+aiosqlite:///{tmp}/bench.db"
        engine = create_engine(url)
        if backend == "postgres":
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS bench_model_key CASCADE"))
                await conn.execute(text("CREATE SCHEMA bench_model_key"))
            await engine.dispose()
            engine = create_engine(url, search_path="bench_model_key")
        await upgrade(engine)
        began = time.perf_counter()
        await fill(engine, f"{tmp}/bench.db", rows)
        took = time.perf_counter() - began
        print(f"filled {rows:,} sessions, deliveries and ratings in {took:.1f} s")
        uow = UnitOfWork(make_uow_factory(engine))
        now = datetime.now(UTC)

        async def key() -> None:
            async with uow:
                await versions(uow, 1, now)

        async def baseline() -> None:
            async with uow:
                (await uow.session.execute(BASELINE)).one()

        await key(), await baseline()
        ours, theirs = await timed(key, reads), await timed(baseline, reads)
        print(f"{backend}, {reads} reads each         p50 ms   p99 ms")
        for name, got in (("versions (model_changes)", ours), ("baseline (counts)", theirs)):
            q = statistics.quantiles(got, n=100)
            print(f"{name:<28} {statistics.median(got):8.3f} {q[98]:8.3f}")
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(f"ratio baseline/versions (p50): {ratio:.1f}")
        if backend == "postgres":
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA bench_model_key CASCADE"))
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.backend, args.rows, args.reads))


if __name__ == "__main__":
    main()
