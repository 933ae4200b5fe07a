"""Fixtures, and only fixtures: a real database per test (SQLite file, and PostgreSQL when
configured; migrated once and reused, see `database`), a fake clock, marketplaces on that
database, the console harness with or without the demo catalogue, the Stripe world, and
the loopback Telegram Bot API.

PostgreSQL runs when `MENTORBOT_TEST_POSTGRES_URL` is set (e.g.
`postgresql+asyncpg://postgres@127.0.0.1:5432/test`); each test gets a schema of its own
(an emptied one a finished test gave back).
The types and helpers these fixtures return live in tests/support.py; import them from there.
A module that needs a different platform fake overrides `fake` (tests/test_discord.py,
tests/test_graceful_shutdown.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.app import Marketplace
from bot.config import Config
from bot.core.clock import FakeClock
from bot.learning.courses import CATALOGUE
from bot.recommending.signals import MODELS
from bot.runtime.bootstrap import payment_providers
from bot.runtime.demo_data import seed_demo
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Identity
from tests.fakes.fake_stripe import StripeWorld
from tests.fakes.fake_telegram import BOT_LINK, FakeTelegram, StartBot, bots, serving_fake
from tests.support import (
    PG_ALL,
    PG_POOL,
    POSTGRES_ENV,
    START,
    AppFactory,
    Database,
    Harness,
    booked_pair,
    give_back_schema,
    harness_for,
    make_config,
    sqlite_template,
)


# Migrating a database from scratch is most of what a test's setup costs (twelve migrations:
# about 0.3 s on SQLite, 1 s on PostgreSQL). SQLite tests copy a file migrated once per run;
# PostgreSQL tests reuse schemas a finished test emptied (TRUNCATE … RESTART IDENTITY keeps
# the migrated schema and restarts ids at 1). A module that tests the migrations themselves
# marks itself `unmigrated` and gets an empty database of its own, as every test once did.
@pytest.fixture(autouse=True)
def _models_built_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the newest recommendation model at once; the background rebuild that serves
    production has its own test (test_recommend). The kept catalogue starts empty: a schema
    reused by the next test restarts its ids, so the same change count would read as the same
    courses."""
    monkeypatch.setattr(MODELS, "background", False)
    monkeypatch.setattr(CATALOGUE, "kept", {})


@pytest.fixture(scope="session", autouse=True)
def _drop_pooled_schemas() -> Iterator[None]:
    yield
    url = os.environ.get(POSTGRES_ENV)
    if not url or not PG_ALL:
        return

    async def drop() -> None:
        admin = create_engine(url)
        async with admin.begin() as conn:
            for schema in sorted(PG_ALL):
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await admin.dispose()

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    fresh = request.node.get_closest_marker("unmigrated") is not None
    if request.param == "sqlite":
        if not fresh:
            shutil.copyfile(await sqlite_template(), tmp_path / "mentorbot.db")
        yield Database(f"sqlite+aiosqlite:///{tmp_path}/mentorbot.db")
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV} to run this on PostgreSQL")
    admin = create_engine(url)
    if PG_POOL and not fresh:
        schema = PG_POOL.pop()
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        PG_ALL.add(schema)
    try:
        yield Database(url, schema)
    finally:
        if fresh:
            async with admin.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            PG_ALL.discard(schema)
        else:
            await give_back_schema(admin, schema)
        await admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def make_app(database: Database, clock: FakeClock) -> AsyncIterator[AppFactory]:
    """Build marketplaces on the test database (several = several bot processes)."""
    engines: list[Any] = []

    async def build(config: Config | None = None, pool_size: int = 5) -> Marketplace:
        engine = database.engine(pool_size=pool_size)
        engines.append(engine)
        await upgrade(engine)
        cfg = config or make_config()
        return Marketplace(cfg, engine, clock, payment_providers(cfg))

    yield build
    for engine in engines:
        await engine.dispose()


@pytest.fixture
async def harness(make_app: AppFactory) -> Harness:
    """The console harness on an empty marketplace (demo payments, no catalogue)."""
    return harness_for(await make_app())


@pytest.fixture
async def market(harness: Harness) -> Harness:
    """The console harness on the demo marketplace: its courses, mentors and admin."""
    await seed_demo(harness.app)
    return harness


@pytest.fixture
async def world(database: Database, clock: FakeClock) -> AsyncIterator[StripeWorld]:
    """The demo marketplace paid by card through the fake Stripe, its webhook server running."""
    async with StripeWorld.open(database, clock) as w:
        yield w


@pytest.fixture
async def landing(database: Database, clock: FakeClock) -> AsyncIterator[StripeWorld]:
    """The Stripe world with `[web] public_url` and no success/cancel URL, so Checkout returns
    to the bot's own pages. Alice also uses the bot on Telegram, which is connected (its deep
    link registered, as the adapter does)."""
    async with StripeWorld.open(
        database, clock, web={"public_url": "https://bot.example.com"}, success_url="",
        cancel_url="",
    ) as w:  # fmt: skip
        w.app.chat_links.register("telegram", lambda _external_id: BOT_LINK)
        await w.h.send("alice", "/start")
        async with w.app.new_uow() as uow:
            alice = await uow.session.scalar(
                select(Identity.user_id).where(
                    Identity.platform == "console", Identity.external_id == "alice"
                )
            )
            assert alice is not None
            uow.session.add(
                Identity(
                    user_id=alice,
                    platform="telegram",
                    external_id="4711",
                    created_at=clock.now(),
                    last_seen_at=clock.now(),
                )
            )
            await uow.commit()
        yield w


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    """The loopback Telegram Bot API."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22 warns on its own 429 handling otherwise
    async with serving_fake() as server:
        yield server


@pytest.fixture
async def start_bot(make_app: AppFactory, fake: FakeTelegram) -> AsyncIterator[StartBot]:
    """Start Telegram bots on marketplaces of the test database, talking to `fake`."""
    async with bots(make_app, fake) as start:
        yield start


@pytest.fixture
async def booked(market: Harness) -> Harness:
    """The demo marketplace where alice bought a course, ada accepted her request and one
    session is booked: every role has something of its own to act on."""
    await booked_pair(market)
    return market
