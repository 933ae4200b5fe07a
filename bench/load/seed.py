"""The marketplace a load run starts from, written through mentorbot's own rules: the schema by
`mentorbot migrate`, the courses by an admin's `/admin course add` (through
`Marketplace.handle`, as typed at the console), the mentors as the Telegram users they are
(`resolve_user`, `make_mentor`), differing in topics, ratings and capacity, available around the
clock."""

from __future__ import annotations

import asyncio
import math
import random
import shlex
import sys
from pathlib import Path

from bench.load.processes import ROOT
from bench.load.world import COURSES, MENTOR_BASE, SESSIONS_INCLUDED, TOPICS
from bot.app import Marketplace
from bot.config import load_config
from bot.core.clock import Clock
from bot.core.roles import make_admin, make_mentor
from bot.core.users import Incoming, mentor_profile_of, resolve_user, revoke_role
from bot.learning.courses import course_by_slug
from storage.db import create_engine
from storage.models import AvailabilityWindow, MentorTopic

# The admin who sets up the catalogue, then steps down: an admin would be told of every
# waitlisted request, on a console nobody reads during the run.
ADMIN = Incoming("console", "load-admin", "Load admin", "")


async def migrate(config: Path) -> None:
    """`mentorbot migrate`, as a deployment runs it before starting the processes."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        "migrate",
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode != 0:
        raise RuntimeError(f"mentorbot migrate failed: {err.decode()[-2000:]}")


def marketplace(config: Path, clock: Clock) -> Marketplace:
    """The core, in this process, on the run's database (no adapters, no payment providers):
    for seeding, and its engine for the checks."""
    cfg = load_config(config, env={})
    return Marketplace(cfg, create_engine(cfg.database_url(), pool_size=5), clock)


async def seed(app: Marketplace, mentor_ids: list[int], learners: int, rng: random.Random) -> None:
    await _courses(app)
    await _mentors(app, mentor_ids, learners, rng)


async def _courses(app: Marketplace) -> None:
    now = app.clock.now()
    async with app.new_uow() as uow:
        admin, _roles = await resolve_user(uow, app.config, ADMIN, now)
        await make_admin(uow, admin.id, ADMIN.platform, ADMIN.external_id)
        await uow.commit()
    for slug, title, topics, price, stars in COURSES:
        fields = {
            "title": title,
            "title_zh": title,
            "description": "Four sessions.",
            "description_zh": "四次课。",
            "price": f"{price / 100:.2f}",
            "currency": "USD",
            "sessions": str(SESSIONS_INCLUDED),
            "topics": ",".join(topics),
            "stars": str(stars),
        }
        args = shlex.join(["course", "add", slug, *(f"{k}={v}" for k, v in fields.items())])
        replies = await app.handle(
            Incoming(ADMIN.platform, ADMIN.external_id, ADMIN.display_name, f"/admin {args}")
        )
        async with app.new_uow() as uow:
            try:
                course = await course_by_slug(uow, slug)
            except Exception as exc:
                raise RuntimeError(f"/admin course add {slug} failed: {replies}") from exc
            if course.price_stars != stars or course.price_minor != price:
                raise RuntimeError(f"/admin course add {slug} made {course!r}: {replies}")
    async with app.new_uow() as uow:
        await revoke_role(uow, admin.id, "admin")
        await uow.commit()


async def _mentors(
    app: Marketplace, mentor_ids: list[int], learners: int, rng: random.Random
) -> None:
    """Mentors differ as in a real marketplace (topics, ratings, capacity), so matching
    spreads requests instead of offering every one to the same three."""
    now = app.clock.now()
    base = math.ceil(learners / len(mentor_ids)) + 2
    async with app.new_uow() as uow:
        for j, tg_id in enumerate(mentor_ids):
            who = Incoming("telegram", str(tg_id), f"Mentor{tg_id - MENTOR_BASE}", "", "en")
            user, _roles = await resolve_user(uow, app.config, who, now)
            await make_mentor(uow, user.id, "en", now)
            profile = await mentor_profile_of(uow, user.id)
            assert profile is not None
            ratings = rng.randint(0, 25)
            profile.capacity = rng.randint(base, 2 * base)
            profile.bio = "load test mentor"
            profile.rating_count = ratings
            profile.rating_sum = round(ratings * rng.uniform(3.6, 4.9))
            # Every topic has two mentors in three (a full round and one more).
            for topic in sorted({TOPICS[j % len(TOPICS)], TOPICS[(j + 1) % len(TOPICS)]}):
                uow.add(MentorTopic(mentor_id=profile.id, topic=topic, level=rng.randint(2, 3)))
            for day in range(7):
                uow.add(
                    AvailabilityWindow(
                        mentor_id=profile.id, weekday=day, start_minute=0, end_minute=1440
                    )
                )
        await uow.commit()
