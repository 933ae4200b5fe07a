"""Logs are structured JSON and never carry secrets."""

from __future__ import annotations

import json
import logging

from bot.core.logs import JsonFormatter, redact
from tests.support import STRIPE_WEBHOOK_SECRET


def test_json_log_line_has_fields_and_hides_database_password() -> None:
    """A log record becomes one JSON object; a URL's password is replaced."""
    record = logging.LogRecord(
        "bot.x",
        logging.ERROR,
        __file__,
        1,
        "cannot reach postgresql+asyncpg://bot:hunter2@db:5432/m",
        None,
        None,
    )
    record.user_id = 7
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["user_id"] == 7
    assert "hunter2" not in line and "bot:********@db" in entry["msg"]
    assert redact("no url here") == "no url here"


def test_tokens_and_registered_secrets_are_scrubbed() -> None:
    """A Telegram token in a URL and any configured secret never reach a log line."""
    from bot.config import config_from_mapping
    from bot.core.logs import register_secret

    token = "123456789:" + "AAH" + "x" * 32
    line = redact(f"POST https://api.telegram.org/bot{token}/getUpdates")
    assert token not in line and "bot********/getUpdates" in line
    env = {
        "MENTORBOT_STRIPE_SECRET_KEY": "sk_test_abcdef123456",
        "MENTORBOT_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "MENTORBOT_STRIPE_SUCCESS_URL": "https://example.com/ok",
        "MENTORBOT_STRIPE_CANCEL_URL": "https://example.com/no",
    }
    config = config_from_mapping({}, env=env)
    for secret in config.secrets():
        register_secret(secret)
    assert "sk_test_abcdef123456" not in redact("stripe said no to sk_test_abcdef123456")
