"""The process's one HTTP server (aiohttp): health, readiness, metrics and webhooks.

Stripe webhooks and Telegram's webhook mode are routes on this one server, so a deployment
exposes one port. Features add their routes (and readiness checks) before `start()`.
`GET /healthz` answers while the process runs; `GET /readyz` answers 200 only when every
readiness check passes (database reachable, adapters connected), so a load balancer sends
updates only to processes that can handle them; `GET /metrics` is Prometheus text.

Slow or stuck clients are shed so that webhooks keep flowing ([web] in the config):

- headers: a connection whose request line and headers have not all arrived
  `header_timeout_seconds` after it opened, or after the first byte of its next request when
  kept alive, is closed, however steadily it dribbles bytes; an idle kept-alive connection is
  closed after `KEEPALIVE_SECONDS` (aiohttp's timer, longer than a reverse proxy's usual 60 s
  so the proxy, not us, closes it first);
- body: a request whose body has not all arrived `body_timeout_seconds` after its headers is
  answered 408 and its connection closed (read here, before any route sees the request; the
  route's own `read()` then returns the bytes already read);
- connections: beyond `max_connections` open at once a new connection is answered 503 and
  closed at once, without reaching aiohttp, so a flood costs little; the header timeout frees
  the places slow clients held, and the next webhooks are served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import WebSection
from bot.core.metrics import WEB_CONNECTIONS, WEB_SHED

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[bool]]


# Idle kept-alive connections are closed after this long (aiohttp's own default is an hour).
KEEPALIVE_SECONDS = 75
# How long stopping waits for connections still open. Work in flight was already drained
# through the front door (`FrontDoor.drain`) before the server stops, so what is left is a
# kept-alive connection between requests; aiohttp's default (60 s) held some stops that long.
SHUTDOWN_SECONDS = 3.0
TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n"
)


class ConnectionGate:
    """The open connections; a connection beyond the cap is answered 503 and closed."""

    def __init__(self, limit: int, header_timeout: float) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        self.connections: dict[RequestHandler, GatedConnection] = {}
        self.refused = 0
        self._full = False

    @property
    def open(self) -> int:
        return len(self.connections)

    def has_room(self) -> bool:
        """Whether one more connection may open; if not, the refusal is counted (and logged
        when the cap is first reached)."""
        if self.open >= self.limit:
            self.refused += 1
            WEB_SHED.labels("too_many_connections").inc()
            if not self._full:
                self._full = True
                log.warning(
                    "web server at max_connections; refusing new connections",
                    extra={"max_connections": self.limit},
                )
            return False
        return True

    def add(self, inner: RequestHandler, connection: GatedConnection) -> None:
        self.connections[inner] = connection
        WEB_CONNECTIONS.set(self.open)

    def release(self, inner: RequestHandler) -> None:
        self.connections.pop(inner, None)
        WEB_CONNECTIONS.set(self.open)
        if self._full and self.open < self.limit:
            self._full = False
            log.warning("web server accepting connections again", extra={"open": self.open})


class GatedConnection(asyncio.Protocol):
    """One connection: admitted by the gate when it opens (not when the factory is called, so a
    burst of accepts cannot overshoot the cap), then handed to aiohttp's protocol; a refused
    one never reaches aiohttp. It also keeps the header deadline: armed when the connection
    opens and at the first byte of each later request, disarmed when aiohttp has parsed the
    headers (`headers_in`, from the middleware), and closing the connection if it fires."""

    def __init__(self, server: web.Server, gate: ConnectionGate) -> None:
        self.server = server
        self.gate = gate
        self.inner: RequestHandler | None = None  # None: not admitted (or already lost)
        self.busy = False  # a request's headers are in and its response not yet done
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.gate.has_room():
            self.inner = inner = self.server()
            self.gate.add(inner, self)
            self._arm()
            inner.connection_made(transport)
            return
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(TOO_MANY)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.inner is not None:
            inner, self.inner = self.inner, None
            self.gate.release(inner)
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            if not self.busy:
                self._arm()  # before aiohttp parses: it may run the request at once
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.inner is not None:
            self.inner.eof_received()
        return None  # as aiohttp's: the transport closes itself

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def headers_in(self) -> None:
        self.busy = True
        self._disarm()

    def request_done(self) -> None:
        self.busy = False

    def _arm(self) -> None:
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(self.gate.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.inner is not None and not self.busy:
            WEB_SHED.labels("slow_headers").inc()
            self.inner.force_close()


class WebServer:
    name = "web"

    def __init__(self, host: str, port: int, limits: WebSection | None = None) -> None:
        """`limits`: the [web] timeouts and connection cap (its host and port are not used)."""
        self.host = host
        self.port = port
        self.limits = limits or WebSection()
        self.gate = ConnectionGate(self.limits.max_connections, self.limits.header_timeout_seconds)
        self.app = web.Application(middlewares=[self._deadlines])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._checks: dict[str, ReadinessCheck] = {}
        self.stopping = False

    @classmethod
    def from_config(cls, section: WebSection) -> WebServer:
        return cls(section.host, section.port, section)

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    @web.middleware
    async def _deadlines(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The headers are in: stop their clock. Read the whole body within the body timeout,
        else answer 408 and close the connection."""
        connection = self.gate.connections.get(request.protocol)
        if connection is not None:
            connection.headers_in()
        try:
            return await self._read_body_then(request, handler)
        finally:
            if connection is not None:
                connection.request_done()

    async def _read_body_then(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                await asyncio.wait_for(request.read(), self.limits.body_timeout_seconds)
            except TimeoutError:
                log.warning(
                    "request body not received in time",
                    extra={"path": request.path, "seconds": self.limits.body_timeout_seconds},
                )
                WEB_SHED.labels("slow_body").inc()
                late = web.json_response({"error": "request body not received in time"}, status=408)
                late.force_close()
                return late
        return await handler(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        results: dict[str, bool] = {"shutting_down": not self.stopping}
        for name, check in self._checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), 5))
            except Exception:
                results[name] = False
        ready = all(results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        # No lingering: a body not read (too slow, too large) is not drained, the connection
        # is closed after the answer.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=KEEPALIVE_SECONDS,
            lingering_time=0,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        gate = self.gate
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: GatedConnection(server, gate), self.host, self.port
        )
        if self.port == 0 and self._listener.sockets:
            self.port = self._listener.sockets[0].getsockname()[1]  # port 0: a free one (tests)
        log.info("web server listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()  # no new connections; those open finish below
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
