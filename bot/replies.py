"""What the core says back: plain text, choices and attachments addressed to users.

Adapters render these: choices become inline keyboards on Telegram, buttons on Discord and
numbered options in the console. A choice's payload is the command it stands for (`/accept 12`),
so pressing a button is exactly typing that command: every check the command makes applies to a
forged or stale payload too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.i18n import Msg


@dataclass(frozen=True)
class Choice:
    label: Msg | str
    payload: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Say:
    """A message before it knows its reader's language."""

    msg: Msg
    choices: tuple[Choice, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class RenderedChoice:
    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """A message rendered for one user, ready for an adapter."""

    user_id: int
    text: str
    choices: tuple[RenderedChoice, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [[c.label, c.payload] for c in self.choices],
        }

    @classmethod
    def from_json(cls, user_id: int, body: dict[str, Any]) -> Reply:
        return cls(
            user_id=user_id,
            text=body["text"],
            choices=tuple(RenderedChoice(label, payload) for label, payload in body["choices"]),
        )


def render(user_id: int, say: Say, lang: str, tz: str) -> Reply:
    return Reply(
        user_id=user_id,
        text=say.msg.render(lang, tz),
        choices=tuple(
            RenderedChoice(
                c.label.render(lang, tz) if isinstance(c.label, Msg) else c.label, c.payload
            )
            for c in say.choices
        ),
        attachments=say.attachments,
    )
