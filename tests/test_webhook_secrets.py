"""Start-up refuses webhook secrets that could be guessed, and [web] limits that make no sense."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, config_from_mapping
from tests.support import STRIPE_WEBHOOK_SECRET, TELEGRAM_WEBHOOK, TELEGRAM_WEBHOOK_SECRET

STRIPE = {
    "secret_key": "sk_test_51abcdefSECRET",
    "success_url": "https://example.com/ok",
    "cancel_url": "https://example.com/no",
}


def _telegram(secret: str) -> dict[str, Any]:
    return {"telegram": {**TELEGRAM_WEBHOOK, "token": "1:abc", "webhook_secret": secret}}


def _stripe(secret: str) -> dict[str, Any]:
    return {"stripe": {**STRIPE, "webhook_secret": secret}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_telegram("s3cret-Token_1"), "[telegram] webhook_secret must be 32-256 characters"),
        (_telegram("a" * 31), "we require at least 32"),
        (_telegram("a" * 257), "[telegram] webhook_secret must be 32-256 characters"),
        (_telegram("x" * 31 + "!"), "of A-Z, a-z, 0-9, _ and -"),
        (_telegram(""), "[telegram] webhook_secret must be 32-256 characters"),
        (_stripe("whsec_abc123"), "[stripe] webhook_secret must be the endpoint's signing"),
        (_stripe("whsec_" + "a" * 23), "whsec_ followed by at least 24 characters"),
        (_stripe("sk_test_" + "a" * 40), "whsec_ followed by at least 24 characters"),
        (_stripe("whsec_" + "a" * 20 + " " + "a" * 10), "no spaces"),
    ],
)
def test_weak_webhook_secret_stops_start_up_in_one_line(raw: dict[str, Any], expected: str) -> None:
    """A short, misshapen or wrong-kind webhook secret is refused with one line that names
    the key and the rule, and never repeats the secret."""
    with pytest.raises(ConfigError) as refused:
        config_from_mapping(raw)
    message = str(refused.value)
    assert expected in message
    assert "\n" not in message
    secret = next(iter(raw.values()))["webhook_secret"]
    assert not secret or secret not in message


def test_strong_webhook_secrets_are_accepted() -> None:
    """32 characters for Telegram and whsec_ plus 24 for Stripe are enough to start."""
    assert config_from_mapping(_telegram("a" * 32)).telegram.webhook_secret.reveal() == "a" * 32
    assert config_from_mapping(_telegram("A-z_9" * 51 + "x")).telegram.webhook_secret
    assert config_from_mapping(_stripe("whsec_" + "b" * 24)).stripe.webhook_secret
    assert config_from_mapping(_telegram(TELEGRAM_WEBHOOK_SECRET)).telegram.webhook_secret
    assert config_from_mapping(_stripe(STRIPE_WEBHOOK_SECRET)).stripe.webhook_secret


def test_polling_mode_needs_no_webhook_secret() -> None:
    """Without webhook mode the Telegram secret is not used, so it is not required."""
    config = config_from_mapping({"telegram": {"token": "1:abc"}})
    assert config.telegram.mode == "polling"


@pytest.mark.parametrize(
    "key", ["header_timeout_seconds", "body_timeout_seconds", "max_connections"]
)
def test_web_limits_must_be_positive(key: str) -> None:
    """A [web] limit of 0 would refuse every client; start-up names the key instead."""
    with pytest.raises(ConfigError, match=rf"\[web\] {key} must be greater than 0"):
        config_from_mapping({"web": {key: 0}})


def test_web_timeouts_take_fractions_but_not_forever() -> None:
    """Timeouts may be fractional seconds; a NaN, an infinity or more than an hour is refused."""
    assert (
        config_from_mapping({"web": {"body_timeout_seconds": 2.5}}).web.body_timeout_seconds == 2.5
    )
    for text in ("nan", "inf", "3601"):
        env = {"MENTORBOT_WEB_HEADER_TIMEOUT_SECONDS": text}
        with pytest.raises(ConfigError, match="header_timeout_seconds must be greater than 0 and"):
            config_from_mapping({}, env)
    with pytest.raises(
        ConfigError, match="MENTORBOT_WEB_BODY_TIMEOUT_SECONDS must be a number, got 'soon'"
    ):
        config_from_mapping({}, {"MENTORBOT_WEB_BODY_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(ConfigError, match=r"\[web\] body_timeout_seconds must be a number"):
        config_from_mapping({"web": {"body_timeout_seconds": "30"}})


def test_web_limits_default_and_come_from_the_environment() -> None:
    """10 s for headers, 30 s for a body and 256 connections unless configured."""
    web = config_from_mapping({}).web
    assert (web.header_timeout_seconds, web.body_timeout_seconds, web.max_connections) == (
        10,
        30,
        256,
    )
    env = {"MENTORBOT_WEB_MAX_CONNECTIONS": "8", "MENTORBOT_WEB_HEADER_TIMEOUT_SECONDS": "2"}
    web = config_from_mapping({}, env).web
    assert (web.max_connections, web.header_timeout_seconds) == (8, 2)
