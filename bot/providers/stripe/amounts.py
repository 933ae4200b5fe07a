"""Amounts as Stripe's API wants them, derived from ISO 4217 minor units (`bot.core.money`).

Stripe takes amounts in the currency's smallest unit, which is the ISO 4217 minor unit for all
but a few currencies it keeps "for backwards compatibility" as two-decimal although ISO gives
them none (Stripe's currencies guide, "Special cases"): ISK and HUF are sent ×100 and must be a
whole number of krónur / forints. Three-decimal currencies (BHD JOD KWD OMR TND) are sent in
their ISO minor unit but Stripe wants the last digit 0. Everything else, zero-decimal JPY, XOF,
UGX or PYG included, is the ISO minor unit as it is. This table is the only place that says so.
"""

from __future__ import annotations

from bot.core.money import minor_digits

# Currencies whose digits in Stripe's API differ from ISO 4217's.
STRIPE_DIGITS = {"ISK": 2, "HUF": 2}
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


class NotPayableByCard(ValueError):
    """An amount Stripe cannot charge in that currency (a three-decimal amount not ending in 0)."""


def _factor(currency: str) -> int:
    """What an ISO 4217 amount is multiplied by for Stripe (1, or 100 for ISK and HUF)."""
    code = currency.upper()
    shift: int = STRIPE_DIGITS.get(code, minor_digits(code)) - minor_digits(code)
    return int(10**shift)


def to_stripe(amount_minor: int, currency: str) -> int:
    """What to send Stripe for `amount_minor` of `currency`."""
    if currency.upper() in THREE_DECIMAL and amount_minor % 10:
        raise NotPayableByCard(currency)
    return amount_minor * _factor(currency)


def from_stripe(amount: int, currency: str) -> int | None:
    """An amount Stripe reports, in ISO 4217 minor units; None when it is not a whole number of
    them (ISK 150 is 1.50 krónur), which no order's price can be."""
    whole, rest = divmod(amount, _factor(currency))
    return None if rest else whole
