"""Ledger balances at scale: prints figures, asserts nothing.

    python bench/ledger.py [--backend sqlite|postgres] [--entries 1000000] [--revision head]

Seeds a fresh database (SQLite in a temp dir, or PostgreSQL at `--url` in a schema of its own,
dropped after) with `--entries` ledger entries for 10,000 learners and 1,000 mentors, written
with bulk INSERTs through the project's tables and ledger kinds: each order posts its payment
and its credits, each completed session the credit it used, its mentor's earning and the
platform's fee; a few orders are refunded (refund and credits revoked), some are demo. Orders
are spread over the last year. Then it times what the bot runs:

- a learner's credits left on an enrollment (`bot.core.ledger.credits_left`), p50/p99;
- a mentor's earnings as `/earnings` reads them (`bot.sessions.earnings.mentor_statement`:
  this month and all time, sessions and seats apart, fees), p50/p99;
- `/admin stats` typed by an admin in the console (counts, ledger revenue, the 12-week report
  and its chart), and the chart's rendering alone, so the rest can be read apart;
- `/admin earnings` (every mentor's totals from the ledger).

Baseline in the same run: the same world scaled down to 10,000 entries (100 learners, 10
mentors), and the ratio of each figure to it. `--revision 0005` builds the schema as it was
before the ledger's covering indexes (migration 0006), for the before/after comparison.
PostgreSQL gets ANALYZE after the load (autovacuum would do it on its own, later); SQLite gets
nothing the bot does not do itself.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from bench import timing
from bench.timing import Times, cuts, stopwatch, timed, timed_sync
from bot.app import Marketplace
from bot.core import ledger
from bot.core.clock import FakeClock
from bot.core.ledger import Kind
from bot.handlers import stats
from bot.reporting.files import build_report, chart_png
from bot.sessions.earnings import mentor_statement, session_earning, session_fee
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import (
    Course,
    Enrollment,
    LedgerEntry,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    User,
)
from tests.support import Harness, harness_for, make_config

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MONTH_START = NOW.replace(day=1, hour=0)  # "this month" of `/earnings` for a mentor in UTC
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SESSIONS_PER_ORDER = 6
COURSES = [(f"course-{i}", 4900 + 1000 * i, "USD" if i % 3 else "EUR") for i in range(10)]
BATCH = 5_000


@dataclass(frozen=True)
class World:
    learners: int
    mentors: int
    entries: int
    orders: int
    enrollment_ids: list[int]


class Rows:
    """Rows waiting to be inserted, per table, flushed in batches in foreign-key order."""

    ORDER = (Order, Enrollment, MentorshipRequest, MentorSession, LedgerEntry)

    def __init__(self, app: Marketplace) -> None:
        self.app = app
        self.rows: dict[Any, list[dict[str, Any]]] = {m: [] for m in self.ORDER}

    async def add(self, model: Any, **row: Any) -> None:
        self.rows[model].append(row)
        if len(self.rows[LedgerEntry]) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        async with self.app.new_uow() as uow:
            for model in self.ORDER:
                if self.rows[model]:
                    await uow.session.execute(insert(model.__table__), self.rows[model])
                    self.rows[model] = []
            await uow.commit()


async def seed(app: Marketplace, learners: int, mentors: int, entries: int) -> World:
    rng = random.Random(7)
    fee = app.config.payments.platform_fee_percent
    async with app.new_uow() as uow:
        s = uow.session
        await s.execute(
            insert(User.__table__),
            [
                dict(id=i, display_name=f"u{i}", language="en", timezone="UTC", created_at=NOW)
                for i in range(1, learners + mentors + 1)
            ],
        )
        await s.execute(
            insert(MentorProfile.__table__),
            [
                dict(
                    id=m,
                    user_id=learners + m,
                    status="approved",
                    languages=["en"],
                    capacity=5,
                    bio="",
                    rating_count=0,
                    rating_sum=0,
                    created_at=NOW,
                )
                for m in range(1, mentors + 1)
            ],
        )
        await s.execute(
            insert(Course.__table__),
            [
                dict(
                    id=c,
                    slug=slug,
                    title_en=slug,
                    title_zh="",
                    description_en="",
                    description_zh="",
                    price_minor=price,
                    currency=cur,
                    sessions_included=SESSIONS_PER_ORDER,
                    topics=["x"],
                    status="active",
                    created_at=NOW,
                    lesson_drip_days=0,
                )
                for c, (slug, price, cur) in enumerate(COURSES, 1)
            ],
        )
        await uow.commit()
    rows = Rows(app)
    written = 0
    order_id = 0
    session_id = 0
    keys = iter(range(1, 10**9))

    async def entry(kind: Kind, at: datetime, **fields: Any) -> None:
        nonlocal written
        if written >= entries:
            return
        written += 1
        row = dict(
            key=f"bench:{next(keys)}",
            kind=kind.value,
            at=at,
            user_id=None,
            mentor_id=None,
            order_id=None,
            enrollment_id=None,
            session_id=None,
            currency=None,
            amount_minor=0,
            credits=0,
            demo=False,
            reverses_id=None,
        )
        row.update(fields)
        await rows.add(LedgerEntry, **row)

    while written < entries:
        order_id += 1
        learner = (order_id - 1) % learners + 1
        mentor = rng.randint(1, mentors)
        course = rng.randint(1, len(COURSES))
        _slug, price, cur = COURSES[course - 1]
        paid_at = NOW - timedelta(minutes=rng.randint(60, 365 * 24 * 60))
        demo = rng.random() < 0.05
        refunded = not demo and rng.random() < 0.04
        used = 0 if refunded else rng.randint(2, SESSIONS_PER_ORDER)
        held_by_now = (NOW - paid_at - timedelta(days=3, hours=1)) // timedelta(days=7) + 1
        used = min(used, max(0, held_by_now))  # a ledger holds nothing from the future
        order = dict(
            id=order_id,
            user_id=learner,
            course_id=course,
            status="refunded" if refunded else "paid",
            amount_minor=price,
            currency=cur,
            sessions_included=SESSIONS_PER_ORDER,
            provider="demo" if demo else "stripe",
            provider_ref=None if demo else f"pi_{order_id}",
            created_at=paid_at,
            expires_at=paid_at + timedelta(hours=1),
            paid_at=paid_at,
            refunded_at=paid_at + timedelta(days=2) if refunded else None,
        )
        await rows.add(Order, **order)
        left = 0 if refunded else SESSIONS_PER_ORDER - used
        await rows.add(
            Enrollment,
            id=order_id,
            order_id=order_id,
            user_id=learner,
            course_id=course,
            credits_remaining=left,
            status="refunded" if refunded else "active",
            created_at=paid_at,
        )
        common = dict(user_id=learner, order_id=order_id)
        money = dict(common, currency=cur, demo=demo)
        await entry(Kind.ORDER_PAID, paid_at, amount_minor=price, **money)
        await entry(
            Kind.CREDIT_GRANTED,
            paid_at,
            enrollment_id=order_id,
            credits=SESSIONS_PER_ORDER,
            **common,
        )
        if refunded:
            at = paid_at + timedelta(days=2)
            await entry(Kind.ORDER_REFUNDED, at, amount_minor=-price, **money)
            await entry(
                Kind.CREDIT_REVOKED,
                at,
                enrollment_id=order_id,
                credits=-SESSIONS_PER_ORDER,
                **common,
            )
            continue
        await rows.add(
            MentorshipRequest,
            id=order_id,
            learner_id=learner,
            enrollment_id=order_id,
            topic="x",
            goals="g",
            level=1,
            preferred_times=[],
            status="accepted",
            mentor_id=mentor,
            offer_round=1,
            created_at=paid_at,
            accepted_at=paid_at + timedelta(hours=2),
        )
        sold = Order(amount_minor=price, sessions_included=SESSIONS_PER_ORDER)
        earning = session_earning(sold, fee)
        fee_part = session_fee(sold, fee)
        for k in range(used):
            session_id += 1
            start = paid_at + timedelta(days=3 + 7 * k)
            at = start + timedelta(hours=1)
            await rows.add(
                MentorSession,
                id=session_id,
                request_id=order_id,
                enrollment_id=order_id,
                mentor_id=mentor,
                learner_id=learner,
                start_at=start,
                duration_minutes=60,
                meeting_link="https://example.invalid/x",
                status="completed",
                created_at=paid_at,
                mentor_note="",
                rescheduled_count=0,
            )
            await entry(
                Kind.CREDIT_USED,
                start - timedelta(days=2),
                enrollment_id=order_id,
                session_id=session_id,
                credits=-1,
                **common,
            )
            paid_to = dict(order_id=order_id, session_id=session_id, currency=cur, demo=demo)
            await entry(Kind.MENTOR_EARNING, at, mentor_id=mentor, amount_minor=earning, **paid_to)
            await entry(Kind.PLATFORM_FEE, at, mentor_id=mentor, amount_minor=fee_part, **paid_to)
    await rows.flush()
    if app.engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
        async with app.new_uow() as uow:
            for model in (User, MentorProfile, Course, *Rows.ORDER):
                table = model.__tablename__
                await uow.session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
            await uow.commit()
    return World(learners, mentors, written, order_id, list(range(1, order_id + 1)))


async def command_ms(h: Harness, command: str, expect: str) -> tuple[float, float]:
    """Median wall and CPU time in milliseconds of an admin typing `command` in the console."""
    out = await h.send("admin", command)  # warm-up; the first also makes the admin
    assert expect in out, out
    return (await timed(lambda: h.send("admin", command), 5)).medians()


async def timed_on(fn: Callable[[int], Awaitable[object]], args: Iterator[int], n: int) -> Times:
    """`fn` timed on each of the next `n` arguments (drawn before the clock starts)."""
    picks = iter([next(args) for _ in range(n)])
    return await timed(lambda: fn(next(picks)), n)


async def measure(app: Marketplace, world: World, samples: int) -> dict[str, float]:
    rng = random.Random(11)
    figures: dict[str, float] = {}
    enrollments = (rng.choice(world.enrollment_ids) for _ in iter(int, 1))
    mentors = (rng.randint(1, world.mentors) for _ in iter(int, 1))
    async with app.new_uow() as uow:

        async def left(e: int) -> object:
            return await ledger.credits_left(uow, e)

        async def earned(m: int) -> object:
            return await mentor_statement(uow, m, MONTH_START)

        await timed_on(left, enrollments, 50)  # warm-up
        await timed_on(earned, mentors, 50)
        for name, fn, args in (("credits", left, enrollments), ("earnings", earned, mentors)):
            times = await timed_on(fn, args, samples)
            figures[f"{name}_p50"], figures[f"{name}_p99"] = cuts(times.wall)
            figures[f"{name}_cpu_p99"] = cuts(times.cpu)[1]
        report = await build_report(uow, app.config, app.clock.now())
    chart_png(report, "en")  # warm-up: matplotlib loads on first use
    figures["chart"] = timed_sync(lambda: chart_png(report, "en"), 5).medians()[0]
    h: Harness = harness_for(app)
    figures["stats"], _cpu = await command_ms(h, "/admin stats", "Marketplace stats")
    figures["admin_earnings"], figures["admin_earnings_cpu"] = await command_ms(
        h, "/admin earnings", "Mentor earnings"
    )
    real_chart = stats.chart_png
    stats.chart_png = lambda _report, _language: b""  # the same command, the chart left out
    try:
        figures["stats_no_chart"], figures["stats_no_chart_cpu"] = await command_ms(
            h, "/admin stats", "Marketplace stats"
        )
    finally:
        stats.chart_png = real_chart
    return figures


async def world_on(
    backend: str, url: str, revision: str, learners: int, mentors: int, entries: int, samples: int
) -> tuple[World, dict[str, float], float]:
    config = make_config()
    clock = FakeClock(NOW)
    schema = None
    tmp = tempfile.TemporaryDirectory(prefix="mentorbot-bench-ledger-")
    if backend == "postgres":
        schema = f"bench_ledger_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = create_engine(url, search_path=schema)
    else:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp.name}/bench.db")
    try:
        await upgrade(engine, revision)
        app = Marketplace(config, engine, clock)
        with stopwatch() as seeded:
            world = await seed(app, learners, mentors, entries)
            if backend == "postgres":
                async with engine.connect() as conn:
                    await conn.execute(text("ANALYZE"))
        figures = await measure(app, world, samples)
        return world, figures, seeded()
    finally:
        await engine.dispose()
        tmp.cleanup()
        if schema is not None:
            async with admin.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await admin.dispose()


LINES = (
    ("credits_p50", "credits left on an enrollment, p50", None),
    ("credits_p99", "credits left on an enrollment, p99", 5.0),
    ("credits_cpu_p99", "  its CPU time in this process, p99", None),
    ("earnings_p50", "one mentor's earnings (/earnings), p50", None),
    ("earnings_p99", "one mentor's earnings (/earnings), p99", 5.0),
    ("earnings_cpu_p99", "  its CPU time in this process, p99", None),
    ("stats", "/admin stats, whole command (median of 5)", None),
    ("stats_no_chart", "/admin stats without the chart", 500.0),
    ("stats_no_chart_cpu", "  its CPU time in this process", None),
    ("chart", "the chart's rendering alone (median of 5)", None),
    ("admin_earnings", "/admin earnings (every mentor's totals)", None),
    ("admin_earnings_cpu", "  its CPU time in this process", None),
)


async def main() -> None:
    parser = timing.parser(__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", default=PG_URL, help="PostgreSQL URL (--backend postgres)")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--mentors", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--revision", default="head", help="schema revision to build")
    args = parser.parse_args()
    scale = args.entries // 10_000
    base_world, base, _ = await world_on(
        args.backend,
        args.url,
        args.revision,
        max(1, args.learners // scale),
        max(1, args.mentors // scale),
        args.entries // scale,
        args.samples,
    )
    world, big, seeded = await world_on(
        args.backend,
        args.url,
        args.revision,
        args.learners,
        args.mentors,
        args.entries,
        args.samples,
    )
    print(
        f"Ledger on {args.backend} (schema {args.revision}): {world.entries:,} entries, "
        f"{world.orders:,} orders, {world.learners:,} learners, {world.mentors:,} mentors; "
        f"seeded in {seeded:.1f} s"
    )
    print(
        f"  baseline: {base_world.entries:,} entries, {base_world.learners} learners, "
        f"{base_world.mentors} mentors"
    )
    for name, label, target in LINES:
        goal = f"  (target < {target:g} ms)" if target else ""
        print(
            f"  {label:<44} {big[name]:8.2f} ms   baseline {base[name]:7.2f} ms   "
            f"ratio {big[name] / max(base[name], 1e-6):6.1f}x{goal}"
        )


if __name__ == "__main__":
    asyncio.run(main())
