"""Replies in Discord's idiom: timestamps, message-sized chunks and persistent buttons.

A choice becomes a button whose custom_id *is* its payload (`/accept 12`): `CommandButton` is a
`DynamicItem` matched by pattern, so a button keeps working after a restart without any view
kept in memory, and pressing it sends exactly its command to the core, checks included. A link
choice becomes a link button. A reply that leaves a conversation step waiting for free text
gets an Answer button, which opens a text box (`AnswerButton` → `AnswerModal`).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol, cast

import discord

from bot.replies import RenderedChoice, Reply

log = logging.getLogger(__name__)

MAX_CONTENT = 2000  # characters in one message
MAX_BUTTONS = 25  # five rows of five
MAX_LABEL = 80
MAX_CUSTOM_ID = 100
ANSWER_ID = "mentorbot:answer"


class Presses(Protocol):
    """What the client does with a press; the buttons find it as `interaction.client`."""

    async def press(self, interaction: discord.Interaction[Any], text: str) -> None: ...

    async def ask_answer(self, interaction: discord.Interaction[Any]) -> None: ...


def with_timestamps(reply: Reply) -> str:
    """The reply's text with each instant as a Discord timestamp (shown in the viewer's zone)."""
    text = reply.text
    for rendered, unix in reply.instants:
        text = text.replace(rendered, f"<t:{unix}:F> (<t:{unix}:R>)")
    return text


def chunks(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split at line breaks into messages Discord accepts; a longer line is cut."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            candidate = line
        current = candidate
    if current or not parts:
        parts.append(current or "…")
    return parts


def _style(payload: str) -> discord.ButtonStyle:
    if payload.startswith("/accept "):
        return discord.ButtonStyle.success
    if payload.startswith("/decline "):
        return discord.ButtonStyle.danger
    return discord.ButtonStyle.secondary


class CommandButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!mentorbot:)(?P<payload>.+)"
):
    """A button that sends its custom_id, a core command, as if typed."""

    def __init__(self, label: str, payload: str) -> None:
        super().__init__(
            discord.ui.Button(label=label[:MAX_LABEL], custom_id=payload, style=_style(payload))
        )
        self.payload = payload

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CommandButton:
        return cls(getattr(item, "label", None) or "?", match["payload"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await cast(Presses, interaction.client).press(interaction, self.payload)


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ANSWER_ID):
    """Opens a text box for the free-text answer a conversation step waits for."""

    def __init__(self, label: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=label[:MAX_LABEL], custom_id=ANSWER_ID, style=discord.ButtonStyle.primary
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> AnswerButton:
        return cls(getattr(item, "label", None) or "?")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await cast(Presses, interaction.client).ask_answer(interaction)


class AnswerModal(discord.ui.Modal):
    """A text box whose content goes to the core as the user's typed answer."""

    def __init__(self, title: str, label: str, placeholder: str) -> None:
        super().__init__(title=title[:45], timeout=15 * 60)
        self.text: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
            label=label[:45],
            style=discord.TextStyle.paragraph,
            placeholder=placeholder[:100] or None,
            max_length=1000,
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await cast(Presses, interaction.client).press(interaction, self.text.value)


def view_for(
    choices: tuple[RenderedChoice, ...], answer_label: str | None
) -> discord.ui.View | None:
    """Buttons for the choices (and an Answer button); None when there are none.

    The view is stopped before it is sent: presses are dispatched by custom_id pattern, so no
    view object needs to stay in memory (nor a timeout task) per message.
    """
    view = discord.ui.View(timeout=None)
    seen: set[str] = set()
    for choice in choices:
        if len(view.children) >= MAX_BUTTONS - (1 if answer_label else 0):
            log.warning("more choices than Discord shows; the rest are dropped")
            break
        if choice.url:
            view.add_item(discord.ui.Button(label=choice.label[:MAX_LABEL], url=choice.payload))
            continue
        if choice.payload in seen or choice.payload.startswith("mentorbot:"):
            continue
        if len(choice.payload) > MAX_CUSTOM_ID:
            log.warning("a choice's command is too long for a Discord button; dropped")
            continue
        seen.add(choice.payload)
        view.add_item(CommandButton(choice.label, choice.payload))
    if answer_label:
        view.add_item(AnswerButton(answer_label))
    if not view.children:
        return None
    view.stop()
    return view


@dataclass(frozen=True)
class Outgoing:
    """One Discord message: its text, and on the last message of a reply its buttons and files."""

    content: str
    view: discord.ui.View | None = None
    files: tuple[discord.File, ...] = ()

    def kwargs(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.view is not None:
            extra["view"] = self.view
        if self.files:
            extra["files"] = list(self.files)
        return {"content": self.content, **extra}


def messages_for(reply: Reply, answer_label: str | None = None) -> list[Outgoing]:
    """A reply as Discord messages: text in chunks, buttons and attachments on the last."""
    parts = chunks(with_timestamps(reply))
    files = tuple(discord.File(io.BytesIO(a.data), filename=a.filename) for a in reply.attachments)
    last = Outgoing(parts[-1], view_for(reply.choices, answer_label), files)
    return [*(Outgoing(p) for p in parts[:-1]), last]
