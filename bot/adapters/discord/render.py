"""Replies in Discord's idiom: timestamps, message-sized chunks and buttons that persist.

A choice becomes a button whose custom_id *is* its payload (`/accept 12`); the client reads the
custom_id of every press and sends it to the core as if typed (checks included, so a stale or
forged button is refused there). Nothing is kept in memory per message, so buttons keep working
after a restart. A link choice becomes a link button. A reply that leaves a conversation step
waiting for free text gets an Answer button, which opens a text box whose content is the answer.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import discord

from bot.replies import RenderedChoice, Reply

log = logging.getLogger(__name__)

MAX_CONTENT = 2000  # characters in one message
MAX_BUTTONS = 25  # five rows of five
MAX_LABEL = 80
MAX_CUSTOM_ID = 100
# Our own custom_ids start with this; a core payload never does (it is a command or a word).
OWN = "mentorbot:"
ANSWER_BUTTON = OWN + "answer"
ANSWER_BOX = OWN + "answer-box"
ANSWER_FIELD = "answer"


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


def answer_box(title: str, label: str, placeholder: str) -> discord.ui.Modal:
    """The text box the Answer button opens; its submission is read by custom_id."""
    modal = discord.ui.Modal(title=title[:45], custom_id=ANSWER_BOX)
    modal.add_item(
        discord.ui.TextInput(
            custom_id=ANSWER_FIELD,
            label=label[:45],
            style=discord.TextStyle.paragraph,
            placeholder=placeholder[:100] or None,
            max_length=1000,
        )
    )
    modal.stop()  # answered by custom_id, so discord.py need not keep it
    return modal


def submitted_answer(data: dict[str, Any]) -> str | None:
    """The text typed into the answer box, from a modal submission's data."""
    if data.get("custom_id") != ANSWER_BOX:
        return None
    pending = list(data.get("components", []))
    while pending:
        component = pending.pop(0)
        if component.get("custom_id") == ANSWER_FIELD:
            return str(component.get("value") or "")
        pending.extend(component.get("components", []))
        if "component" in component:
            pending.append(component["component"])
    return None


def view_for(
    choices: tuple[RenderedChoice, ...], answer_label: str | None
) -> discord.ui.View | None:
    """Buttons for the choices (and an Answer button); None when there are none.

    The view is stopped before it is sent: presses are read by custom_id in the client, so no
    view object needs to stay in memory (nor a timeout task) per message.
    """
    view = discord.ui.View(timeout=None)
    seen: set[str] = set()
    room = MAX_BUTTONS - (1 if answer_label else 0)
    for choice in choices:
        if len(view.children) >= room:
            log.warning("more choices than Discord shows; the rest are dropped")
            break
        label = choice.label[:MAX_LABEL] or "…"
        if choice.url:
            view.add_item(discord.ui.Button(label=label, url=choice.payload))
            continue
        payload = choice.payload
        if payload in seen or payload.startswith(OWN) or not payload:
            continue
        if len(payload) > MAX_CUSTOM_ID:
            log.warning("a choice's command is too long for a Discord button; dropped")
            continue
        seen.add(payload)
        view.add_item(discord.ui.Button(label=label, custom_id=payload, style=_style(payload)))
    if answer_label:
        view.add_item(
            discord.ui.Button(
                label=answer_label[:MAX_LABEL],
                custom_id=ANSWER_BUTTON,
                style=discord.ButtonStyle.primary,
            )
        )
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
