"""Load and fault test: several `mentorbot run` processes on one PostgreSQL, checked for loss
and doubling. Prints figures and invariant checks; exits 1 if an invariant fails.

    /work/venv/bin/python bench/load.py [--learners 1000] [--mentors 100] [--processes 3]
        [--speed 300] [--max-connections 100] [--no-flood-control] [--postgres URL]

What runs:

- A PostgreSQL database `mentorbot_load_<pid>` (created, then dropped at the end) on the server
  of `--postgres` (default `$MENTORBOT_TEST_POSTGRES_URL`, else the local `test` database's
  URL); the schema comes from `mentorbot migrate`; three courses (Stars and card prices) and
  `--mentors` approved mentors with Telegram identities, differing in topics, ratings and
  capacity and available around the clock, are written directly.
- In this process: a fake Telegram Bot API (tests/fakes/fake_telegram.py) that every bot process
  calls, a fake Stripe API (tests/fakes/fake_stripe.py), a load balancer and the simulated people.
- `--processes` OS processes `python -m bot --config FILE run`: Telegram in webhook mode,
  Stripe, each on its own port, all with `[clock] speed` and one shared `[clock] start`, so
  sessions, reminders and their follow-ups happen within the run.

The load balancer spreads webhook posts round-robin over the processes that are up, at most
`--max-connections` at once (Telegram's webhook max_connections); a refused connection, a reset,
a timeout or a 5xx sends the same update to the next one (Telegram's redelivery, same update_id).
Besides that, `--dup-rate` of all updates and half of the Stars payments are delivered twice on
purpose, to two processes, at once or one after the other; every Stripe event is delivered
twice.

Each learner: /start, /buy, pays (Stars: invoice, pre-checkout, successful payment; or
`--stripe-share` of them by card: Checkout Session paid at the fake, signed
`checkout.session.completed` webhooks), "Find a mentor", the three questions, waits until a
mentor accepts, books a slot (again when someone else took it), answers the follow-up after
the session and rates it with a comment. Each mentor answers offers (Accept, some Decline),
confirms sessions took place and rates the learner. Everyone waits `--think` seconds (mean)
before acting; the bots' own flood control keeps each chat near Telegram's 1 message/s.

Phases: (1) the first half of the learners buy and get a mentor through ONE process (the others
are not started yet); (2) the other half through all processes; their updates/s are printed
side by side, measured until 90 % of the phase's learners were through, with the CPU each
update cost. (3) Everyone books and meets; when a third has booked, the last process is killed
with SIGKILL and started again, and when two thirds have, the first is restarted gracefully
(SIGTERM, then started again, as a deployment does). Then the invariants are checked and the
processes are stopped with SIGTERM:

- every learner finished the journey, every mentor's answer got its reply, and the kill -9 and
  the SIGTERM restart happened (the latter exiting 0, within 40 s);
- every payment fulfilled exactly once (one paid order, one enrollment, one confirmation);
- no double booking (no overlapping sessions of a mentor or a learner; credits add up);
- every outbox row (notices, reminders, follow-ups, replies kept for later) reached its chat
  exactly once. The one exception is delivery's at-least-once across a crash: rows the killed
  process had sent but not yet recorded go out again when their lease runs out. The fake Bot
  API knows which process incarnation made each call (each calls it under its own
  `/via/<name>-<n>/` prefix), so only copies the killed incarnation itself sent count as that;
- every due reminder sent exactly once (claimed once, none skipped as too late, as many
  messages as claimed rows, those re-sent copies aside);
- every update answered; no ERROR logged (none about an update or a payment, none in the
  background, no apology sent to anyone).

The run is bounded: every wait has a timeout and `--timeout` caps the whole run. Measured on a
2-core machine that was running other tests alongside: `--learners 100 --mentors 10
--processes 3` about 4 minutes (230 and 257 s; most of it phase 3, which waits for the
simulated sessions); tests/test_load_small.py (16 learners, 6 mentors, 2 processes, ×600)
50-85 s. The default 1,000 learners and 100 mentors with `--no-flood-control`, on the same
machine with nothing else running: about 5 minutes (303 s), every invariant passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import logging
import math
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import stripe  # noqa: E402
from aiohttp import web  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: E402

from bot.core.clock import ScaledClock  # noqa: E402
from storage.db import create_engine  # noqa: E402
from storage.models import (  # noqa: E402
    AvailabilityWindow,
    Course,
    Enrollment,
    Identity,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    Order,
    OutboxMessage,
    PaymentEvent,
    Rating,
    Reminder,
    RequestOffer,
    User,
    UserRole,
)
from tests.fakes.fake_stripe import FakeStripe  # noqa: E402
from tests.fakes.fake_telegram import Call, FakeTelegram  # noqa: E402

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TOKEN = "123456:LOAD-test-token"
WEBHOOK_SECRET = "load-test-secret"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
STRIPE_KEY = "sk_test_load"
STRIPE_WEBHOOK_SECRET = "whsec_load_test"
STRIPE_PATH = "/stripe/webhook"
SESSIONS_INCLUDED = 4
# slug, title, topics, price (USD cents), price in Stars
COURSES = (
    ("python-load", "Python under load", ("python",), 4900, 250),
    ("data-load", "Data analysis under load", ("data", "python"), 7900, 400),
    ("git-load", "Git under load", ("git",), 2900, 150),
)
TOPICS = ("python", "data", "git")
TIMES = ("mornings", "afternoons", "evenings", "any time")  # the buttons' labels
DURATION_MINUTES = 30
LEAD_MINUTES = 150
REMINDER_OFFSETS = (120, 60)
LEARNER_BASE = 10_000_000
MENTOR_BASE = 20_000_000
SORRY = "something went wrong on our side"
# How long a notice may take to arrive: one claimed by a process that was then killed is sent
# by another when its lease (bot.core.outbox.LEASE, 60 s of real time) runs out, at the next sweep.
NOTICE_WAIT = 90.0
# ERROR log lines about an update or a payment: someone saw an apology or was not served.
USER_FACING = (
    "unexpected error handling a message",
    "telegram update failed",
    "pre-checkout check failed",
    "a successful Stars payment was not recorded",
    "stripe webhook failed",
    "stripe payment needs an admin",
)


# ── settings and results ────────────────────────────────────────────────────────────────────


@dataclass
class Settings:
    learners: int = 1000
    mentors: int = 100
    processes: int = 3
    speed: int = 300
    max_connections: int = 100  # Telegram's webhook max_connections: updates in flight at once
    think: float = 0.2  # mean seconds a person takes before each action (0.5–1.5×)
    stripe_share: float = 0.3
    dup_rate: float = 0.1
    decline_rate: float = 0.1
    measure_single: bool = True  # phase 1 on one process, for updates/s 1 vs N
    kill: bool = True
    sigterm: bool = True  # after the kill -9, also restart another process with SIGTERM
    postgres: str = DEFAULT_POSTGRES
    database: str = ""  # default: mentorbot_load_<pid>, so concurrent runs never collide
    timeout: float = 900.0
    seed: int = 1
    logs_dir: str | None = None
    pool_size: int = 10
    verbose: bool = True
    keep_db: bool = False
    flood_control: bool = True  # False: bots run without python-telegram-bot's rate limiter


@dataclass
class PhaseFigures:
    name: str
    processes: int
    front: bool = True  # buying and getting a mentor (compared across process counts)
    seconds: float = 0.0
    updates: int = 0  # webhook posts answered 200 (duplicates included)
    unique: int = 0
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stamps: list[float] = field(default_factory=list)  # when each update was answered
    started: float = 0.0
    t90: float = 0.0  # when 90 % of the phase's learners were through
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the phase
    load: float = 0.0  # the machine's 1-minute load average at the end

    def cpu_line(self) -> str:
        if not self.cpu or not self.updates:
            return ""
        per = {k: v * 1000 / self.updates for k, v in self.cpu.items()}
        used = sum(self.cpu.values()) / self.seconds if self.seconds else 0.0
        return (
            f"CPU per update: bots {per.get('bots', 0):.1f} ms, PostgreSQL "
            f"{per.get('postgres', 0):.1f} ms, driver and fakes {per.get('driver', 0):.1f} ms; "
            f"these used {used:.2f} of the {os.cpu_count()} cores; load average {self.load:.1f}"
        )

    def slowest(self, n: int = 5) -> str:
        """The kinds of update with the highest median latency."""
        medians = sorted(
            ((statistics.median(v), k, len(v)) for k, v in self.by_kind.items()), reverse=True
        )
        return ", ".join(f"{k} {m * 1000:.0f} ms (×{c})" for m, k, c in medians[:n])

    @property
    def rate(self) -> float:
        """Updates/s until 90 % of the learners were through (the tail, where only a few
        stragglers are left, would measure them rather than the bots)."""
        if self.t90 > self.started:
            done = sum(1 for t in self.stamps if t <= self.t90)
            return done / (self.t90 - self.started)
        return self.updates / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        if not self.latencies:
            return f"{self.name}: nothing measured"
        cuts = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else [0] * 99
        return (
            f"{self.name:<38} {self.processes} process(es): {self.rate:6.1f} updates/s "
            f"({self.updates} updates in {self.seconds:.0f} s), "
            f"latency p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms"
        )


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    settings: Settings
    phases: list[PhaseFigures] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def render(self) -> str:
        s = self.settings
        out = [
            f"mentorbot load test: {s.learners} learners, {s.mentors} mentors, "
            f"{s.processes} processes, clock ×{s.speed}, {self.seconds:.0f} s in all",
            "",
            "Throughput (webhook updates answered, duplicates included; bots "
            + ("with" if s.flood_control else "WITHOUT")
            + " their Telegram flood control):",
        ]
        for p in self.phases:
            out.append("  " + p.line())
            if p.cpu_line():
                out.append("      " + p.cpu_line())
        single = next((p for p in self.phases if p.front and p.processes == 1), None)
        multi = next((p for p in self.phases if p.front and p.processes > 1), None)
        if single and multi and single.rate:
            out.append(
                f"  => {single.rate:.1f} updates/s on 1 process, {multi.rate:.1f} on "
                f"{multi.processes}: ratio {multi.rate / single.rate:.2f}× "
                f"({os.cpu_count()} cores, shared with PostgreSQL and this driver)"
            )
        out += ["", "Invariants:"]
        for c in self.checks:
            out.append(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        if self.notes:
            out += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        return "\n".join(out)


class StepFailed(Exception):
    """A simulated person could not go on (an unanswered update, a missing notice)."""


# ── the fake Bot API, indexed per chat ──────────────────────────────────────────────────────


# Which bot process (name-incarnation) is making the Bot API call being handled.
_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="?")


class IndexedTelegram(FakeTelegram):
    """The tests' fake Bot API, with its calls indexed by chat and query id and time-stamped,
    so thousands of simulated people can each wait for their own messages. Each bot process
    calls it under `/via/<name>-<incarnation>/` (its `base_url`), so every call is known by
    the process that made it (`sender`): a notice sent again after a kill -9 can be told from
    any other duplicate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.by_chat: dict[int, list[tuple[float, Call]]] = defaultdict(list)
        self.by_query: dict[str, list[Call]] = defaultdict(list)
        self._chat_events: dict[int, asyncio.Event] = {}
        self._senders: dict[int, str] = {}  # id(call) → the process that made it

    def routes(self, app: web.Application) -> None:
        """The Bot API's route, and the same under each process's own prefix."""
        super().routes(app)
        app.router.add_post("/via/{caller}/bot{token}/{method}", self._endpoint)

    async def _endpoint(self, request: web.Request) -> web.Response:
        _CALLER.set(request.match_info.get("caller", "?"))  # this request's own task
        return await super()._endpoint(request)

    def sender(self, call: Call) -> str:
        return self._senders.get(id(call), "?")

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._senders[id(call)] = _CALLER.get()
        chat = call.params.get("chat_id")
        if isinstance(chat, int):
            self.by_chat[chat].append((time.time(), call))
            event = self._chat_events.get(chat)
            if event is not None:
                event.set()
        for key in ("callback_query_id", "pre_checkout_query_id"):
            if key in call.params:
                self.by_query[str(call.params[key])].append(call)

    def chat(self, chat_id: int) -> list[tuple[float, Call]]:
        return self.by_chat[chat_id]

    async def wait_chat(
        self, chat_id: int, since: int, predicate: Callable[[Call], bool], within: float
    ) -> tuple[int, Call] | None:
        """The first message to `chat_id` at index ≥ `since` matching `predicate`, waiting up
        to `within` seconds for it; None if it never came."""
        deadline = time.monotonic() + within
        calls = self.by_chat[chat_id]
        i = since
        while True:
            while i < len(calls):
                if calls[i][1].status == 200 and predicate(calls[i][1]):
                    return i, calls[i][1]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            event = self._chat_events.setdefault(chat_id, asyncio.Event())
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(left, 5.0))


