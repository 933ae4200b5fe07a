"""The unit of work: one transaction and the repositories that share it."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.changes import TrackingSession
from storage.db import SQLITE_BUSY_TIMEOUT_MS, is_sqlite
from storage.models import Base, OutboxMessage

T = TypeVar("T", bound=Base)


class UnitOfWork:
    """`async with uow:` opens a transaction; leaving without `commit()` rolls it back."""

    session: AsyncSession

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        write_lock: asyncio.Lock | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._write_lock = write_lock
        self._committed = False
        self.outbox: list[OutboxMessage] = []  # the outbox rows this transaction wrote
        self._absent: set[tuple[type[Base], Any]] = set()

    async def __aenter__(self) -> UnitOfWork:
        if self._write_lock is not None:
            # SQLite has one writer at a time. Queueing this process's transactions here
            # instead of in SQLite's busy handler (which sleeps and polls) roughly doubles
            # throughput under concurrency; other processes still meet the busy timeout.
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` loses a cancellation
            # that arrives as the lock is granted, so a cancelled task (a stopping background
            # loop) would run on holding the lock, and its stop would wait for ever.
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                await self._write_lock.acquire()
        try:
            self.session = self._sessionmaker()
            await self.session.begin()
        except BaseException:
            self._release()
            raise
        self._committed = False
        return self

    def sibling(self) -> UnitOfWork:
        """Another unit of work on the same database (and write lock), for work that must not
        run inside this one's transaction (a background rebuild it starts)."""
        return UnitOfWork(self._sessionmaker, self._write_lock)

    def _release(self) -> None:
        if self._write_lock is not None and self._write_lock.locked():
            self._write_lock.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self.session.rollback()
        finally:
            try:
                await self.session.close()
            finally:
                self._release()

    @property
    def wrote_outbox(self) -> bool:
        return bool(self.outbox)

    def written_outbox_ids(self) -> list[int]:
        """The outbox rows this transaction wrote, once committed (before, none are real)."""
        return [row.id for row in self.outbox] if self._committed else []

    @property
    def is_sqlite(self) -> bool:
        """SQLite: this transaction holds the whole database (BEGIN IMMEDIATE)."""
        return isinstance(self.session.bind, AsyncEngine) and is_sqlite(self.session.bind)

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True

    async def get(self, model: type[T], ident: Any) -> T | None:
        if (model, ident) in self._absent:
            return None
        return await self.session.get(model, ident)

    def known_absent(self, model: type[T], ident: Any) -> None:
        """A query already showed there is no such row (and this transaction holds the lock
        that keeps it so): `get` answers None without asking again, until a row is added."""
        self._absent.add((model, ident))

    async def lock(self, model: type[T], ident: Any) -> T | None:
        """Load a row and hold it until commit (SQLite already holds the db).

        PostgreSQL: FOR NO KEY UPDATE, which serialises lockers like FOR UPDATE but lets other
        transactions insert rows that reference this one (their foreign-key check takes FOR
        KEY SHARE). With FOR UPDATE, two users' updates that notify each other (an outbox row
        references its recipient) deadlock under load.
        """
        stmt = (
            select(model).where(model.id == ident).with_for_update(key_share=True)  # type: ignore[attr-defined]
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def advisory_lock(self, namespace: int, key: int) -> None:
        """Hold the PostgreSQL advisory lock (`namespace`, `key`) until this transaction ends:
        it serialises transactions that read and then write something no row stands for yet
        (no row to lock), and nothing else. SQLite: this transaction holds the db already."""
        if not self.is_sqlite:
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": namespace, "key": key},
            )

    def add(self, row: Base) -> None:
        self._absent.clear()
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()


def make_uow_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autobegin=False, sync_session_class=TrackingSession
    )
