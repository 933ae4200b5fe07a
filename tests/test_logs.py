"""Logs are structured JSON and never carry secrets."""

from __future__ import annotations

import json
import logging

from bot.logs import JsonFormatter, redact


def test_json_log_line_has_fields_and_hides_database_password() -> None:
    """A log record becomes one JSON object; a URL's password is replaced."""
    record = logging.LogRecord("bot.x", logging.ERROR, __file__, 1,
                               "cannot reach postgresql+asyncpg://bot:hunter2@db:5432/m",
                               None, None)
    record.user_id = 7
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["user_id"] == 7
    assert "hunter2" not in line and "bot:********@db" in entry["msg"]
    assert redact("no url here") == "no url here"
