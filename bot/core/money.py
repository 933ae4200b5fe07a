"""Amounts of money: integers in the currency's minor unit, with the digits ISO 4217 gives it.

Babel carries the ISO 4217 table (CLDR's currency data), so every currency's digits come from
one place: USD 2 (4900 is $49.00), JPY and XOF 0 (5000 is 5,000 francs), KWD and BHD 3 (12500
is 12.500 dinars). Telegram Stars (XTR) are not an ISO currency; a Star is indivisible. What a
payment provider's API wants (Stripe's own special cases) is derived from these amounts in the
provider's folder, never stored.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

STARS = "XTR"
# The largest amount a price may have, in minor units: Stripe's own ceiling for one charge
# (99,999,999 minor units: $999,999.99, ¥99,999,999), so a price accepted here can be paid.
MAX_MINOR = 99_999_999


class AmountError(ValueError):
    """Text that is not an amount of the currency; the message says what was wrong."""


@functools.cache
def _iso_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    """An ISO 4217 code (upper case) or Telegram Stars."""
    return code == STARS or code in _iso_codes()


@functools.cache
def minor_digits(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (ISO 4217)."""
    code = currency.upper()
    if code == STARS:
        return 0
    return int(get_currency_precision(code))


def to_major(amount_minor: int, currency: str) -> Decimal:
    """Minor units as a decimal amount of the major unit (4900 USD → 49.00)."""
    return Decimal(amount_minor).scaleb(-minor_digits(currency))


def parse_amount(text: str, currency: str) -> int:
    """`text` ("49", "49.00", "12.500") as minor units of `currency`, within 0 and `MAX_MINOR`.

    Refuses what is not a plain decimal number (NaN, 1e20, "4,900", superscript digits), more
    decimals than the currency has, and amounts above the ceiling."""
    plain = text.strip()
    if not plain or any(ch not in "0123456789." for ch in plain) or plain.count(".") > 1:
        raise AmountError(text)
    try:
        amount = Decimal(plain)
    except InvalidOperation:
        raise AmountError(text) from None
    digits = minor_digits(currency)
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise AmountError(text)
    if minor > MAX_MINOR:
        raise AmountError(text)
    return int(minor)


def typed_amount(amount_minor: int, currency: str) -> str:
    """Minor units as a price is typed, in the currency's own digits and with no grouping:
    4900 USD → "49.00", 5000 XOF → "5000", 12500 KWD → "12.500" (what `parse_amount` reads)."""
    return f"{to_major(amount_minor, currency):f}"


def example_amount(currency: str) -> str:
    """A sample amount written with the currency's own digits, for hints: 49.00, 4900, 49.000."""
    return typed_amount(4900 * 10 ** max(minor_digits(currency) - 2, 0), currency)


# One currency for each way ISO 4217 writes an amount (2, 0 and 3 decimals), to show wherever
# a price is asked for that an amount is typed in its currency's own digits.
PRICE_EXAMPLES = (("USD", 4900), ("XOF", 5000), ("KWD", 12500))
