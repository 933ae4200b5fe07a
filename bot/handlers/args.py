"""Reading command arguments, with errors that say which argument was wrong."""

from __future__ import annotations

from bot.core.errors import BadInput
from bot.core.i18n import Msg, _


def need(args: list[str], index: int, usage: str) -> str:
    if len(args) <= index:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=usage))
    return args[index]


def need_int(args: list[str], index: int, usage: str, what: Msg | str = "") -> int:
    raw = need(args, index, usage)
    try:
        value = int(raw.lstrip("#"))
    except ValueError:
        raise BadInput(
            _("'{value}' is not a number. Usage: {usage}", value=raw, usage=usage)
        ) from None
    if value <= 0:
        raise BadInput(_("'{value}' is not a valid number. Usage: {usage}", value=raw, usage=usage))
    return value
