"""A loopback Discord for tests: a gateway WebSocket and the REST routes the bot uses.

The real discord.py client connects to it (`api_base`, `gateway_url`), logs in, syncs its slash
commands and receives interactions exactly as from Discord: the gateway sends HELLO, answers
heartbeats, and on IDENTIFY dispatches READY (with `application`) and GUILD_CREATE; tests then
make users run slash commands, press buttons, submit text boxes and write DMs. Every REST call
is recorded, and every message the bot creates (channel posts, DMs, interaction responses and
follow-ups) is kept with its buttons, so a test can press them like a user would.

Sharding works as on Discord: IDENTIFY's `shard: [id, count]` (none: `[0, 1]`) decides which
guilds a connection gets in READY and GUILD_CREATE, those with `(guild_id >> 22) % count == id`;
a guild's events (interactions, messages) go only to the connection of the shard owning it, and
events with no guild (DMs) to shard 0. `GET /gateway/bot` recommends `shard_count` shards. A
test can ask a shard to reconnect (RECONNECT) and hold its RESUME unanswered, like an outage.

JSON answers carry Content-Type exactly `application/json`: discord.py reads anything else
(aiohttp's `json_response` adds `; charset=utf-8`) as text. Interactions carry every field
discord.py reads, `attachment_size_limit` included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web

from bot.adapters.discord import DiscordService
from bot.app import Marketplace
from bot.config import Config
from tests.support import make_config

EPHEMERAL = 64
WAIT_LIMIT = 15.0  # seconds
OPTION_TYPES = {str: 3, int: 4, bool: 5}
TIMESTAMP = "2026-03-02T08:00:00.000000+00:00"
ADMIN_PERMISSIONS = str((1 << 3) | (1 << 5))  # administrator, manage guild
MEMBER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 31))  # view, send, use commands
BODY = web.RequestKey("body", object)  # the parsed JSON body of a REST request


@dataclass(frozen=True)
class Call:
    """One REST request the bot made."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass(frozen=True)
class FakeGuild:
    """A guild (server) with a general channel; the first one also has the mentors channel."""

    id: int
    name: str
    general_channel: int


@dataclass(frozen=True)
class FakeUser:
    id: int
    name: str
    roles: tuple[int, ...] = ()
    locale: str = "en-US"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": False,
            "public_flags": 0,
        }


