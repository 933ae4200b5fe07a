"""The process's one HTTP server (aiohttp): health, readiness, metrics and webhooks.

Stripe webhooks and Telegram's webhook mode are routes on this one server, so a deployment
exposes one port. Features add their routes (and readiness checks) before `start()`.
`GET /healthz` answers while the process runs; `GET /readyz` answers 200 only when every
readiness check passes (database reachable, adapters connected), so a load balancer sends
updates only to processes that can handle them; `GET /metrics` is Prometheus text.

Slow or stuck clients are shed so that webhooks keep flowing ([web] in the config):

- headers: a connection whose request line and headers have not all arrived
  `header_timeout_seconds` after it opened, or after its previous response when kept alive,
  is closed. aiohttp does this itself with its keep-alive timer (armed when a connection opens
  and after each response, it closes the connection if no complete request is waiting), so
  that timer is set to the header timeout; a client dribbling one header byte a second gains
  nothing;
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


TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n"
)


class ConnectionGate:
    """Counts open connections; a connection beyond the cap is answered 503 and closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._full = False

    def admit(self) -> bool:
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
        self.open += 1
        WEB_CONNECTIONS.set(self.open)
        return True

    def release(self) -> None:
        self.open -= 1
        WEB_CONNECTIONS.set(self.open)
        if self._full and self.open < self.limit:
            self._full = False
            log.warning("web server accepting connections again", extra={"open": self.open})


class GatedConnection(asyncio.Protocol):
    """One connection: admitted by the gate when it opens (not when the factory is called, so a
    burst of accepts cannot overshoot the cap), then handed to aiohttp's protocol; a refused
    one never reaches aiohttp."""

    def __init__(self, server: web.Server, gate: ConnectionGate) -> None:
        self.server = server
        self.gate = gate
        self.inner: RequestHandler | None = None  # None: not admitted (or already lost)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.gate.admit():
            self.inner = self.server()
            self.inner.connection_made(transport)
            return
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(TOO_MANY)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None:
            inner, self.inner = self.inner, None
            self.gate.release()
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
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


class WebServer:
    name = "web"

    def __init__(self, host: str, port: int, limits: WebSection | None = None) -> None:
        """`limits`: the [web] timeouts and connection cap (its host and port are not used)."""
        self.host = host
        self.port = port
        self.limits = limits or WebSection()
        self.gate = ConnectionGate(self.limits.max_connections)
        self.app = web.Application(middlewares=[self._body_deadline])
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
    async def _body_deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the whole body within the body timeout, else 408 and close the connection."""
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
        # The keep-alive timer is aiohttp's header timeout (see the module's docstring); no
        # lingering: a body not read (too slow, too large) is not drained, its connection closes.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=self.limits.header_timeout_seconds,
            lingering_time=0,
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
