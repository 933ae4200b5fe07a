"""The web server sheds slow or stuck clients, so Stripe and Telegram webhooks keep flowing.

Real sockets on 127.0.0.1 against the real server, with the [web] limits shortened in the
config: a header timeout of 1 s, a body timeout of 0.5 s.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client import REGISTRY

from bot.core.clock import FakeClock
from storage.models import PaymentEvent
from tests.fakes.fake_stripe import WEBHOOK_PATH, StripeWorld
from tests.fakes.fake_telegram import StartBot
from tests.support import TELEGRAM_WEBHOOK, Database, SlowClient

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 0.5
LIMITS: dict[str, Any] = {
    "header_timeout_seconds": HEADER_TIMEOUT,
    "body_timeout_seconds": BODY_TIMEOUT,
    "max_connections": 64,
}


def _shed(reason: str) -> float:
    """The /metrics count of clients shed for `reason`."""
    return REGISTRY.get_sample_value("mentorbot_web_shed_total", {"reason": reason}) or 0.0


def _headers(path: str, length: int, signature: str = "t=1,v1=00") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nStripe-Signature: {signature}\r\n\r\n"
    ).encode()


async def _slowloris(port: int, count: int, path: str = WEBHOOK_PATH) -> list[asyncio.Task[Any]]:
    """`count` connections dribbling one header byte each 50 ms, all connected on return."""
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".encode() + b"a" * 4000
    tasks = [asyncio.ensure_future(SlowClient(port, request).run()) for _ in range(count)]
    await asyncio.sleep(0.1)
    return tasks


async def test_slowloris_clients_do_not_hold_up_a_stripe_webhook(
    database: Database, clock: FakeClock
) -> None:
    """With 40 clients dribbling headers, a real Stripe delivery is answered at once and the
    slow clients are closed at the header timeout, though they never stopped sending."""
    async with StripeWorld.open(database, clock, web=LIMITS) as world:
        order_id, session_id = await world.buy("alice")
        event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
        shed = _shed("slow_headers")
        slow = await _slowloris(world.web.port, 40)
        status, body = await world.send(event)
        assert (status, body["outcome"]) == (200, "fulfilled")
        assert not any(task.done() for task in slow)  # answered while they still hung on
        for client in await asyncio.gather(*slow):
            assert client.closed_after is not None, "a slow client was never closed"
            assert HEADER_TIMEOUT - 0.1 <= client.closed_after < HEADER_TIMEOUT + 2
            assert client.answer == b""
        assert (await world.order(order_id)).status == "paid"
        assert _shed("slow_headers") == shed + 40


async def test_slowloris_clients_do_not_hold_up_a_telegram_update(start_bot: StartBot) -> None:
    """In webhook mode, an update Telegram posts is handled while slow clients hang on."""
    bot, _h = await start_bot(telegram=TELEGRAM_WEBHOOK, web=LIMITS)
    assert bot.web is not None
    slow = await _slowloris(bot.web.port, 40, "/telegram/webhook")
    out = await bot.user("Alice").send("/start")
    assert "Welcome to mentorbot, Alice!" in out
    assert not any(task.done() for task in slow)
    closed = [client.closed_after for client in await asyncio.gather(*slow)]
    assert all(after is not None and after < HEADER_TIMEOUT + 2 for after in closed)


async def test_a_stalled_body_gets_408_and_changes_nothing(
    database: Database, clock: FakeClock
) -> None:
    """Headers, then 10 bytes of a 500-byte body, then nothing: 408 at the body timeout and
    the connection closed; nothing is recorded."""
    async with StripeWorld.open(database, clock, web=LIMITS) as world:
        request = _headers(WEBHOOK_PATH, 500) + b'{"id": "ev'
        shed = _shed("slow_body")
        client = await SlowClient(world.web.port, request, interval=0).run()
        assert client.answer.startswith(b"HTTP/1.1 408 "), client.answer[:80]
        assert b"request body not received in time" in client.answer
        assert client.closed_after is not None
        assert BODY_TIMEOUT - 0.1 <= client.closed_after < BODY_TIMEOUT + 2
        assert await world.count(PaymentEvent) == 0
        assert _shed("slow_body") == shed + 1


async def test_a_slow_but_timely_body_is_served(database: Database, clock: FakeClock) -> None:
    """A genuine event whose body arrives in two parts, within the body timeout, is applied."""
    async with StripeWorld.open(database, clock, web=LIMITS) as world:
        order_id, session_id = await world.buy("alice")
        event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
        payload = json.dumps(event)
        body = payload.encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", world.web.port)
        writer.write(_headers(WEBHOOK_PATH, len(body), world.sign(payload)) + body[:20])
        await asyncio.sleep(BODY_TIMEOUT / 3)
        writer.write(body[20:])
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 200 "), status_line
        assert (await world.order(order_id)).status == "paid"


async def test_connection_cap_refuses_more_then_serves_webhooks_once_slow_ones_go(
    database: Database, clock: FakeClock
) -> None:
    """With max_connections = 4 held by slow clients, a fifth connection is answered 503 at
    once; when the header timeout has shed the slow ones, a Stripe webhook is served."""
    async with StripeWorld.open(database, clock, web={**LIMITS, "max_connections": 4}) as world:
        _order_id, session_id = await world.buy("alice")
        event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
        slow = await _slowloris(world.web.port, 4)
        healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        shed = _shed("too_many_connections")
        refused = await SlowClient(world.web.port, healthz, interval=0).run()
        assert refused.answer.startswith(b"HTTP/1.1 503 "), refused.answer[:80]
        assert refused.closed_after is not None and refused.closed_after < HEADER_TIMEOUT / 2
        assert not any(task.done() for task in slow)
        assert _shed("too_many_connections") == shed + 1
        shed_by_server = [client.closed_after for client in await asyncio.gather(*slow)]
        assert all(after is not None and after < HEADER_TIMEOUT + 2 for after in shed_by_server)
        status, body = await world.send(event)
        assert (status, body["outcome"]) == (200, "fulfilled")


async def test_a_kept_alive_connection_may_idle_but_not_dribble(
    database: Database, clock: FakeClock
) -> None:
    """After a first request, an idle kept-alive connection outlives the header timeout (a
    reverse proxy reuses it), but a next request dribbled on it is closed at the header
    timeout counted from its first byte."""
    async with StripeWorld.open(database, clock, web=LIMITS) as world:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", world.web.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(HEADER_TIMEOUT * 1.5)
        assert not reader.at_eof()
        first_byte = loop.time()
        closed = asyncio.ensure_future(reader.read())
        for byte in b"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 200:
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.wait([closed], timeout=0.05)
        assert closed.done() and closed.result() == b""
        assert HEADER_TIMEOUT - 0.1 <= loop.time() - first_byte < HEADER_TIMEOUT + 2
        writer.close()
