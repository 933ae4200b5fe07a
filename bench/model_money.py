"""The model-based test of money and trust, run long: prints figures, asserts nothing itself.

    python bench/model_money.py [--examples 200] [--steps 50] [--seed 1] [--url DATABASE_URL]

Runs the state machine of tests/model_money.py (the one tests/test_model_money.py runs briefly)
for `--examples` random sequences of up to `--steps` actions each, from a fixed `--seed`, on a
fresh SQLite file, or on PostgreSQL when `--url` names one (in a schema of its own, dropped
after). A counterexample is shrunk and printed as Hypothesis prints it, and the exit status is
1. Reported: examples and steps run, steps per second overall, and how the time splits between
the actions and the invariant checks after each one. Baseline in the same run: a machine of the
same shape whose one rule and one invariant do nothing, i.e. what Hypothesis itself costs per
step.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import text

from storage.db import create_engine
from tests.model_money import Rig, machine_for
from tests.support import Database


class Tally:
    def __init__(self) -> None:
        self.examples = 0
        self.checks = 0
        self.check_seconds = 0.0

    @property
    def steps(self) -> int:
        return self.checks - self.examples  # the invariants also run once before any step


def counted(machine: type[RuleBasedStateMachine], tally: Tally) -> type[RuleBasedStateMachine]:
    """`machine`, counting its examples and timing its invariant checks."""

    class Counted(machine):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            tally.examples += 1

        def check_invariants(self, *args: Any) -> None:  # after every step (and before any)
            started = time.perf_counter()
            try:
                super().check_invariants(*args)
            finally:
                tally.check_seconds += time.perf_counter() - started
                tally.checks += 1

    Counted.__name__ = machine.__name__
    return Counted


def run(machine: type[RuleBasedStateMachine], examples: int, steps: int, at: int) -> float:
    from hypothesis.stateful import run_state_machine_as_test

    started = time.perf_counter()
    run_state_machine_as_test(
        seed(at)(machine),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    return time.perf_counter() - started


def baseline(examples: int, steps: int, at: int) -> tuple[Tally, float]:
    tally = Tally()

    class Nothing(RuleBasedStateMachine):
        @rule()
        def step(self) -> None:
            pass

        @invariant()
        def holds(self) -> None:
            pass

    seconds = run(counted(Nothing, tally), examples, steps, at)
    return tally, seconds


async def make_schema(url: str, drop: str | None = None) -> str:
    engine = create_engine(url)
    schema = drop or f"bench_model_{uuid.uuid4().hex[:10]}"
    async with engine.begin() as conn:
        if drop:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        else:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
    await engine.dispose()
    return schema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", default="", help="PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    # The machine makes the bot log warnings on purpose (mismatched payments, refused refunds).
    logging.basicConfig(level=logging.ERROR)

    schema: str | None = None
    if args.url:
        schema = asyncio.run(make_schema(args.url))
        database = Database(args.url, schema)
        backend = "PostgreSQL"
    else:
        folder = tempfile.mkdtemp(prefix="mentorbot-model-")
        database = Database(f"sqlite+aiosqlite:///{folder}/model.db")
        backend = "SQLite"
    rig = Rig(database)
    rig.run(rig.open())
    tally = Tally()
    failed = False
    try:
        seconds = run(counted(machine_for(rig), tally), args.examples, args.steps, args.seed)
    except Exception as error:  # a counterexample: Hypothesis printed it, shrunk
        seconds = float("nan")
        failed = True
        print(f"counterexample found: {type(error).__name__}: {error}", file=sys.stderr)
        for note in getattr(error, "__notes__", []):  # the steps, as Hypothesis attaches them
            print(note, file=sys.stderr)
    finally:
        rig.close()
        if schema is not None:
            asyncio.run(make_schema(args.url, drop=schema))
    nothing, nothing_seconds = baseline(args.examples, args.steps, args.seed)

    print(f"Model-based money test on {backend}, seed {args.seed}")
    print(f"  examples run: {tally.examples}   steps: {tally.steps}")
    if not failed:
        print(f"  wall time: {seconds:7.1f} s   {tally.steps / seconds:7.1f} steps/s")
        print(
            f"  invariant checks: {tally.check_seconds:6.1f} s "
            f"({100 * tally.check_seconds / seconds:.0f} % of the time, "
            f"{1000 * tally.check_seconds / max(tally.checks, 1):.1f} ms each)"
        )
        print(f"  per example: {seconds / max(tally.examples, 1):.2f} s")
    print(
        f"  baseline, a no-op machine of the same shape: {nothing.steps} steps in "
        f"{nothing_seconds:.2f} s = {nothing.steps / nothing_seconds:,.0f} steps/s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
