"""Getting messages through: flood limits (429), restarts, webhook mode and failures."""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.adapters.telegram import TelegramService
from bot.adapters.telegram.flow_control import FloodControl
from bot.core.clock import FakeClock
from bot.core.i18n import _
from bot.core.outbox import enqueue
from bot.core.replies import Say
from bot.runtime.bootstrap import configured_services
from storage.models import Identity, OutboxMessage
from tests.fakes.fake_telegram import (
    BotUnderTest,
    FakeTelegram,
    StartBot,
    telegram_config,
)
from tests.support import TELEGRAM_WEBHOOK, AppFactory, make_config

WEBHOOK = TELEGRAM_WEBHOOK


async def user_id_of(bot: BotUnderTest, telegram_id: int) -> int:
    async with bot.app.new_uow() as uow:
        return int(
            (
                await uow.session.execute(
                    select(Identity.user_id).where(Identity.external_id == str(telegram_id))
                )
            ).scalar_one()
        )


async def notify(bot: BotUnderTest, user_id: int, say: Say) -> None:
    """Write a notice to the outbox, as a core flow does in its transaction."""
    async with bot.app.new_uow() as uow:
        await enqueue(uow, user_id, say, bot.app.clock.now())
        await uow.commit()


async def unsent(bot: BotUnderTest) -> int:
    async with bot.app.new_uow() as uow:
        return int(
            (
                await uow.session.execute(
                    select(func.count(OutboxMessage.id)).where(OutboxMessage.sent_at.is_(None))
                )
            ).scalar_one()
        )


