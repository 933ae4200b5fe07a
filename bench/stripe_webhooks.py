"""Benchmark of the Stripe webhook endpoint: prints figures, asserts nothing.

    python bench/stripe_webhooks.py [--events 2000] [--concurrency 20] [--slow-clients 0]

A fresh SQLite database (WAL, in a temp dir) holds one pending order per event, each with its
Checkout Session. Signed `checkout.session.completed` events are POSTed over loopback HTTP,
from a separate client process (Stripe's side), to the real aiohttp endpoint, `--concurrency`
at a time: each is verified (HMAC on the raw body, timestamp against the clock), recorded
under its unique event id and fulfilled (order locked and paid, enrollment created,
confirmation written to the outbox) in the same transaction. Then every event is sent once
more, to time the duplicate path. Reported: events per second over the whole run, p50/p99
latency as the client measured it, and the bot process's CPU time per event (less sensitive
than the rate to other load on the machine).

`--slow-clients N`: meanwhile another process holds N slowloris connections to the same server,
each sending one header byte a second and reconnecting as soon as the server closes it (at
[web] header_timeout_seconds, 10 s), so the figures show what slow clients cost the webhooks,
below the connection cap (256) or beyond it.

No Stripe API call is made: a completion carries everything needed, so the provider's API base
points at a closed loopback port.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import stripe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import timing
from bench.timing import cuts
from bot.app import Marketplace
from bot.config import config_from_mapping
from bot.core.clock import SystemClock
from bot.core.web import WebServer
from bot.providers.stripe.checkout import METADATA_SOURCE, StripePayments
from bot.providers.stripe.service import StripeService
from bot.runtime.bootstrap import payment_providers
from storage.db import create_engine
from storage.migrate import upgrade
from storage.models import Course, Identity, Order, User

SECRET = "whsec_" + "not-a-real-secret-" * 2  # built, not a literal key


async def _seed(app: Marketplace, count: int) -> list[dict[str, Any]]:
    """One learner, order and paid session per event; returns the sessions."""
    now = app.clock.now()
    sessions = []
    async with app.new_uow() as uow:
        course = Course(
            slug="bench",
            title_en="Bench",
            price_minor=4900,
            currency="USD",
            sessions_included=4,
            topics=[],
            status="active",
            created_at=now,
        )
        uow.add(course)
        await uow.flush()
        for i in range(count):
            user = User(display_name=f"u{i}", language="en", timezone="UTC", created_at=now)
            uow.add(user)
            await uow.flush()
            uow.add(
                Identity(
                    user_id=user.id,
                    platform="console",
                    external_id=f"u{i}",
                    created_at=now,
                    last_seen_at=now,
                )
            )
            order = Order(
                user_id=user.id,
                course_id=course.id,
                status="pending",
                amount_minor=4900,
                currency="USD",
                sessions_included=4,
                checkout_ref=f"cs_bench_{i}",
                checkout_url=f"https://checkout.stripe.com/c/pay/cs_bench_{i}",
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
            uow.add(order)
            await uow.flush()
            sessions.append(
                {
                    "id": order.checkout_ref,
                    "object": "checkout.session",
                    "status": "complete",
                    "payment_status": "paid",
                    "amount_total": 4900,
                    "currency": "usd",
                    "payment_intent": f"pi_bench_{i}",
                    "metadata": {
                        "source": METADATA_SOURCE,
                        "order_id": str(order.id),
                        "user_id": str(user.id),
                        "course_id": str(course.id),
                    },
                }
            )
        await uow.commit()
    return sessions


async def _fire(
    url: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], dict[str, int]]:
    """Stripe's side: POST every signed body, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    signed = [
        (body, stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET))
        for body in bodies
    ]

    async def one(http: aiohttp.ClientSession, body: bytes, header: str) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                async with http.post(url, data=body, headers={"Stripe-Signature": header}) as r:
                    answer = await r.json() if r.status == 200 else {}
                    key = answer.get("outcome", f"http {r.status}")
            except aiohttp.ClientError:
                key = "connection closed"  # e.g. refused beyond max_connections
            latencies.append((time.perf_counter() - started) * 1000)
            outcomes[key] = outcomes.get(key, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(one(http, body, header) for body, header in signed))
        return time.perf_counter() - started, latencies, outcomes


