"""Configuration: one TOML file, overridable by `MENTORBOT_<SECTION>_<KEY>` environment variables.

Loaded once into frozen, typed sections. Anything unexpected (an unknown or misspelt key, a wrong
type, a value out of range) stops start-up with a `ConfigError` that names the key, because a
marketplace silently running with a default its admin did not mean is worse than not starting.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "MENTORBOT_"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


class Secret(str):
    """A string that never shows its value in reprs or logs."""

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "********" if self else ""


@dataclass(frozen=True)
class BotSection:
    default_language: str = "en"
    default_timezone: str = "UTC"
    admins: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageSection:
    url: str = ""
    data_dir: str = "./data"
    pool_size: int = 5
    auto_migrate: bool = True


@dataclass(frozen=True)
class PaymentsSection:
    demo: bool = False
    order_ttl_minutes: int = 60


@dataclass(frozen=True)
class MatchingSection:
    offer_size: int = 3
    offer_timeout_minutes: int = 720


@dataclass(frozen=True)
class SessionsSection:
    duration_minutes: int = 60
    booking_horizon_days: int = 14
    min_lead_minutes: int = 120
    meeting_link_template: str = "https://meet.jit.si/mentorbot-{session_id}-{token}"


@dataclass(frozen=True)
class RemindersSection:
    offsets_minutes: tuple[int, ...] = (1440, 60)
    sweep_seconds: int = 30


@dataclass(frozen=True)
class ConsoleSection:
    language: str = "en"
    timezone: str = "UTC"


@dataclass(frozen=True)
class LoggingSection:
    level: str = "WARNING"
    format: str = "json"


@dataclass(frozen=True)
class Config:
    bot: BotSection = field(default_factory=BotSection)
    storage: StorageSection = field(default_factory=StorageSection)
    payments: PaymentsSection = field(default_factory=PaymentsSection)
    matching: MatchingSection = field(default_factory=MatchingSection)
    sessions: SessionsSection = field(default_factory=SessionsSection)
    reminders: RemindersSection = field(default_factory=RemindersSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    def database_url(self) -> str:
        """The SQLAlchemy URL; by default a SQLite file inside `storage.data_dir`."""
        if self.storage.url:
            return self.storage.url
        path = Path(self.storage.data_dir).expanduser().resolve() / "mentorbot.db"
        return f"sqlite+aiosqlite:///{path}"


LANGUAGES = ("en", "zh")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply environment overrides and validate everything."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    return config_from_mapping(raw, env)


def config_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    env = {} if env is None else env
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(Config)}
    for name in raw:
        if name not in known:
            raise ConfigError(_unknown("", name, known))
    for name, fld in known.items():
        section_type = _section_type(fld)
        given = raw.get(name, {})
        if not isinstance(given, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build_section(name, section_type, given, env)
    config = Config(**sections)
    _validate(config)
    return config


def _section_type(fld: dataclasses.Field[Any]) -> type:
    hints = typing.get_type_hints(Config)
    return typing.cast(type, hints[fld.name])


def _unknown(section: str, key: str, known: Mapping[str, Any]) -> str:
    where = f"[{section}] " if section else ""
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key {where}'{key}'{hint}; known keys: {', '.join(sorted(known))}"


def _build_section(
    section: str, section_type: type, given: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(section_type)
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    for key in given:
        if key not in fields:
            raise ConfigError(_unknown(section, key, fields))
    values: dict[str, Any] = {}
    for key in fields:
        env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if env_name in env:
            values[key] = _coerce_env(f"{env_name}", env[env_name], hints[key])
        elif key in given:
            values[key] = _check_type(f"[{section}] {key}", given[key], hints[key])
    return section_type(**values)


def _check_type(where: str, value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if expected in (str, Secret):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return expected(value)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_check_type(f"{where}[{i}]", v, item_type) for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {expected!r}")  # pragma: no cover


def _coerce_env(where: str, text: str, expected: Any) -> Any:
    if expected is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {text!r}")
    if expected is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number, got {text!r}") from None
    if typing.get_origin(expected) is tuple:
        (item_type, _ellipsis) = typing.get_args(expected)
        items = [t.strip() for t in text.split(",") if t.strip()]
        return tuple(_coerce_env(where, t, item_type) for t in items)
    return expected(text)


def _validate(config: Config) -> None:
    for where, lang in (
        ("[bot] default_language", config.bot.default_language),
        ("[console] language", config.console.language),
    ):
        if lang not in LANGUAGES:
            raise ConfigError(f"{where} must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    for where, tz in (
        ("[bot] default_timezone", config.bot.default_timezone),
        ("[console] timezone", config.console.timezone),
    ):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{where} must be an IANA timezone such as Europe/Berlin, got {tz!r}"
            ) from None
    positive = {
        "[storage] pool_size": config.storage.pool_size,
        "[payments] order_ttl_minutes": config.payments.order_ttl_minutes,
        "[matching] offer_size": config.matching.offer_size,
        "[matching] offer_timeout_minutes": config.matching.offer_timeout_minutes,
        "[sessions] duration_minutes": config.sessions.duration_minutes,
        "[sessions] booking_horizon_days": config.sessions.booking_horizon_days,
        "[reminders] sweep_seconds": config.reminders.sweep_seconds,
    }
    for where, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{where} must be greater than 0, got {value}")
    if config.sessions.min_lead_minutes < 0:
        raise ConfigError("[sessions] min_lead_minutes must not be negative")
    for i, offset in enumerate(config.reminders.offsets_minutes):
        if offset <= 0:
            raise ConfigError(f"[reminders] offsets_minutes[{i}] must be greater than 0")
    for i, ident in enumerate(config.bot.admins):
        if ":" not in ident:
            raise ConfigError(
                f"[bot] admins[{i}] must look like 'platform:id' (e.g. 'telegram:12345'), "
                f"got {ident!r}"
            )
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("[logging] level must be DEBUG, INFO, WARNING or ERROR")
    if config.logging.format not in ("json", "text"):
        raise ConfigError("[logging] format must be 'json' or 'text'")