async def test_a_429_is_honoured_and_the_message_still_goes_out(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Telegram says "retry after 1 s": the bot waits and sends the same message again."""
    bot, _h = await start_bot()
    limiter = bot.service.application.bot.rate_limiter
    assert isinstance(limiter, FloodControl) and limiter._max_retries == 5
    alice = bot.user("Alice")
    fake.fail("sendMessage", retry_after=1)
    out = await alice.send("/start")
    assert "Welcome to mentorbot, Alice!" in out
    attempts = [c for c in fake.calls_of("sendMessage") if c.params["chat_id"] == alice.id]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].params["text"] == attempts[1].params["text"]


async def test_processes_sharing_a_bot_split_its_message_rate(start_bot: StartBot) -> None:
    """Each process throttles alone, so `[telegram] messages_per_second` sets its share of
    Telegram's ~30 messages/s for one bot (three processes: 10 each)."""
    bot, _h = await start_bot(telegram={"messages_per_second": 10})
    limiter = bot.service.application.bot.rate_limiter
    assert isinstance(limiter, FloodControl)
    assert limiter._base_limiter is not None and limiter._base_limiter.max_rate == 10


async def test_a_reply_refused_beyond_the_retries_is_kept_and_sent_later(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Still 429 after the last retry: the reply waits in the outbox, then is delivered."""
    bot, _h = await start_bot(telegram={"max_retries": 0})
    alice = bot.user("Alice")
    fake.fail("sendMessage", retry_after=1)
    out = await alice.send("/start")
    assert out == ""
    assert await unsent(bot) == 1
    assert await bot.app.notifier.deliver_pending() == 1
    assert "Welcome to mentorbot, Alice!" in alice.texts()[-1]
    assert alice.last_with_buttons().buttons[0]["text"] == "Browse courses"
    assert await unsent(bot) == 0


async def test_a_notice_refused_with_429_is_retried_by_the_outbox(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """A notice Telegram will not take now stays undelivered and goes out on a later sweep."""
    bot, _h = await start_bot(telegram={"max_retries": 0})
    alice = bot.user("Alice")
    await alice.send("/start")
    fake.fail("sendMessage", retry_after=1)
    await notify(bot, await user_id_of(bot, alice.id), Say(_("Skipped.")))
    assert await bot.app.notifier.deliver_pending() == 0
    assert await unsent(bot) == 1
    clock.advance(timedelta(minutes=2))  # past the outbox lease
    await bot.app.run_due()
    assert alice.texts()[-1] == "Skipped."
    assert await unsent(bot) == 0


async def test_restart_in_the_middle_of_a_conversation_resumes(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The bot stops after "/mentor"; the answer sent while it was down is handled after the
    restart as the next step of the same conversation."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/buy python-basics")
    await alice.press("Pay")
    assert await alice.pay(alice.received()[-1], charge_id="c-1")
    out = await alice.send("/mentor python-basics")
    assert "What do you want to achieve?" in out
    await bot.stop()

    await fake.push(fake.text_update(alice.user, "Ship my first web app"))
    again, _h2 = await start_bot()  # a new process on the same database
    await fake.drained()
    await again.service.application.update_queue.join()
    assert "What is your level" in alice.texts()[-1]
    alice.deliver = again.deliver
    out = await alice.press("intermediate")
    assert "When do you prefer to meet?" in out


async def test_webhook_mode_sets_the_webhook_and_checks_the_secret(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """setWebhook with the secret on start; posts with a wrong or missing secret get 403 and
    are ignored; the right secret is handled."""
    bot, _h = await start_bot(telegram=WEBHOOK)
    assert fake.webhook["url"] == WEBHOOK["webhook_url"]
    assert fake.webhook["secret_token"] == WEBHOOK["webhook_secret"]
    assert "callback_query" in fake.webhook["allowed_updates"]
    assert fake.calls_of("getUpdates") == []
    assert bot.web is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.web.port}/readyz") as ready,
    ):
        assert ready.status == 200 and (await ready.json())["checks"]["telegram"] is True

    alice = bot.user("Alice")
    update = fake.text_update(alice.user, "/start")
    assert await bot.post(update, "wrong-secret") == 403
    assert await bot.post(update, None) == 403
    assert alice.received() == []
    async with bot.app.new_uow() as uow:
        seen = await uow.session.execute(
            select(Identity.id).where(Identity.external_id == str(alice.id))
        )
        assert seen.first() is None  # the forged update reached nothing

    out = await alice.send("/start")  # posts with the right secret
    assert "Welcome to mentorbot, Alice!" in out
    out = await alice.press("Browse courses")
    assert "Courses on offer" in out


async def test_an_unexpected_failure_is_logged_and_the_user_told_in_their_language(
    start_bot: StartBot, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram rejects a reply: the error handler logs the traceback and apologises (zh)."""
    bot, _h = await start_bot()
    mei = bot.user("美", language_code="zh")
    await mei.send("/start")
    fake.fail("sendMessage", status=400, description="Bad Request: can't parse entities")
    with caplog.at_level(logging.ERROR, logger="bot.adapters.telegram.service"):
        await mei.send("/courses")
    failed = [r for r in caplog.records if r.message == "telegram update failed"]
    assert failed and failed[0].exc_info is not None
    assert mei.texts()[-1].startswith("抱歉")


async def test_a_user_who_blocked_the_bot_does_not_block_the_outbox(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A notice to a user who blocked the bot is dropped with a warning, not retried forever."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/start")
    fake.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    await notify(bot, await user_id_of(bot, alice.id), Say(_("Skipped.")))
    await bot.app.notifier.deliver_pending()
    assert await unsent(bot) == 0


async def test_one_users_updates_are_handled_in_order(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A command and its answer fetched in one batch: the answer is handled second."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/buy python-basics")
    await alice.press("Pay")
    assert await alice.pay(alice.received()[-1], charge_id="c-1")
    others = [bot.user(f"U{i}") for i in range(5)]
    before = len(alice.received())
    for update in (
        fake.text_update(alice.user, "/mentor"),
        *(fake.text_update(u.user, "/courses") for u in others),
        fake.text_update(alice.user, "Learn to write tests"),
        fake.text_update(alice.user, "advanced"),
    ):
        await fake.push(update)
    await fake.drained()
    await bot.service.application.update_queue.join()
    texts = [c.params.get("text", "") for c in alice.received()[before:]]
    assert [t.split(".")[0].split("?")[0] for t in texts] == [
        "Let's find you a mentor for Python from zero",
        "What is your level in this subject",
        "When do you prefer to meet",
    ]
    assert all("Courses on offer" in u.texts()[-1] for u in others)


async def test_mentorbot_run_starts_telegram_when_a_token_is_set(
    make_app: AppFactory, fake: FakeTelegram
) -> None:
    """configured_services: the Telegram service (and the web server) when [telegram] token is
    set; Stars is then a payment provider, offered in Telegram only."""
    app = await make_app(telegram_config(fake, telegram={"mode": "webhook", **WEBHOOK}))
    services = configured_services(app.config, app)
    assert [s.name for s in services][:1] == ["web"]
    assert any(isinstance(s, TelegramService) for s in services)
    stars = [p for p in app.payments if p.name == "stars"]
    assert len(stars) == 1 and stars[0].available_on("telegram")
    assert not stars[0].available_on("console") and not stars[0].available_on("discord")
    plain = await make_app(make_config())
    assert not any(isinstance(s, TelegramService) for s in configured_services(plain.config, plain))
    assert "stars" not in [p.name for p in plain.payments]


async def test_flood_control_can_be_switched_off_for_benchmarks(
    make_app: AppFactory, fake: FakeTelegram
) -> None:
    """`mentorbot run` throttles with the configured `FloodControl`; with `[telegram]
    flood_control = false` (what bench/load sets) it builds no rate limiter and sends at once."""

    def limiter_of(services: list[object]) -> object:
        (service,) = [s for s in services if isinstance(s, TelegramService)]
        return service.application.bot.rate_limiter

    on = await make_app(telegram_config(fake, telegram={"messages_per_second": 12}))
    limiter = limiter_of(configured_services(on.config, on))
    assert isinstance(limiter, FloodControl)
    assert limiter._base_limiter is not None and limiter._base_limiter.max_rate == 12
    off = await make_app(telegram_config(fake, telegram={"flood_control": False}))
    assert limiter_of(configured_services(off.config, off)) is None


async def test_a_backlog_waits_for_the_sweep_and_keeps_each_chats_order(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """An update's reply and notices go out at once without first sending the notices other
    transactions left waiting; the sweep sends that backlog, every recipient's messages in the
    order written."""
    bot, h = await start_bot()
    alice, bob = bot.user("Alice"), bot.user("Bob")
    await alice.send("/start")
    await bob.send("/start")
    ids = {alice.id: await user_id_of(bot, alice.id), bob.id: await user_id_of(bot, bob.id)}
    for n in range(5):
        for who in (alice, bob):
            await notify(bot, ids[who.id], Say(_("You declined request #{id}.", id=n)))
    out = await alice.send("/becomementor")  # tells the admin (in the console) at once
    assert "Thanks for applying" in out
    assert "Alice applied to mentor" in h.output[-1]
    assert await unsent(bot) == 10
    await bot.app.run_due()
    assert await unsent(bot) == 0
    for who in (alice, bob):
        declined = [t for t in who.texts() if t.startswith("You declined")]
        assert declined == [f"You declined request #{n}." for n in range(5)]


async def test_a_failure_inside_the_core_is_logged_once(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front door logs a failure with its traceback; the adapter's error handler, which sees
    the same exception on its way to the apology, does not log it a second time."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/start")

    async def broken(*_args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("bot.app.known_user", broken)
    with caplog.at_level(logging.ERROR):
        await alice.send("/courses")
    logged = [r for r in caplog.records if r.exc_info and "went away" in str(r.exc_info[1])]
    assert len(logged) == 1
    assert alice.texts()[-1].startswith("Sorry")
