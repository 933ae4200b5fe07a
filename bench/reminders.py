"""Reminders at scale: re-arming after a restart, memory, and lateness as reminders fire.

Prints figures; it is not a test. Usage:

    python bench/reminders.py [--pending 100000] [--firing 200] [--url DATABASE_URL]

1. Writes `--pending` reminders (two per session, due over the coming weeks) into a fresh
   database, then starts a new `Timers` on it as a restarted process would, and times it.
   Baseline in the same run: arming one APScheduler job per pending reminder, the approach
   this design avoids.
2. Adds `--firing` sessions whose 1 h reminders fall due over the next few seconds on the
   real clock, lets APScheduler wake the sweep, and measures each message's lateness
   (delivery time minus due time).
3. Peak RSS of the process.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import insert

from bench import timing
from bench.timing import cuts, stopwatch
from bot.app import Marketplace
from bot.core.clock import SystemClock
from bot.core.replies import Reply
from bot.runtime.timers import Timers
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import (
    Course,
    Enrollment,
    Identity,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Reminder,
    User,
)
from tests.support import make_config


async def seed_world(app: Marketplace, now: datetime) -> dict[str, int]:
    async with app.new_uow() as uow:
        s = uow.session
        learner = User(display_name="learner", language="en", timezone="UTC", created_at=now)
        mentor = User(display_name="mentor", language="en", timezone="UTC", created_at=now)
        s.add_all([learner, mentor])
        await s.flush()
        for user in (learner, mentor):
            s.add(
                Identity(
                    user_id=user.id,
                    platform="console",
                    external_id=user.display_name,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        course = Course(
            slug="c",
            title_en="C",
            price_minor=100,
            currency="USD",
            sessions_included=1,
            topics=["x"],
            created_at=now,
        )
        profile = MentorProfile(
            user_id=mentor.id, status="approved", languages=["en"], capacity=10, created_at=now
        )
        s.add_all([course, profile])
        await s.flush()
        order = Order(
            user_id=learner.id,
            course_id=course.id,
            status="paid",
            amount_minor=100,
            currency="USD",
            sessions_included=1,
            provider="demo",
            created_at=now,
            expires_at=now,
        )
        s.add(order)
        await s.flush()
        enrollment = Enrollment(
            order_id=order.id,
            user_id=learner.id,
            course_id=course.id,
            credits_remaining=1,
            created_at=now,
        )
        s.add(enrollment)
        await s.flush()
        request = MentorshipRequest(
            learner_id=learner.id,
            enrollment_id=enrollment.id,
            topic="x",
            goals="g",
            level=1,
            status="accepted",
            mentor_id=profile.id,
            created_at=now,
        )
        s.add(request)
        await s.flush()
        ids = {
            "learner": learner.id,
            "mentor": profile.id,
            "enrollment": enrollment.id,
            "request": request.id,
        }
        await uow.commit()
    return ids


async def add_sessions(
    app: Marketplace,
    ids: dict[str, int],
    starts: list[datetime],
    offsets: list[timedelta],
    now: datetime,
    first_id: int,
) -> None:
    """Bulk-insert sessions at `starts` with one reminder per offset (core INSERTs)."""
    batch = 5_000
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        async with app.new_uow() as uow:
            await uow.session.execute(
                insert(MentorSession),
                [
                    dict(
                        id=first_id + i + j,
                        request_id=ids["request"],
                        enrollment_id=ids["enrollment"],
                        mentor_id=ids["mentor"],
                        learner_id=ids["learner"],
                        start_at=start,
                        duration_minutes=60,
                        meeting_link="https://example.invalid/x",
                        status="scheduled",
                        created_at=now,
                        mentor_note="",
                        rescheduled_count=0,
                    )
                    for j, start in enumerate(chunk)
                ],
            )
            await uow.session.execute(
                insert(Reminder),
                [
                    dict(
                        session_id=first_id + i + j,
                        kind=f"before_{int(o.total_seconds() // 60)}",
                        due_at=start - o,
                    )
                    for j, start in enumerate(chunk)
                    for o in offsets
                ],
            )
            await uow.commit()


async def main() -> None:
    parser = timing.parser(__doc__)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--firing", type=int, default=200)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    url = args.url or f"sqlite+aiosqlite:///{tmp}/bench.db"
    config = make_config(reminders={"sweep_seconds": 30})
    clock = SystemClock()
    now = clock.now()

    engine = create_engine(url)
    await upgrade(engine)
    app = Marketplace(config, engine, clock)
    ids = await seed_world(app, now)
    sessions = args.pending // 2
    starts = [now + timedelta(days=2, minutes=7 * i) for i in range(sessions)]
    with stopwatch() as wrote:
        await add_sessions(app, ids, starts, [timedelta(hours=24), timedelta(hours=1)], now, 1)
    print(f"wrote {args.pending:,} pending reminders in {wrote():.1f} s")
    await engine.dispose()

    # 1. A restarted process re-arms from the database.
    engine = create_engine(url)
    app = Marketplace(config, engine, clock)
    timers = Timers(app)
    with stopwatch() as took:
        await timers.start()
    rearm = took()
    print(
        f"re-arm after restart ({args.pending:,} pending): {rearm * 1000:.1f} ms "
        f"(target < 3 s); next wake-up {timers.armed_at}"
    )

    baseline = AsyncIOScheduler(timezone=UTC)
    baseline.start(paused=True)
    baseline_n = min(args.pending, 20_000)  # it grows quadratically; 100k takes about a minute
    due_times = [s - o for s in starts for o in (timedelta(hours=24), timedelta(hours=1))]
    due_times = due_times[:baseline_n]
    with stopwatch() as took:
        for i, due in enumerate(due_times):
            baseline.add_job(print, "date", run_date=due, id=f"r{i}", misfire_grace_time=None)
    per_job = took()
    baseline.shutdown(wait=False)
    print(
        f"baseline, one APScheduler job per reminder, for only {baseline_n:,} of them: "
        f"{per_job * 1000:.0f} ms (ratio {per_job / rearm:.0f}x our re-arm of all)"
    )

    # 2. Lateness on the real clock.
    lateness: list[float] = []
    due_by_session: dict[int, datetime] = {}
    all_fired = asyncio.Event()

    async def sender(identity: Identity, reply: Reply) -> None:
        if reply.text.startswith("Reminder: session #"):
            sid = int(reply.text.split("#", 1)[1].split(" ", 1)[0])
            lateness.append((clock.now() - due_by_session[sid]).total_seconds())
            if len(lateness) >= 2 * args.firing:
                all_fired.set()

    app.notifier.register("console", sender)
    fire_start = clock.now() + timedelta(seconds=1)
    spread = 4.0
    fire_starts = [
        fire_start + timedelta(hours=1, seconds=spread * i / args.firing)
        for i in range(args.firing)
    ]
    first_id = sessions + 1
    for k, start in enumerate(fire_starts):
        due_by_session[first_id + k] = start - timedelta(hours=1)
    await add_sessions(app, ids, fire_starts, [timedelta(hours=1)], clock.now(), first_id)
    timers.arm_many([min(due_by_session.values())])
    try:
        await asyncio.wait_for(all_fired.wait(), timeout=spread + 10)
    except TimeoutError:
        print(f"only {len(lateness)} of {2 * args.firing} reminder messages arrived in time")
    timers.shutdown()
    await engine.dispose()
    if not lateness:
        print("no reminder fired")
        return
    p50, p99 = cuts(lateness)
    print(
        f"lateness of {len(lateness)} reminder messages ({args.firing} sessions due over "
        f"{spread:.0f} s, {args.pending:,} others pending): p50 "
        f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
        f"{max(lateness) * 1000:.0f} ms (target p99 < 1 s)"
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB (target < 300 MB; includes the baseline's jobs)")


if __name__ == "__main__":
    asyncio.run(main())
