"""The clock port: the only place the core learns what time it is.

Tests move a `FakeClock` instead of sleeping, so reminders and deadlines are checked at exact
instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...

    def wall_instant(self, instant: datetime) -> datetime:
        """The real (wall-clock) moment at which this clock will read `instant`, for arming
        real timers."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall_instant(self, instant: datetime) -> datetime:
        return instant


class ScaledClock:
    """Time running `speed` times faster than the wall clock, from `start`.

    For load tests (`[clock] speed`): an hour of reminders passes in seconds, through the same
    timers and claims as in production.
    """

    def __init__(
        self, speed: float, start: datetime | None = None, wall_origin: datetime | None = None
    ) -> None:
        """The clock reads `start` at the real instant `wall_origin` (default: now). Processes
        given the same pair agree on the time (`[clock] start` sets both)."""
        self.speed = speed
        self._wall_origin = wall_origin or datetime.now(UTC)
        self._origin = start or self._wall_origin

    def now(self) -> datetime:
        return self._origin + (datetime.now(UTC) - self._wall_origin) * self.speed

    def wall_instant(self, instant: datetime) -> datetime:
        return self._wall_origin + (instant - self._origin) / self.speed


def real_span(clock: Clock, real: timedelta) -> timedelta:
    """How far `clock` moves while `real` wall-clock time passes. A lease bounds real work (a
    send, a process's life), so under `[clock] speed` it must stretch with the clock."""
    return real * getattr(clock, "speed", 1)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def wall_instant(self, instant: datetime) -> datetime:
        return instant

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)
