"""APScheduler as an alarm clock for the database's due rows.

The scheduler holds no state worth keeping: a date job at each reminder's instant and an
interval sweep wake `Marketplace.run_due`, which claims what is due from the database. After a
restart `start()` sweeps once (sending what fell due while the bot was down, if still useful)
and re-arms every pending reminder. `misfire_grace_time=None` because APScheduler's default of
one second silently drops a job whose wake-up was late, e.g. under load.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Marketplace
from bot.reminders import next_due

log = logging.getLogger(__name__)


class Timers:
    def __init__(self, app: Marketplace) -> None:
        self._app = app
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        app.on_new_due = self.arm_many

    async def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(
            self.sweep,
            "interval",
            seconds=self._app.config.reminders.sweep_seconds,
            id="sweep",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        await self.sweep()
        async with self._app.new_uow() as uow:
            self.arm_many(await next_due(uow))

    def arm_many(self, instants: list[datetime]) -> None:
        now = self._app.clock.now()
        for instant in instants:
            if instant > now:
                self.arm(instant)

    def arm(self, instant: datetime) -> None:
        self.scheduler.add_job(
            self.sweep,
            "date",
            run_date=instant,
            id=f"due-{instant.timestamp():.0f}",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    async def sweep(self) -> None:
        try:
            report = await self._app.run_due()
        except Exception:
            log.exception("sweep failed; the next one retries")
            return
        if report.reminders or report.delivered:
            log.info("sweep", extra={"reminders": report.reminders, "delivered": report.delivered})

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
