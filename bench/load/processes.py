"""The processes of a load run: `mentorbot run` OS processes (started, killed with SIGKILL,
stopped with SIGTERM, each writing its own config), the load balancer in front of them that
plays Telegram's and Stripe's webhook delivery, the run's own PostgreSQL database, and the CPU
each of them uses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load.chat import StepFailed
from bench.load.report import PhaseFigures, Settings
from bench.load.world import (
    DURATION_MINUTES,
    LEAD_MINUTES,
    REMINDER_OFFSETS,
    STRIPE_KEY,
    STRIPE_WEBHOOK_SECRET,
    TOKEN,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
)

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    path: Path,
    s: Settings,
    *,
    db_url: str,
    port: int,
    tag: str,
    telegram_url: str,
    stripe_url: str,
    start: datetime,
) -> Path:
    """The config of one bot process incarnation `tag`: its own port and Bot API prefix, the
    shared database, clock and fakes; `[telegram] flood_control` as `--no-flood-control` says."""
    cfg = f"""
[bot]
default_timezone = "UTC"

[storage]
url = "{db_url}"
pool_size = {s.pool_size}
auto_migrate = true

[payments]
order_ttl_minutes = 1440

[matching]
# Real mentors get 12 h; the simulated ones answer within seconds, so a round is given five
# minutes of real time, however fast the clock runs.
offer_timeout_minutes = {s.speed * 5}

[sessions]
duration_minutes = {DURATION_MINUTES}
min_lead_minutes = {LEAD_MINUTES}

[reminders]
offsets_minutes = {list(REMINDER_OFFSETS)}
sweep_seconds = 2

[web]
host = "127.0.0.1"
port = {port}

[telegram]
token = "{TOKEN}"
base_url = "{telegram_url}/via/{tag}"
mode = "webhook"
webhook_url = "http://127.0.0.1:{port}{WEBHOOK_PATH}"
webhook_secret = "{WEBHOOK_SECRET}"
flood_control = {"true" if s.flood_control else "false"}

[stripe]
secret_key = "{STRIPE_KEY}"
webhook_secret = "{STRIPE_WEBHOOK_SECRET}"
api_base = "{stripe_url}"
success_url = "https://mentorbot.example/paid"
cancel_url = "https://mentorbot.example/cancelled"
platforms = ["telegram"]
signature_tolerance_seconds = 86400

[clock]
speed = {s.speed}
start = "{start.isoformat()}"

