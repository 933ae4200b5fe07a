"""Reading command arguments, with errors that say which argument was wrong."""

from __future__ import annotations

import unicodedata
from typing import Protocol

from bot.core.errors import BadInput
from bot.core.i18n import Money, Msg, _, clip
from bot.core.money import MAX_MINOR, STARS, AmountError, example_amount, is_currency, parse_amount
from bot.sessions.venues import EVENT_NAME

__all__ = [
    "LIMITS",
    "MAX_ID",
    "clip",
    "currency_arg",
    "need",
    "need_int",
    "price_arg",
    "priced",
    "refuse_control_characters",
    "within",
]

# Ids are INTEGER columns: 32-bit signed on PostgreSQL, so a larger number can name nothing
# (and would not even reach the database as a parameter).
MAX_ID = 2**31 - 1
# The longest text each kind of field keeps (the column's size where it has one). Longer input
# is refused with the limit, never cut silently.
LIMITS = {
    "goals": 1000,
    "comment": 1000,
    "bio": 1000,
    "note": 500,
    "title": 200,
    "workshop_title": EVENT_NAME,  # in either language: the name of its Discord event
    "description": 2000,  # shown on the course page, inside one chat message
    "slug": 64,
    "topic": 64,
    "message": 1000,  # a /support message to the admins
    "answer": 1000,  # an admin's answer to one
    "reason": 500,  # why an application is rejected, as the applicant reads it
}
# Line breaks and tabs are text; other control characters (NUL, escape sequences) are not, and
# PostgreSQL cannot even store NUL.
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def refuse_control_characters(text: str) -> None:
    """Refuse a message holding a control character other than a line break or tab, naming it;
    such a message is refused whole, before any command sees it."""
    for ch in text:
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc":
            raise BadInput(
                _(
                    "Your message contains an invisible control character ({code}), which I "
                    "cannot keep. Please send it again without it.",
                    code=f"U+{ord(ch):04X}",
                )
            )


def within(text: str, what: str, label: Msg) -> str:
    """`text` if it fits the limit of the field `what` (see `LIMITS`); otherwise a refusal that
    names the limit and how long the text was, so nothing is stored cut short."""
    limit = LIMITS[what]
    if len(text) > limit:
        raise BadInput(
            _(
                "{what} can be at most {limit} characters; yours has {count}. Nothing was "
                "saved: please shorten it and send it again.",
                what=label,
                limit=limit,
                count=len(text),
            )
        )
    return text


def need(args: list[str], index: int, usage: str | Msg) -> str:
    if len(args) <= index:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=usage))
    return args[index]


def need_int(args: list[str], index: int, usage: str | Msg, what: Msg | str = "") -> int:
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


def currency_arg(typed: str, *, stars: bool = False) -> str:
    """`currency=`: an ISO 4217 code, any case (`usd` → USD); Telegram Stars (XTR) only where
    `stars` says a Stars amount is meant."""
    currency = typed.strip().upper()
    if not (stars if currency == STARS else is_currency(currency)):
        raise BadInput(
            _(
                "currency must be an ISO 4217 code like USD, EUR or CNY, got '{value}'.",
                value=clip(typed),
            )
        )
    return currency


def price_arg(typed: str, currency: str, *, positive: bool = False) -> int:
    """`price=`: an amount in `currency`'s minor units (above zero if `positive`), refused with
    the currency's own digits in the example and the largest amount taken."""
    try:
        amount = parse_amount(typed, currency)
    except AmountError:
        amount = -1
    if amount < 0 or (positive and amount == 0):
        raise BadInput(
            _(
                "price must be an amount in {currency} like {example}, at most {max}; "
                "got '{value}'.",
                currency=currency,
                example=example_amount(currency),
                max=Money(MAX_MINOR, currency),
                value=clip(typed),
            )
        )
    return amount


class Priced(Protocol):
    currency: str
    price_minor: int


def priced(row: Priced, fields: dict[str, str]) -> None:
    """`currency=` and `price=` applied to what is sold (a course, a plan): the currency
    changes only together with a price in it, so $49.00 never silently becomes ¥4,900."""
    if "currency" in fields:
        currency = currency_arg(fields["currency"])
        if currency != row.currency and "price" not in fields and row.price_minor:
            raise BadInput(
                _(
                    "Changing the currency changes what the price means: give the price in "
                    "{currency} too, e.g. currency={currency} price={example}.",
                    currency=currency,
                    example=example_amount(currency),
                )
            )
        row.currency = currency
    if "price" in fields:
        row.price_minor = price_arg(fields["price"], row.currency)