def _slowloris(port: int, count: int, stop: Any) -> int:
    """Runs in a separate process: `count` connections dribbling one header byte a second,
    each reopened when the server closes it, until `stop` is set; returns how many closes."""
    return asyncio.run(_hold(port, count, stop))


async def _hold(port: int, count: int, stop: Any) -> int:
    closed = 0

    async def one() -> None:
        nonlocal closed
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            request = b"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 600
            for i in range(len(request)):
                if reader.at_eof() or stop.is_set():
                    break
                writer.write(request[i : i + 1])
                try:
                    await asyncio.wait_for(reader.read(1024), 1.0)  # b"": closed by the server
                except TimeoutError:
                    continue
                except OSError:
                    pass
                break
            closed += 1
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return closed


def _client(url: str, bodies: list[bytes], concurrency: int) -> Any:
    """Runs in a separate process, so the bot's event loop has its CPU to itself."""
    return asyncio.run(_fire(url, bodies, concurrency))


def _report(
    label: str,
    cpu: float,
    elapsed: float,
    latencies: list[float],
    outcomes: dict[str, int],
) -> None:
    p50, p99 = cuts(latencies)
    print(
        f"  {label:<22} {len(latencies) / elapsed:5.0f} events/s   "
        f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
        f"bot CPU {cpu * 1000 / len(latencies):4.2f} ms/event   {outcomes}"
    )


async def bench(events: int, concurrency: int, slow_clients: int = 0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_mapping(
            {
                "storage": {"data_dir": tmp},
                "stripe": {
                    "secret_key": "sk_test_bench",
                    "webhook_secret": SECRET,
                    "api_base": "http://127.0.0.1:9",
                    "success_url": "https://example.invalid/ok",
                    "cancel_url": "https://example.invalid/no",
                },
            }
        )
        engine = create_engine(config.database_url(), pool_size=concurrency)
        await upgrade(engine)
        clock = SystemClock()
        providers = payment_providers(config, clock)
        app = Marketplace(config, engine, clock, providers)
        stripe_payments = next(p for p in providers if isinstance(p, StripePayments))
        web = WebServer("127.0.0.1", 0, config.web)
        StripeService(app, stripe_payments, web)  # adds the route; no reconciliation here
        await web.start()
        sessions = await _seed(app, events)
        created = int(datetime.now(UTC).timestamp())
        bodies = [
            json.dumps(
                {
                    "id": f"evt_bench_{i}",
                    "object": "event",
                    "type": "checkout.session.completed",
                    "created": created,
                    "data": {"object": session},
                }
            ).encode()
            for i, session in enumerate(sessions)
        ]
        url = f"http://127.0.0.1:{web.port}{config.stripe.webhook_path}"
        print(
            f"Stripe webhooks on SQLite: {events} events, {concurrency} at once, "
            f"{slow_clients} slow clients (max_connections {config.web.max_connections})"
        )
        loop = asyncio.get_running_loop()
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Manager().Event()
        with ProcessPoolExecutor(2, mp_context=spawn) as pool:
            held = None
            if slow_clients:
                held = loop.run_in_executor(pool, _slowloris, web.port, slow_clients, stop)
                for _wait in range(300):  # until every slow client is connected (or the cap full)
                    if web.gate.open >= min(slow_clients, config.web.max_connections):
                        break
                    await asyncio.sleep(0.1)
            for label in ("fulfil (first delivery)", "duplicate delivery"):
                cpu = time.process_time()  # this process only: the bot, not the client
                result = await loop.run_in_executor(pool, _client, url, bodies, concurrency)
                _report(label, time.process_time() - cpu, *result)
            if held is not None:
                stop.set()
                closes = await held
                print(
                    f"  slow clients: {closes} connections closed by the header timeout or "
                    f"refused at the cap; {web.gate.refused} refused at the cap"
                )
        await web.stop()
        await stripe_payments.close()
        await engine.dispose()


def main() -> None:
    parser = timing.parser(__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--slow-clients", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(bench(args.events, args.concurrency, args.slow_clients))


if __name__ == "__main__":
    main()
