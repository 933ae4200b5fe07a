"""Community access in Telegram supergroups (`bot.community.access.SpacePort`).

Granting makes a single-use invite link that expires (`create_chat_invite_link(member_limit=1,
expire_date=…)`), which the core sends the learner; revoking revokes that link and removes the
member with a ban followed by an unban (`only_if_banned`), so they may be invited again later.
A join request to the group is approved only for someone whose access is desired there.

Forum topics (`bot.community.topics.TopicPort`): a course's topic is made with createForumTopic
(the bot needs the can_manage_topics right, in a supergroup with topics on), welcomes are posted
into it with message_thread_id, inert (`inert`: a learner's name never pings anyone, nor shows
a link preview), and members open it by its t.me/c/ link.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime

from telegram import Bot, ChatMember, LinkPreviewOptions
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest

from bot.community.access import GRANTED, REVOKED, Granted

_AT = re.compile(r"@(?=\w)")
IN_GROUP = {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}


class TelegramSpaces:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def grant(
        self, ref: str, external_id: str, expires: datetime, previous_link: str | None
    ) -> Granted:
        if previous_link:
            with contextlib.suppress(BadRequest):  # expired or revoked already
                await self.bot.revoke_chat_invite_link(int(ref), previous_link)
        link = await self.bot.create_chat_invite_link(
            int(ref), name=f"mentorbot {external_id}"[:32], expire_date=expires, member_limit=1
        )
        return Granted(link.invite_link)

    async def revoke(self, ref: str, external_id: str, invite_link: str | None) -> None:
        if invite_link:
            with contextlib.suppress(BadRequest):  # expired or revoked already
                await self.bot.revoke_chat_invite_link(int(ref), invite_link)
        await self.bot.ban_chat_member(int(ref), int(external_id))
        await self.bot.unban_chat_member(int(ref), int(external_id), only_if_banned=True)

    async def create_topic(self, chat: str, name: str) -> int:
        topic = await self.bot.create_forum_topic(int(chat), name)
        return topic.message_thread_id

    async def post(self, chat: str, thread_id: int, text: str) -> None:
        await self.bot.send_message(
            int(chat),
            inert(text),
            message_thread_id=thread_id,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    def topic_link(self, chat: str, thread_id: int) -> str:
        # A supergroup's id is -100 followed by the id its t.me/c/ links use.
        return f"https://t.me/c/{chat.removeprefix('-100').lstrip('-')}/{thread_id}"

    async def check(self, ref: str, external_id: str, desired: str) -> str | None:
        member = await self.bot.get_chat_member(int(ref), int(external_id))
        if in_group(member):
            return GRANTED
        # Not in the group: right for a revoke; for a grant, the invite may be unused yet.
        return REVOKED if desired == REVOKED else None


def inert(text: str) -> str:
    """`text` for a group, where people's names appear: plain text already keeps markup
    literal, but Telegram finds "@username" in plain text itself and pings that member, so a
    word joiner (U+2060, invisible) after each "@" keeps it a word."""
    return _AT.sub("@\u2060", text)


def in_group(member: ChatMember) -> bool:
    """A member of the chat (a restricted one too, while still in it)."""
    restricted_in = member.status == ChatMemberStatus.RESTRICTED and getattr(
        member, "is_member", False
    )
    return member.status in IN_GROUP or restricted_in
