"""The load and fault test, small: bench/load's scenario with tens of people on two processes.

Two `mentorbot run` OS processes share a fresh PostgreSQL database, with Telegram in webhook
mode against the fake Bot API and Stripe against the fake Stripe API (both in this process) and
an accelerated clock (`[clock] speed`, one shared `[clock] start`). Learners buy (Telegram Stars
or signed Stripe webhooks, with duplicate deliveries), ask for a mentor, get accepted, book,
are reminded, meet and rate; updates are spread round-robin over the processes, some delivered
twice, and one process is killed with SIGKILL part-way through and started again, the other
restarted gracefully (SIGTERM). The invariants are those the bench prints: everyone finished,
both faults were injected, every payment fulfilled exactly once, no double booking, every
outbox notice delivered exactly once (a copy the killed process had sent but not recorded, sent
again by the other, is the one exception), every due reminder sent exactly once, every update
answered and no ERROR logged.

Nothing sleeps on the wall clock to wait for reminders: the simulated people wait on the fake's
recorded calls, each wait bounded, and the whole run is capped. It takes 50-85 s on a 2-core
machine, most of it fixed: sessions are booked at least 150 simulated minutes ahead (15 s at
×600), and notices the killed process had claimed go out when their 60 s lease runs out. The
processes are stopped and the database dropped even when the run fails; the report (with the
directory of the processes' logs) is the assertion message.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from bench.load import Settings, run_load
from tests.support import POSTGRES_ENV

pytestmark = pytest.mark.skipif(
    not os.environ.get(POSTGRES_ENV),
    reason=f"PostgreSQL not configured: set {POSTGRES_ENV} to run the multi-process load test",
)


async def test_two_processes_under_load_and_a_kill_lose_and_double_nothing() -> None:
    # The fake Bot API logs each request a killed bot process drops half-way; that is expected.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    settings = Settings(
        learners=16,
        mentors=6,
        processes=2,
        speed=600,
        max_connections=40,
        think=0.2,
        measure_single=False,
        kill=True,
        postgres=os.environ[POSTGRES_ENV],
        database=f"mentorbot_load_{uuid.uuid4().hex[:12]}",
        # Four times an idle run, for a busy machine; each wait inside is bounded as well.
        timeout=300,
        verbose=False,
    )
    report = await run_load(settings)
    assert report.ok, report.render()
