"""The database: migrations match the models, and SQLite runs with the settings we rely on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.runtime.bootstrap import warn_about_database
from storage.migrate import upgrade
from storage.models import Base
from storage.sqlite_cursor import OneHopConnection
from tests.support import Database

pytestmark = pytest.mark.unmigrated  # these tests migrate from nothing themselves


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


async def test_postgresql_without_autovacuum_is_warned_about(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """`mentorbot run` warns the operator when PostgreSQL runs without autovacuum (as this
    machine's test server does): tables bloat and plans go bad. SQLite has nothing to warn
    about, nor has a server with autovacuum on."""
    engine = database.engine()
    try:
        setting = "n/a"
        if engine.dialect.name != "sqlite":
            async with engine.connect() as conn:
                setting = (await conn.exec_driver_sql("SHOW autovacuum")).scalar_one()
        with caplog.at_level(logging.WARNING, logger="bot.runtime.bootstrap"):
            await warn_about_database(engine)
    finally:
        await engine.dispose()
    warned = [r.getMessage() for r in caplog.records if "autovacuum off" in r.getMessage()]
    assert len(warned) == (1 if setting == "off" else 0)
    if warned:
        assert "Turn it on" in warned[0]


async def test_postgresql_connections_run_without_jit(database: Database) -> None:
    """The bot's PostgreSQL sessions turn JIT off (the report's aggregates over a large ledger
    otherwise spent most of their time compiling), and keep their schema's search path."""
    if database.url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: SQLite has no JIT")
    engine = database.engine()
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW jit")).scalar_one() == "off"
            path = (await conn.exec_driver_sql("SHOW search_path")).scalar_one()
            assert database.search_path is None or database.search_path in path
    finally:
        await engine.dispose()


async def test_sqlite_runs_with_wal_foreign_keys_and_busy_timeout(tmp_path: Any) -> None:
    """SQLite connections use WAL, enforce foreign keys, and wait for locks instead of failing."""
    engine = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db").engine()
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    await engine.dispose()


async def test_sqlite_statements_report_rows_counts_ids_and_errors(tmp_path: Any) -> None:
    """Through the one-hop cursor (storage/sqlite_cursor.py): rows, rowcount, lastrowid and
    executemany come back as from sqlite3, a constraint error surfaces as SQLAlchemy's
    IntegrityError with nothing written, and the connection goes on working after it."""
    engine = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db").engine()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneHopConnection)
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
        partial = await conn.execute(text("SELECT name FROM t ORDER BY id"))
        assert partial.fetchmany(2) == [("a",), ("b!",)]
        assert partial.fetchall() == [("c!",)]
    await engine.dispose()


async def test_an_earning_recorded_before_the_ledger_survives_the_upgrade(
    database: Database,
) -> None:
    """A session's earning in the old mentor_earnings table becomes its ledger entry when 0006
    drops the table, and one already in the ledger is not posted twice."""
    engine = database.engine()
    await upgrade(engine, "0005")
    at = "2026-03-02 08:00:00.000000"
    rows = [
        "INSERT INTO users (id, display_name, language, timezone, created_at) VALUES "
        f"(1, 'alice', 'en', 'UTC', '{at}'), (2, 'ada', 'en', 'UTC', '{at}')",
        "INSERT INTO mentor_profiles (id, user_id, status, languages, capacity, bio, "
        "rating_count, rating_sum, created_at) VALUES "
        f"(1, 2, 'approved', '[]', 3, '', 0, 0, '{at}')",
        "INSERT INTO courses (id, slug, title_en, title_zh, description_en, description_zh, "
        "price_minor, currency, sessions_included, topics, status, created_at, "
        "lesson_drip_days) VALUES "
        f"(1, 'c', 'C', '', '', '', 4900, 'USD', 4, '[]', 'active', '{at}', 0)",
        "INSERT INTO orders (id, user_id, course_id, status, amount_minor, currency, "
        "sessions_included, provider, created_at, expires_at) VALUES "
        f"(1, 1, 1, 'paid', 4900, 'USD', 4, 'stripe', '{at}', '{at}')",
        "INSERT INTO enrollments (id, order_id, user_id, course_id, credits_remaining, status, "
        f"created_at) VALUES (1, 1, 1, 1, 2, 'active', '{at}')",
        "INSERT INTO mentorship_requests (id, learner_id, enrollment_id, topic, goals, level, "
        "preferred_times, status, mentor_id, offer_round, created_at) VALUES "
        f"(1, 1, 1, 'x', 'g', 1, '[]', 'accepted', 1, 1, '{at}')",
        "INSERT INTO sessions (id, request_id, enrollment_id, mentor_id, learner_id, start_at, "
        "duration_minutes, meeting_link, status, created_at, mentor_note, rescheduled_count) "
        f"VALUES (1, 1, 1, 1, 1, '{at}', 60, 'x', 'completed', '{at}', '', 0), "
        f"(2, 1, 1, 1, 1, '{at}', 60, 'x', 'completed', '{at}', '', 0)",
        "INSERT INTO mentor_earnings (session_id, mentor_id, order_id, amount_minor, currency, "
        f"created_at) VALUES (1, 1, 1, 980, 'USD', '{at}'), (2, 1, 1, 980, 'USD', '{at}')",
        "INSERT INTO ledger_entries (key, kind, at, mentor_id, order_id, session_id, currency, "
        "amount_minor, credits, demo) VALUES ('earning:session:2', 'mentor_earning', "
        f"'{at}', 1, 1, 2, 'USD', 980, 0, FALSE)",
    ]
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(text(row))
    await upgrade(engine)
    async with engine.connect() as conn:
        entries = (
            await conn.execute(
                text(
                    "SELECT key, mentor_id, order_id, amount_minor, currency, demo "
                    "FROM ledger_entries ORDER BY key"
                )
            )
        ).all()
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    await engine.dispose()
    assert [tuple(e) for e in entries] == [
        ("earning:session:1", 1, 1, 980, "USD", False),
        ("earning:session:2", 1, 1, 980, "USD", False),
    ]
    assert "mentor_earnings" not in tables


async def test_0007_marks_the_identities_of_admins_as_given_the_role(database: Database) -> None:
    """0007 marks every identity of a user who is an admin as given it by its platform, so a
    later link or unlink, which re-derives the admin role from identities, takes it from
    nobody who had it; other users' identities are left unsaid."""
    engine = database.engine()
    await upgrade(engine, "0006")
    at = "2026-03-02 08:00:00.000000"
    rows = [
        "INSERT INTO users (id, display_name, language, timezone, created_at) VALUES "
        f"(1, 'boss', 'en', 'UTC', '{at}'), (2, 'kim', 'en', 'UTC', '{at}')",
        "INSERT INTO identities (id, user_id, platform, external_id, created_at, last_seen_at) "
        f"VALUES (1, 1, 'discord', '7', '{at}', '{at}'), (2, 1, 'telegram', '8', '{at}', '{at}'), "
        f"(3, 2, 'discord', '9', '{at}', '{at}')",
        "INSERT INTO user_roles (user_id, role) VALUES (1, 'admin'), (1, 'learner'), "
        "(2, 'learner')",
    ]
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(text(row))
    await upgrade(engine)
    async with engine.connect() as conn:
        words = (
            await conn.execute(text("SELECT id, admin_word FROM identities ORDER BY id"))
        ).all()
    await engine.dispose()
    assert [tuple(w) for w in words] == [(1, True), (2, True), (3, None)]
