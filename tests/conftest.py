"""Fixtures: a real database per test (SQLite file, and PostgreSQL when configured), a fake
clock, and a console harness that drives the marketplace with typed input.

PostgreSQL runs when `MENTORBOT_TEST_POSTGRES_URL` is set (e.g.
`postgresql+asyncpg://postgres@127.0.0.1:5432/test`); each test gets a schema of its own.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.adapters.console import ConsoleChat
from bot.app import Marketplace
from bot.config import Config, config_from_mapping
from bot.core.clock import FakeClock
from bot.runtime.bootstrap import payment_providers
from storage.db import create_engine
from storage.migrate import upgrade

# The Telegram tests' `fake` and `start_bot`.
pytest_plugins = ["tests.telegram_fixtures"]

POSTGRES_ENV = "MENTORBOT_TEST_POSTGRES_URL"
# A Monday morning, far from any daylight-saving change.
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class Database:
    url: str
    search_path: str | None = None

    def engine(self, pool_size: int = 5) -> Any:
        return create_engine(self.url, pool_size=pool_size, search_path=self.search_path)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database(f"sqlite+aiosqlite:///{tmp_path}/mentorbot.db")
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV} to run this on PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield Database(url, schema)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


def make_config(**sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {
        "bot": {"admins": ["console:admin"]},
        "payments": {"demo": True},
        "sessions": {"min_lead_minutes": 60},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return config_from_mapping(raw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@dataclass
class Harness:
    """The console chat with its output captured, one string per reply or notice."""

    app: Marketplace
    chat: ConsoleChat
    output: list[str] = field(default_factory=list)

    async def send(self, who: str, line: str) -> str:
        """Type `line` as console user `who`; returns everything printed meanwhile."""
        start = len(self.output)
        if self.chat.name != who:
            self.chat.name = who
        await self.chat.handle_line(line)
        return "\n".join(self.output[start:])

    async def tick(self) -> str:
        start = len(self.output)
        await self.app.run_due()
        return "\n".join(self.output[start:])


AppFactory = Callable[..., Any]


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


def harness_for(app: Marketplace) -> Harness:
    output: list[str] = []
    files = Path(tempfile.mkdtemp(prefix="mentorbot-console-"))
    return Harness(app, ConsoleChat(app, output.append, files_dir=files), output)


@pytest.fixture
async def harness(make_app: AppFactory) -> Harness:
    return harness_for(await make_app())
