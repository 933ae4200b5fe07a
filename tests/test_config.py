"""Configuration errors stop start-up with a message naming the key; secrets never print."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, Secret, config_from_mapping, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads_and_documents_every_key() -> None:
    """config.example.toml is valid and lists every key the code knows, with its default."""
    import dataclasses

    from bot.config import Config

    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    load_config(ROOT / "config.example.toml", env={})
    defaults = Config()
    for section in dataclasses.fields(Config):
        assert section.name in example, f"[{section.name}] missing from config.example.toml"
        for key in dataclasses.fields(getattr(defaults, section.name)):
            assert key.name in example[section.name], f"[{section.name}] {key.name} undocumented"
            documented = example[section.name][key.name]
            default = getattr(getattr(defaults, section.name), key.name)
            if isinstance(default, tuple):
                documented = tuple(documented)
            assert documented == default, f"[{section.name}] {key.name}: example != default"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"bot": {"default_langauge": "en"}},
            "unknown key [bot] 'default_langauge' (did you mean 'default_language'?)",
        ),
        ({"paymets": {"demo": True}}, "unknown key 'paymets' (did you mean 'payments'?)"),
        ({"payments": {"demo": "yes"}}, "[payments] demo must be true or false, got 'yes'"),
        (
            {"sessions": {"duration_minutes": "60"}},
            "[sessions] duration_minutes must be a whole number",
        ),
        (
            {"sessions": {"duration_minutes": 0}},
            "[sessions] duration_minutes must be greater than 0",
        ),
        (
            {"bot": {"default_timezone": "Mars/Base"}},
            "[bot] default_timezone must be an IANA timezone",
        ),
        ({"bot": {"default_language": "fr"}}, "[bot] default_language must be one of en, zh"),
        ({"bot": {"admins": ["12345"]}}, "[bot] admins[0] must look like 'platform:id'"),
        (
            {"reminders": {"offsets_minutes": [60, -5]}},
            "[reminders] offsets_minutes[1] must be greater than 0",
        ),
        ({"logging": "loud"}, "[logging] must be a table"),
        (
            {"telegram": {"token": "1:abc", "messages_per_second": 0}},
            "[telegram] messages_per_second must be greater than 0, got 0",
        ),
    ],
)
def test_bad_config_names_the_key(raw: dict, expected: str) -> None:
    """Each misspelt key, wrong type or bad value is named in the error."""
    with pytest.raises(ConfigError) as err:
        config_from_mapping(raw)
    assert expected in str(err.value)


def test_environment_overrides_and_names_bad_values() -> None:
    """MENTORBOT_SECTION_KEY overrides the file; a bad value names the variable."""
    config = config_from_mapping(
        {"payments": {"demo": False}},
        env={"MENTORBOT_PAYMENTS_DEMO": "true", "MENTORBOT_REMINDERS_OFFSETS_MINUTES": "30,5"},
    )
    assert config.payments.demo is True
    assert config.reminders.offsets_minutes == (30, 5)
    with pytest.raises(ConfigError, match="MENTORBOT_STORAGE_POOL_SIZE must be a whole number"):
        config_from_mapping({}, env={"MENTORBOT_STORAGE_POOL_SIZE": "many"})


def test_flood_control_switch_comes_from_the_environment() -> None:
    """`MENTORBOT_TELEGRAM_FLOOD_CONTROL=false` turns Telegram flood control off; on by
    default, and a value that is not a yes or no is refused by name."""
    assert config_from_mapping({}).telegram.flood_control is True
    env = {"MENTORBOT_TELEGRAM_FLOOD_CONTROL": "false"}
    assert config_from_mapping({}, env).telegram.flood_control is False
    with pytest.raises(ConfigError, match="MENTORBOT_TELEGRAM_FLOOD_CONTROL must be true or"):
        config_from_mapping({}, {"MENTORBOT_TELEGRAM_FLOOD_CONTROL": "maybe"})


def test_secret_never_prints() -> None:
    """A Secret hides its value in str, repr and f-strings, and reveals it only on request."""
    token = Secret("123456:ABCDEF")
    assert "ABCDEF" not in f"{token} {token!r} {[token]}"
    assert token.reveal() == "123456:ABCDEF"


def test_cli_reports_config_error_and_exits_2(tmp_path: Path) -> None:
    """`mentorbot` with a misspelt key exits 2 naming it, without a traceback."""
    bad = tmp_path / "config.toml"
    bad.write_text('[storage]\ndata_dri = "x"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(bad), "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown key [storage] 'data_dri' (did you mean 'data_dir'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_misspelt_environment_variable_is_named_with_a_suggestion() -> None:
    """MENTORBOT_STORAGE_DATA_DRI would be ignored without a word; like a misspelt file key it
    stops start-up, naming the variable and what was probably meant."""
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"MENTORBOT_STORAGE_DATA_DRI": "/srv/mentorbot"})
    assert str(refused.value) == (
        "unknown environment variable MENTORBOT_STORAGE_DATA_DRI "
        "(did you mean MENTORBOT_STORAGE_DATA_DIR?)"
    )


def test_the_config_path_and_test_variables_are_not_config_keys() -> None:
    """MENTORBOT_CONFIG and the suite's MENTORBOT_TEST_* are allowed beside the keys."""
    config = load_config(
        None,
        {
            "MENTORBOT_CONFIG": "/etc/mentorbot.toml",
            "MENTORBOT_TEST_POSTGRES_URL": "postgresql+asyncpg://x@127.0.0.1/test",
            "MENTORBOT_STORAGE_DATA_DIR": "/srv/mentorbot",
            "PATH": "/usr/bin",
        },
    )
    assert config.storage.data_dir == "/srv/mentorbot"
