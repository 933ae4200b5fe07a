"""Amounts in ISO 4217 minor units, and what Stripe's API is sent for them."""

from __future__ import annotations

import pytest

from bot.core.i18n import Money
from bot.core.money import MAX_MINOR, AmountError, minor_digits, parse_amount
from bot.providers.stripe.amounts import NotPayableByCard, from_stripe, to_stripe

# The facts gathered from Stripe's currencies guide (shared/REFERENCE.md).
STRIPE_ZERO_DECIMAL = [
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
]
STRIPE_THREE_DECIMAL = ["BHD", "JOD", "KWD", "OMR", "TND"]


@pytest.mark.parametrize("currency", STRIPE_ZERO_DECIMAL)
def test_zero_decimal_currencies_are_sent_as_whole_units(currency: str) -> None:
    """5,000 XOF (or UGX, PYG, JPY…) is 5000 minor units and Stripe is sent 5000, not 500,000."""
    minor = parse_amount("5000", currency)
    assert minor == 5000
    assert to_stripe(minor, currency) == 5000
    assert from_stripe(5000, currency) == 5000


@pytest.mark.parametrize("currency", STRIPE_THREE_DECIMAL)
def test_three_decimal_currencies_keep_their_third_digit(currency: str) -> None:
    """12.500 KWD (or BHD…) is 12500 fils and Stripe is sent 12500, not 1,250; a third digit
    other than 0 cannot be charged by card."""
    minor = parse_amount("12.500", currency)
    assert minor == 12500
    assert to_stripe(minor, currency) == 12500
    with pytest.raises(NotPayableByCard):
        to_stripe(12345, currency)


@pytest.mark.parametrize(("currency", "sent"), [("ISK", 100000), ("HUF", 100000)])
def test_stripes_two_decimal_special_cases(currency: str, sent: int) -> None:
    """ISK and HUF have no minor unit in ISO 4217 but Stripe takes them ×100."""
    assert minor_digits(currency) == 0
    assert to_stripe(1000, currency) == sent
    assert from_stripe(sent, currency) == 1000
    assert from_stripe(sent + 50, currency) is None


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [("USD", "49.00", 4900), ("USD", "49", 4900), ("TWD", "10.5", 1050), ("CNY", "0.01", 1)],
)
def test_two_decimal_currencies(currency: str, text: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor
    assert to_stripe(minor, currency) == minor


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "1e20", "Infinity", "-1", "4,900", "²", "12.345.6", "", " ", "0x10", "49.001"],
)
def test_what_is_not_an_amount_is_refused(text: str) -> None:
    """Only plain decimal numbers with at most the currency's digits are amounts."""
    with pytest.raises(AmountError):
        parse_amount(text, "USD")


def test_amounts_have_a_ceiling() -> None:
    """At most 99,999,999 minor units, Stripe's own ceiling for one charge."""
    assert parse_amount("999999.99", "USD") == MAX_MINOR
    with pytest.raises(AmountError):
        parse_amount("1000000", "USD")
    with pytest.raises(AmountError):
        parse_amount("100000000", "JPY")


def test_money_is_shown_with_the_currencys_own_digits() -> None:
    """Displayed amounts use the same digits as the stored ones."""
    assert Money(5000, "XOF").format("en").endswith("5,000")
    assert Money(12500, "KWD").format("en").endswith("12.500")
    assert Money(4900, "USD").format("en") == "$49.00"
    assert Money(4900, "JPY").format("en") == "¥4,900"
