"""APScheduler as an alarm clock for the database's due rows.

The scheduler holds no state worth keeping. One date job is armed at the earliest pending
reminder's instant; when it fires, `Marketplace.run_due` claims everything due from the
database (through the front door, as an input of kind `sweep`) and the job is re-armed at the
next instant. An interval sweep (`reminders.sweep_seconds`) is the safety net for offers and
orders that time out and for reminders written by another process. Re-arming after a restart
is therefore one indexed query, however many reminders are pending. `misfire_grace_time=None`
because APScheduler's default of one second silently drops a job whose wake-up was late, e.g.
under load.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import DueReport, Marketplace
from bot.sessions import workshop_reminders
from bot.sessions.reminders import next_due

log = logging.getLogger(__name__)
NEXT_JOB = "next-due"


class Timers:
    def __init__(self, app: Marketplace) -> None:
        self._app = app
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.armed_at: datetime | None = None
        self._sweeping = asyncio.Lock()
        app.on_new_due = self.arm_many

    async def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self._app.config.reminders.sweep_seconds,
            id="sweep",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            # The tick running a long sweep is one instance; the next one must get to run
            # (and skip at once, see `tick`) rather than be refused with a WARNING.
            max_instances=2,
        )
        await self.sweep()

    def arm_many(self, instants: list[datetime]) -> None:
        """New reminders were written: wake earlier if one is due before the armed instant."""
        earliest = min(instants, default=None)
        if earliest is not None and (self.armed_at is None or earliest < self.armed_at):
            self.arm(earliest)

    def arm(self, instant: datetime) -> None:
        self.armed_at = instant
        self.scheduler.add_job(
            self.sweep,
            "date",
            run_date=self._app.clock.wall_instant(max(instant, self._app.clock.now())),
            id=NEXT_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            # Re-armed from inside a running sweep: the new wake-up must not be skipped as a
            # second instance of the same job. Sweeps queue on a lock instead.
            max_instances=8,
        )

    async def tick(self) -> None:
        """The interval's safety-net sweep, skipped while another sweep runs: that one does
        the same work, and one overrunning its interval under load would otherwise have
        APScheduler warn at every tick. Armed wake-ups (`arm`) never skip; they queue."""
        if self._sweeping.locked():
            return
        await self.sweep()

    async def sweep(self) -> None:
        async with self._sweeping:
            await self._sweep()

    async def _sweep(self) -> None:
        """One sweep through the front door; a failure is logged there and the next retries."""
        found = await self._app.front.dispatch("sweep", self._run_due, on_error=lambda: None)
        if found is None:
            return
        report, upcoming = found
        self.armed_at = None
        if upcoming is not None:
            self.arm(upcoming)
        if report.reminders or report.delivered:
            log.info("sweep", extra={"reminders": report.reminders, "delivered": report.delivered})

    async def _run_due(self) -> tuple[DueReport, datetime | None]:
        report = await self._app.run_due()
        async with self._app.new_uow() as uow:
            found = [await next_due(uow), await workshop_reminders.next_due(uow)]
            return report, min((t for t in found if t is not None), default=None)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def stop(self, within: float = 30.0) -> bool:
        """Graceful shutdown: fire no more sweeps and let those already started finish, then
        shut the scheduler down (which cancels a sweep still running: half-way through its
        transactions, logged by APScheduler as an error). False if one was still running
        after `within` seconds."""
        finished = True
        if self.scheduler.running:
            self.scheduler.pause()
            await asyncio.sleep(0)  # a sweep fired just now reaches the lock
            try:
                async with asyncio.timeout(within), self._sweeping:
                    pass  # sweeps queue on the lock in order: all started ones are done
            except TimeoutError:
                finished = False
        self.shutdown()
        return finished
