"""What a load run was asked to do (`Settings`) and what it found (`Report`): the figures of each
phase and the invariant checks, rendered as the text the bench prints."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from bench.timing import cuts

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


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
        p50, p99 = cuts(self.latencies)
        return (
            f"{self.name:<38} {self.processes} process(es): {self.rate:6.1f} updates/s "
            f"({self.updates} updates in {self.seconds:.0f} s), "
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
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
