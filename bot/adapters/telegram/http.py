"""python-telegram-bot's HTTP port (`BaseRequest`) over aiohttp instead of httpx.

Every update the bot answers costs one or two Bot API calls, and with PTB's default
`HTTPXRequest` each call took about 1.5 ms of CPU on the development machine: httpcore's pool
re-checks every kept connection (a `poll` and anyio's attribute lookups per connection) on each
request and again when it returns, so the cost grows with the connections that concurrent
updates keep open. The same call through aiohttp (already a dependency, for the web server)
took about 0.14 ms (`bench/telegram_throughput.py` shows what this does to a whole update;
README, "Measured"). PTB documents `BaseRequest` as the place to plug in another HTTP library.

What PTB expects of it, kept here: the (status, body) pair of any HTTP answer (PTB turns
non-2xx answers into its own errors), `TimedOut` for a timeout and `NetworkError` for any other
transport failure, form-encoded parameters (multipart when files are sent) and the read
timeout PTB passes per call (it lengthens it for long polling itself). aiohttp has no
write timeout: a stalled upload is bounded by the read timeout that follows it.
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

READ_SECONDS = 5.0  # PTB's HTTPXRequest defaults
CONNECT_SECONDS = 5.0
POOL_SECONDS = 1.0
# A timeout PTB passes per call, or its "not given" marker (PTB's ODVInput[float]).
Timeout = DefaultValue[float] | float | DefaultValue[None] | None


def _given(value: object, default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value  # type: ignore[return-value]


class AiohttpRequest(BaseRequest):
    """One aiohttp session with up to `connections` kept connections to the Bot API."""

    __slots__ = ("_connections", "_session")

    def __init__(self, connections: int = 256) -> None:
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return READ_SECONDS

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        write_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: Timeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        connect = _given(connect_timeout, CONNECT_SECONDS)
        pool = _given(pool_timeout, POOL_SECONDS)
        timeout = aiohttp.ClientTimeout(
            sock_read=_given(read_timeout, READ_SECONDS),
            sock_connect=connect,
            connect=None if connect is None or pool is None else connect + pool,
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            data = request_data.json_parameters
            if files:
                form = aiohttp.FormData(data)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
        try:
            async with session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
