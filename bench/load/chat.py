"""The simulated people's side of Telegram: the tests' fake Bot API indexed per chat, and how a
person reads a message — by the commands its buttons carry (`/accept 12`, `/book 3 …`), never
by its English wording."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.adapters.telegram.callback_data import MAC_CHARS
from tests.fakes.fake_telegram import Call, FakeTelegram


class StepFailed(Exception):
    """A simulated person could not go on (an unanswered update, a missing notice)."""


# Which bot process (name-incarnation) is making the Bot API call being handled.
_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="?")


class IndexedTelegram(FakeTelegram):
    """The tests' fake Bot API, with its calls indexed by chat and query id and time-stamped,
    so thousands of simulated people can each wait for their own messages. Each bot process
    calls it under `/via/<name>-<incarnation>/` (its `base_url`), so every call is known by
    the process that made it (`sender`): a notice sent again after a kill -9 can be told from
    any other duplicate."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.by_chat: dict[int, list[tuple[float, Call]]] = defaultdict(list)
        self.by_query: dict[str, list[Call]] = defaultdict(list)
        self._chat_events: dict[int, asyncio.Event] = {}
        self._senders: dict[int, str] = {}  # id(call) → the process that made it

    def routes(self, app: web.Application) -> None:
        """The Bot API's route, and the same under each process's own prefix."""
        super().routes(app)
        app.router.add_post("/via/{caller}/bot{token}/{method}", self._endpoint)

    async def _endpoint(self, request: web.Request) -> web.Response:
        _CALLER.set(request.match_info.get("caller", "?"))  # this request's own task
        return await super()._endpoint(request)

    def sender(self, call: Call) -> str:
        return self._senders.get(id(call), "?")

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._senders[id(call)] = _CALLER.get()
        chat = call.params.get("chat_id")
        if isinstance(chat, int):
            self.by_chat[chat].append((time.time(), call))
            event = self._chat_events.get(chat)
            if event is not None:
                event.set()
        for key in ("callback_query_id", "pre_checkout_query_id"):
            if key in call.params:
                self.by_query[str(call.params[key])].append(call)

    def chat(self, chat_id: int) -> list[tuple[float, Call]]:
        return self.by_chat[chat_id]

    async def wait_chat(
        self, chat_id: int, since: int, predicate: Callable[[Call], bool], within: float
    ) -> tuple[int, Call] | None:
        """The first message to `chat_id` at index ≥ `since` matching `predicate`, waiting up
        to `within` seconds for it; None if it never came."""
        deadline = time.monotonic() + within
        calls = self.by_chat[chat_id]
        i = since
        while True:
            while i < len(calls):
                if calls[i][1].status == 200 and predicate(calls[i][1]):
                    return i, calls[i][1]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            event = self._chat_events.setdefault(chat_id, asyncio.Event())
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(left, 5.0))


def text_of(call: Call) -> str:
    return str(call.params.get("text", ""))


def is_message(call: Call) -> bool:
    return call.status == 200 and call.method.lower() == "sendmessage"


def command_of(button: dict[str, Any]) -> str:
    """The command (or answer) a button sends back when pressed. Its callback data is
    `s<minute>.<mac><payload>` (bot/adapters/telegram/callback_data.py); a payload too long
    for that is kept in the database under a token and reads here as ""."""
    data = str(button.get("callback_data", ""))
    if not data.startswith("s") or "." not in data:
        return ""
    return data.partition(".")[2][MAC_CHARS:]


def offers(prefix: str) -> Callable[[Call], bool]:
    """A message with a button whose command starts with `prefix` (e.g. "/accept ")."""
    return lambda c: is_message(c) and any(command_of(b).startswith(prefix) for b in c.buttons)


def button(call: Call, prefix: str) -> dict[str, Any]:
    """The first button on `call` whose command starts with `prefix`."""
    for b in call.buttons:
        if command_of(b).startswith(prefix):
            return b
    shown = [command_of(b) or b.get("url", "?") for b in call.buttons]
    raise StepFailed(f"no {prefix!r} button on {text_of(call)[:60]!r}: {shown}")


def argument(call: Call, prefix: str, n: int = 0) -> int:
    """The `n`th number after `prefix` in the command of `call`'s `prefix` button: the request
    of `/accept 12`, the session of `/outcome 7 completed`."""
    words = command_of(button(call, prefix))[len(prefix) :].split()
    try:
        return int(words[n])
    except (IndexError, ValueError):
        raise StepFailed(f"no number in {command_of(button(call, prefix))!r}") from None
