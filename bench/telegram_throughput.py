"""Benchmark of the Telegram adapter: prints figures, asserts nothing.

    python bench/telegram_throughput.py [--updates N] [--users N] [--profile FILE]

Both bots poll the same fake Bot API (tests/fakes/fake_telegram.py, run with the load generator in a
separate process, so the harness does not share the bot's core) with the real
python-telegram-bot, 16 updates handled at once (the default; --concurrency) and no flood
control (the 30 msg/s limit would otherwise be all that is measured):

- **mentorbot**: the full stack — TelegramService → Marketplace → SQLite (a file in a temp
  dir), seeded with the demo catalogue;
- **echo**: a bare python-telegram-bot Application that echoes text and answers buttons, with
  PTB's default HTTP client (httpx): the issue's baseline;
- **echo aiohttp**: the same echo bot on mentorbot's HTTP port (bot/adapters/telegram/http.py),
  so the like-for-like ratio shows what the rest of mentorbot costs.

Throughput: every user has sent /start once (not timed); then N updates, a mix of /start,
/courses and presses of the "Browse courses" button (40 %), from many users, are queued at
once; the figure is N over the time until every one was answered (a sendMessage back).
Latency: updates offered at a fixed rate (50/s, the target's; --offered), each user's next one
well after their last; an update's latency runs from when it is queued at the fake to when its
answer reaches the fake (getUpdates pick-up, handling, the reply's HTTP call).
CPU: the bot process's CPU seconds (all threads) over all three phases, per update handled;
on a shared machine it varies much less than the wall-clock figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapters.telegram import TelegramService
from bot.adapters.telegram.http import AiohttpRequest
from bot.app import Marketplace
from bot.config import config_from_mapping
from bot.core.clock import SystemClock
from bot.core.replies import Reply
from bot.core.users import Incoming
from bot.runtime.demo_data import seed_demo
from storage.db import create_engine
from storage.migrate import upgrade
from tests.fakes.fake_telegram import TOKEN, FakeTelegram

CONCURRENCY = 16  # [telegram] concurrent_updates by default; --concurrency
OFFERED_PER_SECOND = 50  # --offered
LATENCY_UPDATES = 1000


async def full_stack(url: str, tmp: str, handle_ms: list[float]) -> Callable[[], Awaitable[None]]:
    config = config_from_mapping(
        {
            "storage": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db"},
            "telegram": {
                "token": TOKEN,
                "base_url": url,
                "concurrent_updates": CONCURRENCY,
                "flood_control": False,
            },
            "logging": {"level": "ERROR"},
        }
    )
    engine = create_engine(config.database_url())
    await upgrade(engine)
    app = Marketplace(config, engine, SystemClock())
    await seed_demo(app)
    app.warm()  # as `mentorbot run` does at start
    handle = app.handle

    async def timed(msg: Incoming) -> list[Reply]:
        began = time.perf_counter()
        try:
            return await handle(msg)
        finally:
            handle_ms.append((time.perf_counter() - began) * 1000)

    app.handle = timed  # type: ignore[method-assign]
    service = TelegramService(config, app)
    await service.start()

    async def stop() -> None:
        await service.stop()
        await engine.dispose()

    return stop


async def echo_bot(url: str, aiohttp: bool = False) -> Callable[[], Awaitable[None]]:
    """PTB's own example shape; `aiohttp`: with mentorbot's HTTP port instead of httpx."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer()
        await context.bot.send_message(query.message.chat.id, query.data or "")

    builder = (
        Application.builder()
        .token(TOKEN)
        .base_url(f"{url}/bot")
        .base_file_url(f"{url}/file/bot")
        .concurrent_updates(CONCURRENCY)
        .job_queue(None)
    )
    if aiohttp:
        builder = builder.request(AiohttpRequest()).get_updates_request(AiohttpRequest(1))
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(button))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling()

    async def stop() -> None:
        assert application.updater is not None
        await application.updater.stop()
        await application.stop()
        await application.shutdown()

    return stop


def user(i: int) -> dict[str, Any]:
    return {"id": 100_000 + i, "is_bot": False, "first_name": f"U{i}", "language_code": "en"}


def answered_since(fake: FakeTelegram, start: int) -> int:
    return sum(1 for c in fake.calls[start:] if c.method == "sendMessage" and c.status == 200)


def next_update(
    fake: FakeTelegram, rng: random.Random, who: dict[str, Any], data: str | None
) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.4 and data:
        return fake.button_update(who, data)
    return fake.text_update(who, "/start" if roll < 0.7 else "/courses")


