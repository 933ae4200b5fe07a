"""A Telegram user as the core sees a message's sender."""

from __future__ import annotations

from telegram import User

from bot.core.users import Incoming
from bot.providers.stars.payment import PLATFORM


def incoming(user: User, text: str = "", reply_to: str | None = None) -> Incoming:
    """`user` saying `text`, named as Telegram shows them, in the language their client uses;
    `reply_to` is "CHAT:MESSAGE" when the message replies to another."""
    name = user.full_name or user.username or str(user.id)
    return Incoming(PLATFORM, str(user.id), name, text, user.language_code, reply_to=reply_to)