[logging]
level = "WARNING"
format = "json"
"""
    path.write_text(cfg, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    def __init__(
        self,
        name: str,
        port: int,
        configure: Callable[[str], Path],
        logs: Path,
    ) -> None:
        """`configure(tag)` writes the config file for the incarnation `tag` (name-N)."""
        self.name = name
        self.port = port
        self.configure = configure
        self.config = configure(f"{name}-1")
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnation = 0
        self.up = False
        self.log_files: list[Path] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tag(self) -> str:
        """This incarnation, as the fake Bot API knows its calls."""
        return f"{self.name}-{self.incarnation}"

    def start(self) -> None:
        self.incarnation += 1
        self.config = self.configure(self.tag)
        log = self.logs / f"{self.tag}.stderr"
        self.log_files.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORBOT_")}
        env["PTB_TIMEDELTA"] = "1"
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(self.config), "run"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    async def wait_ready(self, http: aiohttp.ClientSession, within: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting; see {self.log_files[-1]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(
                    f"{self.base}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                ) as r:
                    if r.status == 200:
                        self.up = True
                        return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {within} s; see {self.log_files[-1]}")

    def kill9(self) -> None:
        self.up = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def terminate(self, within: float = 40) -> int | None:
        """SIGTERM and wait; the exit status, or None if it had to be killed."""
        self.up = False
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    async def metrics(self, http: aiohttp.ClientSession) -> dict[str, float]:
        """Counters summed over labels: `name{label=value,…}` and plain `name` totals."""
        found: dict[str, float] = defaultdict(float)
        async with http.get(f"{self.base}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as r:
            body = await r.text()
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                found[sample.name] += sample.value
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                if labels:
                    found[f"{sample.name}{{{labels}}}"] += sample.value
        return dict(found)


class Balancer:
    """Round-robin over the processes that are up; failover on refusal, reset or 5xx."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.members: list[BotProcess] = []
        self._next = 0
        self.failovers = 0
        self.phase: PhaseFigures | None = None
        self.unique_ids: set[Any] = set()
        self.telegram_slots = asyncio.Semaphore(100)

    def pick(self, avoid: BotProcess | None = None) -> BotProcess | None:
        live = [p for p in self.members if p.up]
        if not live:
            return None
        for _ in range(len(live)):
            p = live[self._next % len(live)]
            self._next += 1
            if p is not avoid or len(live) == 1:
                return p
        return live[0]

    async def post(
        self,
        path: str,
        body: bytes,
        headers: Callable[[], dict[str, str]],
        key: Any,
        avoid: BotProcess | None = None,
        deadline: float = 90.0,
        kind: str = "?",
    ) -> tuple[int, BotProcess, bytes]:
        """Deliver until some process answers below 500; returns status, process, body."""
        started = time.monotonic()
        attempt = 0
        while time.monotonic() - started < deadline:
            target = self.pick(avoid)
            avoid = None
            if target is None:
                await asyncio.sleep(0.1)
                continue
            attempt += 1
            slots = self.telegram_slots if path == WEBHOOK_PATH else contextlib.nullcontext()
            try:
                async with slots:
                    t0 = time.monotonic()
                    async with self.http.post(
                        target.base + path,
                        data=body,
                        headers=headers(),
                        timeout=aiohttp.ClientTimeout(total=60),
                    ) as r:
                        answer = await r.read()
                        status = r.status
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                self.failovers += 1
                await asyncio.sleep(min(0.05 * attempt, 0.5))
                continue
            if status >= 500:
                self.failovers += 1
                await asyncio.sleep(min(0.05 * attempt, 0.5))
                continue
            if self.phase is not None and status == 200:
                self.phase.updates += 1
                self.phase.stamps.append(time.monotonic())
                self.phase.latencies.append(time.monotonic() - t0)
                self.phase.by_kind[kind].append(time.monotonic() - t0)
                if key not in self.unique_ids:
                    self.unique_ids.add(key)
                    self.phase.unique += 1
            return status, target, answer
        raise StepFailed(f"no process took {path} {key} within {deadline:.0f} s")


# ── the run ─────────────────────────────────────────────────────────────────────────────────


# ── the run's database ──────────────────────────────────────────────────────────────────────


def admin_dsn(postgres: str, database: str | None = None) -> str:
    """An asyncpg DSN for the server of `postgres` (its own database, or `database`)."""
    url = make_url(postgres).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def create_database(postgres: str, database: str) -> str:
    """A fresh `database` on the server of `postgres`; its SQLAlchemy URL."""
    conn = await asyncpg.connect(admin_dsn(postgres))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return make_url(postgres).set(database=database).render_as_string(hide_password=False)


async def drop_database(postgres: str, database: str) -> None:
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(admin_dsn(postgres))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


async def stand_in_for_autovacuum(
    postgres: str, database: str, log: Callable[[str], None], every: float = 20.0
) -> None:
    """Do autovacuum's job if the server has it off, as this machine's test PostgreSQL
    does (it is on by default, and must be in production: mentorbot warns at start-up).
    Without it the planner never gets statistics and dead rows are never reclaimed; in
    one run that made each outbox claim take 100 ms instead of 0.2 ms, a slowdown no
    production server would show."""
    conn = await asyncpg.connect(admin_dsn(postgres, database))
    try:
        if await conn.fetchval("SHOW autovacuum") == "on":
            return
        log(f"autovacuum is off on this server: VACUUM ANALYZE every {every:.0f} s")
        while True:
            await conn.execute("VACUUM (ANALYZE)")
            await asyncio.sleep(every)
    finally:
        await conn.close()


# ── CPU ─────────────────────────────────────────────────────────────────────────────────────

CpuSample = dict[str, dict[int, float]]


async def cpu_sample(processes: list[BotProcess], engine: AsyncEngine, database: str) -> CpuSample:
    """CPU seconds so far of the bot processes, this database's PostgreSQL backends and
    this process (driver and fakes), by pid."""
    bots = {p.proc.pid: _cpu_seconds(p.proc.pid) for p in processes if p.proc}
    async with engine.connect() as conn:
        pids = (
            await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": database}
            )
        ).scalars()
        backends = {pid: _cpu_seconds(pid) for pid in pids}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"bots": bots, "postgres": backends, "driver": {0: usage.ru_utime + usage.ru_stime}}


def cpu_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
    return {
        kind: sum(v - before[kind].get(pid, 0.0) for pid, v in now.items())
        for kind, now in after.items()
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
