"""The `mentorbot` command: run, shell, migrate, demo-data."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging

DEFAULT_CONFIG = "config.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mentorbot", description="A mentoring marketplace that lives inside chat."
    )
    parser.add_argument(
        "--config",
        help="TOML config file (default: $MENTORBOT_CONFIG, else ./config.toml if present)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start what is configured; the console chat if no platform is")
    shell = sub.add_parser("shell", help="the console chat: play learner, mentor and admin")
    shell.add_argument(
        "--as", dest="name", default="learner", help="who you are (default: learner)"
    )
    shell.add_argument("--role", choices=["learner", "mentor", "admin"], help="grant a role")
    shell.add_argument(
        "--demo",
        action="store_true",
        help="load the sample catalogue if empty and enable demo payments (no money moves)",
    )
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("demo-data", help="load a small sample catalogue, mentors and an admin")
    return parser


def _load(path: str | None) -> Config:
    path = path or os.environ.get("MENTORBOT_CONFIG")
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return load_config(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        print(f"mentorbot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, config.logging.format)
    if args.command == "migrate":
        return asyncio.run(_migrate(config))
    if args.command == "demo-data":
        return asyncio.run(_demo_data(config))
    if args.command == "shell":
        if args.demo:
            config = dataclasses.replace(
                config, payments=dataclasses.replace(config.payments, demo=True)
            )
        return asyncio.run(_shell(config, args.name, args.role, args.demo))
    return asyncio.run(_run(config))


async def _run(config: Config) -> int:
    """Start every configured service and run until SIGINT/SIGTERM; else the console chat."""
    import signal

    from bot.bootstrap import build_marketplace, configured_services
    from bot.timers import Timers

    app = await build_marketplace(config)
    services = configured_services(config, app)
    if not services:
        await app.engine.dispose()
        print("No chat platform is configured; starting the console chat.", flush=True)
        return await _shell(config, "learner", None, False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    timers = Timers(app)
    started = []
    try:
        await timers.start()
        for service in services:
            await service.start()
            started.append(service)
        await app.notifier.deliver_pending()
        await stop.wait()
    finally:
        for service in reversed(started):
            await service.stop()
        timers.shutdown()
        await app.engine.dispose()
    return 0


async def _migrate(config: Config) -> int:
    from bot.logs import redact
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(config.database_url())
    await upgrade(engine)
    await engine.dispose()
    print(f"database is up to date: {redact(config.database_url())}")
    return 0


async def _demo_data(config: Config) -> int:
    from bot.bootstrap import build_marketplace
    from bot.demo_data import seed_demo

    app = await build_marketplace(config)
    created = await seed_demo(app)
    await app.engine.dispose()
    print("demo data loaded" if created else "a catalogue exists already; nothing changed")
    return 0


async def _shell(config: Config, name: str, role: str | None, demo: bool) -> int:
    from bot.adapters.console import ConsoleChat
    from bot.bootstrap import build_marketplace
    from bot.demo_data import seed_demo
    from bot.timers import Timers

    app = await build_marketplace(config)
    if demo:
        await seed_demo(app)
    chat = ConsoleChat(app, lambda text: print(text, flush=True), name)
    timers = Timers(app)
    await timers.start()
    await chat.become(name, role)
    print("Type /help. /as NAME [learner|mentor|admin] switches user; Ctrl-D quits.", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            await chat.handle_line(line)
    finally:
        timers.shutdown()
        await app.engine.dispose()
    return 0
