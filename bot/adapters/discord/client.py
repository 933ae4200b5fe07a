"""The Discord client: interactions and DMs in, core replies out, notices by DM.

Every interaction is acknowledged first (a deferred, "thinking" response, which Discord must
get within 3 s) and the core's replies follow up (the token lives 15 minutes). In a guild the
follow-ups are ephemeral, since every reply the core returns is addressed to its one reader; in
a DM everything is private anyway. Plain messages in a DM are typed input, like the console.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

import discord
from discord import app_commands

from bot import conversations
from bot.adapters.discord.commands import slash_commands
from bot.adapters.discord.render import (
    AnswerButton,
    AnswerModal,
    CommandButton,
    messages_for,
    with_timestamps,
)
from bot.announcements import request_announcement
from bot.app import Marketplace
from bot.config import DiscordSection
from bot.i18n import _, normalize_language, translations
from bot.replies import Reply, render
from bot.users import Incoming
from storage.models import Identity, User

log = logging.getLogger(__name__)

PLATFORM = "discord"
OFFER = re.compile(r"/(?:accept|decline) (\d+)")


def answered_request(text: str) -> int | None:
    """The request an `/accept N` or `/decline N` names."""
    match = OFFER.fullmatch(text.strip())
    return int(match[1]) if match else None


def offered_request(reply: Reply) -> int | None:
    """The request a notice offers, recognised by its Accept button."""
    for choice in reply.choices:
        if choice.payload.startswith("/accept "):
            return answered_request(choice.payload)
    return None


class CatalogTranslator(app_commands.Translator):
    """Slash command descriptions and choices in Chinese, from the project's catalog."""

    LOCALES = {discord.Locale.chinese: "zh"}
    LOCATIONS = {
        app_commands.TranslationContextLocation.command_description,
        app_commands.TranslationContextLocation.group_description,
        app_commands.TranslationContextLocation.parameter_description,
        app_commands.TranslationContextLocation.choice_name,
    }

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        lang = self.LOCALES.get(locale)
        if lang is None or context.location not in self.LOCATIONS:
            return None
        text = translations(lang).gettext(string.message)
        return text[:100] if text != string.message else None


class MentorbotClient(discord.Client):
    """discord.py's client, translating for the marketplace and holding no rules."""

    def __init__(self, app: Marketplace, settings: DiscordSection, **options: Any) -> None:
        super().__init__(
            intents=discord.Intents.default(),  # no privileged intent: DMs carry their text
            application_id=settings.application_id or None,
            **options,
        )
        self.app = app
        self.settings = settings
        self.tree = app_commands.CommandTree(self)
        for command in slash_commands(self.press):
            self.tree.add_command(command)
        self.mentors_channel = MentorsChannel(self, settings.mentors_channel_id)

    async def setup_hook(self) -> None:
        """After login, before the gateway: buttons by pattern, then the commands' sync."""
        self.add_dynamic_items(CommandButton, AnswerButton)
        await self.tree.set_translator(CatalogTranslator())
        if not self.settings.guild_ids:
            await self.tree.sync()
        for guild_id in self.settings.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    def incoming(
        self, user: discord.User | discord.Member, text: str, locale: str | None
    ) -> Incoming:
        """Plain data for the core; guild roles only where the guild's roles are known."""
        roles = None
        if isinstance(user, discord.Member) and self.get_guild(user.guild.id) is not None:
            roles = frozenset(str(role.id) for role in user.roles)
        return Incoming(PLATFORM, str(user.id), user.display_name, text, locale, roles)

    async def handle(self, msg: Incoming) -> list[Reply]:
        """The core's replies; an unexpected failure is logged and answered with an apology."""
        try:
            return await self.app.handle(msg)
        except Exception:
            log.exception("discord: handling failed", extra={"platform": PLATFORM})
            lang = normalize_language(msg.language_code, self.app.config.bot.default_language)
            sorry = _(
                "Sorry, something went wrong on our side. Nothing was changed; please try again."
            )
            return [Reply(0, sorry.render(lang))]

    async def press(self, interaction: discord.Interaction[Any], text: str) -> None:
        """A slash command, a button or a submitted answer: `text` as if the user typed it."""
        private = interaction.guild_id is not None
        await interaction.response.defer(ephemeral=private, thinking=True)
        locale = str(interaction.locale)
        replies = await self.handle(self.incoming(interaction.user, text, locale))
        label = await self.answer_label(replies)
        for i, reply in enumerate(replies):
            last = i == len(replies) - 1
            for out in messages_for(reply, label if last else None):
                await interaction.followup.send(**out.kwargs(), ephemeral=private)
        if not replies:
            await interaction.delete_original_response()
        request_id = answered_request(text)
        if request_id is not None:
            await self.mentors_channel.refresh(request_id, interaction.message)

    async def ask_answer(self, interaction: discord.Interaction[Any]) -> None:
        """The Answer button: a text box, whose content goes to the core as typed."""
        lang = normalize_language(str(interaction.locale), self.app.config.bot.default_language)
        await interaction.response.send_modal(
            AnswerModal(
                title=_("Your answer").render(lang),
                label=_("Answer").render(lang),
                placeholder=_("Type your answer here").render(lang),
            )
        )

    async def answer_label(self, replies: list[Reply]) -> str | None:
        """'Answer', in the reader's language, when a conversation step waits for text."""
        if not replies or not replies[-1].user_id:
            return None
        async with self.app.new_uow() as uow:
            waiting = await conversations.current(uow, replies[-1].user_id)
            user = await uow.get(User, replies[-1].user_id)
        if waiting is None or user is None:
            return None
        return _("Answer").render(user.language)

    async def on_message(self, message: discord.Message) -> None:
        """Text in a DM is typed input (guild messages carry no text without a privileged
        intent; slash commands serve there)."""
        if message.author.bot or message.guild is not None or not message.content:
            return
        replies = await self.handle(self.incoming(message.author, message.content, None))
        label = await self.answer_label(replies)
        for i, reply in enumerate(replies):
            for out in messages_for(reply, label if i == len(replies) - 1 else None):
                await message.channel.send(**out.kwargs())
        request_id = answered_request(message.content)
        if request_id is not None:
            await self.mentors_channel.refresh(request_id)

    async def deliver(self, identity: Identity, reply: Reply) -> None:
        """The notifier's sender: a notice by DM; a request offer also to the mentors channel."""
        request_id = offered_request(reply)
        if request_id is not None:
            await self.mentors_channel.post(request_id)
        try:
            channel = await self.create_dm(discord.Object(int(identity.external_id)))
            for out in messages_for(reply):
                await channel.send(**out.kwargs())
        except (discord.Forbidden, discord.NotFound):
            # DMs closed, or the user left: retrying cannot help, so the notice is dropped.
            log.warning("discord: cannot DM a user; notice dropped", extra={"user_id": reply.user_id})


