"""Structured, quiet logging: one JSON object per line on stderr, WARNING and up by default."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# Telegram puts the bot token in every API URL (…/bot123456:AA…/getUpdates).
_TELEGRAM_TOKEN = re.compile(r"(?<![0-9])\d{5,12}:[A-Za-z0-9_-]{30,}")
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Never print this value (a configured token or key) in any log line."""
    if len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Hide URL passwords, Telegram tokens and every registered secret."""
    text = _URL_PASSWORD.sub(r"\1********@", text)
    text = _TELEGRAM_TOKEN.sub("********", text)
    for secret in _SECRETS:
        text = text.replace(secret, "********")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value if isinstance(value, int | float | bool) else redact(str(value))
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "aiosqlite", "sqlalchemy", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
