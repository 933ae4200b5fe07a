"""Replies in Discord's idiom: timestamps, message-sized chunks and buttons that persist.

A choice becomes a button whose custom_id *is* its payload (`/accept 12`); the client reads the
custom_id of every press and sends it to the core as if typed (checks included, so a stale or
forged button is refused there). Nothing is kept in memory per message, so buttons keep working
after a restart. A link choice becomes a link button.

A choice that answers a question rather than running a command (`beginner`, `evening`) is bound
to the question open when it was shown (a digest of `bot.core.buttons.conversation_marker`), so
pressed after the conversation moved on it does not answer the next question. A reply that
leaves a step waiting for free text gets an Answer button, which opens a text box.

Text people typed (names, goals, comments, bios, course titles) reaches other people's chats
and the mentors channel inside our messages, so every message is made inert here, in one
place, at render time (`inert`): Discord markdown is escaped (the core's own messages use none,
and an escaped character looks the same), mass and role mentions are broken with a zero-width
space, and every message is sent with `allowed_mentions` parsing nothing (`NO_PINGS`), so no
text can ping anyone.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot.core.replies import RenderedChoice, Reply

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
_MENTION = re.compile(r"<(?=@[!&]?\d+>)")

MAX_CONTENT = 2000  # characters in one message
MAX_BUTTONS = 25  # five rows of five
MAX_LABEL = 80
MAX_CUSTOM_ID = 100
# Our own custom_ids start with this; a core payload never does (it is a command or a word).
OWN = "mentorbot:"
ANSWER_BUTTON = OWN + "answer"
ANSWER_BOX = OWN + "answer-box"
ANSWER_FIELD = "answer"
ANSWER_TO = OWN + "to:"  # + digest of the question + ":" + the answer


@dataclass(frozen=True)
class Question:
    """The conversation step a reader is in when a reply is shown to them."""

    digest: str  # answer buttons carry it; see `question_digest`
    answer_label: str | None = None  # 'Answer' in their language, when the step awaits text


def question_digest(marker: str) -> str:
    """A short, stable name for an open question (`bot.core.buttons.conversation_marker`)."""
    return hashlib.sha256(marker.encode()).hexdigest()[:10]


def answer_custom_id(digest: str, payload: str) -> str:
    return f"{ANSWER_TO}{digest}:{payload}"


def parse_answer(custom_id: str) -> tuple[str, str] | None:
    """(question digest, answer) of an answer button's custom_id."""
    if not custom_id.startswith(ANSWER_TO):
        return None
    digest, sep, payload = custom_id.removeprefix(ANSWER_TO).partition(":")
    return (digest, payload) if sep and payload else None


def with_timestamps(reply: Reply, around: Callable[[str], str] = str) -> str:
    """The reply's text with each instant as a Discord timestamp (shown in the viewer's zone);
    `around` is applied to the text between them."""
    pieces = [reply.text]
    for rendered, unix in reply.instants:
        stamp = f"<t:{unix}:F> (<t:{unix}:R>)"
        pieces = [
            part
            for i, piece in enumerate(pieces)
            for part in ([piece] if i % 2 else _between(piece.split(rendered), stamp))
        ]
    return "".join(piece if i % 2 else around(piece) for i, piece in enumerate(pieces))


def _between(texts: list[str], stamp: str) -> list[str]:
    """Texts with the stamp between each two (texts at even places, stamps at odd)."""
    out: list[str] = []
    for i, text in enumerate(texts):
        if i:
            out.append(stamp)
        out.append(text)
    return out


def inert(text: str) -> str:
    """`text` as Discord shows it without formatting, links hidden behind words or mentions:
    `**bold**` stays literally `**bold**`, `@everyone` and `<@123>` stay words."""
    escaped = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return _MENTION.sub("<\u200b", escaped)


def content_of(reply: Reply) -> str:
    """The reply's text as one Discord message body: timestamps in, everything else inert."""
    return with_timestamps(reply, inert)


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
    choices: tuple[RenderedChoice, ...], question: Question | None = None, answer: bool = False
) -> discord.ui.View | None:
    """Buttons for the choices (and, with `answer`, the question's Answer button); None when
    there are none. Answers are bound to `question` (a notice, shown outside any question,
    has no answer choices).

    The view is stopped before it is sent: presses are read by custom_id in the client, so no
    view object needs to stay in memory (nor a timeout task) per message.
    """
    view = discord.ui.View(timeout=None)
    seen: set[str] = set()
    answer_label = question.answer_label if question is not None and answer else None
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
        seen.add(payload)
        custom_id = payload
        if not payload.startswith("/") and question is not None:
            custom_id = answer_custom_id(question.digest, payload)
        if len(custom_id) > MAX_CUSTOM_ID:
            log.warning("a choice's command is too long for a Discord button; dropped")
            continue
        view.add_item(discord.ui.Button(label=label, custom_id=custom_id, style=_style(payload)))
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
        return {"content": self.content, "allowed_mentions": NO_PINGS, **extra}


def messages_for(
    reply: Reply, question: Question | None = None, answer: bool = False
) -> list[Outgoing]:
    """A reply as Discord messages: text in chunks, buttons and attachments on the last."""
    parts = chunks(content_of(reply))
    files = tuple(discord.File(io.BytesIO(a.data), filename=a.filename) for a in reply.attachments)
    last = Outgoing(parts[-1], view_for(reply.choices, question, answer), files)
    return [*(Outgoing(p) for p in parts[:-1]), last]
