"""The database: migrations match the models, and SQLite runs with the settings we rely on."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.migrate import upgrade
from storage.models import Base
from tests.conftest import Database


async def test_migrations_produce_exactly_the_models(database: Database) -> None:
    """After `upgrade`, the schema has no difference from the models (and upgrade is repeatable)."""
    engine = database.engine()
    await upgrade(engine)
    await upgrade(engine)

    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []


async def test_sqlite_runs_with_wal_foreign_keys_and_busy_timeout(tmp_path: Any) -> None:
    """SQLite connections use WAL, enforce foreign keys, and wait for locks instead of failing."""
    engine = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db").engine()
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    await engine.dispose()