class MentorsChannel:
    """The configured channel where offered requests are posted, each kept showing its state.

    Which message shows which request is remembered for recent requests only; a press on a
    message in the channel names its message, so old messages stay up to date after a restart.
    """

    REMEMBERED = 1000

    def __init__(self, client: MentorbotClient, channel_id: int) -> None:
        self.client = client
        self.channel_id = channel_id
        self._messages: OrderedDict[int, int] = OrderedDict()  # request id → message id
        self._posting: set[int] = set()

    async def _announcement(self, request_id: int) -> tuple[str, discord.ui.View | None] | None:
        app = self.client.app
        async with app.new_uow() as uow:
            say = await request_announcement(uow, request_id)
        if say is None:
            return None
        reply = render(0, say, app.config.bot.default_language, "UTC")
        out = messages_for(reply)[-1]
        return with_timestamps(reply)[:2000], out.view

    def _remember(self, request_id: int, message_id: int) -> None:
        self._messages[request_id] = message_id
        self._messages.move_to_end(request_id)
        while len(self._messages) > self.REMEMBERED:
            self._messages.popitem(last=False)

    async def post(self, request_id: int) -> None:
        """Post the request once (several offered mentors' notices name it); later rounds
        update the same message."""
        if not self.channel_id or request_id in self._posting:
            return
        if request_id in self._messages:
            await self.refresh(request_id)
            return
        self._posting.add(request_id)
        try:
            shown = await self._announcement(request_id)
            if shown is None:
                return
            content, view = shown
            channel = self.client.get_partial_messageable(self.channel_id)
            message = await channel.send(content=content, **({"view": view} if view else {}))
            self._remember(request_id, message.id)
        except discord.HTTPException:
            log.exception("discord: could not post to the mentors channel")
        finally:
            self._posting.discard(request_id)

    async def refresh(self, request_id: int, pressed: discord.Message | None = None) -> None:
        """Show the request's current state (e.g. who took it) on its channel message."""
        if not self.channel_id:
            return
        message: discord.Message | discord.PartialMessage | None = None
        if pressed is not None and pressed.channel.id == self.channel_id:
            message = pressed
            self._remember(request_id, pressed.id)
        elif request_id in self._messages:
            channel = self.client.get_partial_messageable(self.channel_id)
            message = channel.get_partial_message(self._messages[request_id])
        if message is None:
            return
        shown = await self._announcement(request_id)
        if shown is None:
            return
        content, view = shown
        if isinstance(message, discord.Message) and message.content == content:
            return
        try:
            await message.edit(content=content, view=view)
        except discord.HTTPException:
            log.exception("discord: could not update a mentors channel message")
