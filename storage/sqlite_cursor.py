"""A cursor for SQLAlchemy's aiosqlite dialect that runs a statement in one thread hop.

aiosqlite runs each sqlite3 call on its own thread and SQLAlchemy's adapter awaits four of
them per statement (open a cursor, execute, fetch, close). Each hop wakes the event loop
through a pipe, so on SQLite a message's handful of statements cost more in hops than in
SQL: this cursor executes, fetches and closes in one call on aiosqlite's thread, which cut
the core's CPU per update by about a third (see README, "Measured"). For the same reason the
connection skips the pool's reset-on-return rollback when no transaction is open, and a
transaction's `BEGIN IMMEDIATE` travels with its first statement (`begin_with_next_statement`)
instead of taking a hop of its own: the in-process write lock is already held then, so the
database sees the same order, one hop sooner.

It leans on SQLAlchemy's asyncio adapter classes (`AsyncAdapt_dbapi_cursor`), which are not
public API; pyproject.toml pins SQLAlchemy's minor version for that reason, and every SQLite
test runs through this cursor. Server-side cursors (`stream()`) keep SQLAlchemy's own.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

BEGIN_PENDING = "_mentorbot_begin_pending"  # set on the aiosqlite thread object (it has a __dict__)


def _take_begin(connection: Any) -> bool:
    """Whether a transaction was begun but not yet sent; it is sent with this statement."""
    if getattr(connection, BEGIN_PENDING, False):
        setattr(connection, BEGIN_PENDING, False)
        return True
    return False


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def _make_new_cursor(self, connection: Any) -> Any:
        return None  # opened on aiosqlite's thread with each statement

    def _aenter_cursor(self, cursor: Any) -> Any:
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1
        return None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing is open between statements."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        begin = _take_begin(self._connection)

        def run(conn: sqlite3.Connection) -> tuple[Any, list[Any], int, int | None]:
            cursor = conn.cursor()
            try:
                if begin:
                    cursor.execute("BEGIN IMMEDIATE")
                if parameters is None:
                    cursor.execute(operation)
                else:
                    cursor.execute(operation, parameters)
                description = cursor.description
                rows = cursor.fetchall() if description else []
                return description, rows, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            found = await self._connection._execute(run, self._connection._conn)
        self._description, rows, self._rowcount, self._lastrowid = found
        self._rows = collections.deque(rows)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        begin = _take_begin(self._connection)

        def run(conn: sqlite3.Connection) -> tuple[int, int | None]:
            cursor = conn.cursor()
            try:
                if begin:
                    cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(operation, seq_of_parameters)
                return cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            found = await self._connection._execute(run, self._connection._conn)
        self._description = None
        self._rowcount, self._lastrowid = found


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def rollback(self) -> None:
        """No hop when no transaction is open: the pool rolls back every connection it takes
        back, and ours come back committed or already rolled back, so that hop did nothing
        but wait for a thread (one per transaction; about a tenth of an update's hops)."""
        _take_begin(self._connection)
        conn = self._connection._connection
        if conn is not None and not conn.in_transaction:
            return
        super().rollback()

    def commit(self) -> None:
        """A transaction that never sent a statement has nothing to commit."""
        if _take_begin(self._connection):
            return
        super().commit()

    def begin_with_next_statement(self) -> None:
        """Begin a transaction (`BEGIN IMMEDIATE`) on this connection's next statement."""
        setattr(self._connection, BEGIN_PENDING, True)


def use_one_hop_cursors(dbapi_connection: Any) -> None:
    """Switch a new aiosqlite connection (from the engine's "connect" event) to this cursor."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneHopConnection
