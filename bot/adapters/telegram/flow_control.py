"""Staying within Telegram's limits, and keeping each user's updates in order.

`FloodControl` is python-telegram-bot's `AIORateLimiter` (about 30 messages/s overall and
20/min per group; after a 429 every request waits `retry_after`, then the request is repeated)
with retries switched on, plus a per-chat bucket for private chats (bursts of three, then one a
second). `PerUserOrder` handles updates concurrently across users but one at a time per user,
so a quick "goals" answer is never handled before the `/mentor` it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

from bot.config import TelegramSection

PER_CHAT_BURST = 3
PER_CHAT_SECONDS = 3.0
OVERALL_PER_SECOND = 30.0  # Telegram's limit for one bot; [telegram] messages_per_second
MAX_IDLE_LIMITERS = 1024


def configured_flood_control(
    tg: TelegramSection, per_chat_burst: int = PER_CHAT_BURST
) -> FloodControl | None:
    """The limiter `[telegram]` asks for; None when `flood_control = false`, so a benchmark
    measures the processes rather than the limiter."""
    if not tg.flood_control:
        return None
    return FloodControl(tg.max_retries, per_chat_burst, messages_per_second=tg.messages_per_second)


class FloodControl(AIORateLimiter):
    def __init__(
        self,
        max_retries: int,
        per_chat_burst: int = PER_CHAT_BURST,
        per_chat_seconds: float = PER_CHAT_SECONDS,
        messages_per_second: float = OVERALL_PER_SECOND,
    ) -> None:
        super().__init__(max_retries=max_retries, overall_max_rate=messages_per_second)
        self._per_chat = (per_chat_burst, per_chat_seconds)
        self._chat_limiters: dict[int, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        if len(self._chat_limiters) > MAX_IDLE_LIMITERS:
            for key, limiter in list(self._chat_limiters.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chat_limiters[key]
        if chat_id not in self._chat_limiters:
            self._chat_limiters[chat_id] = AsyncLimiter(*self._per_chat)
        return self._chat_limiters[chat_id]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id: Any = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)
        if isinstance(chat_id, int) and chat_id > 0:  # a private chat
            async with self._chat_limiter(chat_id):
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


class PerUserOrder(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        if user is None:
            await coroutine
            return
        lock = self._locks.setdefault(user.id, asyncio.Lock())
        self._users[user.id] = self._users.get(user.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[user.id] -= 1
            if not self._users[user.id]:
                del self._users[user.id], self._locks[user.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
