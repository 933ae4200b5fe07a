"""One load run from start to end: the fakes and the database up, the marketplace seeded, the
bot processes started, the three phases played (with a kill -9 and a SIGTERM restart in the
third), the invariants checked, and everything stopped and dropped again, even on failure."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load.chat import IndexedTelegram, StepFailed
from bench.load.checks import Checks
from bench.load.people import LearnerState, People
from bench.load.processes import (
    Balancer,
    BotProcess,
    CpuSample,
    cpu_sample,
    cpu_used,
    create_database,
    drop_database,
    free_port,
    stand_in_for_autovacuum,
    write_config,
)
from bench.load.report import Check, PhaseFigures, Report, Settings
from bench.load.seed import marketplace, migrate, seed
from bench.load.world import LEARNER_BASE, NOTICE_WAIT, STRIPE_KEY, TOKEN
from bot.app import Marketplace
from bot.core.clock import ScaledClock
from storage.models import OutboxMessage, Reminder
from tests.fakes.fake_stripe import FakeStripe


async def run_load(settings: Settings) -> Report:
    return await LoadRun(settings).run()


class LoadRun:
    def __init__(self, settings: Settings) -> None:
        if not settings.database:
            settings.database = f"mentorbot_load_{os.getpid()}"
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.report = Report(settings)
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.clock = ScaledClock(settings.speed, self.start, wall_origin=self.start)
        self.tg = IndexedTelegram(token=TOKEN)
        self.stripe = FakeStripe(self.clock.now, api_key=STRIPE_KEY)
        self.processes: list[BotProcess] = []
        self.kill_info: dict[str, float] = {}
        self.kill_when = 1 << 30
        self.kill_now = asyncio.Event()
        self.killed_wall = 0.0
        self.killed_tag = ""  # the incarnation killed with SIGKILL, e.g. botB-1
        self.sigterm_wall = 0.0
        self.sigterm_info: dict[str, Any] = {}
        self.http: aiohttp.ClientSession
        self.lb: Balancer
        self.people: People
        self.db_url = ""
        self.app: Marketplace | None = None
        self.workdir = Path(settings.logs_dir or tempfile.mkdtemp(prefix="mentorbot-load-"))
        self.t0 = time.monotonic()

    @property
    def engine(self) -> AsyncEngine:
        assert self.app is not None
        return self.app.engine

    def log(self, message: str) -> None:
        if self.s.verbose:
            elapsed = time.monotonic() - self.t0
            print(f"[{elapsed:6.1f} s] {message}", flush=True)

    # ── set-up and tear-down ──────────────────────────────────────────────────────────────

    async def run(self) -> Report:
        self.t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        connector = aiohttp.TCPConnector(limit=400, force_close=False)
        self.http = aiohttp.ClientSession(connector=connector)
        self.lb = Balancer(self.http)
        self.lb.telegram_slots = asyncio.Semaphore(self.s.max_connections)
        self.people = People(
            self.s, self.rng, self.tg, self.stripe, self.clock, self.lb, self.report.notes
        )
        self.people.on_booked = self._booked
        try:
            await self.tg.start()
            await self.stripe.start()
            self.db_url = await create_database(self.s.postgres, self.s.database)
            await asyncio.wait_for(self._scenario(), self.s.timeout)
        except TimeoutError:
            self.report.checks.append(
                Check("finished in time", False, f"the run hit --timeout {self.s.timeout:.0f} s")
            )
        except Exception as exc:
            self.report.checks.append(Check("run completed", False, f"{type(exc).__name__}: {exc}"))
        finally:
            await self._tear_down()
        self.report.seconds = time.monotonic() - self.t0
        return self.report

    async def _tear_down(self) -> None:
        self.people.stop_mentors.set()
        for p in self.processes:
            with contextlib.suppress(Exception):
                await p.terminate(within=5)
        if self.app is not None:
            await self.app.engine.dispose()
        if self.db_url and not self.s.keep_db:
            await drop_database(self.s.postgres, self.s.database)
        await self.http.close()
        await self.stripe.stop()
        await self.tg.stop()

    def _process(self, name: str) -> BotProcess:
        port = free_port()

        def configure(tag: str) -> Path:
            return write_config(
                self.workdir / f"{name}.toml",
                self.s,
                db_url=self.db_url,
                port=port,
                tag=tag,
                telegram_url=self.tg.url,
                stripe_url=self.stripe.url,
                start=self.start,
            )

        return BotProcess(name, port, configure, self.workdir)

    async def _start_process(self, p: BotProcess) -> None:
        p.start()
        took = await p.wait_ready(self.http)
        self.log(f"{p.name} ready on :{p.port} ({took:.1f} s)")

    async def _migrate_and_seed(self) -> None:
        first = self.processes[0]
        await migrate(first.config)
        self.app = marketplace(first.config, self.clock)
        self.people.engine = self.app.engine
        await seed(self.app, self.people.mentor_ids, self.s.learners, self.rng)
        self.log(f"seeded the courses and {self.s.mentors} mentors")

    # ── the scenario ──────────────────────────────────────────────────────────────────────

    async def _scenario(self) -> None:
        s = self.s
        self.processes = [self._process(f"bot{chr(ord('A') + i)}") for i in range(s.processes)]
        self.lb.members = []
        await self._migrate_and_seed()
        stripe_count = round(s.learners * s.stripe_share)
        chosen = set(self.rng.sample(range(s.learners), stripe_count))
        learners = [LearnerState(i, LEARNER_BASE + i, i in chosen) for i in range(s.learners)]
        self.people.learners = learners
        mentors = [asyncio.create_task(self.people.mentor(m)) for m in self.people.mentor_ids]
        vacuum = asyncio.create_task(stand_in_for_autovacuum(s.postgres, s.database, self.log))
        try:
            if s.measure_single and s.processes > 1:
                await self._start_process(self.processes[0])
                self.lb.members = [self.processes[0]]
                half = s.learners // 2
                await self._front_phase("phase 1: buy + get a mentor", learners[:half], 1)
                await asyncio.gather(*(self._start_process(p) for p in self.processes[1:]))
                self.lb.members = list(self.processes)
                await self._front_phase("phase 2: buy + get a mentor", learners[half:], s.processes)
            else:
                await asyncio.gather(*(self._start_process(p) for p in self.processes))
                self.lb.members = list(self.processes)
                await self._front_phase("buy + get a mentor", learners, s.processes)
            await self._back_phase()
            drain = time.monotonic()
            await self._quiesce()
            # The mentors rate the learners after them; what they do then may notify.
            await self.people.mentors_done()
            await self._quiesce()
            self.log(
                f"mentors done, outbox and due reminders drained in "
                f"{time.monotonic() - drain:.1f} s"
            )
        finally:
            self.people.stop_mentors.set()
            for task in [*mentors, vacuum]:
                task.cancel()
            await asyncio.gather(*mentors, vacuum, return_exceptions=True)
        await Checks(self).all()

    async def _cpu(self) -> CpuSample:
        return await cpu_sample(self.processes, self.engine, self.s.database)

    async def _front_phase(self, name: str, group: list[LearnerState], processes: int) -> None:
        figures = PhaseFigures(name, processes)
        self.report.phases.append(figures)
        self.lb.phase = figures
        cpu = await self._cpu()
        started = figures.started = time.monotonic()
        finished: list[float] = []

        async def one(learner: LearnerState) -> None:
            try:
                await self.people.learner_front(learner)
            except StepFailed as exc:
                learner.failed = f"front: {exc}"
            finished.append(time.monotonic())

        self.log(f"{name}: {len(group)} learners on {processes} process(es)")
        await asyncio.gather(*(one(learner) for learner in group))
        figures.seconds = time.monotonic() - started
        figures.t90 = sorted(finished)[max(0, math.ceil(len(finished) * 0.9) - 1)]
        self.lb.phase = None
        figures.cpu = cpu_used(cpu, await self._cpu())
        figures.load = os.getloadavg()[0]
        self.log(f"{name}: done, {figures.rate:.1f} updates/s; {_failures(group)}")
        self.log(f"{name}: slowest updates (median): {figures.slowest()}")
        self.log(f"{name}: {figures.cpu_line()}")

    async def _back_phase(self) -> None:
        figures = PhaseFigures(
            "phase 3: book, meet, rate (+ kill -9)", self.s.processes, front=False
        )
        self.report.phases.append(figures)
        self.lb.phase = figures
        cpu = await self._cpu()
        started = figures.started = time.monotonic()
        group = [learner for learner in self.people.learners if not learner.failed]

        async def one(learner: LearnerState) -> None:
            try:
                await self.people.learner_book(learner)
                await self.people.learner_meet(learner)
            except StepFailed as exc:
                learner.failed = f"back: {exc}"

        killer = asyncio.create_task(self._kill_and_restart(len(group)))
        self.log(f"phase 3: {len(group)} learners book, meet and rate")
        try:
            await asyncio.gather(*(one(learner) for learner in group))
            self.kill_now.set()  # everyone is through: what was not injected yet, at once
            await killer
        finally:
            if not killer.done():
                killer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await killer
        figures.seconds = time.monotonic() - started
        self.lb.phase = None
        figures.cpu = cpu_used(cpu, await self._cpu())
        figures.load = os.getloadavg()[0]
        self.log(f"phase 3: done in {figures.seconds:.0f} s; {_failures(group)}")
        self.log(f"phase 3: slowest updates (median): {figures.slowest()}")

    # ── the faults ────────────────────────────────────────────────────────────────────────

    def _booked(self, booked: int) -> None:
        if booked >= self.kill_when:
            self.kill_now.set()

    async def _kill_and_restart(self, total: int) -> None:
        if not self.s.kill or self.s.processes < 2:
            return
        victim = self.processes[-1]
        self.kill_when = max(1, int(total * 0.35))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.kill_now.wait(), 120)
        self.log(
            f"kill -9 {victim.name} (pid {victim.proc.pid if victim.proc else '?'}), "
            f"{self.people.booked} sessions booked so far"
        )
        killed_at = time.monotonic()
        self.killed_wall = time.time()
        self.killed_tag = victim.tag
        victim.kill9()
        await asyncio.sleep(2.0)
        victim.start()
        took = await victim.wait_ready(self.http)
        self.kill_info = {"down": time.monotonic() - killed_at, "start": took}
        self.log(f"{victim.name} restarted and ready after {self.kill_info['down']:.1f} s down")
        if not self.s.sigterm:
            return
        # A graceful restart as a deployment does it: SIGTERM, drain, start again.
        other = self.processes[0]
        self.kill_when = max(1, int(total * 0.65))
        self.kill_now.clear()
        if self.people.booked < self.kill_when:  # else they booked while it was down: at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kill_now.wait(), 120)
        self.log(f"SIGTERM {other.name}, {self.people.booked} sessions booked so far")
        stopped_at = time.monotonic()
        self.sigterm_wall = time.time()
        code = await other.terminate()
        stop = time.monotonic() - stopped_at
        other.start()
        await other.wait_ready(self.http)
        self.sigterm_info = {"exit": code, "stop": stop, "down": time.monotonic() - stopped_at}
        self.log(f"{other.name} exited {code} after {stop:.1f} s and is ready again")

    async def _quiesce(self, within: float = NOTICE_WAIT) -> None:
        """Wait until the outbox is empty and no due reminder is pending (bounded)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            now = self.clock.now()
            async with self.engine.connect() as conn:
                unsent = (
                    await conn.execute(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.sent_at.is_(None))
                    )
                ).scalar_one()
                due = (
                    await conn.execute(
                        select(func.count())
                        .select_from(Reminder)
                        .where(Reminder.sent_at.is_(None))
                        .where(Reminder.skipped_at.is_(None))
                        .where(Reminder.due_at <= now)
                    )
                ).scalar_one()
            if not unsent and not due:
                return
            # e.g. notices the killed process had claimed: sent when their lease runs out
            await asyncio.sleep(0.2)
        self.report.notes.append(
            f"outbox or due reminders not drained within {within:.0f} s of the end"
        )

    # ── delivering updates ────────────────────────────────────────────────────────────────


def _failures(group: list[LearnerState]) -> str:
    reasons = Counter(learner.failed[:90] for learner in group if learner.failed)
    if not reasons:
        return "no learner failed"
    return f"{sum(reasons.values())} learners failed: {dict(reasons.most_common(4))}"
