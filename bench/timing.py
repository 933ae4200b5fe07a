"""What the benches measure with: a timing loop (wall and CPU time), percentiles, a stopwatch
and the argument parser every script starts from."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field


def cuts(samples: Sequence[float]) -> tuple[float, float]:
    """The p50 and p99 of `samples` (a single sample is both)."""
    if len(samples) < 2:
        only = samples[0] if samples else 0.0
        return only, only
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


@dataclass
class Times:
    """Wall times and this process's CPU times (its threads too: SQLite's work, not a
    PostgreSQL server's), in milliseconds, one per call."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


@contextlib.contextmanager
def _one(times: Times) -> Iterator[None]:
    c0, t0 = time.process_time(), time.perf_counter()
    yield
    times.wall.append((time.perf_counter() - t0) * 1000)
    times.cpu.append((time.process_time() - c0) * 1000)


async def timed(call: Callable[[], Awaitable[object]], n: int) -> Times:
    """`call()` awaited `n` times, each timed."""
    times = Times()
    for _ in range(n):
        with _one(times):
            await call()
    return times


def timed_sync(call: Callable[[], object], n: int) -> Times:
    """`call()` run `n` times, each timed."""
    times = Times()
    for _ in range(n):
        with _one(times):
            call()
    return times


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as took:` … `took()` is the seconds since the block began (and, after
    it, the seconds it lasted)."""
    t0 = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - t0
    end.append(time.perf_counter())


def parser(doc: str | None, **options: str) -> argparse.ArgumentParser:
    """The script's argument parser, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0], **options)
