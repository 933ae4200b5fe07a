"""The command menu (setMyCommands), in English and Chinese, built from the core's commands.

Everyone sees the learner and mentor commands (anyone may apply to mentor; /requests also lists
a learner's own requests); admins listed in `[bot] admins` as `telegram:ID` also see /admin in
their chat. Descriptions are the core's /help texts, so the menu never disagrees with /help.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import TelegramError

from bot.handlers.registry import COMMANDS

log = logging.getLogger(__name__)

LEARNER = (
    "start",
    "courses",
    "mycourses",
    "mentor",
    "book",
    "sessions",
    "progress",
    "language",
    "timezone",
    "help",
    "cancel",
)
MENTOR = ("requests", "availability", "profile")
ADMIN = ("admin",)
LANGUAGES = {"en": None, "zh": "zh"}  # catalog → language_code (None: everyone else)


def menu(names: tuple[str, ...], lang: str) -> list[BotCommand]:
    """The commands among `names` that the core has, described in `lang`."""
    return [
        BotCommand(name, COMMANDS[name].help.render(lang)[:256])
        for name in names
        if name in COMMANDS
    ]


async def register_commands(bot: Bot, admin_chats: list[int]) -> None:
    for lang, code in LANGUAGES.items():
        await bot.set_my_commands(menu(LEARNER + MENTOR, lang), language_code=code)
        for chat_id in admin_chats:
            try:
                await bot.set_my_commands(
                    menu(LEARNER + MENTOR + ADMIN, lang),
                    scope=BotCommandScopeChat(chat_id),
                    language_code=code,
                )
            except TelegramError as exc:  # the admin has not opened a chat with the bot yet
                log.warning("no admin menu for chat", extra={"chat_id": chat_id, "error": str(exc)})
