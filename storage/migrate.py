"""Run Alembic migrations from code, on the same async engine the bot uses.

Every start migrates (`[storage] auto_migrate`), and loading Alembic costs more than the rest
of a console start-up, so a database already at the newest revision is recognised first
with one query and Alembic is loaded only when there is something to do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*['\"]?(\w+)", re.MULTILINE)


def newest_revisions() -> frozenset[str]:
    """The head revisions, read from the migration files' `revision`/`down_revision` lines."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, name in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(name)
    return frozenset(revisions - parents)


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    """The revisions the database is at; empty for a new database (no version table yet)."""
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except DBAPIError:  # no such table: a new database
        return frozenset()


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database is at the newest revision (False if unsure: then migrate)."""
    current = await current_revisions(engine)
    return bool(current) and current == newest_revisions()


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on an up-to-date database."""
    if revision == "head" and await at_head(engine):
        return

    def _run(connection: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes starting together must not both migrate.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7340021)")
        await conn.run_sync(_run)
