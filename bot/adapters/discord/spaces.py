"""Community access and private mentorship channels on Discord.

Access (`bot.community.access.SpacePort`): a course's space is a guild role that grants its
channel or forum; granting adds the role to the member, revoking removes it, checking reads the
member's roles. The role's guild is the configured guild whose roles include it.

Private spaces (`bot.community.spaces.PrivatePort`): a text channel in the configured category
with permission overwrites so that only the two people (and the bot) can see it: @everyone is
denied View Channel, each of them and the bot allowed to view, send and read the history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import discord

from bot.community.access import GRANTED, REVOKED, Granted

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
READ_HISTORY = 1 << 16
TALK = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY
ROLE, MEMBER = 0, 1  # permission overwrite types


class DiscordSpaces:
    def __init__(self, client: discord.Client, guild_ids: tuple[int, ...]) -> None:
        self.client = client
        self.guild_ids = guild_ids

    def _guild_of_role(self, role_id: int) -> int:
        for guild_id in self.guild_ids:
            guild = self.client.get_guild(guild_id)
            if guild is not None and guild.get_role(role_id) is not None:
                return guild_id
        if not self.guild_ids:
            raise RuntimeError("discord: no guild configured for community roles")
        return self.guild_ids[0]

    # ── community access by role ───────────────────────────────────────────────────────────

    async def grant(
        self, ref: str, external_id: str, expires: datetime, previous_link: str | None
    ) -> Granted:
        role = int(ref)
        await self.client.http.add_role(
            self._guild_of_role(role), int(external_id), role, reason="mentorbot: enrolled"
        )
        return Granted()

    async def revoke(self, ref: str, external_id: str, invite_link: str | None) -> None:
        role = int(ref)
        try:
            await self.client.http.remove_role(
                self._guild_of_role(role), int(external_id), role, reason="mentorbot: ended"
            )
        except discord.NotFound:
            return  # not in the guild (any more): nothing to take away

    async def check(self, ref: str, external_id: str, desired: str) -> str | None:
        role = int(ref)
        try:
            member = await self.client.http.get_member(self._guild_of_role(role), int(external_id))
        except discord.NotFound:
            return REVOKED
        return GRANTED if str(role) in member.get("roles", []) else REVOKED

    # ── private channels per mentorship ────────────────────────────────────────────────────

    async def open_private(self, category: str, members: list[str], name: str) -> str:
        parent: Any = await self.client.http.get_channel(int(category))
        guild_id = int(parent["guild_id"])
        me = self.client.user
        assert me is not None
        overwrites = [{"id": str(guild_id), "type": ROLE, "allow": "0", "deny": str(VIEW_CHANNEL)}]
        for user_id in [*members, str(me.id)]:
            overwrites.append({"id": user_id, "type": MEMBER, "allow": str(TALK), "deny": "0"})
        channel: Any = await self.client.http.create_channel(
            guild_id,
            discord.ChannelType.text.value,
            name=name,
            parent_id=category,
            permission_overwrites=overwrites,
            reason="mentorbot: a mentorship's private space",
        )
        return str(channel["id"])

    async def close_private(self, ref: str) -> None:
        try:
            await self.client.http.delete_channel(int(ref), reason="mentorbot: mentorship ended")
        except discord.NotFound:
            return
