"""Start-up stays quick: what only some commands or platforms need is loaded when used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from storage.migrate import alembic_config, newest_revisions

ROOT = Path(__file__).resolve().parent.parent

# Each costs from a tenth of a second to most of one to import, for a command nobody ran.
LAZY = (
    "scipy",  # /cohort
    "matplotlib",  # the admin report's chart
    "icalendar",  # a booked session's invite
    "stripe",  # [stripe] configured
    "discord",  # [discord] configured
    "telegram",  # [telegram] configured
    "aiohttp",  # the web server, when a platform or webhook is served
    "alembic",  # only when the database is behind the newest migration
    "sklearn",  # building the recommendations model
    "jieba",  # and cutting its Chinese text into words
)

CONSOLE_START = """
import asyncio, json, sys
from bot.cli import main  # the `mentorbot` entry point, as the console imports it
from bot.adapters.console import ConsoleChat
from bot.config import config_from_mapping
from bot.runtime.bootstrap import build_marketplace

async def start() -> None:
    config = config_from_mapping({"storage": {"data_dir": sys.argv[1]}})
    app = await build_marketplace(config)
    chat = ConsoleChat(app, lambda text: None)
    await chat.become("learner")
    await app.engine.dispose()

asyncio.run(start())
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_by_console_start(data_dir: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORBOT_")}
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_START, str(data_dir)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=True,
    )  # fmt: skip
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_console_start_loads_no_optional_heavy_library(tmp_path: Path) -> None:
    """Starting the console chat on an up-to-date database imports none of the libraries that
    only a command, a platform or a migration needs."""
    first = loaded_by_console_start(tmp_path)  # a new database: migrates
    again = loaded_by_console_start(tmp_path)
    assert "alembic" in first
    assert again.isdisjoint(LAZY), sorted(again & set(LAZY))


def test_start_up_knows_the_newest_migration() -> None:
    """The quick "already migrated?" check names the same head revisions as Alembic, so a new
    migration is never skipped."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert newest_revisions() == frozenset(heads)
