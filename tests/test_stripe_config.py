"""Stripe's configuration: checked at start-up, secrets from the environment, never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, config_from_mapping
from bot.core.clock import FakeClock
from bot.core.web import WebServer
from bot.providers.stripe.checkout import StripePayments
from bot.providers.stripe.service import StripeService
from bot.runtime.bootstrap import configured_services, payment_providers
from tests.support import STRIPE_WEBHOOK_SECRET, AppFactory

KEY = "sk_test_51abcdefSECRET"
WHSEC = STRIPE_WEBHOOK_SECRET
ENV = {
    "MENTORBOT_STRIPE_SECRET_KEY": KEY,
    "MENTORBOT_STRIPE_WEBHOOK_SECRET": WHSEC,
}
URLS = {"success_url": "https://example.com/ok", "cancel_url": "https://example.com/no"}


def test_secrets_come_from_the_environment_and_never_print() -> None:
    """MENTORBOT_STRIPE_* set the keys; the config's repr and str show neither."""
    config = config_from_mapping({"stripe": URLS}, ENV)
    assert config.stripe.secret_key.reveal() == KEY
    assert config.stripe.webhook_secret.reveal() == WHSEC
    for shown in (repr(config), str(config), f"{config.stripe.secret_key}"):
        assert KEY not in shown and WHSEC not in shown
    assert KEY in config.secrets() and WHSEC in config.secrets()  # scrubbed from logs


@pytest.mark.parametrize(
    ("raw", "env", "expected"),
    [
        ({"stripe": URLS}, {"MENTORBOT_STRIPE_SECRET_KEY": KEY}, "[stripe] webhook_secret is"),
        ({"stripe": URLS}, {**ENV, "MENTORBOT_STRIPE_SECRET_KEY": "pk_live_x"}, "sk_… or rk_…"),
        ({"stripe": {**URLS, "success_url": "/ok"}}, ENV, "[stripe] success_url must be"),
        ({"stripe": {"success_url": URLS["success_url"]}}, ENV, "[stripe] cancel_url must be"),
        ({"stripe": {**URLS, "api_base": "localhost:1"}}, ENV, "[stripe] api_base must be"),
        ({"stripe": {**URLS, "webhook_path": "hook"}}, ENV, "[stripe] webhook_path must"),
        (
            {"stripe": {**URLS, "reconcile_interval_minutes": 0}},
            ENV,
            "[stripe] reconcile_interval_minutes must be greater than 0",
        ),
        (
            {"stripe": URLS, "payments": {"order_ttl_minutes": 15}},
            ENV,
            "[payments] order_ttl_minutes must be from 30 to 1440 when Stripe is enabled",
        ),
    ],
)
def test_bad_stripe_settings_stop_start_up_naming_the_key(
    raw: dict[str, Any], env: dict[str, str], expected: str
) -> None:
    """Each impossible Stripe setting names its key, and no message contains a secret."""
    with pytest.raises(ConfigError) as refused:
        config_from_mapping(raw, env)
    assert expected in str(refused.value)
    assert KEY not in str(refused.value) and WHSEC not in str(refused.value)


def test_stripe_off_by_default_and_checks_nothing_then() -> None:
    """Without a secret key there is no Stripe provider and its other keys are not checked."""
    config = config_from_mapping({"stripe": {"success_url": "nonsense"}})
    assert not [p for p in payment_providers(config) if p.name == "stripe"]


async def test_configured_stripe_adds_provider_web_server_and_service(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """With Stripe configured: a card provider for discord/console, the web server (first)
    and the Stripe service with its webhook route."""
    config = config_from_mapping({"stripe": URLS, "web": {"port": 0}}, ENV)
    app = await make_app(config)
    app.payments = tuple(payment_providers(config, clock))
    [stripe] = [p for p in app.payments if isinstance(p, StripePayments)]
    assert stripe.available_on("discord") and stripe.available_on("console")
    assert not stripe.available_on("telegram")  # digital goods there are paid in Stars
    services = configured_services(config, app)
    assert isinstance(services[0], WebServer)
    assert any(isinstance(s, StripeService) for s in services)
    routes = {(r.method, r.resource.canonical) for r in services[0].app.router.routes()}  # type: ignore[attr-defined]
    assert ("POST", "/stripe/webhook") in routes
    await stripe.close()