NOTICES = (
    re.compile(r"New mentorship request #"),
    re.compile(r"Good news: "),
    re.compile(r"Learner\d+ booked session #"),
    re.compile(r"Payment received for order #"),
    re.compile(r"Reminder: session #"),
    re.compile(r"Session #\d+ with .* (has ended|is complete)"),
)


BOOKED_REPLY = re.compile(r"(Booked: session|You already booked session) #(\d+)")


def is_notice(call: Call) -> bool:
    """A message the bot sent on its own (outbox), not as the reply to an update."""
    return any(n.match(text_of(call)) for n in NOTICES)


def text_of(call: Call) -> str:
    return str(call.params.get("text", ""))


def starts(prefix: str) -> Callable[[Call], bool]:
    return lambda c: c.method.lower() == "sendmessage" and text_of(c).startswith(prefix)


def button(call: Call, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    for b in call.buttons:
        if predicate(b):
            return b
    raise StepFailed(f"no such button on {text_of(call)[:60]!r}: {call.buttons}")


def labelled(label: str) -> Callable[[dict[str, Any]], bool]:
    return lambda b: b.get("text", "").startswith(label)


# ── bot processes and the load balancer ─────────────────────────────────────────────────────


# `mentorbot run` with python-telegram-bot's rate limiter switched off (--no-flood-control), to
# see what the processes themselves can do: the fake Bot API enforces no Telegram limits.
UNTHROTTLED = (
    "import sys; import bot.adapters.telegram.service as s; "
    "s.configured_flood_control = lambda *args, **kwargs: None; "
    "from bot.cli import main; sys.exit(main(sys.argv[1:]))"
)


class BotProcess:
    def __init__(
        self,
        name: str,
        port: int,
        configure: Callable[[str], Path],
        logs: Path,
        flood_control: bool = True,
    ) -> None:
        """`configure(tag)` writes the config file for the incarnation `tag` (name-N)."""
        self.name = name
        self.entry = ["-m", "bot"] if flood_control else ["-c", UNTHROTTLED]
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
                [sys.executable, *self.entry, "--config", str(self.config), "run"],
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


@dataclass
class LearnerState:
    index: int
    tg_id: int
    stripe: bool
    request_id: int | None = None
    accepted_at: int = 0  # chat index of the "Good news" notice
    sessions: list[int] = field(default_factory=list)
    slot_starts: dict[int, datetime] = field(default_factory=dict)
    rated: bool = False
    paid_via: str = ""
    failed: str = ""


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
        self.learners: list[LearnerState] = []
        self.mentor_ids = [MENTOR_BASE + j for j in range(settings.mentors)]
        # every update delivered: update_id → answered?
        self.answered: dict[int, bool] = {}
        self.update_kind: dict[int, str] = {}
        self.unanswered: list[str] = []
        self.stripe_outcomes: Counter[str] = Counter()
        self.booked = 0
        self.book_refusals = 0
        self.accept_outcomes: Counter[str] = Counter()
        self.stop_mentors = asyncio.Event()
        self.mentor_seen: dict[int, int] = {}  # mentor → how much of their chat they read
        self.mentor_busy: set[asyncio.Task[None]] = set()  # answers being given
        self.mentor_failures: list[str] = []
        self.kill_info: dict[str, float] = {}
        self.kill_when = 1 << 30
        self.kill_now = asyncio.Event()
        self.killed_wall = 0.0
        self.killed_tag = ""  # the incarnation killed with SIGKILL, e.g. botB-1
        # (chat, text) → copies of an outbox notice sent again after the kill -9 (the killed
        # process had sent them but not recorded it); filled by _check_notices
        self.resent: Counter[tuple[int, str]] = Counter()
        self.sigterm_wall = 0.0
        self.sigterm_info: dict[str, Any] = {}
        self.http: aiohttp.ClientSession
        self.lb: Balancer
        self.db_url = ""
        self.engine: Any = None
        self.workdir = Path(settings.logs_dir or tempfile.mkdtemp(prefix="mentorbot-load-"))

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
        try:
            await self.tg.start()
            await self.stripe.start()
            await self._create_database()
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
        self.stop_mentors.set()
        for p in self.processes:
            with contextlib.suppress(Exception):
                await p.terminate(within=5)
        if self.engine is not None:
            await self.engine.dispose()
        await self._drop_database()
        await self.http.close()
        await self.stripe.stop()
        await self.tg.stop()

    def _admin_dsn(self) -> str:
        url = make_url(self.s.postgres)
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _create_database(self) -> None:
        conn = await asyncpg.connect(self._admin_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.s.database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.s.database}"')
        finally:
            await conn.close()
        self.db_url = (
            make_url(self.s.postgres)
            .set(database=self.s.database)
            .render_as_string(hide_password=False)
        )

    async def _drop_database(self) -> None:
        if not self.db_url or self.s.keep_db:
            return
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self._admin_dsn())
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.s.database}" WITH (FORCE)')
            finally:
                await conn.close()

    def _write_config(self, name: str, port: int, tag: str) -> Path:
        cfg = f"""
[bot]
default_timezone = "UTC"

[storage]
url = "{self.db_url}"
pool_size = {self.s.pool_size}
auto_migrate = true

[payments]
order_ttl_minutes = 1440

[matching]
# Real mentors get 12 h; the simulated ones answer within seconds, so a round is given five
# minutes of real time, however fast the clock runs.
offer_timeout_minutes = {self.s.speed * 5}

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
base_url = "{self.tg.url}/via/{tag}"
mode = "webhook"
webhook_url = "http://127.0.0.1:{port}{WEBHOOK_PATH}"
webhook_secret = "{WEBHOOK_SECRET}"

[stripe]
secret_key = "{STRIPE_KEY}"
webhook_secret = "{STRIPE_WEBHOOK_SECRET}"
api_base = "{self.stripe.url}"
success_url = "https://mentorbot.example/paid"
cancel_url = "https://mentorbot.example/cancelled"
platforms = ["telegram"]
signature_tolerance_seconds = 86400

[clock]
speed = {self.s.speed}
start = "{self.start.isoformat()}"

[logging]
level = "WARNING"
format = "json"
"""
        path = self.workdir / f"{name}.toml"
        path.write_text(cfg, encoding="utf-8")
        return path

    def _free_port(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    async def _start_process(self, p: BotProcess) -> None:
        p.start()
        took = await p.wait_ready(self.http)
        self.log(f"{p.name} ready on :{p.port} ({took:.1f} s)")

    async def _migrate_and_seed(self) -> None:
        first = self.processes[0]
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(first.config),
            "migrate",
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(migrate.communicate(), 120)
        if migrate.returncode != 0:
            raise RuntimeError(f"mentorbot migrate failed: {err.decode()[-2000:]}")
        self.engine = create_engine(self.db_url, pool_size=5)
        now = self.clock.now()
        # Mentors differ as in a real marketplace (topics, ratings, capacity), so matching
        # spreads requests instead of offering every one to the same three.
        base = math.ceil(self.s.learners / self.s.mentors) + 2
        async with async_sessionmaker(self.engine)() as session, session.begin():
            for slug, title, topics, price, stars_price in COURSES:
                session.add(
                    Course(
                        slug=slug,
                        title_en=title,
                        title_zh=title,
                        description_en="Four sessions.",
                        description_zh="四次课。",
                        price_minor=price,
                        currency="USD",
                        sessions_included=SESSIONS_INCLUDED,
                        topics=list(topics),
                        status="active",
                        created_at=now,
                        price_stars=stars_price,
                    )
                )
            for j, tg_id in enumerate(self.mentor_ids):
                user = User(
                    display_name=f"Mentor{tg_id - MENTOR_BASE}",
                    language="en",
                    timezone="UTC",
                    created_at=now,
                )
                session.add(user)
                await session.flush()
                session.add(
                    Identity(
                        user_id=user.id,
                        platform="telegram",
                        external_id=str(tg_id),
                        created_at=now,
                        last_seen_at=now,
                    )
                )
                session.add(UserRole(user_id=user.id, role="learner"))
                ratings = self.rng.randint(0, 25)
                profile = MentorProfile(
                    user_id=user.id,
                    status="approved",
                    languages=["en"],
                    capacity=self.rng.randint(base, 2 * base),
                    bio="load test mentor",
                    rating_count=ratings,
                    rating_sum=round(ratings * self.rng.uniform(3.6, 4.9)),
                    created_at=now,
                )
                session.add(profile)
                await session.flush()
                # Every topic has two mentors in three (a full round and one more).
                topics = {TOPICS[j % len(TOPICS)], TOPICS[(j + 1) % len(TOPICS)]}
                for topic in sorted(topics):
                    session.add(
                        MentorTopic(mentor_id=profile.id, topic=topic, level=self.rng.randint(2, 3))
                    )
                for day in range(7):
                    session.add(
                        AvailabilityWindow(
                            mentor_id=profile.id, weekday=day, start_minute=0, end_minute=1440
                        )
                    )
        self.log(f"seeded {len(COURSES)} courses and {self.s.mentors} mentors")

    # ── the scenario ──────────────────────────────────────────────────────────────────────

    async def _scenario(self) -> None:
        s = self.s
        for i in range(s.processes):
            name = f"bot{chr(ord('A') + i)}"
            port = self._free_port()
            self.processes.append(
                BotProcess(
                    name,
                    port,
                    lambda tag, name=name, port=port: self._write_config(name, port, tag),
                    self.workdir,
                    flood_control=s.flood_control,
                )
            )
        self.lb.members = []
        await self._migrate_and_seed()
        stripe_count = round(s.learners * s.stripe_share)
        chosen = set(self.rng.sample(range(s.learners), stripe_count))
        self.learners = [LearnerState(i, LEARNER_BASE + i, i in chosen) for i in range(s.learners)]
        mentors = [asyncio.create_task(self._mentor(m)) for m in self.mentor_ids]
        vacuum = asyncio.create_task(self._stand_in_for_autovacuum())
        try:
            if s.measure_single and s.processes > 1:
                await self._start_process(self.processes[0])
                self.lb.members = [self.processes[0]]
                half = s.learners // 2
                await self._front_phase("phase 1: buy + get a mentor", self.learners[:half], 1)
                await asyncio.gather(*(self._start_process(p) for p in self.processes[1:]))
                self.lb.members = list(self.processes)
                await self._front_phase(
                    "phase 2: buy + get a mentor", self.learners[half:], s.processes
                )
            else:
                await asyncio.gather(*(self._start_process(p) for p in self.processes))
                self.lb.members = list(self.processes)
                await self._front_phase("buy + get a mentor", self.learners, s.processes)
            await self._back_phase()
            drain = time.monotonic()
            await self._quiesce()
            # The mentors rate the learners after them; what they do then may notify.
            await self._mentors_done()
            await self._quiesce()
            self.log(
                f"mentors done, outbox and due reminders drained in "
                f"{time.monotonic() - drain:.1f} s"
            )
        finally:
            self.stop_mentors.set()
            for task in [*mentors, vacuum]:
                task.cancel()
            await asyncio.gather(*mentors, vacuum, return_exceptions=True)
        await self._check()

    async def _stand_in_for_autovacuum(self, every: float = 20.0) -> None:
        """Do autovacuum's job if the server has it off, as this machine's test PostgreSQL
        does (it is on by default, and must be in production: mentorbot warns at start-up).
        Without it the planner never gets statistics and dead rows are never reclaimed; in
        one run that made each outbox claim take 100 ms instead of 0.2 ms, a slowdown no
        production server would show."""
        dsn = make_url(self.db_url).set(drivername="postgresql")
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            if await conn.fetchval("SHOW autovacuum") == "on":
                return
            self.log(f"autovacuum is off on this server: VACUUM ANALYZE every {every:.0f} s")
            while True:
                await conn.execute("VACUUM (ANALYZE)")
                await asyncio.sleep(every)
        finally:
            await conn.close()

    async def _cpu(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of the bot processes, this database's PostgreSQL backends and
        this process (driver and fakes), by pid."""
        bots = {p.proc.pid: _cpu_seconds(p.proc.pid) for p in self.processes if p.proc}
        async with self.engine.connect() as conn:
            pids = (
                await conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :db"),
                    {"db": self.s.database},
                )
            ).scalars()
            backends = {pid: _cpu_seconds(pid) for pid in pids}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"bots": bots, "postgres": backends, "driver": {0: usage.ru_utime + usage.ru_stime}}

    @staticmethod
    def _cpu_used(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
    ) -> dict[str, float]:
        return {
            kind: sum(v - before[kind].get(pid, 0.0) for pid, v in now.items())
            for kind, now in after.items()
        }

    async def _front_phase(self, name: str, group: list[LearnerState], processes: int) -> None:
        figures = PhaseFigures(name, processes)
        self.report.phases.append(figures)
        self.lb.phase = figures
        cpu = await self._cpu()
        started = figures.started = time.monotonic()
        finished: list[float] = []

        async def one(learner: LearnerState) -> None:
            try:
                await self._learner_front(learner)
            except StepFailed as exc:
                learner.failed = f"front: {exc}"
            finished.append(time.monotonic())

        self.log(f"{name}: {len(group)} learners on {processes} process(es)")
        await asyncio.gather(*(one(learner) for learner in group))
        figures.seconds = time.monotonic() - started
        figures.t90 = sorted(finished)[max(0, math.ceil(len(finished) * 0.9) - 1)]
        self.lb.phase = None
        figures.cpu = self._cpu_used(cpu, await self._cpu())
        figures.load = os.getloadavg()[0]
        self.log(f"{name}: done, {figures.rate:.1f} updates/s; {self._failures(group)}")
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
        group = [learner for learner in self.learners if not learner.failed]

        async def one(learner: LearnerState) -> None:
            try:
                await self._learner_book(learner)
                await self._learner_meet(learner)
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
        figures.cpu = self._cpu_used(cpu, await self._cpu())
        figures.load = os.getloadavg()[0]
        self.log(f"phase 3: done in {figures.seconds:.0f} s; {self._failures(group)}")
        self.log(f"phase 3: slowest updates (median): {figures.slowest()}")

    def _failures(self, group: list[LearnerState]) -> str:
        reasons = Counter(learner.failed[:90] for learner in group if learner.failed)
        if not reasons:
            return "no learner failed"
        return f"{sum(reasons.values())} learners failed: {dict(reasons.most_common(4))}"

    async def _kill_and_restart(self, total: int) -> None:
        if not self.s.kill or self.s.processes < 2:
            return
        victim = self.processes[-1]
        self.kill_when = max(1, int(total * 0.35))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.kill_now.wait(), 120)
        self.log(
            f"kill -9 {victim.name} (pid {victim.proc.pid if victim.proc else '?'}), "
            f"{self.booked} sessions booked so far"
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
        if self.booked < self.kill_when:  # else they booked while it was down: at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kill_now.wait(), 120)
        self.log(f"SIGTERM {other.name}, {self.booked} sessions booked so far")
        stopped_at = time.monotonic()
        self.sigterm_wall = time.time()
        code = await other.terminate()
        stop = time.monotonic() - stopped_at
        other.start()
        await other.wait_ready(self.http)
        self.sigterm_info = {"exit": code, "stop": stop, "down": time.monotonic() - stopped_at}
        self.log(f"{other.name} exited {code} after {stop:.1f} s and is ready again")

    async def _mentors_done(self, within: float = NOTICE_WAIT) -> None:
        """Wait until every mentor has read their whole chat and finished answering (bounded):
        an answer cut off when they are told to stop would look unanswered."""
        deadline = time.monotonic() + within
        while self.mentor_busy or any(
            self.mentor_seen.get(m, 0) < len(self.tg.chat(m)) for m in self.mentor_ids
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                self.report.notes.append(f"mentors still busy {within:.0f} s after the end")
                return
            if self.mentor_busy:
                await asyncio.wait(set(self.mentor_busy), timeout=left)
            else:
                await asyncio.sleep(0.05)  # a new message: the mentor picks it up at once

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

    async def deliver(
        self, update: dict[str, Any], dup: float | None = None, kind: str = "?"
    ) -> None:
        """One Telegram update through the balancer; maybe delivered twice on purpose."""
        body = json.dumps(update).encode()
        update_id = update["update_id"]
        self.answered.setdefault(update_id, False)
        self.update_kind[update_id] = kind

        def headers() -> dict[str, str]:
            return {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}

        rate = self.s.dup_rate if dup is None else dup
        if self.rng.random() >= rate:
            status, _p, _b = await self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind)
            self._expect_ok(status, update_id)
            return
        if self.rng.random() < 0.5:  # at once, to two processes
            first = self.lb.pick()
            results = await asyncio.gather(
                self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind),
                self.lb.post(WEBHOOK_PATH, body, headers, update_id, avoid=first, kind=kind),
            )
            for status, _p, _b in results:
                self._expect_ok(status, update_id)
            return
        status, proc, _b = await self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind)
        self._expect_ok(status, update_id)
        status, _p, _b = await self.lb.post(
            WEBHOOK_PATH, body, headers, update_id, avoid=proc, kind=kind
        )
        self._expect_ok(status, update_id)

    def _expect_ok(self, status: int, update_id: int) -> None:
        if status != 200:
            raise StepFailed(f"update {update_id} answered {status}")

    async def act(
        self,
        who: dict[str, Any],
        update: dict[str, Any],
        expect: Callable[[Call], bool],
        what: str,
        dup: float | None = None,
        wait: float = 10.0,
    ) -> tuple[int, Call]:
        """Deliver an update from `who` and find the reply it must have produced."""
        chat = who["id"]
        if self.s.think:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.s.think)
        before = len(self.tg.chat(chat))
        await self.deliver(update, dup, what)
        # The reply is sent before the webhook is answered, so it is there by now.
        after = len(self.tg.chat(chat))
        found = await self.tg.wait_chat(chat, before, expect, wait)
        if "callback_query" in update:
            qid = update["callback_query"]["id"]
            answered = any(c.method == "answerCallbackQuery" for c in self.tg.by_query[qid])
        else:
            replies = [c for _t, c in self.tg.chat(chat)[before:after] if not is_notice(c)]
            answered = found is not None or bool(replies)
        self.answered[update["update_id"]] = self.answered[update["update_id"]] or answered
        if found is None:
            seen = [text_of(c)[:70] for _t, c in self.tg.chat(chat)[before:]]
            raise StepFailed(f"unexpected answer to {what}: saw {seen}")
        return found

    def user(self, tg_id: int, name: str) -> dict[str, Any]:
        return {"id": tg_id, "is_bot": False, "first_name": name, "language_code": "en"}

    async def press(
        self,
        who: dict[str, Any],
        data: str,
        expect: Callable[[Call], bool],
        what: str,
        dup: float | None = None,
        wait: float = 10.0,
    ) -> tuple[int, Call]:
        return await self.act(who, self.tg.button_update(who, data), expect, what, dup, wait)

    async def say(
        self,
        who: dict[str, Any],
        text_: str,
        expect: Callable[[Call], bool],
        what: str,
        dup: float | None = None,
    ) -> tuple[int, Call]:
        return await self.act(who, self.tg.text_update(who, text_), expect, what, dup)

    # ── learners ──────────────────────────────────────────────────────────────────────────

    async def _learner_front(self, me: LearnerState) -> None:
        who = self.user(me.tg_id, f"Learner{me.index}")
        await self.say(who, "/start", starts("Welcome to mentorbot"), "/start")
        course = self.rng.choice(COURSES)[0]
        _i, order_msg = await self.say(who, f"/buy {course}", starts("Order #"), "/buy")
        order_id = int(re.match(r"Order #(\d+)", text_of(order_msg)).group(1))  # type: ignore[union-attr]
        if me.stripe:
            link = button(order_msg, lambda b: "url" in b)["url"]
            paid_msg = await self._pay_by_card(who, order_id, link.rsplit("/", 1)[1])
        else:
            paid_msg = await self._pay_with_stars(who, order_msg)
        find = button(paid_msg, labelled("Find a mentor"))
        await self.press(who, find["callback_data"], starts("Let's find you a mentor"), "mentor")
        _i, level_msg = await self.say(
            who,
            f"I want to write real Python programs ({me.index})",
            starts("What is your level"),
            "goals",
        )
        _i, times_msg = await self.press(
            who,
            button(level_msg, labelled("beginner"))["callback_data"],
            starts("When do you prefer"),
            "level",
        )
        before = len(self.tg.chat(me.tg_id))
        _i, out = await self.press(
            who,
            button(times_msg, labelled(self.rng.choice(TIMES)))["callback_data"],
            lambda c: starts("Request #")(c) or starts("No mentor is free")(c),
            "times",
        )
        if text_of(out).startswith("No mentor is free"):
            self.report.notes.append(f"learner {me.index} was waitlisted")
        found = await self.tg.wait_chat(me.tg_id, before, starts("Good news:"), 360.0)
        if found is None:
            raise StepFailed("no mentor accepted within 360 s")
        me.accepted_at = found[0]
        me.request_id = int(re.search(r"request #(\d+)", text_of(found[1])).group(1))  # type: ignore[union-attr]

    async def _pay_with_stars(self, who: dict[str, Any], order_msg: Call) -> Call:
        pay = button(order_msg, lambda b: "⭐" in b.get("text", "") and "callback_data" in b)
        _i, invoice = await self.press(
            who,
            pay["callback_data"],
            lambda c: c.method.lower() == "sendinvoice",
            "pay with Stars",
        )
        payload = invoice.params["payload"]
        amount = invoice.params["prices"][0]["amount"]
        pcq = self.tg.pre_checkout_update(who, payload, amount)
        await self.deliver(pcq, kind="pre-checkout")
        qid = pcq["pre_checkout_query"]["id"]
        answers = self.tg.by_query.get(qid, [])
        self.answered[pcq["update_id"]] = bool(answers)
        if not answers or not answers[0].params.get("ok"):
            raise StepFailed(f"pre-checkout not approved: {[a.params for a in answers]}")
        charge = f"stars-charge-{who['id']}-{uuid.uuid4().hex[:8]}"
        _i, paid = await self.act(
            who,
            self.tg.payment_update(who, payload, amount, charge),
            starts("Paid with"),
            "successful_payment",
            dup=0.5,
        )
        return paid

    async def _pay_by_card(self, who: dict[str, Any], order_id: int, session_id: str) -> Call:
        before = len(self.tg.chat(who["id"]))
        session = self.stripe.pay(session_id)
        event = self.stripe.event("checkout.session.completed", session)
        body = json.dumps(event)

        def headers() -> dict[str, str]:
            signature = stripe.WebhookSignature.generate_signature_header(
                body, STRIPE_WEBHOOK_SECRET, int(self.clock.now().timestamp())
            )
            return {"Content-Type": "application/json", "Stripe-Signature": signature}

        posts = [self.lb.post(STRIPE_PATH, body.encode(), headers, event["id"], kind="stripe")]
        if self.rng.random() < 0.5:  # the duplicate at once, to another process
            results = await asyncio.gather(
                posts[0],
                self.lb.post(
                    STRIPE_PATH,
                    body.encode(),
                    headers,
                    event["id"],
                    avoid=self.lb.pick(),
                    kind="stripe",
                ),
            )
        else:
            first = await posts[0]
            results = [
                first,
                await self.lb.post(
                    STRIPE_PATH, body.encode(), headers, event["id"], avoid=first[1], kind="stripe"
                ),
            ]
        for status, _p, answer in results:
            if status != 200:
                raise StepFailed(f"stripe webhook answered {status}: {answer[:200]!r}")
            self.stripe_outcomes[json.loads(answer).get("outcome", "?")] += 1
        found = await self.tg.wait_chat(
            who["id"], before, starts(f"Payment received for order #{order_id}"), NOTICE_WAIT
        )
        if found is None:
            raise StepFailed(f"no card payment confirmation for order {order_id}")
        return found[1]

    async def _learner_book(self, me: LearnerState) -> None:
        who = self.user(me.tg_id, f"Learner{me.index}")
        good_news = self.tg.chat(me.tg_id)[me.accepted_at][1]
        data = button(good_news, labelled("Book a session"))["callback_data"]
        menu: Call | None = None
        for _attempt in range(12):
            if menu is None or not menu.buttons:
                _i, menu = await self.press(
                    who,
                    data,
                    lambda c: (
                        starts("Pick a time")(c) or starts("Your mentor has no free times")(c)
                    ),
                    "book",
                )
            if not menu.buttons:
                raise StepFailed("the mentor had no free times")
            # Not the soonest time: at ×300 it falls inside the minimum lead seconds after it
            # is shown (a person at ×1 would have half an hour), and with flood control on a
            # round trip takes that long.
            slot = self.rng.choice(menu.buttons[1:5] or menu.buttons)
            _i, menu = await self.press(
                who,
                slot["callback_data"],
                lambda c: (
                    bool(BOOKED_REPLY.match(text_of(c)))
                    or starts("That time was just taken")(c)
                    or starts("That time is not free")(c)
                ),
                "pick a slot",
            )
            # A duplicate delivery may answer first ("not free"); the booking is in the window.
            booked = [
                m
                for _t, c in self.tg.chat(me.tg_id)[_i:]
                if (m := BOOKED_REPLY.match(text_of(c))) is not None
            ]
            if booked:
                sid = int(booked[0].group(2))
                me.sessions.append(sid)
                async with self.engine.connect() as conn:
                    me.slot_starts[sid] = (
                        await conn.execute(
                            select(MentorSession.start_at).where(MentorSession.id == sid)
                        )
                    ).scalar_one()
                self.booked += 1
                if self.booked >= self.kill_when:
                    self.kill_now.set()
                return
            self.book_refusals += 1  # taken or gone: the refusal shows the times free now
        raise StepFailed("could not book a slot in 12 attempts")

    async def _learner_meet(self, me: LearnerState) -> None:
        who = self.user(me.tg_id, f"Learner{me.index}")
        sid = me.sessions[0]
        end = me.slot_starts[sid] + timedelta(minutes=DURATION_MINUTES)
        wait = max(0.0, (end - self.clock.now()).total_seconds() / self.s.speed) + NOTICE_WAIT
        found = await self.tg.wait_chat(me.tg_id, 0, starts(f"Session #{sid} with"), wait)
        if found is None or "has ended" not in text_of(found[1]):
            found = await self.tg.wait_chat(
                me.tg_id,
                0,
                lambda c: starts(f"Session #{sid} with")(c) and "has ended" in text_of(c),
                NOTICE_WAIT,
            )
        if found is None:
            raise StepFailed(f"no follow-up for session {sid}")
        await self.press(
            who,
            button(found[1], labelled("Yes, it took place"))["callback_data"],
            lambda c: (
                starts("Thank you!")(c)
                or starts("Noted.")(c)
                # the answer committed, then its process died before replying: the
                # redelivered update is answered as a repeat
                or starts(f"You already answered for session #{sid}")(c)
            ),
            "took place",
        )
        rate_prompt = await self.tg.wait_chat(
            me.tg_id,
            0,
            lambda c: starts(f"Session #{sid} with")(c) and "How was it?" in text_of(c),
            # The mentor confirms first, behind their other messages; with flood control on,
            # a much-offered mentor's chat gets one message a second.
            NOTICE_WAIT * (3 if self.s.flood_control else 1) + 30,
        )
        if rate_prompt is None:
            raise StepFailed(f"no rating prompt for session {sid}")
        stars_ = self.rng.choice([3, 4, 5])
        await self.press(
            who,
            button(rate_prompt[1], lambda b: b.get("text") == "★" * stars_)["callback_data"],
            lambda c: (
                starts(f"Thank you! You rated session #{sid}")(c)
                or starts(f"Your rating of session #{sid}")(c)
            ),
            "rate",
        )
        await self.say(
            who,
            "Clear explanations, thank you!",
            lambda c: starts("Your comment is saved")(c) or starts("I did not understand")(c),
            "comment",
        )
        me.rated = True

    # ── mentors ───────────────────────────────────────────────────────────────────────────

    async def _mentor(self, tg_id: int) -> None:
        """A mentor reads their chat and answers what needs an answer, a few at a time (one
        can tap Accept on several messages in a row)."""
        who = self.user(tg_id, f"Mentor{tg_id - MENTOR_BASE}")
        seen = 0
        calls = self.tg.chat(tg_id)
        hands = asyncio.Semaphore(3)
        busy: set[asyncio.Task[None]] = set()
        full = [False]  # told "at your capacity": declines from then on

        async def answer(call: Call) -> None:
            body = text_of(call)
            try:
                async with hands:
                    if body.startswith("New mentorship request #"):
                        await self._answer_offer(who, call, full)
                    elif body.startswith("Session #") and "has ended" in body:
                        await self._confirm_session(who, call)
            except StepFailed as exc:
                self.mentor_failures.append(f"mentor {tg_id}: {exc}")
            except Exception as exc:  # a bug here must show, not silently stall offers
                self.mentor_failures.append(f"mentor {tg_id} crashed: {exc!r}")

        try:
            while not self.stop_mentors.is_set():
                if seen >= len(calls):
                    await self.tg.wait_chat(tg_id, seen, lambda c: True, 1.0)
                    continue
                task = asyncio.create_task(answer(calls[seen][1]))
                for tasks in (busy, self.mentor_busy):
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                seen += 1
                self.mentor_seen[tg_id] = seen
        finally:
            for task in list(busy):
                task.cancel()
            await asyncio.gather(*busy, return_exceptions=True)

    async def _answer_offer(self, who: dict[str, Any], offer: Call, full: list[bool]) -> None:
        replies = (
            "You are now mentoring",
            "You declined",
            "Request #",
            "You already accepted",
            "You are at your capacity",
        )

        def a_reply(c: Call) -> bool:
            return c.method.lower() == "sendmessage" and text_of(c).startswith(replies)

        decline = full[0] or self.rng.random() < self.s.decline_rate
        label = "Decline" if decline else "Accept"
        _i, reply = await self.press(
            who, button(offer, labelled(label))["callback_data"], a_reply, label.lower()
        )
        self.accept_outcomes[re.sub(r"#\d+", "#N", " ".join(text_of(reply).split()[:4]))] += 1
        if text_of(reply).startswith("You are at your capacity"):
            full[0] = True  # as a person would: decline, so the request moves on
            _i, reply = await self.press(
                who, button(offer, labelled("Decline"))["callback_data"], a_reply, "decline"
            )
            self.accept_outcomes["(full) " + " ".join(text_of(reply).split()[:3])] += 1

    async def _confirm_session(self, who: dict[str, Any], followup: Call) -> None:
        sid = int(re.match(r"Session #(\d+)", text_of(followup)).group(1))  # type: ignore[union-attr]
        _i, reply = await self.press(
            who,
            button(followup, labelled("Yes, completed"))["callback_data"],
            lambda c: (
                starts(f"Session #{sid} is marked completed")(c)
                or starts("You already answered")(c)
            ),
            "completed",
        )
        if not reply.buttons:
            return
        await self.press(
            who,
            button(reply, lambda b: b.get("text") == "★★★★")["callback_data"],
            lambda c: (
                starts(f"Thank you! You rated session #{sid}")(c)
                or starts(f"Your rating of session #{sid}")(c)
            ),
            "rate learner",
        )
        await self.say(who, "/skip", lambda c: starts("Skipped")(c), "skip comment")

    # ── the checks ────────────────────────────────────────────────────────────────────────

    async def _check(self) -> None:
        r = self.report
        learners = self.learners
        failed = [learner for learner in learners if learner.failed]
        r.checks.append(
            Check(
                "every learner finished the journey",
                not failed and all(learner.rated for learner in learners),
                f"{sum(learner.rated for learner in learners)}/{len(learners)} bought, met and "
                f"rated"
                + (
                    f"; first failures: {[learner.failed for learner in failed[:3]]}"
                    if failed
                    else ""
                ),
            )
        )
        if self.s.kill and self.s.processes > 1:
            planned = "a kill -9 and restart" + (", a SIGTERM restart" if self.s.sigterm else "")
            graceful = not self.s.sigterm or self.sigterm_info.get("exit") == 0
            r.checks.append(
                Check(
                    "faults injected as planned",
                    bool(self.kill_info) and graceful,
                    f"planned: {planned}; done: kill -9 {'yes' if self.kill_info else 'NO'}"
                    + (
                        f", SIGTERM exit status {self.sigterm_info.get('exit', 'not sent')}"
                        if self.s.sigterm
                        else ""
                    ),
                )
            )
        r.checks.append(
            Check(
                "every mentor's answer got its reply",
                not self.mentor_failures,
                f"{len(self.mentor_failures)} mentor steps failed"
                + (f", e.g. {self.mentor_failures[:3]}" if self.mentor_failures else ""),
            )
        )
        await self._check_payments()
        await self._check_bookings()
        await self._check_notices()
        await self._check_reminders()
        unanswered = [uid for uid, ok in self.answered.items() if not ok]
        self.unanswered += [
            f"{self.update_kind.get(uid, '?')} (update {uid})" for uid in unanswered
        ]
        r.checks.append(
            Check(
                "every update answered",
                not unanswered and not self.unanswered,
                f"{len(self.answered) - len(unanswered)}/{len(self.answered)} distinct updates "
                f"answered" + (f"; e.g. {self.unanswered[:2]}" if self.unanswered else ""),
            )
        )
        await self._check_errors()

    async def _check_notices(self) -> None:
        """Every outbox row (notices, reminders, follow-ups, replies kept for later) reached its
        chat, and exactly once: the messages the fake got for a chat with a row's text number
        the rows with that text. The one exception is delivery's at-least-once across a crash:
        a process killed after sending a batch but before recording it leaves the rows claimed,
        and another sends them again when the lease runs out. A copy beyond the rows counts as
        that only if the killed process itself sent a copy and a row with that text was
        claimed more than once; anything else is a bug."""
        chat_of_user = dict(
            await self._rows(
                select(Identity.user_id, Identity.external_id).where(
                    Identity.platform == "telegram"
                )
            )
        )
        rows = await self._rows(
            select(OutboxMessage.user_id, OutboxMessage.body, OutboxMessage.attempts)
        )
        expected: Counter[tuple[int, str]] = Counter()
        retaken: Counter[tuple[int, str]] = Counter()
        for user_id, body, attempts in rows:
            key = (int(chat_of_user[user_id]), body["text"])
            expected[key] += 1
            if attempts > 1:
                retaken[key] += 1
        seen: Counter[tuple[int, str]] = Counter()
        by_killed: Counter[tuple[int, str]] = Counter()
        for chat in {chat for chat, _text in expected}:
            for _t, c in self.tg.chat(chat):
                key = (chat, text_of(c))
                if c.status == 200 and c.method.lower() == "sendmessage" and key in expected:
                    seen[key] += 1
                    if self.killed_tag and self.tg.sender(c) == self.killed_tag:
                        by_killed[key] += 1
        missing: list[str] = []
        doubled: list[str] = []
        for key, n in expected.items():
            got = seen[key]
            if got < n:
                missing.append(f"{key[1][:50]!r} to {key[0]}: {got} of {n}")
            elif got > n:
                if got - n <= min(by_killed[key], retaken[key]):
                    self.resent[key] = got - n
                else:
                    doubled.append(
                        f"{key[1][:50]!r} to {key[0]}: {got} for {n} row(s), "
                        f"{by_killed[key]} by {self.killed_tag or 'a killed process'}, "
                        f"{retaken[key]} claimed twice"
                    )
        self.report.checks.append(
            Check(
                "every notice delivered exactly once (but what the killed process had sent "
                "and not recorded)",
                not missing and not doubled,
                f"{sum(expected.values())} outbox rows; not delivered: {len(missing)}; sent "
                f"again after the kill -9: {sum(self.resent.values())}; other duplicates: "
                f"{len(doubled)}"
                + (f"; e.g. {(missing + doubled)[:3]}" if missing or doubled else ""),
            )
        )

    async def _scalar(self, stmt: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def _rows(self, stmt: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def _check_payments(self) -> None:
        r = self.report
        learner_ids = [str(learner.tg_id) for learner in self.learners]
        paid_per_user = await self._rows(
            select(Identity.external_id, func.count(Order.id))
            .join(Order, Order.user_id == Identity.user_id)
            .where(Identity.platform == "telegram")
            .where(Identity.external_id.in_(learner_ids))
            .where(Order.status == "paid")
            .group_by(Identity.external_id)
        )
        counts = {ext: n for ext, n in paid_per_user}
        wrong = [ext for ext in learner_ids if counts.get(ext, 0) != 1]
        enrollments_per_order = await self._rows(
            select(Enrollment.order_id, func.count()).group_by(Enrollment.order_id)
        )
        doubled = [oid for oid, n in enrollments_per_order if n != 1]
        unpaid_enrolled = await self._scalar(
            select(func.count())
            .select_from(Enrollment)
            .join(Order, Order.id == Enrollment.order_id)
            .where(Order.status != "paid")
        )
        by_provider = dict(
            await self._rows(
                select(Order.provider, func.count())
                .where(Order.status == "paid")
                .group_by(Order.provider)
            )
        )
        confirmations = Counter()
        for learner in self.learners:
            confirmations[learner.tg_id] = sum(
                1
                for _t, c in self.tg.chat(learner.tg_id)
                if c.status == 200
                and (
                    text_of(c).startswith("Paid with")
                    or text_of(c).startswith("Payment received for order")
                )
            )
        bad_confirm = [tg for tg, n in confirmations.items() if n != 1]
        star_refunds = len(self.tg.calls_of("refundStarPayment"))
        card_refunds = len(self.stripe.refunds)
        events = await self._rows(
            select(PaymentEvent.event_id, func.count()).group_by(PaymentEvent.event_id)
        )
        doubled_events = [e for e, n in events if n != 1]
        expected_cards = sum(1 for learner in self.learners if learner.stripe)
        ok = (
            not wrong
            and not doubled
            and not unpaid_enrolled
            and not bad_confirm
            and not star_refunds
            and not card_refunds
            and not doubled_events
            and by_provider.get("stripe", 0) == expected_cards
            and by_provider.get("stars", 0) == len(self.learners) - expected_cards
        )
        r.checks.append(
            Check(
                "every payment fulfilled exactly once",
                ok,
                f"{by_provider.get('stars', 0)} Stars + {by_provider.get('stripe', 0)} card "
                f"orders paid for {len(self.learners)} learners; learners without exactly one "
                f"paid order: {len(wrong)}; orders with ≠1 enrollment: {len(doubled)}; "
                f"enrollments of unpaid orders: {unpaid_enrolled}; learners without exactly one "
                f"confirmation: {len(bad_confirm)}; refunds: {star_refunds} Stars, "
                f"{card_refunds} card; Stripe events recorded twice: {len(doubled_events)}; "
                f"Stripe webhook outcomes {dict(self.stripe_outcomes)}",
            )
        )

    async def _check_bookings(self) -> None:
        r = self.report
        overlap = text(
            """
            SELECT count(*) FROM sessions a JOIN sessions b
              ON a.id < b.id AND a.status <> 'cancelled' AND b.status <> 'cancelled'
             AND (a.mentor_id = b.mentor_id OR a.learner_id = b.learner_id)
             AND a.start_at < b.start_at + make_interval(mins => b.duration_minutes)
             AND b.start_at < a.start_at + make_interval(mins => a.duration_minutes)
            """
        )
        async with self.engine.connect() as conn:
            overlaps = (await conn.execute(overlap)).scalar_one()
            credits = (
                await conn.execute(
                    text(
                        """
                        SELECT count(*) FROM enrollments e
                         WHERE e.credits_remaining + (SELECT count(*) FROM sessions s
                               WHERE s.enrollment_id = e.id AND s.status <> 'cancelled')
                               <> :included
                        """
                    ),
                    {"included": SESSIONS_INCLUDED},
                )
            ).scalar_one()
        per_status = dict(
            await self._rows(
                select(MentorSession.status, func.count()).group_by(MentorSession.status)
            )
        )
        sessions = sum(per_status.values())
        extra = sessions - len([learner for learner in self.learners if learner.sessions])
        requests = dict(
            await self._rows(
                select(MentorshipRequest.status, func.count()).group_by(MentorshipRequest.status)
            )
        )
        r.checks.append(
            Check(
                "no double booking",
                overlaps == 0 and credits == 0,
                f"{sessions} sessions {per_status}; overlapping pairs (same mentor or learner): "
                f"{overlaps}; enrollments whose credits don't add up: {credits}; "
                f"slot refusals retried: {self.book_refusals}; requests {requests}",
            )
        )
        if extra > 0:
            r.notes.append(
                f"{extra} session(s) more than the bookings learners were told about: booked, "
                "but the reply was lost (a process killed or stopped before answering)"
            )
        offers = sorted(
            n
            for (n,) in await self._rows(
                select(func.count()).select_from(RequestOffer).group_by(RequestOffer.mentor_id)
            )
        )
        if offers:
            r.notes.append(
                f"offers per mentor: median {statistics.median(offers):.0f}, max {offers[-1]}; "
                f"{self.s.mentors - len(offers)} of {self.s.mentors} mentors were offered nothing"
            )
        ratings = await self._scalar(select(func.count()).select_from(Rating))
        r.notes.append(
            f"{ratings} ratings stored; mentor answers to offers: {dict(self.accept_outcomes)}"
        )

    async def _check_reminders(self) -> None:
        r = self.report
        now = self.clock.now()
        rows = await self._rows(
            select(
                Reminder.id,
                Reminder.session_id,
                Reminder.kind,
                Reminder.due_at,
                Reminder.sent_at,
                Reminder.skipped_at,
                MentorSession.status,
                MentorSession.learner_id,
                MentorSession.mentor_id,
            ).join(MentorSession, MentorSession.id == Reminder.session_id)
        )
        chat_of_user = dict(
            await self._rows(
                select(Identity.user_id, Identity.external_id).where(
                    Identity.platform == "telegram"
                )
            )
        )
        mentor_user = dict(await self._rows(select(MentorProfile.id, MentorProfile.user_id)))
        due = [row for row in rows if row.due_at <= now]
        not_sent = [row for row in due if row.sent_at is None and row.status != "cancelled"]
        expected: Counter[tuple[int, int, str]] = Counter()
        for row in due:
            if row.sent_at is None:
                continue
            kind = "followup" if row.kind == "followup" else "before"
            for user_id in (row.learner_id, mentor_user[row.mentor_id]):
                expected[(int(chat_of_user[user_id]), row.session_id, kind)] += 1
        seen: Counter[tuple[int, int, str]] = Counter()
        sent_at: dict[tuple[int, int, str], list[float]] = defaultdict(list)
        lateness: list[float] = []
        due_at = {(row.session_id, row.kind): row.due_at for row in due}
        chats = {chat for chat, _sid, _k in expected}
        reminder = re.compile(r"Reminder: session #(\d+) ")
        ended = re.compile(r"Session #(\d+) with .* has ended\.")
        for chat in chats:
            for stamp, c in self.tg.chat(chat):
                if c.status != 200 or c.method.lower() != "sendmessage":
                    continue
                body = text_of(c)
                m = reminder.match(body)
                if m:
                    seen[(chat, int(m.group(1)), "before")] += 1
                    sent_at[(chat, int(m.group(1)), "before")].append(stamp)
                    continue
                m = ended.match(body)
                if m:
                    sid = int(m.group(1))
                    seen[(chat, sid, "followup")] += 1
                    sent_at[(chat, sid, "followup")].append(stamp)
                    if (sid, "followup") in due_at:
                        sim = (
                            self.start
                            + (datetime.fromtimestamp(stamp, UTC) - self.start) * self.s.speed
                        )
                        lateness.append(
                            (sim - due_at[(sid, "followup")]).total_seconds() / self.s.speed
                        )
        # A copy the killed process had sent and not recorded, sent again (see _check_notices).
        resent = 0
        for (chat, body), n in self.resent.items():
            m = reminder.match(body) or ended.match(body)
            if m:
                kind = "before" if m.re is reminder else "followup"
                seen[(chat, int(m.group(1)), kind)] -= n
                resent += n
        wrong = [
            (k, expected[k], seen[k]) for k in set(expected) | set(seen) if expected[k] != seen[k]
        ]
        before_sent = sum(1 for row in due if row.sent_at is not None and row.kind != "followup")
        followups_sent = sum(1 for row in due if row.sent_at is not None and row.kind == "followup")
        skipped_late = [
            row for row in due if row.skipped_at is not None and row.status != "cancelled"
        ]
        r.checks.append(
            Check(
                "every due reminder sent exactly once",
                not not_sent and not wrong and not skipped_late,
                f"{len(due)} due ({before_sent} before-session reminders and {followups_sent} "
                f"follow-ups sent, to both sides); due but unsent: {len(not_sent)}; skipped as "
                f"too late: {len(skipped_late)}; (chat, session) pairs whose messages ≠ rows: "
                f"{len(wrong)}" + (f", e.g. {wrong[:3]}" if wrong else "") + f"; copies sent "
                f"again after the kill -9 (not counted): {resent}",
            )
        )
        extra = [k for k in wrong if k[2] > k[1]]
        if extra and self.killed_wall:
            t = self.killed_wall
            spans = [
                f"{min(sent_at[k[0]]) - t:+.1f}…{max(sent_at[k[0]]) - t:+.1f} s" for k in extra[:5]
            ]
            r.notes.append(
                f"{len(extra)} (chat, session) pairs got a reminder or follow-up more often than "
                f"it was claimed; first and last copy relative to the kill -9: {spans}"
            )
        if lateness:
            cuts = (
                statistics.quantiles(lateness, n=100) if len(lateness) > 1 else [lateness[0]] * 99
            )
            r.notes.append(
                f"follow-up lateness at the fake Bot API (wall clock): p50 {cuts[49]:.2f} s, "
                f"p99 {cuts[98]:.2f} s, max {max(lateness):.2f} s "
                f"(×{self.s.speed}: p99 = {cuts[98] * self.s.speed / 60:.1f} simulated minutes)"
            )

    async def _check_errors(self) -> None:
        r = self.report
        errors: list[str] = []
        warnings: Counter[str] = Counter()
        unparsed: list[str] = []
        metrics_errors = 0.0
        handle_errors = 0.0
        error_updates = 0.0
        for p in self.processes:
            if p.up:
                with contextlib.suppress(Exception):
                    m = await p.metrics(self.http)
                    metrics_errors += m.get("mentorbot_errors_total", 0.0)
                    handle_errors += m.get("mentorbot_errors_total{where=handle}", 0.0)
                    error_updates += sum(
                        v
                        for k, v in m.items()
                        if k.startswith("mentorbot_updates_total{") and "outcome=error" in k
                    )
        exits = {}
        for p in self.processes:
            started = time.monotonic()
            exits[p.name] = await p.terminate()
            self.log(f"{p.name} stopped by SIGTERM in {time.monotonic() - started:.1f} s")
        background: Counter[str] = Counter()
        for p in self.processes:
            for path in p.log_files:
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        unparsed.append(f"{path.name}: {line[:160]}")
                        continue
                    level = entry.get("level", "")
                    msg = str(entry.get("msg", "?"))
                    if level in ("error", "critical"):
                        if msg.startswith(USER_FACING):
                            errors.append(f"{path.name}: {msg} {entry.get('exc', '')[-300:]}")
                        else:
                            background[f"{msg[:70]} ({self._when(entry.get('ts', ''))})"] += 1
                    elif level == "warning":
                        warnings[re.sub(r"\d", "N", msg)[:120]] += 1
        sorry = sum(
            1
            for c in self.tg.calls
            if c.method.lower() in ("sendmessage", "answercallbackquery")
            and SORRY in str(c.params.get("text", ""))
        )
        r.checks.append(
            Check(
                "no error a user would have seen",
                not errors and not sorry and not handle_errors and not error_updates,
                f"ERROR log lines about an update or a payment: {len(errors)}; apologies sent "
                f"to users: {sorry}; mentorbot_errors_total{{where=handle}} (processes alive "
                f"at the end): {handle_errors:.0f}; updates with outcome=error: "
                f"{error_updates:.0f}" + (f"; e.g. {errors[:3]}" if errors else ""),
            )
        )
        r.checks.append(
            Check(
                "no other ERROR logged",
                not background,
                f"background ERROR lines (deliveries, sweeps; retried later): "
                f"{dict(background.most_common(6)) or 'none'}; mentorbot_errors_total, all "
                f"places: {metrics_errors:.0f}",
            )
        )
        if warnings:
            r.notes.append(f"WARNING log lines: {dict(warnings.most_common(6))}")
        if unparsed:
            r.notes.append(f"{len(unparsed)} non-JSON stderr lines, e.g. {unparsed[:3]}")
        r.notes.append(f"SIGTERM exit statuses: {exits} (None: still running after 40 s, killed)")
        if self.kill_info:
            r.notes.append(
                f"kill -9 of {self.processes[-1].name}: down {self.kill_info['down']:.1f} s "
                f"(restart to /readyz {self.kill_info['start']:.1f} s); load-balancer failovers "
                f"in the whole run: {self.lb.failovers}"
            )
        if self.sigterm_info:
            r.notes.append(
                f"SIGTERM restart of {self.processes[0].name}: exit status "
                f"{self.sigterm_info['exit']} after {self.sigterm_info['stop']:.1f} s, ready "
                f"again after {self.sigterm_info['down']:.1f} s"
            )
        r.notes.append(f"process logs and configs: {self.workdir}")

    def _when(self, ts: str) -> str:
        """Where a log line falls relative to the kill -9 and the SIGTERM restart."""
        try:
            at = datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return "?"
        marks = [("kill -9", self.killed_wall), ("SIGTERM", self.sigterm_wall)]
        near = [(at - t, name) for name, t in marks if t and -2 < at - t < 120]
        if not near:
            return "not near a restart"
        offset, name = min(near, key=lambda m: abs(m[0]))
        return f"{offset:+.1f} s from the {name}"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(settings: Settings) -> Report:
    return await LoadRun(settings).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--mentors", type=int, default=100)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--speed", type=int, default=300, help="[clock] speed of the bots")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=100,
        help="updates in flight at once, like Telegram's webhook max_connections (1-100)",
    )
    parser.add_argument(
        "--think", type=float, default=0.2, help="mean seconds before each action of a person"
    )
    parser.add_argument("--stripe-share", type=float, default=0.3)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--no-kill", action="store_true", help="no kill -9 (nor SIGTERM) restart")
    parser.add_argument("--no-sigterm", action="store_true", help="no graceful restart")
    parser.add_argument("--no-single", action="store_true", help="skip the 1-process phase")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MENTORBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL URL on the server to use; the database is --database",
    )
    parser.add_argument(
        "--database",
        default="",
        help="database to create and drop (default: mentorbot_load_<pid>)",
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", help="directory for process logs (default: a temp dir)")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for a look")
    parser.add_argument(
        "--no-flood-control",
        action="store_true",
        help="run the bots without their Telegram rate limiter (30 msg/s, 1 msg/s per chat), "
        "to measure the processes rather than the limiter",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        learners=args.learners,
        mentors=args.mentors,
        processes=args.processes,
        speed=args.speed,
        max_connections=args.max_connections,
        think=args.think,
        stripe_share=args.stripe_share,
        dup_rate=args.dup_rate,
        kill=not args.no_kill,
        sigterm=not args.no_sigterm,
        measure_single=not args.no_single,
        postgres=args.postgres,
        database=args.database,
        timeout=args.timeout,
        seed=args.seed,
        logs_dir=args.keep_logs,
        keep_db=args.keep_db,
        flood_control=not args.no_flood_control,
    )
    # The fake Bot API logs every connection a killed bot process drops mid-request.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    report = asyncio.run(run_load(settings))
    print()
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
