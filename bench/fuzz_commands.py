"""Hostile input against every command of the command table, longer than the test runs it:
prints figures, asserts nothing.

    python bench/fuzz_commands.py [--examples 50] [--seed 0] [--url DATABASE_URL]

The same marketplace, strategies and judgement as tests/test_hostile_input.py: the demo
catalogue with alice matched to ada and one session booked; for each role (learner alice,
mentor ada, admin) every command it may run gets `--examples` hostile lines (ids past 32 and
64 bits, NUL and control characters, 300- and 10,000-character tokens, NaN, inf, 1e20,
superscript and full-width digits, RTL and zero-width characters, year-9999 and year-0 dates,
a DST gap, unbalanced quotes, mass mentions, markup, forged slot stamps). Each line is judged:
an answer, no apology, traceback or raw status, no 10,000-character echo, and a refusal that
left every table as it was. Prints commands × examples, the outcomes, every failure, and the
rate. `--url` runs it on PostgreSQL (a fresh schema, dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.runtime.bootstrap import payment_providers
from bot.runtime.demo_data import seed_demo
from storage.db import create_engine
from storage.migrate import upgrade
from tests.support import (
    START,
    Database,
    attempt,
    booked_pair,
    command_paths,
    harness_for,
    hostile_line,
    judged,
    make_config,
)

PLAYERS = {"learner": "alice", "mentor": "ada", "admin": "admin"}


def lines_for(words: tuple[str, ...], args: tuple[Any, ...], n: int, at: int) -> list[str]:
    """`n` hostile lines for one command, from Hypothesis's generator (seeded, no shrinking)."""
    lines: list[str] = []

    @seed(at)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        lines.append(hostile_line(data.draw, words, args))

    draw()
    return lines


async def run(examples: int, at: int, url: str | None) -> None:
    schema = None
    if url:
        schema = f"fuzz_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        database = Database(url, schema)
    else:
        database = Database(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/fuzz.db")
    engine = database.engine()
    try:
        await upgrade(engine)
        config = make_config()
        app = Marketplace(config, engine, FakeClock(START), payment_providers(config))
        h = harness_for(app)
        await seed_demo(app)
        await booked_pair(h)
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        commands = 0
        rows = None
        started = time.perf_counter()
        for role, who in PLAYERS.items():
            for words, args, needs in command_paths():
                if needs not in (None, role):
                    continue
                commands += 1
                for line in lines_for(words, args, examples, at):
                    sent = await attempt(h, who, line, rows)
                    rows = sent.rows
                    outcomes[sent.outcome] += 1
                    wrong = judged(sent)
                    if wrong:
                        failures.append(f"  {who} {line[:100]!r}: {', '.join(wrong)}")
        seconds = time.perf_counter() - started
        total = sum(outcomes.values())
        print(f"database: {'PostgreSQL' if url else 'SQLite'}; seed {at}")
        print(
            f"{commands} command × role pairs ({len(command_paths())} table commands) "
            f"× {examples} examples = {total} lines in {seconds:.1f} s ({total / seconds:.0f}/s)"
        )
        print(
            f"outcomes: ok {outcomes['ok']}, refused {outcomes['refused']}, "
            f"error {outcomes['error']}"
        )
        print(f"failures: {len(failures)}")
        print("\n".join(failures[:50]))
    finally:
        await engine.dispose()
        if url and schema:
            async with admin.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="lines per command and role")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="a PostgreSQL URL (postgresql+asyncpg://…)")
    ns = parser.parse_args()
    asyncio.run(run(ns.examples, ns.seed, ns.url))


if __name__ == "__main__":
    main()
