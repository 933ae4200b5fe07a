"""The load and fault test, small: bench/load.py's scenario with tens of people on two processes.

Two `mentorbot run` OS processes share a fresh PostgreSQL database, with Telegram in webhook
mode against the fake Bot API and Stripe against the fake Stripe API (both in this process) and
an accelerated clock (`[clock] speed`, one shared `[clock] start`). Learners buy (Telegram Stars
or signed Stripe webhooks, with duplicate deliveries), ask for a mentor, get accepted, book,
are reminded, meet and rate; updates are spread round-robin over the processes, some delivered
twice, and one process is killed with SIGKILL part-way through and started again. The
invariants are those the bench prints: every payment fulfilled exactly once, no double booking,
every due reminder sent exactly once, every update answered, every notice delivered once and no
error a user would have seen.

Nothing sleeps on the wall clock to wait for reminders: the simulated people wait on the fake's
recorded calls, each wait bounded, and the whole run is capped. The processes are stopped and
the database dropped even when the run fails.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from bench.load import Settings, run_load
from tests.conftest import POSTGRES_ENV

LOAD_ENV = "MENTORBOT_TEST_LOAD"
pytestmark = [
    pytest.mark.skipif(
        not os.environ.get(POSTGRES_ENV),
        reason=f"PostgreSQL not configured: set {POSTGRES_ENV} to run the multi-process load test",
    ),
    pytest.mark.skipif(
        not os.environ.get(LOAD_ENV),
        reason=f"set {LOAD_ENV}=1 to run the 2-minute multi-process load and kill -9 test "
        "(not yet reliable enough to gate CI; see issue 8)",
    ),
]


async def test_two_processes_under_load_and_a_kill_lose_and_double_nothing() -> None:
    # The fake Bot API logs each request a killed bot process drops half-way; that is expected.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    settings = Settings(
        learners=24,
        mentors=6,
        processes=2,
        speed=300,
        max_connections=40,
        think=0.2,
        measure_single=False,
        kill=True,
        postgres=os.environ[POSTGRES_ENV],
        database=f"mentorbot_load_{uuid.uuid4().hex[:12]}",
        timeout=150,
        verbose=False,
    )
    report = await run_load(settings)
    assert report.ok, report.render()
