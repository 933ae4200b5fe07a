"""Reading command arguments, with errors that say which argument was wrong."""

from __future__ import annotations

from bot.core.errors import BadInput
from bot.core.i18n import Msg, _

# Ids are 64-bit signed integers in the database; a larger number can name nothing.
MAX_ID = 2**63 - 1
# How much of a user's own input a reply repeats back to them.
ECHO_LIMIT = 40


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as a reply may repeat it: at most `limit` characters, control characters
    removed, an ellipsis where it was cut."""
    shown = "".join(ch for ch in text if ch.isprintable())
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


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
            _("'{value}' is not a number. Usage: {usage}", value=clip(raw), usage=usage)
        ) from None
    if not 0 < value <= MAX_ID:
        raise BadInput(
            _("'{value}' is not a valid number. Usage: {usage}", value=clip(raw), usage=usage)
        )
    return value
