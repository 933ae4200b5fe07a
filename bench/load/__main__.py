"""`python -m bench.load [options]`: one load run, its report printed; exit status 1 if an
invariant failed (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python bench/load`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench.load
from bench.load.report import DEFAULT_POSTGRES, Settings
from bench.load.run import run_load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=(bench.load.__doc__ or "").split("\n\n")[0]
    )
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
    # Options named as the settings they set, then those that say it the other way round.
    same = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if f.name in args}
    settings = Settings(
        **same,
        kill=not args.no_kill,
        sigterm=not args.no_sigterm,
        measure_single=not args.no_single,
        logs_dir=args.keep_logs,
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
