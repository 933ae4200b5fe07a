"""Engine set-up for SQLite (embedded default) and PostgreSQL (past one machine).

SQLite's Python driver emits no BEGIN before reads and breaks SAVEPOINT, so we take over
transaction control: every transaction begins `BEGIN IMMEDIATE`, which serialises writers and
makes read-check-write sequences (first accept wins, one booking per slot) atomic. PostgreSQL
gets the same guarantees from row locks (`SELECT … FOR UPDATE`) taken by the repositories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.sqlite_cursor import OneHopConnection, use_one_hop_cursors

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str, pool_size: int = 5, search_path: str | None = None) -> AsyncEngine:
    """An async engine for `url`; a SQLite file's folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("use a SQLite file: an in-memory database is one shared connection")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=20)
        _configure_sqlite(engine)
        return engine
    # JIT off: PostgreSQL compiles a query to machine code once its estimated cost passes
    # `jit_above_cost`, which the report's aggregates over a large ledger do; compiling took
    # ~280 ms of a 330 ms query (`/admin stats`, 1M entries) and pays back only on analytic
    # queries running seconds. The bot's queries are short.
    settings = {"jit": "off"}
    if search_path:
        settings["search_path"] = search_path
    connect_args: dict[str, Any] = {"server_settings": settings}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        use_one_hop_cursors(dbapi_connection)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, OneHopConnection):
            dbapi_connection.begin_with_next_statement()
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def autovacuum_off(engine: AsyncEngine) -> bool:
    """Whether PostgreSQL runs without autovacuum. Then dead rows are never reclaimed and the
    planner has no statistics, so the outbox and sweep queries slow down as tables grow (in
    the load test an outbox claim went from 0.2 ms to 100 ms); worth a warning at start-up."""
    if is_sqlite(engine):
        return False
    async with engine.connect() as conn:
        setting = (await conn.exec_driver_sql("SHOW autovacuum")).scalar_one()
    return bool(setting == "off")
