"""The Discord client: interactions and DMs in, core replies out, notices by DM.

Every interaction is acknowledged first (a deferred, "thinking" response, which Discord must
get within 3 s) and the core's replies follow up (the token lives 15 minutes). In a guild the
follow-ups are ephemeral, since every reply the core returns is addressed to its one reader; in
a DM everything is private anyway. Plain messages in a DM are typed input, like the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import discord
from discord import app_commands

from bot import conversations
from bot.adapters.discord.commands import slash_commands
from bot.adapters.discord.render import (
    ANSWER_BUTTON,
    OWN,
    answer_box,
    messages_for,
    submitted_answer,
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
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
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
        self._busy: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Mark the current task as handling something, so `drain` can wait for it."""
        task = asyncio.current_task()
        if task is not None:
            self._busy.add(task)
        try:
            yield
        finally:
            self._busy.discard(task)  # type: ignore[arg-type]

    async def drain(self) -> None:
        """Wait for the interactions and deliveries in progress to finish (on shutdown)."""
        if self._busy:
            await asyncio.wait(set(self._busy))

    async def setup_hook(self) -> None:
        """After login, before the gateway: the slash commands are synced."""
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

    def sorry(self, locale: str | None) -> Reply:
        lang = normalize_language(locale, self.app.config.bot.default_language)
        text = _("Sorry, something went wrong on our side. Nothing was changed; please try again.")
        return Reply(0, text.render(lang))

    async def press(self, interaction: discord.Interaction[Any], text: str) -> None:
        """A slash command, a button or a submitted answer: `text` as if the user typed it."""
        with self.working():
            await self._press(interaction, text)

    async def _press(self, interaction: discord.Interaction[Any], text: str) -> None:
        private = interaction.guild_id is not None
        try:
            await interaction.response.defer(ephemeral=private, thinking=True)
        except discord.NotFound:
            # Too late (Discord's 3 s passed): the user saw it fail, so nothing is done.
            log.warning("discord: an interaction expired before it was acknowledged")
            return
        locale = str(interaction.locale)
        try:
            replies = await self.app.handle(self.incoming(interaction.user, text, locale))
            label = await self.answer_label(replies)
        except Exception:
            log.exception("discord: an interaction failed", extra={"platform": PLATFORM})
            replies, label = [self.sorry(locale)], None
        try:
            for i, reply in enumerate(replies):
                last = i == len(replies) - 1
                for out in messages_for(reply, label if last else None):
                    await interaction.followup.send(**out.kwargs(), ephemeral=private)
            if not replies:
                await interaction.delete_original_response()
        except discord.HTTPException:
            # E.g. the 15-minute token expired: what was done stays done (see /sessions etc.).
            log.exception("discord: a follow-up could not be sent")
        request_id = answered_request(text)
        if request_id is not None:
            await self.mentors_channel.refresh(request_id, interaction.message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Buttons and the answer box (slash commands go through the command tree).

        A button's custom_id is the command it sends, so this needs nothing in memory: a button
        from before a restart, or a stale or forged one, goes to the core like typed text.
        """
        data: dict[str, Any] = dict(interaction.data or {})
        if interaction.type is discord.InteractionType.component:
            custom_id = str(data.get("custom_id", ""))
            if custom_id == ANSWER_BUTTON:
                await self.open_answer_box(interaction)
            elif custom_id and not custom_id.startswith(OWN):
                await self.press(interaction, custom_id)
        elif interaction.type is discord.InteractionType.modal_submit:
            answer = submitted_answer(data)
            if answer is not None:
                await self.press(interaction, answer)

    async def open_answer_box(self, interaction: discord.Interaction[Any]) -> None:
        """The Answer button: a text box (which must be the first response, so no deferring)."""
        lang = normalize_language(str(interaction.locale), self.app.config.bot.default_language)
        box = answer_box(
            title=_("Your answer").render(lang),
            label=_("Answer").render(lang),
            placeholder=_("Type your answer here").render(lang),
        )
        try:
            await interaction.response.send_modal(box)
        except discord.NotFound:
            log.warning("discord: an interaction expired before it was acknowledged")

    async def answer_label(self, replies: list[Reply]) -> str | None:
        """'Answer', in the reader's language, when a conversation step waits for text."""
        if not replies or not replies[-1].user_id:
            return None
        async with self.app.new_uow() as uow:
            waiting = await conversations.current(uow, replies[-1].user_id)
            user = await uow.get(User, replies[-1].user_id)
            lang = user.language if user is not None else None
        if waiting is None or lang is None:
            return None
        return _("Answer").render(lang)

    async def on_message(self, message: discord.Message) -> None:
        """Text in a DM is typed input (guild messages carry no text without a privileged
        intent; slash commands serve there)."""
        if message.author.bot or message.guild is not None or not message.content:
            return
        with self.working():
            await self._typed(message)

    async def _typed(self, message: discord.Message) -> None:
        try:
            replies = await self.app.handle(self.incoming(message.author, message.content, None))
            label = await self.answer_label(replies)
        except Exception:
            log.exception("discord: a DM failed", extra={"platform": PLATFORM})
            replies, label = [self.sorry(None)], None
        for i, reply in enumerate(replies):
            for out in messages_for(reply, label if i == len(replies) - 1 else None):
                await message.channel.send(**out.kwargs())
        request_id = answered_request(message.content)
        if request_id is not None:
            await self.mentors_channel.refresh(request_id)

    async def deliver(self, identity: Identity, reply: Reply) -> None:
        """The notifier's sender: a notice by DM; a request offer also to the mentors channel."""
        with self.working():
            await self._deliver(identity, reply)

    async def _deliver(self, identity: Identity, reply: Reply) -> None:
        request_id = offered_request(reply)
        if request_id is not None:
            await self.mentors_channel.post(request_id)
        try:
            channel = await self.create_dm(discord.Object(int(identity.external_id)))
            for out in messages_for(reply):
                await channel.send(**out.kwargs())
        except (discord.Forbidden, discord.NotFound):
            # DMs closed, or the user left: retrying cannot help, so the notice is dropped.
            log.warning(
                "discord: cannot DM a user; notice dropped", extra={"user_id": reply.user_id}
            )


class MentorsChannel:
    """The configured channel where offered requests are posted, each kept showing its state.

    Which message shows which request is remembered for recent requests only; a press on a
    message in the channel names its message, so old messages stay up to date after a restart.
    """

    REMEMBERED = 1000

    def __init__(self, client: MentorbotClient, channel_id: int) -> None:
        self.client = client
        self.channel_id = channel_id
        # request id → (message id, content shown), for recent requests
        self._messages: OrderedDict[int, tuple[int, str]] = OrderedDict()
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

    def _remember(self, request_id: int, message_id: int, content: str) -> None:
        self._messages[request_id] = (message_id, content)
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
            self._remember(request_id, message.id, content)
        except discord.HTTPException:
            log.exception("discord: could not post to the mentors channel")
        finally:
            self._posting.discard(request_id)

    async def refresh(self, request_id: int, pressed: discord.Message | None = None) -> None:
        """Show the request's current state (e.g. who took it) on its channel message."""
        if not self.channel_id:
            return
        message: discord.Message | discord.PartialMessage
        if pressed is not None and pressed.channel.id == self.channel_id:
            message, before = pressed, pressed.content
        elif request_id in self._messages:
            message_id, before = self._messages[request_id]
            channel = self.client.get_partial_messageable(self.channel_id)
            message = channel.get_partial_message(message_id)
        else:
            return
        shown = await self._announcement(request_id)
        if shown is None:
            return
        content, view = shown
        if content != before:
            try:
                await message.edit(content=content, view=view)
            except discord.HTTPException:
                log.exception("discord: could not update a mentors channel message")
                return
        self._remember(request_id, message.id, content)
