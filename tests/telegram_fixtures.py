"""The Telegram tests' fixtures: the loopback Bot API and a way to start bots on it.

Loaded for every test module by `pytest_plugins` in tests/conftest.py; a module that needs a
different fake (tests/test_graceful_shutdown.py) overrides `fake`, and `start_bot` uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppFactory
from tests.fakes.fake_telegram import FakeTelegram, StartBot, bots, serving_fake


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22 warns on its own 429 handling otherwise
    async with serving_fake() as server:
        yield server


@pytest.fixture
async def start_bot(make_app: AppFactory, fake: FakeTelegram) -> AsyncIterator[StartBot]:
    async with bots(make_app, fake) as start:
        yield start