@dataclass
class Interaction:
    """An interaction sent to the bot, with what the bot answered to it."""

    id: int
    token: str
    user: FakeUser
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    deleted_original: bool = False

    @property
    def texts(self) -> list[str]:
        return [m["content"] for m in self.messages]

    def text(self) -> str:
        return "\n".join(self.texts)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons of a message, in order."""
    return [
        c
        for row in message.get("components", [])
        for c in row.get("components", [])
        if c.get("type") == 2
    ]


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [b["custom_id"] for b in buttons(message) if "custom_id" in b]


Shard = tuple[int, int]  # (shard id, shard count), as IDENTIFY names it


class FakeDiscord:
    """The gateway and REST API of a guild with a general and a mentors channel (more guilds
    with `add_guild`)."""

    def __init__(self, shard_count: int = 1) -> None:
        self._ids = itertools.count(900_000_000_000_000_000)
        self._guild_times = itertools.count(100_000_000_000)  # the time part of guild ids
        self.shard_count = shard_count  # what GET /gateway/bot recommends
        self.token = "fake-discord-token"
        self.app_id = self.new_id()
        self.bot = {
            "id": str(self.app_id),
            "username": "mentorbot",
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
        }
        self.guild_id = self.new_id()
        self.admin_role = self.new_id()
        self.community_role = self.new_id()  # a course's community role (tests' [community])
        self.category = self.new_id()  # a category for private mentorship channels
        self.general_channel = self.new_id()
        self.mentors_channel = self.new_id()
        self.guild = FakeGuild(self.guild_id, "Mentoring", self.general_channel)
        self.guilds = {self.guild_id: self.guild}
        # Who is a member of which guild, with which roles: (guild id, user id) → user.
        self.members: dict[tuple[int, int], FakeUser] = {}
        self._channel_guild = {self.general_channel: self.guild_id}
        self._channel_guild[self.mentors_channel] = self.guild_id
        self._channel_guild[self.category] = self.guild_id
        # Channels the bot created (POST /guilds/{guild}/channels), as Discord returned them.
        self.created_channels: dict[int, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.users: dict[int, FakeUser] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[str, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.dm_channels: dict[int, int] = {}  # user id → DM channel id
        self.identified = 0
        self.identifies: list[Shard] = []  # the shard each IDENTIFY asked for, in order
        self.held: set[int] = set()  # shards whose IDENTIFY or RESUME waits for `release`
        # connections whose IDENTIFY or RESUME is held, with that packet
        self.waiting: list[tuple[web.WebSocketResponse, dict[str, Any]]] = []
        self._open: set[web.WebSocketResponse] = set()
        self._sockets: dict[web.WebSocketResponse, Shard] = {}  # identified or resumed
        self._sessions: dict[str, Shard] = {}
        self._seq: dict[web.WebSocketResponse, int] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Guild scheduled events and voice channels the bot made (workshops), by id.
        self.scheduled_events: dict[int, dict[str, Any]] = {}
        self.voice_channels: dict[int, dict[str, Any]] = {}
        # The instant Discord compares event starts with (the tests' clock); None: no check.
        self.now: Callable[[], datetime] | None = None

    def new_id(self) -> int:
        return next(self._ids)

    # ── running ────────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        api = "/api/v10"
        routes = [
            ("GET", "/users/@me", self._me),
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/oauth2/applications/@me", self._application),
            ("PUT", "/applications/{app}/commands", self._sync),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._sync),
            ("POST", "/interactions/{id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_original),
            ("POST", "/users/@me/channels", self._open_dm),
            ("POST", "/channels/{channel}/messages", self._post_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("GET", "/guilds/{guild}/members/{user}", self._get_member),
            ("PUT", "/guilds/{guild}/members/{user}/roles/{role}", self._add_role),
            ("DELETE", "/guilds/{guild}/members/{user}/roles/{role}", self._remove_role),
            ("GET", "/channels/{channel}", self._get_channel),
            ("POST", "/guilds/{guild}/channels", self._create_channel),
            ("DELETE", "/channels/{channel}", self._delete_channel),
        ]
        routes += workshop_routes(self)  # guild scheduled events, voice channels
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for ws in list(self._open):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        """Wait until `predicate()` is truthy (checked after every change); returns it.

        WAIT_LIMIT only turns a bot that never answers into a failure instead of a hang.
        """
        async with asyncio.timeout(WAIT_LIMIT), self._changed:
            await self._changed.wait_for(predicate)
        return predicate()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ── what tests do ─────────────────────────────────────────────────────────────────────

    def user(self, name: str, *, admin: bool = False, locale: str = "en-US") -> FakeUser:
        user = FakeUser(self.new_id(), name, (self.admin_role,) if admin else (), locale)
        self.users[user.id] = user
        return user

    @staticmethod
    def shard_of(guild_id: int, shard_count: int) -> int:
        """The shard a guild belongs to, by Discord's formula."""
        return (guild_id >> 22) % shard_count

    def add_guild(self, name: str, *, shard: int, of: int) -> FakeGuild:
        """Another guild, with a general channel, whose id puts it on `shard` of `of` shards."""
        guild_id = next(self._guild_times) << 22
        while self.shard_of(guild_id, of) != shard:
            guild_id = next(self._guild_times) << 22
        guild = FakeGuild(guild_id, name, self.new_id())
        self.guilds[guild_id] = guild
        self._channel_guild[guild.general_channel] = guild_id
        return guild

    async def slash(
        self, user: FakeUser, command: str, *, guild: FakeGuild | None = None, **options: Any
    ) -> Interaction:
        """Run `/command` (`"admin course add"` for subcommands) in the general channel of
        `guild` (the first guild by default)."""
        guild = guild or self.guild
        names = command.split()
        leaf = [
            {"name": k, "type": OPTION_TYPES[type(v)], "value": v}
            for k, v in options.items()
            if v is not None
        ]
        for depth, name in reversed(list(enumerate(names[1:], start=1))):
            kind = 1 if depth == len(names) - 1 else 2  # subcommand, subcommand group
            leaf = [{"name": name, "type": kind, "options": leaf}]
        synced = {c["name"]: c for c in self.commands.get(guild.id, [])}
        data = {
            "id": synced[names[0]]["id"] if names[0] in synced else str(self.new_id()),
            "name": names[0],
            "type": 1,
            "options": leaf,
            "guild_id": str(guild.id),
        }
        return await self._interact(2, user, data, channel_id=guild.general_channel)

    async def press(
        self,
        user: FakeUser,
        message: dict[str, Any],
        custom_id: str | None = None,
        *,
        label: str | None = None,
    ) -> Interaction:
        """Press a button of a message the bot sent, by custom_id or by label."""
        if custom_id is None:
            matching = [b for b in buttons(message) if b.get("label") == label]
            assert matching, f"no button {label!r} in {buttons(message)}"
            custom_id = matching[0]["custom_id"]
        data = {"custom_id": custom_id, "component_type": 2}
        channel_id = int(message["channel_id"])
        return await self._interact(3, user, data, channel_id=channel_id, message=message)

    async def submit(self, user: FakeUser, opened: Interaction, text: str) -> Interaction:
        """Type `text` into the text box an interaction's answer opened, and submit it."""
        modal = next(c["data"] for c in opened.callbacks if c["type"] == 9)

        def filled(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for c in components:
                if c["type"] == 4:
                    out.append({"type": 4, "custom_id": c["custom_id"], "value": text})
                elif c["type"] == 1:
                    out.append({"type": 1, "components": filled(c["components"])})
                elif c["type"] == 18:
                    out.append({"type": 18, "component": filled([c["component"]])[0]})
            return out

        data = {"custom_id": modal["custom_id"], "components": filled(modal["components"])}
        channel_id = int(opened.payload["channel_id"])
        message = opened.payload.get("message")
        return await self._interact(5, user, data, channel_id=channel_id, message=message)

    async def send_dm(
        self, user: FakeUser, content: str, reply_to: dict[str, Any] | None = None
    ) -> None:
        """The user writes to the bot in a DM; `reply_to`: as a reply to that message (Discord
        sends its `message_reference` and the `referenced_message` itself)."""
        channel_id = self._dm_channel(user.id)
        message = self._message(channel_id, content, author=user.payload())
        if reply_to is not None:
            message["type"] = 19  # REPLY
            message["message_reference"] = {
                "type": 0,
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
            }
            message["referenced_message"] = reply_to
        await self.dispatch("MESSAGE_CREATE", message)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event where Discord would: a guild's to the connections of the shard
        owning the guild, one without a guild (a DM) to those of shard 0."""
        guild_id = data.get("guild_id")
        for ws, (shard, count) in list(self._sockets.items()):
            if shard == (self.shard_of(int(guild_id), count) if guild_id else 0):
                await self._send(ws, event, data)

    async def reconnect(self, shard: int) -> None:
        """Ask the connections of `shard` to reconnect (opcode 7), as Discord does at times."""
        for ws, (shard_id, _count) in list(self._sockets.items()):
            if shard_id == shard:
                await ws.send_json({"op": 7, "s": None, "t": None, "d": None})

    async def release(self, shard: int) -> None:
        """Answer the IDENTIFY or RESUME of a held shard, and those that come later."""
        self.held.discard(shard)
        waiting, self.waiting = self.waiting, []
        for ws, packet in waiting:
            if self._shard_for(packet) == shard and not ws.closed:
                await self._answer(ws, packet)
            elif not ws.closed:
                self.waiting.append((ws, packet))

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq[ws] = self._seq.get(ws, 0) + 1
        await ws.send_json({"op": 0, "t": event, "s": self._seq[ws], "d": data})

    async def reply(self, interaction: Interaction, containing: str) -> dict[str, Any]:
        """The bot's follow-up to `interaction` that contains `containing` (waits for it)."""

        def found() -> dict[str, Any] | None:
            return next((m for m in interaction.messages if containing in m["content"]), None)

        try:
            message: dict[str, Any] = await self.wait_for(found)
        except TimeoutError:
            got = interaction.texts
            raise AssertionError(f"no reply with {containing!r}; got {got}") from None
        return message

    async def latest_dm(self, user: FakeUser, containing: str) -> dict[str, Any]:
        """The latest DM to `user` that contains `containing` (waits for it)."""

        def found() -> dict[str, Any] | None:
            return next(
                (m for m in reversed(self.dms_to(user)) if containing in m["content"]), None
            )

        try:
            message: dict[str, Any] = await self.wait_for(found)
        except TimeoutError:
            got = [m["content"] for m in self.dms_to(user)]
            raise AssertionError(f"no DM with {containing!r}; got {got}") from None
        return message

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    def dms_to(self, user: FakeUser) -> list[dict[str, Any]]:
        channel = self.dm_channels.get(user.id)
        return [] if channel is None else self.channel_messages(channel)

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    # ── payloads ───────────────────────────────────────────────────────────────────────────

    def _member(self, user: FakeUser) -> dict[str, Any]:
        admin = self.admin_role in user.roles
        return {
            "user": user.payload(),
            "roles": [str(r) for r in user.roles],
            "nick": None,
            "avatar": None,
            "joined_at": TIMESTAMP,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "permissions": ADMIN_PERMISSIONS if admin else MEMBER_PERMISSIONS,
        }

    def _channel(self, channel_id: int) -> dict[str, Any]:
        if channel_id in self.dm_channels.values():
            user_id = next(u for u, c in self.dm_channels.items() if c == channel_id)
            return {
                "id": str(channel_id),
                "type": 1,
                "recipients": [self.users[user_id].payload()],
                "last_message_id": None,
                "flags": 0,
            }
        name = "mentors" if channel_id == self.mentors_channel else "general"
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self._channel_guild[channel_id]),
            "name": name,
            "position": 0 if name == "general" else 1,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _guild(self, guild: FakeGuild) -> dict[str, Any]:
        def role(role_id: int, name: str, position: int, permissions: str) -> dict[str, Any]:
            return {
                "id": str(role_id),
                "name": name,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": position,
                "permissions": permissions,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }

        channels = [guild.general_channel]
        if guild.id == self.guild_id:
            channels.append(self.mentors_channel)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "owner_id": str(self.new_id()),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [
                role(guild.id, "@everyone", 0, MEMBER_PERMISSIONS),
                role(self.admin_role, "marketplace-admin", 1, ADMIN_PERMISSIONS),
                *(
                    [role(self.community_role, "course-community", 2, "0")]
                    if guild.id == self.guild_id
                    else []
                ),
            ],
            "emojis": [],
            "stickers": [],
            "channels": [self._channel(c) for c in channels],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "member_count": 10,
            "large": False,
            "unavailable": False,
            "joined_at": TIMESTAMP,
        }

    def _message(
        self,
        channel_id: int,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        flags: int = 0,
        interaction: Interaction | None = None,
    ) -> dict[str, Any]:
        message_id = self.new_id()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0 if interaction is None else 20,
            "author": author or self.bot,
            "content": content,
            "components": components or [],
            "flags": flags,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
        }
        if channel_id not in self.dm_channels.values():
            message["guild_id"] = str(self._channel_guild.get(channel_id, self.guild_id))
        self.messages[message_id] = message
        return message

    def _dm_channel(self, user_id: int) -> int:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.new_id()
        return self.dm_channels[user_id]

    async def _interact(
        self,
        kind: int,
        user: FakeUser,
        data: dict[str, Any],
        *,
        channel_id: int,
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        interaction_id = self.new_id()
        token = f"token-{interaction_id}"
        in_dm = channel_id in self.dm_channels.values()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.app_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": user.locale,
            "app_permissions": ADMIN_PERMISSIONS,
            "entitlements": [],
            "authorizing_integration_owners": {
                "0": str(self._channel_guild.get(channel_id, self.guild_id))
            },
            "context": 1 if in_dm else 0,
            "attachment_size_limit": 8 * 1024 * 1024,
            "channel_id": str(channel_id),
            "channel": self._channel(channel_id),
        }
        if in_dm:
            payload["user"] = user.payload()
        else:
            guild_id = str(self._channel_guild[channel_id])
            payload["guild_id"] = guild_id
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": guild_id, "locale": "en-US", "features": []}
            payload["member"] = self._member(user)
            self.members[(int(guild_id), user.id)] = user
        if message is not None:
            payload["message"] = message
        record = Interaction(interaction_id, token, user, payload)
        self.interactions[token] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    # ── REST ───────────────────────────────────────────────────────────────────────────────

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            headers={"Content-Type": "application/json"},
        )

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.path != "/gateway" and request.can_read_body:
            if request.content_type.startswith("multipart/"):
                form = await request.post()
                body = json.loads(str(form.get("payload_json", "{}")))
            else:
                raw = await request.read()
                body = json.loads(raw) if raw else None
        request[BODY] = body
        if request.path != "/gateway":
            self.calls.append(Call(request.method, request.path, dict(request.query), body))
        response = await handler(request)
        await self._notify()
        return response

    def set_member(self, user: FakeUser, guild: FakeGuild | None = None) -> None:
        """`user` is a member of `guild` with `user.roles` now (an admin gave or took a role)."""
        self.members[((guild or self.guild).id, user.id)] = user

    async def _get_member(self, request: web.Request) -> web.Response:
        """GET /guilds/{guild}/members/{user}: the member as the guild has them now, or
        Discord's 404 Unknown Member (code 10007)."""
        key = (int(request.match_info["guild"]), int(request.match_info["user"]))
        member = self.members.get(key)
        if member is None:
            return self._json({"message": "Unknown Member", "code": 10007}, 404)
        return self._json(self._member(member))

    def member_roles(self, user: FakeUser, guild: FakeGuild | None = None) -> tuple[int, ...]:
        """The roles `user` holds in `guild` now (none when not a member)."""
        member = self.members.get(((guild or self.guild).id, user.id))
        return () if member is None else member.roles

    def _role_change(self, request: web.Request, add: bool) -> web.Response:
        """PUT/DELETE /guilds/{guild}/members/{user}/roles/{role}: 204, or Discord's 404s
        Unknown Member (10007) and Unknown Role (10011)."""
        guild_id = int(request.match_info["guild"])
        key = (guild_id, int(request.match_info["user"]))
        role = int(request.match_info["role"])
        member = self.members.get(key)
        if member is None:
            return self._json({"message": "Unknown Member", "code": 10007}, 404)
        known = {self.admin_role, guild_id} | (
            {self.community_role} if guild_id == self.guild_id else set()
        )
        if role not in known:
            return self._json({"message": "Unknown Role", "code": 10011}, 404)
        roles = [r for r in member.roles if r != role] + ([role] if add else [])
        self.members[key] = FakeUser(member.id, member.name, tuple(roles), member.locale)
        return web.Response(status=204)

    async def _add_role(self, request: web.Request) -> web.Response:
        return self._role_change(request, add=True)

    async def _remove_role(self, request: web.Request) -> web.Response:
        return self._role_change(request, add=False)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if channel_id in self.created_channels:
            return self._json(self.created_channels[channel_id])
        if channel_id == self.category:
            return self._json(
                {
                    "id": str(channel_id),
                    "type": 4,
                    "guild_id": str(self.guild_id),
                    "name": "mentorships",
                    "position": 2,
                    "permission_overwrites": [],
                    "flags": 0,
                }
            )
        if channel_id in self._channel_guild or channel_id in self.dm_channels.values():
            return self._json(self._channel(channel_id))
        return self._json({"message": "Unknown Channel", "code": 10003}, 404)

    async def _create_channel(self, request: web.Request) -> web.Response:
        """POST /guilds/{guild}/channels: a channel with the given parent and permission
        overwrites (each `{id, type: 0 role | 1 member, allow, deny}`, bit sets as strings)."""
        guild_id = int(request.match_info["guild"])
        body = request[BODY]
        parent = body.get("parent_id")
        if parent is not None and self._channel_guild.get(int(parent)) != guild_id:
            return self._json({"message": "Invalid Form Body", "code": 50035}, 400)
        limit = body.get("user_limit", 0)
        if body.get("type") == 2 and not 0 <= limit <= 99:
            return _invalid(self, "user_limit", "int value should be less than or equal to 99.")
        channel_id = self.new_id()
        channel = {
            "id": str(channel_id),
            "type": body.get("type", 0),
            "guild_id": str(guild_id),
            "name": body["name"],
            "position": 0,
            "parent_id": None if parent is None else str(parent),
            "permission_overwrites": [
                {
                    "id": str(o["id"]),
                    "type": o["type"],
                    "allow": str(o.get("allow", "0")),
                    "deny": str(o.get("deny", "0")),
                }
                for o in body.get("permission_overwrites", [])
            ],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if channel["type"] == 2:  # a voice channel (workshops): seats as its user limit
            channel.update(user_limit=limit, bitrate=64000, rtc_region=None)
            self.voice_channels[channel_id] = channel
        self.created_channels[channel_id] = channel
        self._channel_guild[channel_id] = guild_id
        return self._json(channel, 201)

    async def _delete_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        channel = self.created_channels.pop(channel_id, None)
        self.voice_channels.pop(channel_id, None)
        if channel is None:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        return self._json(channel)

    def can_view(self, channel_id: int, user: FakeUser) -> bool:
        """Whether `user` may see a created channel, by its overwrites: @everyone's, then the
        member's roles', then the member's own (Discord's order; view is bit 10)."""
        channel = self.created_channels[channel_id]
        view = 1 << 10
        allowed = True
        overwrites = {(o["type"], o["id"]): o for o in channel["permission_overwrites"]}
        everyone = overwrites.get((0, channel["guild_id"]))
        if everyone is not None and int(everyone["deny"]) & view:
            allowed = False
        for role in self.member_roles(user):
            o = overwrites.get((0, str(role)))
            if o is not None and int(o["allow"]) & view:
                allowed = True
        own = overwrites.get((1, str(user.id)))
        if own is not None:
            allowed = bool(int(own["allow"]) & view) or (allowed and not int(own["deny"]) & view)
        return allowed

    async def _unknown(self, request: web.Request) -> web.Response:
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    async def _me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return self._json({"message": "401: Unauthorized", "code": 0}, 401)
        return self._json(self.bot)

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return self._json(
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _application(self, request: web.Request) -> web.Response:
        return self._json(
            {
                "id": str(self.app_id),
                "name": "mentorbot",
                "icon": None,
                "description": "",
                "summary": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": {**self.bot, "bot": False, "id": str(self.new_id()), "username": "owner"},
                "flags": 0,
                "team": None,
                "interactions_endpoint_url": None,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        synced = [
            {
                **c,
                "id": str(self.new_id()),
                "application_id": str(self.app_id),
                "version": "1",
                **({"guild_id": guild} if guild else {}),
            }
            for c in request[BODY]
        ]
        self.commands[int(guild) if guild else None] = synced
        return self._json(synced)

    async def _callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or str(record.id) != request.match_info["id"]:
            return self._json({"message": "Unknown interaction", "code": 10062}, 404)
        if record.callbacks:
            return self._json(
                {"message": "Interaction has already been acknowledged.", "code": 40060}, 400
            )
        body = request[BODY]
        record.callbacks.append(body)
        data = body.get("data") or {}
        resource: dict[str, Any] = {"type": body["type"]}
        if body["type"] in (4, 7):
            message = self._message(
                int(record.payload["channel_id"]),
                data.get("content") or "",
                components=data.get("components"),
                flags=data.get("flags") or 0,
                interaction=record,
            )
            record.messages.append(message)
            resource["message"] = message
        return self._json(
            {
                "interaction": {
                    "id": str(record.id),
                    "type": record.payload["type"],
                    "response_message_loading": body["type"] == 5,
                    "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
                },
                "resource": resource,
            }
        )

    async def _followup(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or not record.callbacks:
            return self._json({"message": "Unknown Webhook", "code": 10015}, 404)
        body = request[BODY]
        message = self._message(
            int(record.payload["channel_id"]),
            body.get("content") or "",
            components=body.get("components"),
            flags=body.get("flags") or 0,
            interaction=record,
        )
        record.messages.append(message)
        return self._json(message)

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None:
            return self._json({"message": "Unknown Webhook", "code": 10015}, 404)
        target = (
            record.messages[0]
            if request.match_info["message"] == "@original" and record.messages
            else self.messages.get(int(record.payload["message"]["id"]))
            if request.match_info["message"] == "@original" and "message" in record.payload
            else self.messages.get(int(request.match_info["message"]))
        )
        if target is None:
            return self._json({"message": "Unknown Message", "code": 10008}, 404)
        self._apply_edit(target, request[BODY])
        return self._json(target)

    async def _delete_original(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None:
            return self._json({"message": "Unknown Webhook", "code": 10015}, 404)
        record.deleted_original = True
        return web.Response(status=204)

    async def _open_dm(self, request: web.Request) -> web.Response:
        user_id = int(request[BODY]["recipient_id"])
        if user_id not in self.users:
            return self._json({"message": "Unknown User", "code": 10013}, 404)
        return self._json(self._channel(self._dm_channel(user_id)))

    async def _post_message(self, request: web.Request) -> web.Response:
        body = request[BODY]
        message = self._message(
            int(request.match_info["channel"]),
            body.get("content") or "",
            components=body.get("components"),
            flags=body.get("flags") or 0,
        )
        return self._json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message["channel_id"] != request.match_info["channel"]:
            return self._json({"message": "Unknown Message", "code": 10008}, 404)
        self._apply_edit(message, request[BODY])
        return self._json(message)

    @staticmethod
    def _apply_edit(message: dict[str, Any], body: dict[str, Any]) -> None:
        if "content" in body:
            message["content"] = body["content"] or ""
        if "components" in body:
            message["components"] = body["components"] or []
        message["edited_timestamp"] = TIMESTAMP

    # ── gateway ────────────────────────────────────────────────────────────────────────────

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._open.add(ws)
        await ws.send_json({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": 45000}})
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            packet = json.loads(frame.data)
            if packet["op"] == 1:
                await ws.send_json({"op": 11, "s": None, "t": None, "d": None})
            elif packet["op"] in (2, 6):
                shard = self._shard_for(packet)
                if shard is None:  # a RESUME of a session we never started: identify anew
                    await ws.send_json({"op": 9, "s": None, "t": None, "d": False})
                elif shard in self.held:
                    self.waiting.append((ws, packet))
                    await self._notify()
                else:
                    await self._answer(ws, packet)
        self._open.discard(ws)
        self._sockets.pop(ws, None)
        self._seq.pop(ws, None)
        return ws

    def _shard_for(self, packet: dict[str, Any]) -> int | None:
        """The shard an IDENTIFY (op 2) asks for, or a RESUME's (op 6) session was on."""
        if packet["op"] == 2:
            return int((packet["d"].get("shard") or (0, 1))[0])
        resumed = self._sessions.get(packet["d"].get("session_id"))
        return None if resumed is None else resumed[0]

    async def _answer(self, ws: web.WebSocketResponse, packet: dict[str, Any]) -> None:
        """READY and the shard's guilds for an IDENTIFY; RESUMED for a RESUME."""
        if packet["op"] == 6:
            self._sockets[ws] = self._sessions[packet["d"]["session_id"]]
            await self._send(ws, "RESUMED", {})
            await self._notify()
            return
        shard_id, count = (int(n) for n in packet["d"].get("shard") or (0, 1))
        self.identified += 1
        self.identifies.append((shard_id, count))
        session = f"session-{self.identified}"
        self._sessions[session] = (shard_id, count)
        self._sockets[ws] = (shard_id, count)
        guilds = [g for g in self.guilds.values() if self.shard_of(g.id, count) == shard_id]
        ready = {
            "v": 10,
            "user": self.bot,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session,
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, count],
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(ws, "READY", ready)
        for guild in guilds:
            await self._send(ws, "GUILD_CREATE", self._guild(guild))
        await self._notify()


def discord_settings(fake: FakeDiscord) -> dict[str, Any]:
    """A `[discord]` section pointed at the fake: its guild, mentors channel and admin role."""
    return {
        "token": fake.token,
        "guild_ids": [fake.guild_id],
        "mentors_channel_id": fake.mentors_channel,
        "admin_role_ids": [fake.admin_role],
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
    }


def discord_config(fake: FakeDiscord, **sections: dict[str, Any]) -> Config:
    """The tests' config with Discord pointed at the fake."""
    discord = {**discord_settings(fake), **sections.pop("discord", {})}
    return make_config(discord=discord, **sections)


class DiscordBot:
    """The real DiscordService (discord.py inside) on a marketplace, connected to the fake."""

    def __init__(self, fake: FakeDiscord, app: Marketplace) -> None:
        self.fake = fake
        self.app = app
        self.service: DiscordService | None = None

    async def start(self) -> DiscordBot:
        # Ready as soon as GUILD_CREATE is in, instead of discord.py's 2 s wait for more guilds.
        self.service = DiscordService(self.app, guild_ready_timeout=0.01)
        await self.service.start()
        return self

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    async def restart(self) -> None:
        """A new process's client: nothing kept in memory but what the database holds."""
        await self.stop()
        await self.start()


# ── workshops: guild scheduled events and voice channels ──────────────────────────────────────
# As Discord's API documents them: POST /guilds/{guild}/scheduled-events (name 1-100,
# privacy_level 2, entity_type 1 stage / 2 voice with channel_id, 3 external with
# entity_metadata.location and scheduled_end_time and no channel; a start in the past is
# refused), PATCH partial, a completed or cancelled event cannot be edited; DELETE answers 204;
# an unknown event is 404 code 10070, an unknown guild 10004, an invalid body 400 code 50035.

SCHEDULED = 1
ACTIVE = 2
COMPLETED = 3
CANCELED = 4


def _invalid(
    fake: FakeDiscord, field_name: str, message: str, code: str = "BASE_TYPE_INVALID"
) -> web.Response:
    """Discord's 400 for a form field it refuses (50035, the field's error code and words)."""
    return fake._json(
        {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {field_name: {"_errors": [{"code": code, "message": message}]}},
        },
        400,
    )


def _event_problem(fake: FakeDiscord, event: dict[str, Any]) -> web.Response | None:
    name = event.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        return _invalid(
            fake, "name", "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH"
        )
    if event.get("privacy_level") != 2:
        return _invalid(fake, "privacy_level", "Value must be one of {2}.")
    kind = event.get("entity_type")
    if kind not in (1, 2, 3):
        return _invalid(fake, "entity_type", "Value must be one of {1, 2, 3}.")
    start = event.get("scheduled_start_time")
    end = event.get("scheduled_end_time")
    if not isinstance(start, str):
        return _invalid(fake, "scheduled_start_time", "This field is required")
    begins = datetime.fromisoformat(start)
    if kind == 3:
        location = (event.get("entity_metadata") or {}).get("location")
        if not isinstance(location, str) or not 1 <= len(location) <= 100:
            return _invalid(fake, "entity_metadata", "location is required for external events")
        if not isinstance(end, str):
            return _invalid(fake, "scheduled_end_time", "Required for external events")
        if event.get("channel_id") is not None:
            return _invalid(fake, "channel_id", "Must be null for external events")
    elif event.get("channel_id") is None:
        return _invalid(fake, "channel_id", "Required for stage and voice events")
    if isinstance(end, str) and datetime.fromisoformat(end) <= begins:
        return _invalid(fake, "scheduled_end_time", "Must be after the start time")
    description = event.get("description")
    if description is not None and len(description) > 1000:
        return _invalid(
            fake, "description", "Must be 1000 or fewer in length.", "BASE_TYPE_MAX_LENGTH"
        )
    return None


def workshop_routes(self: FakeDiscord) -> list[tuple[str, str, Any]]:
    async def create_event(request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild"])
        if guild_id not in self.guilds:
            return self._json({"message": "Unknown Guild", "code": 10004}, 404)
        body = dict(request[BODY] or {})
        problem = _event_problem(self, body)
        if problem is not None:
            return problem
        begins = datetime.fromisoformat(body["scheduled_start_time"])
        if self.now is not None and begins <= self.now():
            return _invalid(self, "scheduled_start_time", "Cannot schedule event in the past.")
        event_id = self.new_id()
        event = {
            "id": str(event_id),
            "guild_id": str(guild_id),
            "channel_id": body.get("channel_id"),
            "creator_id": str(self.app_id),
            "creator": self.bot,
            "name": body["name"],
            "description": body.get("description"),
            "scheduled_start_time": body["scheduled_start_time"],
            "scheduled_end_time": body.get("scheduled_end_time"),
            "privacy_level": body["privacy_level"],
            "status": SCHEDULED,
            "entity_type": body["entity_type"],
            "entity_id": None,
            "entity_metadata": body.get("entity_metadata"),
            "user_count": 0,
            "image": None,
        }
        self.scheduled_events[event_id] = event
        return self._json(event)

    def found(request: web.Request) -> dict[str, Any] | web.Response:
        event = self.scheduled_events.get(int(request.match_info["event"]))
        if event is None or event["guild_id"] != request.match_info["guild"]:
            return self._json({"message": "Unknown Guild Scheduled Event", "code": 10070}, 404)
        return event

    async def edit_event(request: web.Request) -> web.Response:
        event = found(request)
        if isinstance(event, web.Response):
            return event
        if event["status"] in (COMPLETED, CANCELED):
            return self._json({"message": "Cannot modify a finished event", "code": 180000}, 400)
        changed = {**event, **dict(request[BODY] or {})}
        problem = _event_problem(self, changed)
        if problem is not None:
            return problem
        event.update(changed)
        return self._json(event)

    async def list_events(request: web.Request) -> web.Response:
        guild_id = request.match_info["guild"]
        if int(guild_id) not in self.guilds:
            return self._json({"message": "Unknown Guild", "code": 10004}, 404)
        return self._json([e for e in self.scheduled_events.values() if e["guild_id"] == guild_id])

    async def delete_event(request: web.Request) -> web.Response:
        event = found(request)
        if isinstance(event, web.Response):
            return event
        del self.scheduled_events[int(event["id"])]
        return web.Response(status=204)

    async def edit_channel(request: web.Request) -> web.Response:
        channel = self.voice_channels.get(int(request.match_info["channel"]))
        if channel is None:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        channel.update(dict(request[BODY] or {}))
        return self._json(channel)

    return [
        ("POST", "/guilds/{guild}/scheduled-events", create_event),
        ("GET", "/guilds/{guild}/scheduled-events", list_events),
        ("PATCH", "/guilds/{guild}/scheduled-events/{event}", edit_event),
        ("DELETE", "/guilds/{guild}/scheduled-events/{event}", delete_event),
        ("PATCH", "/channels/{channel}", edit_channel),  # POST and DELETE: the main routes
    ]
