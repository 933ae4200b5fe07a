"""The Discord adapter (discord.py 2.7): slash commands, buttons, DMs and a mentors channel.

- `commands`: the slash commands, each a core command with its options as arguments;
  `/admin` is a group hidden from non-admins, and the core checks the admin role anyway
  (from the member's guild roles against `[discord] admin_role_ids`).
- `render`: replies as Discord messages — instants as `<t:UNIX:F>` timestamps, long text in
  chunks, choices as persistent buttons whose custom_id is the command they send.
- `client`: interactions acknowledged at once and followed up with the core's replies
  (ephemeral in guilds); DM text as typed input; notices by DM; offered requests posted to the
  mentors channel and kept showing who took them.

`DiscordService` is what `mentorbot run` starts when `[discord] token` is set. Processes can
split the bot's shards between them (`[discord] shard_count`, `shard_ids`): each connects its
own shards and answers what arrives on them; the one owning shard 0 syncs the slash commands;
notices and mentors channel posts go out over REST from whichever process delivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.discord.client import PLATFORM, MentorbotClient
from bot.adapters.discord.spaces import DiscordSpaces
from bot.adapters.discord.venue import DiscordVenue
from bot.app import Marketplace
from bot.config import DiscordSection
from bot.core.web import WebServer

__all__ = ["PLATFORM", "DiscordService", "MentorbotClient"]

log = logging.getLogger(__name__)
READY_TIMEOUT = 60.0
IDENTIFY_PACE = 5.0  # discord.py identifies a process's shards one after another, 5 s apart
DRAIN_TIMEOUT = 10.0  # seconds for interactions in progress to finish on stop


class DiscordService:
    """Logs in, syncs the slash commands (shard 0's process), connects this process's shards,
    then delivers notices by DM. Ready (for /readyz) while every one of its shards is connected.

    `api_base` and `gateway_url` point discord.py elsewhere (a REST proxy, a test fake). It
    reads them from class attributes, so they hold for the whole process while the service
    runs: one Discord bot per process (tests run two services, for two shards, on one fake).
    """

    name = "discord"

    def __init__(
        self,
        app: Marketplace,
        settings: DiscordSection | None = None,
        *,
        web: WebServer | None = None,
        **client_options: Any,
    ) -> None:
        self.app = app
        self.settings = settings or app.config.discord
        self._client_options = client_options
        self.client: MentorbotClient | None = None
        self._connection: asyncio.Task[None] | None = None
        self._venue: DiscordVenue | None = None
        self._saved = self._redirected = _endpoints()
        if web is not None:
            web.add_readiness_check(self.name, self.ready)

    async def start(self) -> None:
        self._saved = _endpoints()
        if self.settings.api_base:
            Route.BASE = self.settings.api_base.rstrip("/")
        if self.settings.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.settings.gateway_url)
        self._redirected = _endpoints()
        self.client = MentorbotClient(self.app, self.settings, **self._client_options)
        try:
            await self._connect(self.client)
        except BaseException:
            await self.stop()
            raise
        self.app.notifier.register(PLATFORM, self.client.deliver)
        spaces = DiscordSpaces(self.client, self.settings.guild_ids)
        self.app.community.register(PLATFORM, spaces)
        self.app.community.register_private(PLATFORM, spaces)
        self.app.chat_links.register(PLATFORM, self.client.dm_link)
        await self.app.notifier.deliver_pending()
        self._add_venue(self.client)

    def _add_venue(self, client: MentorbotClient) -> None:
        """Workshops become scheduled events in the configured guild (bot/sessions/venues.py)."""
        cfg = self.app.config.workshops
        guild_id = cfg.discord_guild_id or next(iter(self.settings.guild_ids), 0)
        if guild_id:
            self._venue = DiscordVenue(client.http, guild_id, voice=cfg.discord_voice_channels)
            self.app.venues.append(self._venue)

    async def ready(self) -> bool:
        """Every shard this process owns is connected (for the web server's /readyz)."""
        return self.client is not None and self.client.connected()

    async def _connect(self, client: MentorbotClient) -> None:
        """Log in (which syncs the commands), then connect the shards and wait for READY."""
        await client.login(self.settings.token.reveal())
        self._connection = asyncio.create_task(client.connect(reconnect=True))
        self._connection.add_done_callback(_report_lost)
        ready = asyncio.create_task(client.wait_until_ready())
        timeout = READY_TIMEOUT + IDENTIFY_PACE * (len(self.settings.own_shards()) - 1)
        done, _pending = await asyncio.wait(
            {ready, self._connection}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self._connection in done:
                self._connection.result()  # raises why the gateway refused us
            raise RuntimeError("discord: the gateway did not get ready in time")

    async def stop(self) -> None:
        if self._venue is not None and self._venue in self.app.venues:
            self.app.venues.remove(self._venue)
        self._venue = None
        if self.client is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT):
                    await self.client.drain()
            self.app.community.unregister(PLATFORM)
            self.app.chat_links.unregister(PLATFORM)
            # Notices being sent need the client: let them finish before it closes.
            if not await self.app.notifier.unregister(PLATFORM, within=DRAIN_TIMEOUT):
                log.warning("discord: notices still being sent at shutdown")
            await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # already reported
                await self._connection
        if _endpoints() == self._redirected:  # not changed since by a service started later
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved


def _endpoints() -> tuple[str, yarl.URL]:
    """Where discord.py sends REST calls and opens the gateway, for the whole process."""
    return Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY


def _report_lost(connection: asyncio.Task[None]) -> None:
    """discord.py reconnects by itself; a connection that ends with an error is for good."""
    if not connection.cancelled() and connection.exception() is not None:
        log.error("discord: the gateway connection ended", exc_info=connection.exception())
