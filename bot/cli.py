"""The `mentorbot` command: run, shell, migrate, demo-data, report, lessons import."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import LANGUAGES, Config, ConfigError, load_config
from bot.core.logs import register_secret, setup_logging

if TYPE_CHECKING:
    from bot.app import Marketplace
    from bot.runtime.bootstrap import Service
    from bot.runtime.timers import Timers

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "config.toml"


NO_PLATFORM = (
    "no chat platform is configured: set [telegram] token or [discord] token "
    "(MENTORBOT_TELEGRAM_TOKEN, MENTORBOT_DISCORD_TOKEN), or run `mentorbot shell` for the console"
)

# The shell's exit status on Ctrl-C: 128 + SIGINT, as a shell reports a process it interrupted.
INTERRUPTED = 130


class CliError(Exception):
    """A failure an operator can fix, said as one line on stderr (never a traceback)."""


def _config_option() -> argparse.ArgumentParser:
    """`--config` for the top level and every verb, so it may stand before or after the verb.

    The verbs' copy defaults to SUPPRESS: left out there, it keeps what the top level parsed.
    """
    option = argparse.ArgumentParser(add_help=False)
    option.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $MENTORBOT_CONFIG, else ./config.toml if present)",
    )
    return option


def _parser() -> argparse.ArgumentParser:
    config = _config_option()
    parser = argparse.ArgumentParser(
        prog="mentorbot",
        description="A mentoring marketplace that lives inside chat.",
        parents=[config],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run",
        parents=[config],
        help="start what is configured; the console chat if no platform is and stdin is a terminal",
    )
    shell = sub.add_parser(
        "shell", parents=[config], help="the console chat: play learner, mentor and admin"
    )
    shell.add_argument(
        "--as", dest="name", default="learner", help="who you are (default: learner)"
    )
    shell.add_argument("--role", choices=["learner", "mentor", "admin"], help="grant a role")
    shell.add_argument(
        "--demo",
        action="store_true",
        help="load the sample catalogue if empty and enable demo payments (no money moves)",
    )
    sub.add_parser("migrate", parents=[config], help="bring the database schema up to date")
    sub.add_parser(
        "demo-data", parents=[config], help="load a small sample catalogue, mentors and an admin"
    )
    report = sub.add_parser(
        "report", parents=[config], help="write the admin stats chart (PNG) and CSV files"
    )
    report.add_argument("--out", required=True, type=Path, help="directory to write into")
    report.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="language of the chart's labels and the CSV headers (default: [bot] default_language)",
    )
    lessons = sub.add_parser("lessons", parents=[config], help="manage course lessons")
    lessons_sub = lessons.add_subparsers(dest="lessons_command", required=True)
    lesson_import = lessons_sub.add_parser(
        "import", parents=[config], help="add or update lessons from TOML or Markdown files"
    )
    lesson_import.add_argument("files", nargs="+", type=Path, help=".toml or .md files")
    lesson_import.add_argument("--course", help="the course's slug (Markdown; TOML default)")
    return parser


def _load(path: str | None) -> Config:
    path = path or os.environ.get("MENTORBOT_CONFIG")
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return load_config(path)


def main(argv: list[str] | None = None) -> int:
    """Run one verb; an operator's mistake is one line on stderr, Ctrl-C exits 130 quietly."""
    args = _parser().parse_args(argv)
    try:
        config = _load(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"mentorbot: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, config)
    except CliError as exc:
        print(f"mentorbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    setup_logging(config.logging.level, config.logging.format)
    for secret in config.secrets():
        register_secret(secret)
    if args.command == "migrate":
        return asyncio.run(_migrate(config))
    if args.command == "demo-data":
        return asyncio.run(_demo_data(config))
    if args.command == "report":
        from bot.runtime.admin_cli import write_report

        if args.out.exists() and not args.out.is_dir():
            raise CliError(f"--out {args.out} is a file; give a directory")
        return asyncio.run(write_report(config, args.out, args.lang or config.bot.default_language))
    if args.command == "lessons":
        from bot.runtime.admin_cli import import_lessons

        return asyncio.run(import_lessons(config, args.files, args.course))
    if args.command == "shell":
        return asyncio.run(_shell(config, args.name, args.role, args.demo))
    return asyncio.run(_run(config))


async def _run(config: Config) -> int:
    """Start every configured service and run until SIGINT/SIGTERM; else the console chat."""
    from bot.runtime.bootstrap import build_marketplace, configured_services, warn_about_database
    from bot.runtime.timers import Timers

    app = await build_marketplace(config)
    services = configured_services(config, app)
    if not services:
        await app.engine.dispose()
        if not sys.stdin.isatty():  # under a service manager: a missing token is a failure
            raise CliError(NO_PLATFORM)
        print("No chat platform is configured; starting the console chat.", flush=True)
        return await _shell(config, "learner", None, False)
    await warn_about_database(app.engine)
    app.warm()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    timers = Timers(app)
    started: list[Service] = []
    try:
        await timers.start()
        for service in services:
            await service.start()
            started.append(service)
        await app.notifier.deliver_pending()
        await stop.wait()
    finally:
        await _shut_down(app, timers, started)
    return 0


async def _shut_down(app: Marketplace, timers: Timers, started: list[Service]) -> None:
    """SIGTERM: report not-ready, stop taking updates, finish what is in flight, then close.

    Outbox leases and reminder claims are rows with deadlines, so even a hard kill loses
    nothing that was acknowledged: another process retakes them when the lease runs out.
    """
    from bot.core.web import WebServer

    web = next((s for s in started if isinstance(s, WebServer)), None)
    if web is not None:
        web.stopping = True
    for service in reversed(started):
        if service is not web:
            await service.stop()
    if not await app.drain(within=30):
        log.warning("shutdown: messages still in flight after 30 s")
    if not await timers.stop(within=30):
        log.warning("shutdown: a sweep still running after 30 s was cancelled")
    if web is not None:
        await web.stop()
    await app.engine.dispose()


async def _migrate(config: Config) -> int:
    """Bring the schema to the newest revision and say what that took."""
    from bot.core.logs import redact
    from storage.db import create_engine
    from storage.migrate import current_revisions, upgrade

    engine = create_engine(config.database_url())
    try:
        before = await current_revisions(engine)
        await upgrade(engine)
        after = await current_revisions(engine)
    finally:
        await engine.dispose()
    where = redact(config.database_url())
    newest = ", ".join(sorted(after))
    if not before:
        print(f"created the database at {where}, schema at revision {newest}")
    elif before == after:
        print(f"the database at {where} is already at the newest revision {newest}")
    else:
        old = ", ".join(sorted(before))
        print(f"upgraded the database at {where} from revision {old} to {newest}")
    return 0


async def _demo_data(config: Config) -> int:
    from bot.runtime.bootstrap import build_marketplace
    from bot.runtime.demo_data import seed_demo

    app = await build_marketplace(config)
    created = await seed_demo(app)
    await app.engine.dispose()
    print("demo data loaded" if created else "a catalogue exists already; nothing changed")
    return 0


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines typed on stdin, "" at its end and None on Ctrl-C, read by a daemon thread from the
    raw descriptor.

    Ctrl-C is a line of its own rather than a cancellation: a sweep it would cut through holds
    a database connection, and closing the engine then waited for it forever.

    An executor thread blocked in readline() would keep asyncio.run() from returning after
    Ctrl-C until another line came; a daemon thread is left behind at exit, and reading the
    descriptor (not sys.stdin) means it holds no lock that the interpreter's exit would need.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop.add_signal_handler(signal.SIGINT, queue.put_nowait, None)
    fd = sys.stdin.fileno()

    def put(line: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed (Ctrl-C) meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, line)

    def read() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while chunk := os.read(fd, 65536):
            *lines, pending = (pending + decoder.decode(chunk)).split("\n")
            for line in lines:
                put(line + "\n")
        pending += decoder.decode(b"", final=True)
        if pending:
            put(pending)
        put("")

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return queue


async def _shell(config: Config, name: str, role: str | None, demo: bool) -> int:
    from bot.adapters.console import ConsoleChat
    from bot.runtime.bootstrap import build_marketplace
    from bot.runtime.demo_data import has_demo_data, introduction, seed_demo
    from bot.runtime.timers import Timers

    with_demo = dataclasses.replace(
        config, payments=dataclasses.replace(config.payments, demo=True)
    )
    app = await build_marketplace(with_demo if demo else config)
    if not demo and not config.payments.demo and await has_demo_data(app):
        # The demo's database keeps its demo payments on a plain `shell` too, so the sample
        # courses can still be bought; a real catalogue never gets them this way.
        await app.engine.dispose()
        app = await build_marketplace(with_demo, migrate=False)
        print(introduction(config.console.language, None), flush=True)
    if demo:
        loaded = await seed_demo(app, history=True)
        print(introduction(config.console.language, loaded), flush=True)
    chat = ConsoleChat(app, lambda text: print(text, flush=True), name)
    timers = Timers(app)
    await chat.become(name, role)
    lines = _stdin_lines()
    print("Type /help. /as NAME [learner|mentor|admin] switches user; Ctrl-D quits.", flush=True)
    try:
        # After the prompt: the first sweep catches up on what fell due while the bot was
        # down, and the user can read and type meanwhile (its notices print when sent).
        await timers.start()
        app.warm()
        while line := await lines.get():
            await chat.handle_line(line)
    finally:
        timers.shutdown()
        await app.engine.dispose()
    return 0 if line == "" else INTERRUPTED
