"""A graceful stop (SIGTERM) while work is half-done: it finishes, nothing is cut off.

The Telegram adapter's HTTP client must outlive what still uses it: a webhook post being
handled and a batch of notices being delivered finish before it is closed. Closing it first
failed their remaining sends ("This HTTPXRequest is not initialized!"): replies kept for later
and notices sent again by another process, seen as duplicates by the load test
(bench/load). Likewise a timer sweep in progress finishes instead of being cancelled
half-way (APScheduler logged that as an error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Marketplace
from bot.cli import _shut_down
from bot.core.clock import FakeClock
from bot.core.i18n import _
from bot.core.outbox import enqueue
from bot.core.replies import Say
from bot.runtime.timers import Timers
from storage.models import Identity, OutboxMessage
from tests.fakes.fake_telegram import BotUnderTest, Call, FakeTelegram, StartBot
from tests.support import TELEGRAM_WEBHOOK, TELEGRAM_WEBHOOK_SECRET, AppFactory

WEBHOOK = TELEGRAM_WEBHOOK


class HeldTelegram(FakeTelegram):
    """The fake Bot API, able to hold sendMessage calls until released."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.open = asyncio.Event()
        self.open.set()
        self.holding = asyncio.Event()

    def hold(self) -> None:
        self.open.clear()
        self.holding.clear()

    async def _record(self, call: Call) -> None:
        await super()._record(call)
        if call.method.lower() == "sendmessage" and not self.open.is_set():
            self.holding.set()
            await self.open.wait()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldTelegram]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    server = HeldTelegram()
    await server.start()
    try:
        yield server
    finally:
        server.open.set()
        await server.stop()


async def unsent(bot: BotUnderTest) -> int:
    async with bot.app.new_uow() as uow:
        count = select(func.count(OutboxMessage.id)).where(OutboxMessage.sent_at.is_(None))
        return int((await uow.session.execute(count)).scalar_one())


async def stop_while_held(bot: BotUnderTest, fake: HeldTelegram, busy: Any) -> None:
    """Stop the service while `busy` (a task) waits on a held sendMessage; the stop must not
    finish before `busy` did, and both must end once the fake answers."""
    await asyncio.wait_for(fake.holding.wait(), 10)
    stopping = asyncio.create_task(bot.service.stop())
    await asyncio.sleep(0.3)  # the stop runs as far as it goes while the send is held
    assert not busy.done()
    fake.open.set()
    await asyncio.wait_for(asyncio.gather(busy, stopping), 20)


async def test_a_webhook_update_in_flight_is_answered_in_full_before_the_bot_closes(
    start_bot: StartBot, fake: HeldTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bot, _h = await start_bot(telegram=WEBHOOK)
    alice = bot.user("Alice")
    await alice.send("/start")
    fake.hold()
    before = len(alice.received())
    post = asyncio.create_task(
        bot.post(fake.text_update(alice.user, "/help"), TELEGRAM_WEBHOOK_SECRET)
    )
    with caplog.at_level(logging.WARNING):
        await stop_while_held(bot, fake, post)
    assert post.result() == 200
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert len(alice.received()) > before  # /help was answered through the bot
    assert await unsent(bot) == 0  # nothing kept for later delivery


async def test_notices_being_sent_finish_and_are_recorded_before_the_bot_closes(
    start_bot: StartBot, fake: HeldTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/start")
    async with bot.app.new_uow() as uow:
        user_id = (
            await uow.session.execute(
                select(Identity.user_id).where(Identity.external_id == str(alice.id))
            )
        ).scalar_one()
        for text in (_("Skipped."), _("Send a command such as /help.")):
            await enqueue(uow, user_id, Say(text), bot.app.clock.now())
        await uow.commit()
    fake.hold()
    sending = asyncio.create_task(bot.app.notifier.deliver_pending())
    with caplog.at_level(logging.WARNING):
        await stop_while_held(bot, fake, sending)
    assert sending.result() == 2
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert alice.texts()[-2:] == ["Skipped.", "Send a command such as /help."]
    assert await unsent(bot) == 0  # both sent and recorded: nobody sends them again
    # Stopped: nothing more goes out through this bot; the outbox keeps it for another.
    async with bot.app.new_uow() as uow:
        await enqueue(uow, user_id, Say(_("Skipped.")), bot.app.clock.now())
        await uow.commit()
    assert await bot.app.notifier.deliver_pending() == 0
    assert await unsent(bot) == 1


async def test_a_sweep_in_progress_finishes_before_the_process_exits(
    make_app: AppFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app: Marketplace = await make_app()
    timers = Timers(app)
    await timers.start()
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    run_due = app.run_due

    async def slow_run_due() -> Any:
        started.set()
        await release.wait()
        report = await run_due()
        finished.set()
        return report

    app.run_due = slow_run_due  # type: ignore[method-assign]
    timers.arm(clock.now())  # due now: the sweep fires at once
    await asyncio.wait_for(started.wait(), 10)
    with caplog.at_level(logging.WARNING):
        stopping = asyncio.create_task(_shut_down(app, timers, []))
        await asyncio.sleep(0.3)
        assert not stopping.done()  # waits for the sweep
        release.set()
        await asyncio.wait_for(stopping, 10)
    assert finished.is_set()
    assert not timers.scheduler.running
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []
