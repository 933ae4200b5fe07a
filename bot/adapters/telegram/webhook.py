"""Webhook mode: Telegram posts updates to a route on the project's one aiohttp server.

Every post must carry the secret given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`;
anything else gets 403 and is ignored. An update is handled before the answer, so a crash
mid-update makes Telegram send it again (the core tolerates repeats); a payment that could not
be recorded is answered 500 for the same reason. On shutdown, `ready` is cleared (new posts get
503 and Telegram retries them) and `drain` waits for the posts in flight, whose replies still
need the bot's HTTP client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.core.in_flight import InFlight

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookEndpoint:
    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        secret: str,
        failed: Callable[[int], bool],
    ) -> None:
        self._application = application
        self._secret = secret
        self._failed = failed
        self.ready = asyncio.Event()
        self._in_flight = InFlight()

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning(
                "webhook post with a wrong or missing secret", extra={"peer": request.remote}
            )
            return web.Response(status=403)
        if not self.ready.is_set():
            return web.Response(status=503)  # Telegram retries
        with self._in_flight.tracking():
            return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            update = Update.de_json(await request.json(), self._application.bot)
        except Exception:
            log.warning("webhook post that is not an update", exc_info=True)
            return web.Response(status=400)
        await self._application.update_processor.process_update(
            update, self._application.process_update(update)
        )
        if self._failed(update.update_id):
            return web.Response(status=500)
        return web.Response(status=200)

    async def drain(self, within: float) -> bool:
        """Wait until no post is being handled; False on timeout."""
        return await self._in_flight.drain(within)
