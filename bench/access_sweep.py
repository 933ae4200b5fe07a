"""Community access at scale: how long the sweep takes to grant every active learner of a
course, and how long a sweep with nothing to do takes, with a port that answers at once.

Prints figures; it is not a test. Usage:

    python bench/access_sweep.py [--learners 2000] [--url DATABASE_URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bot.app import Marketplace
from bot.community.access import Granted
from bot.core.clock import FakeClock
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import AccessGrant, Course, Enrollment, Identity, Order, User
from tests.support import make_config

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class InstantPort:
    """A platform that grants, revokes and answers checks at once."""

    def __init__(self) -> None:
        self.calls = 0

    async def grant(
        self, ref: str, external_id: str, expires: datetime, previous_link: str | None
    ) -> Granted:
        self.calls += 1
        return Granted()

    async def revoke(self, ref: str, external_id: str, invite_link: str | None) -> None:
        self.calls += 1

    async def check(self, ref: str, external_id: str, desired: str) -> str | None:
        return desired


async def seed(app: Marketplace, learners: int) -> None:
    async with app.new_uow() as uow:
        s = uow.session
        course = Course(
            slug="c",
            title_en="C",
            price_minor=100,
            currency="USD",
            sessions_included=1,
            topics=["x"],
            created_at=NOW,
        )
        s.add(course)
        await s.flush()
        users = [
            {"display_name": f"l{i}", "language": "en", "timezone": "UTC", "created_at": NOW}
            for i in range(learners)
        ]
        ids = list((await s.execute(insert(User).returning(User.id), users)).scalars())
        await s.execute(
            insert(Identity),
            [
                {
                    "user_id": u,
                    "platform": "discord",
                    "external_id": str(u),
                    "created_at": NOW,
                    "last_seen_at": NOW,
                }
                for u in ids
            ],
        )
        orders = list(
            (
                await s.execute(
                    insert(Order).returning(Order.id, Order.user_id),
                    [
                        {
                            "user_id": u,
                            "course_id": course.id,
                            "status": "paid",
                            "amount_minor": 100,
                            "currency": "USD",
                            "sessions_included": 1,
                            "provider": "demo",
                            "created_at": NOW,
                            "expires_at": NOW,
                        }
                        for u in ids
                    ],
                )
            ).all()
        )
        await s.execute(
            insert(Enrollment),
            [
                {
                    "order_id": o,
                    "user_id": u,
                    "course_id": course.id,
                    "credits_remaining": 1,
                    "status": "active",
                    "created_at": NOW,
                }
                for o, u in orders
            ],
        )
        await uow.commit()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    url = args.url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = create_engine(url)
    await upgrade(engine)
    config = make_config(community={"spaces": ["c=discord:1"]})
    app = Marketplace(config, engine, FakeClock(NOW))
    await seed(app, args.learners)
    port = InstantPort()
    app.community.register("discord", port)
    started = time.perf_counter()
    first = await app.community.sweep(check=False)
    granting = time.perf_counter() - started
    started = time.perf_counter()
    await app.community.sweep(check=False)
    idle = time.perf_counter() - started
    started = time.perf_counter()
    await app.community.sweep(check=True)
    checking = time.perf_counter() - started
    async with app.new_uow() as uow:
        rows = (await uow.session.execute(select(func.count(AccessGrant.id)))).scalar_one()
    print(
        f"{args.learners} learners: first sweep {granting:.2f} s "
        f"({first.changed} desired, {first.done} granted, {port.calls} platform calls, "
        f"{rows} rows); idle sweep {idle * 1000:.1f} ms; sweep with a check {checking:.2f} s"
    )
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