async def measure(
    fake: FakeTelegram, n_updates: int, n_users: int, seed: int, rate: tuple[int, int]
) -> dict[str, float]:
    offered, latency_updates = rate
    rng = random.Random(seed)
    users = [user(i) for i in range(n_users)]
    # Warm-up: every user says /start once; remember their "Browse courses" button.
    start = len(fake.calls)
    for who in users:
        await fake.push(fake.text_update(who, "/start"))
    await wait_until(lambda: answered_since(fake, start) >= n_users)
    data: dict[int, str] = {}
    for c in fake.calls[start:]:
        if c.method == "sendMessage" and c.buttons:
            data[c.params["chat_id"]] = c.buttons[0].get("callback_data", "")
        elif c.method == "sendMessage":
            data.setdefault(c.params["chat_id"], "press")  # the echo bot shows no buttons

    # Throughput: everything queued at once.
    start = len(fake.calls)
    began = time.perf_counter()
    for i in range(n_updates):
        who = users[i % n_users]
        await fake.push(next_update(fake, rng, who, data.get(who["id"])))
    await wait_until(lambda: answered_since(fake, start) >= n_updates)
    throughput = n_updates / (time.perf_counter() - began)

    # Latency at a fixed offered load.
    start = len(fake.calls)
    pushed: list[tuple[int, float]] = []
    began = time.perf_counter()
    for i in range(latency_updates):
        target = began + i / offered
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        who = users[i % n_users]
        await fake.push(next_update(fake, rng, who, data.get(who["id"])))
        pushed.append((who["id"], time.perf_counter()))
    await wait_until(lambda: answered_since(fake, start) >= latency_updates)
    replies: dict[int, list[float]] = {}
    for c in fake.calls[start:]:
        if c.method == "sendMessage" and c.status == 200:
            replies.setdefault(c.params["chat_id"], []).append(c.at)
    latencies = []
    for chat, at in pushed:
        first = next(t for t in replies[chat] if t >= at)
        replies[chat].remove(first)
        latencies.append((first - at) * 1000)
    latencies.sort()
    methods: dict[str, int] = {}
    for c in fake.calls:
        if c.method != "getUpdates":
            methods[c.method] = methods.get(c.method, 0) + 1
    return {
        "api_calls": sum(methods.values()) / (n_users + n_updates + latency_updates),
        "throughput": throughput,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


async def wait_until(done: Callable[[], bool]) -> None:
    # Polling keeps the measured bots' hot path free of the fake's condition variable.
    while not done():  # noqa: ASYNC110
        await asyncio.sleep(0.002)


def fake_process(
    conn: Connection, n_updates: int, n_users: int, seed: int, rate: tuple[int, int]
) -> None:
    """The harness, in a process of its own: the fake Bot API and the load it offers."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        fake = FakeTelegram()
        conn.send(await fake.start())
        await loop.run_in_executor(None, conn.recv)  # the bot is polling
        conn.send(await measure(fake, n_updates, n_users, seed, rate))
        await loop.run_in_executor(None, conn.recv)  # the bot has stopped
        await fake.stop()

    asyncio.run(serve())


async def run(n_updates: int, n_users: int, seed: int, profile: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    results: dict[str, dict[str, float]] = {}
    handle_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("echo", "echo_aiohttp", "mentorbot"):
            ours, theirs = multiprocessing.get_context("spawn").Pipe()
            harness = multiprocessing.get_context("spawn").Process(
                target=fake_process,
                args=(theirs, n_updates, n_users, seed, (OFFERED_PER_SECOND, LATENCY_UPDATES)),
            )
            harness.start()
            url = await loop.run_in_executor(None, ours.recv)
            if name.startswith("echo"):
                stop = await echo_bot(url, aiohttp=name == "echo_aiohttp")
            else:
                stop = await full_stack(url, tmp, handle_ms)
            profiler = cProfile.Profile() if profile and name == "mentorbot" else None
            cpu_before = time.process_time()
            if profiler:
                profiler.enable()
            ours.send("go")
            results[name] = await loop.run_in_executor(None, ours.recv)
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            handled = n_users + n_updates + LATENCY_UPDATES
            results[name]["cpu_ms"] = (time.process_time() - cpu_before) * 1000 / handled
            await stop()
            ours.send("stop")
            await loop.run_in_executor(None, harness.join)
    echo, like, full = results["echo"], results["echo_aiohttp"], results["mentorbot"]
    print(
        f"updates: {n_updates} from {n_users} users; latency: {LATENCY_UPDATES} at "
        f"{OFFERED_PER_SECOND}/s; {CONCURRENCY} updates at once; SQLite; fake Bot API in "
        "a separate process"
    )
    print(
        f"{'':12}{'updates/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/update':>15}"
        f"{'API calls/update':>18}"
    )
    for name, r in (("echo (PTB)", echo), ("echo aiohttp", like), ("mentorbot", full)):
        print(
            f"{name:12}{r['throughput']:>12.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}"
            f"{r['cpu_ms']:>15.2f}{r['api_calls']:>18.2f}"
        )
    print(
        f"ratio mentorbot/echo: {full['throughput'] / echo['throughput']:.2f} (target >= 0.6); "
        f"mentorbot p99 {full['p99']:.1f} ms (target < 50); CPU ratio echo/mentorbot "
        f"{echo['cpu_ms'] / full['cpu_ms']:.2f}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"like for like (both on aiohttp): ratio {full['throughput'] / like['throughput']:.2f}, "
        f"CPU ratio {like['cpu_ms'] / full['cpu_ms']:.2f}"
    )
    handle_ms.sort()
    print(
        f"of which Marketplace.handle (the core, all phases): p50 "
        f"{statistics.median(handle_ms):.1f} ms, p99 {handle_ms[int(len(handle_ms) * 0.99)]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--offered", type=int, default=OFFERED_PER_SECOND, help="updates/s")
    parser.add_argument("--latency-updates", type=int, default=LATENCY_UPDATES)
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the bot's event loop thread into FILE (pstats)"
    )
    args = parser.parse_args()
    globals()["CONCURRENCY"] = args.concurrency
    globals()["OFFERED_PER_SECOND"] = args.offered
    globals()["LATENCY_UPDATES"] = args.latency_updates
    asyncio.run(run(args.updates, args.users, args.seed, args.profile))


if __name__ == "__main__":
    main()
