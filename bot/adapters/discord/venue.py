"""Workshops as Discord guild scheduled events (the `Venue` port of bot/sessions/venues.py).

Each workshop is an external event (entity_type 3, guild-only) at its start and end, with a
location that says the link comes from the bot: the meeting link itself is never published.
Moving a workshop edits the event; cancelling deletes it. An event deleted by hand in Discord
is created again at the next change. Before creating one, the guild's events are looked through
for one this bot already made for the workshop (its description names `/join ID`): a process
that died between Discord's answer and the commit recording the event's id left it there, and
it is taken over rather than doubled. With `[workshops] discord_voice_channels` each workshop
also gets a voice channel with `user_limit` = seats, which only its attendees and host may
connect to (permission overwrites: @everyone denied CONNECT, each attendee allowed).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import discord
from discord.http import HTTPClient, Route

from bot.sessions.venues import VenueEvent, VenueRefs

EXTERNAL = 3
GUILD_ONLY = 2
VOICE = 2
CONNECT = 1 << 20
VIEW_CHANNEL = 1 << 10


class DiscordVenue:
    name = "discord"

    def __init__(self, http: HTTPClient, guild_id: int, *, voice: bool = False) -> None:
        self._http = http
        self._guild_id = guild_id
        self._voice = voice

    def _payload(self, event: VenueEvent) -> dict[str, Any]:
        return {
            "name": event.name,
            "description": event.description,
            "privacy_level": GUILD_ONLY,
            "entity_type": EXTERNAL,
            "entity_metadata": {"location": event.location},
            "scheduled_start_time": event.start.isoformat(),
            "scheduled_end_time": event.end.isoformat(),
        }

    async def publish(self, event: VenueEvent, refs: VenueRefs) -> VenueRefs:
        payload = self._payload(event)
        event_ref = refs.event
        if event_ref is not None:
            try:
                await self._http.edit_scheduled_event(self._guild_id, event_ref, **payload)
            except discord.NotFound:
                event_ref = None  # deleted by hand: create it again
        if event_ref is None:
            event_ref = await self._left_behind(event.workshop_id)
            if event_ref is not None:
                await self._http.edit_scheduled_event(self._guild_id, event_ref, **payload)
        if event_ref is None:
            made = await self._http.create_guild_scheduled_event(self._guild_id, **payload)
            event_ref = str(made["id"])
        voice_ref = await self._voice_channel(event, refs.voice) if self._voice else refs.voice
        return VenueRefs(event_ref, voice_ref)

    async def _left_behind(self, workshop_id: int) -> str | None:
        """An event of this bot's for the workshop that the database does not know of."""
        named = re.compile(rf"/join {workshop_id}(?!\d)")
        for found in await self._http.get_scheduled_events(self._guild_id, False):
            if named.search(found.get("description") or ""):
                return str(found["id"])
        return None

    def _overwrites(self, event: VenueEvent) -> list[dict[str, Any]]:
        everyone = {"id": str(self._guild_id), "type": 0, "allow": "0", "deny": str(CONNECT)}
        members = [
            {"id": m, "type": 1, "allow": str(CONNECT | VIEW_CHANNEL), "deny": "0"}
            for m in event.members.get("discord", ())
        ]
        return [everyone, *members]

    async def _voice_channel(self, event: VenueEvent, ref: str | None) -> str:
        options: dict[str, Any] = {
            "name": event.name,
            "user_limit": min(event.seats, 99),  # Discord allows 0 (none) to 99
            "permission_overwrites": self._overwrites(event),
        }
        if ref is not None:
            try:
                await self._http.request(
                    Route("PATCH", "/channels/{channel_id}", channel_id=ref), json=options
                )
                return ref
            except discord.NotFound:
                pass
        made = await self._http.create_channel(
            self._guild_id, discord.ChannelType.voice.value, **options
        )
        return str(made["id"])

    async def withdraw(self, refs: VenueRefs) -> None:
        if refs.event is not None:
            with contextlib.suppress(discord.NotFound):
                await self._http.delete_scheduled_event(self._guild_id, refs.event)
        if refs.voice is not None:
            with contextlib.suppress(discord.NotFound):
                await self._http.delete_channel(refs.voice)
