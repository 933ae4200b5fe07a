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
from collections.abc import Iterator, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.adapters.discord.commands import slash_commands
from bot.adapters.discord.render import (
    ANSWER_BUTTON,
    MAX_CONTENT,
    NO_PINGS,
    OWN,
    Outgoing,
    Question,
    answer_box,
    content_of,
    messages_for,
    parse_answer,
    question_digest,
    submitted_answer,
)
from bot.app import Marketplace
from bot.community.service import remember_delivery
from bot.config import DiscordSection
from bot.core.buttons import conversation_marker
from bot.core.i18n import Msg, _, normalize_language, translations
from bot.core.replies import Reply, render
from bot.core.users import Incoming
from bot.front_door import APOLOGY, already_logged
from bot.mentoring.announcements import request_announcement
from storage.models import Identity, User

log = logging.getLogger(__name__)

PLATFORM = "discord"
OFFER = re.compile(r"/(?:accept|decline) (\d+)")
EXPIRED = _("This button has expired. Please use a newer message, or type the command.")


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


class MentorbotClient(discord.AutoShardedClient):
    """discord.py's client, translating for the marketplace and holding no rules.

    Always the sharded client, connecting this process's shards (`[discord] shard_ids` of
    `shard_count`); unsharded is shard 0 of 1, one connection like a plain `discord.Client`.
    """

    def __init__(self, app: Marketplace, settings: DiscordSection, **options: Any) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        if settings.application_id:
            options["application_id"] = settings.application_id
        # No privileged intent: slash commands and buttons need none, and DMs carry their text.
        # The bot never pings: a name or goals written as `@everyone` or `<@&role>` reach the
        # mentors' channel and other users' DMs as text, inert.
        super().__init__(
            intents=discord.Intents.default(),
            allowed_mentions=NO_PINGS,  # also render.py's every message: nobody is pinged
            shard_count=max(settings.shard_count, 1),
            shard_ids=list(settings.own_shards()),
            **options,
        )
        self.app = app
        self.settings = settings
        self.tree = app_commands.CommandTree(self)
        for command in slash_commands(self.press):
            self.tree.add_command(command)
        self.mentors_channel = MentorsChannel(self, settings.mentors_channel_id)
        self._busy: set[asyncio.Task[Any]] = set()
        self._live: set[int] = set()  # shards with a gateway session (READY or RESUMED)

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        """Keep track of which shards are connected, before anyone hears of the event."""
        if event in ("shard_connect", "shard_resumed"):
            self._live.add(args[0])
        elif event == "shard_disconnect":
            self._live.discard(args[0])
        super().dispatch(event, *args, **kwargs)

    def connected(self) -> bool:
        """Every shard this process owns has a live gateway session."""
        own = set(self.settings.own_shards())
        return self.is_ready() and not self.is_closed() and own <= self._live

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Mark the current task as handling something, so `drain` can wait for it."""
        task = asyncio.current_task()
        if task is not None:
            self._busy.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._busy.discard(task)

    async def drain(self) -> None:
        """Wait for the interactions and deliveries in progress to finish (on shutdown)."""
        if self._busy:
            await asyncio.wait(set(self._busy))

    async def setup_hook(self) -> None:
        """After login, before the gateway: the slash commands are synced, only by the process
        that owns shard 0, so processes sharing the bot do not all overwrite them. Every
        process answers them all the same."""
        await self.tree.set_translator(CatalogTranslator())
        guilds = [discord.Object(guild_id) for guild_id in self.settings.guild_ids]
        for guild in guilds:
            self.tree.copy_global_to(guild=guild)
        if not self.settings.syncs_commands():
            return
        if not guilds:
            await self.tree.sync()
        for guild in guilds:
            await self.tree.sync(guild=guild)

    async def incoming(
        self,
        user: discord.User | discord.Member,
        text: str,
        locale: str | None,
        reply_to: str | None = None,
    ) -> Incoming:
        """Plain data for the core, with the sender's guild roles as Discord has them now: from
        the interaction in a guild, and in a DM (which carries none) looked up in the
        configured guilds, so that a member whose admin role was taken away is no admin in DMs
        either. None only when Discord could not say."""
        roles = None
        if isinstance(user, discord.Member) and self.get_guild(user.guild.id) is not None:
            roles = frozenset(str(role.id) for role in user.roles)
        elif self.app.config.admin_roles_for(PLATFORM) and self.settings.guild_ids:
            roles = await self._roles_in_guilds(user.id)
        return Incoming(PLATFORM, str(user.id), user.display_name, text, locale, roles, reply_to)

    async def _roles_in_guilds(self, user_id: int) -> frozenset[str] | None:
        found: set[str] = set()
        for guild_id in self.settings.guild_ids:
            try:
                member = await self.http.get_member(guild_id, user_id)
            except discord.NotFound:
                continue  # not a member there: no roles from it
            except discord.HTTPException:
                log.warning("discord: could not look up a member's roles", exc_info=True)
                return None
            found.update(str(role) for role in member.get("roles", []))
        return frozenset(found)

    def notice(self, locale: str | None, text: Msg) -> Reply:
        """A message of the adapter's own, in the language the Discord client reports."""
        return Reply(
            0, text.render(normalize_language(locale, self.app.config.bot.default_language))
        )

    async def press(
        self, interaction: discord.Interaction[Any], text: str, bound_to: str | None = None
    ) -> None:
        """A slash command, a button or a submitted answer: `text` as if the user typed it.

        `bound_to`: an answer button's question, which must still be the open one.
        """
        with self.working():
            await self._press(interaction, text, bound_to)

    async def _press(
        self, interaction: discord.Interaction[Any], text: str, bound_to: str | None
    ) -> None:
        private = interaction.guild_id is not None
        try:
            await interaction.response.defer(ephemeral=private, thinking=True)
        except discord.NotFound:
            # Too late (Discord's 3 s passed): the user saw it fail, so nothing is done.
            log.warning("discord: an interaction expired before it was acknowledged")
            return
        locale = str(interaction.locale)
        who = str(interaction.user.id)
        try:
            if bound_to is not None and (await self.question_for(who)).digest != bound_to:
                replies, question = [self.notice(locale, EXPIRED)], None
            else:
                replies = await self.app.handle(await self.incoming(interaction.user, text, locale))
                question = await self.question_for(who, replies)
        except Exception as error:
            if not already_logged(error):
                log.exception("discord: an interaction failed", extra={"platform": PLATFORM})
            replies, question = [self.notice(locale, APOLOGY)], None
        try:
            for i, reply in enumerate(replies):
                last = i == len(replies) - 1
                for out in messages_for(reply, question, answer=last):
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
            bound = parse_answer(custom_id)
            if custom_id == ANSWER_BUTTON:
                await self.open_answer_box(interaction)
            elif bound is not None:
                digest, answer = bound
                await self.press(interaction, answer, bound_to=digest)
            elif custom_id and not custom_id.startswith(OWN):
                await self.press(interaction, custom_id)
        elif interaction.type is discord.InteractionType.modal_submit:
            typed = submitted_answer(data)
            if typed is not None:
                await self.press(interaction, typed)

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

    async def question_for(self, external_id: str, replies: Sequence[Reply] = ()) -> Question:
        """The question this Discord user is answering now (for their answer buttons), with
        'Answer' in their language (from their replies) when one is open."""
        user_id = next((r.user_id for r in replies if r.user_id), None)
        async with self.app.new_uow() as uow:
            marker = await conversation_marker(uow, PLATFORM, external_id)
            user = await uow.get(User, user_id) if marker and user_id else None
            lang = user.language if user is not None else None
        return Question(question_digest(marker), _("Answer").render(lang) if lang else None)

    async def on_message(self, message: discord.Message) -> None:
        """Text in a DM is typed input (guild messages carry no text without a privileged
        intent; slash commands serve there)."""
        if message.author.bot or message.guild is not None or not message.content:
            return
        with self.working():
            await self._typed(message)

    async def _typed(self, message: discord.Message) -> None:
        try:
            # A reply to a relayed message continues that mentorship's conversation; the bot
            # recorded each one under the recipient's id (`_deliver`), their DM.
            reference = message.reference
            target = None
            if reference is not None and reference.message_id is not None:
                target = f"{message.author.id}:{reference.message_id}"
            incoming = await self.incoming(message.author, message.content, None, target)
            replies = await self.app.handle(incoming)
            question: Question | None = await self.question_for(str(message.author.id), replies)
        except Exception as error:
            if not already_logged(error):
                log.exception("discord: a DM failed", extra={"platform": PLATFORM})
            replies, question = [self.notice(None, APOLOGY)], None
        for i, reply in enumerate(replies):
            for out in messages_for(reply, question, answer=i == len(replies) - 1):
                await message.channel.send(**out.kwargs())
        request_id = answered_request(message.content)
        if request_id is not None:
            await self.mentors_channel.refresh(request_id)

    def dm_link(self, external_id: str) -> str | None:
        """The user's DM channel with the bot, where its notices arrive, when discord.py has
        it cached; else the DM list, where that channel is at the top after a notice."""
        # Not `get_user(id).dm_channel`: without the members intent the user cache does not
        # keep a DM's recipient, while the private channels do.
        user_id = int(external_id) if external_id.isdigit() else None
        for channel in self.private_channels:
            recipient = getattr(channel, "recipient", None)
            if user_id is not None and recipient is not None and recipient.id == user_id:
                return f"https://discord.com/channels/@me/{channel.id}"
        return "https://discord.com/channels/@me"

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
            sent: discord.Message | None = None
            for out in messages_for(reply):
                sent = await channel.send(**out.kwargs())
            if reply.relay is not None and sent is not None:  # a reply to it goes on with it
                await remember_delivery(self.app, identity, reply.relay, str(sent.id))
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

    async def _announcement(self, request_id: int) -> Outgoing | None:
        """The post for a request as it stands, in the marketplace's default language."""
        app = self.client.app
        async with app.new_uow() as uow:
            say = await request_announcement(uow, request_id)
        if say is None:
            return None
        reply = render(0, say, app.config.bot.default_language, "UTC")
        return Outgoing(content_of(reply)[:MAX_CONTENT], messages_for(reply)[-1].view)

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
            channel = self.client.get_partial_messageable(self.channel_id)
            message = await channel.send(**shown.kwargs())
            self._remember(request_id, message.id, shown.content)
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
        content = shown.content
        if content != before:
            try:
                await message.edit(content=content, view=shown.view, allowed_mentions=NO_PINGS)
            except discord.HTTPException:
                log.exception("discord: could not update a mentors channel message")
                return
        self._remember(request_id, message.id, content)
