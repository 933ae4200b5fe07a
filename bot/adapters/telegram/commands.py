"""The command menu (setMyCommands), in English and Chinese, built from the core's command table.

Everyone sees every command Telegram offers but the admin ones (anyone may apply to mentor;
/requests also lists a learner's own requests); admins listed in `[bot] admins` as
`telegram:ID` also see /admin in their chat. The menu lists them in /help's order
(`in_menu_order`: /start and /help first, the admin's last). Descriptions are the table's
/help texts, so the menu never disagrees with /help, and a command added to the table is in
the next menu.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import TelegramError

from bot.handlers.registry import COMMANDS, in_menu_order

log = logging.getLogger(__name__)

PLATFORM = "telegram"  # the service's PLATFORM; importing it from there would be a cycle
LANGUAGES = {"en": None, "zh": "zh"}  # catalog → language_code (None: everyone else)


def menu(lang: str, *, admin: bool = False) -> list[BotCommand]:
    """Every table command Telegram offers (admin ones only if `admin`), described in `lang`."""
    return [
        BotCommand(c.name, c.help.render(lang)[:256])
        for c in in_menu_order(COMMANDS.values())
        if c.on(PLATFORM) and (admin or not c.for_admins)
    ]


async def register_commands(bot: Bot, admin_chats: list[int]) -> None:
    for lang, code in LANGUAGES.items():
        await bot.set_my_commands(menu(lang), language_code=code)
        for chat_id in admin_chats:
            try:
                await bot.set_my_commands(
                    menu(lang, admin=True),
                    scope=BotCommandScopeChat(chat_id),
                    language_code=code,
                )
            except TelegramError as exc:  # the admin has not opened a chat with the bot yet
                log.warning("no admin menu for chat", extra={"chat_id": chat_id, "error": str(exc)})
