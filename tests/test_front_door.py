"""Every input goes through the front door: measured by kind and outcome, tracked in flight
for a graceful shutdown, and a failure logged with its traceback, counted, and answered
without taking down what called it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.providers.stars import payment as stars
from bot.runtime.timers import Timers
from tests.fakes.fake_stripe import StripeWorld
from tests.fakes.fake_telegram import STARS, FakeTelegram, StartBot, invoice_for, orders
from tests.support import TELEGRAM_WEBHOOK, AppFactory, Database

WEBHOOK = TELEGRAM_WEBHOOK


class Counts:
    """The front door's counters now, to compare with after an input."""

    def __init__(self) -> None:
        self.before = self._read()

    @staticmethod
    def _read() -> dict[tuple[str, ...], float]:
        seen: dict[tuple[str, ...], float] = {}
        for metric in REGISTRY.collect():
            for sample in metric.samples:
                if sample.name == "mentorbot_inputs_total":
                    seen[("inputs", sample.labels["kind"], sample.labels["outcome"])] = sample.value
                elif sample.name == "mentorbot_input_seconds_count":
                    seen[("timed", sample.labels["kind"])] = sample.value
                elif sample.name == "mentorbot_errors_total":
                    seen[("errors", sample.labels["where"])] = sample.value
        return seen

    def added(self) -> dict[tuple[str, ...], float]:
        """What was counted since this was made (only what changed)."""
        now = self._read()
        return {k: v - self.before.get(k, 0.0) for k, v in now.items() if v != self.before.get(k)}


def tracebacks(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message and r.exc_info is not None]


@pytest.fixture
async def world(database: Database, clock: FakeClock) -> AsyncIterator[StripeWorld]:
    async with StripeWorld.open(database, clock) as w:
        yield w


async def test_stripe_webhooks_are_counted_by_outcome(world: StripeWorld) -> None:
    """A paid completion, its duplicate and a forged post each count as one stripe_webhook,
    labelled with what it did, and each is timed."""
    _order_id, session_id = await world.buy("alice")
    event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
    counts = Counts()
    assert (await world.send(event))[0] == 200
    assert (await world.send(event))[1]["outcome"] == "duplicate"
    assert (await world.send(event, secret="whsec_wrong"))[0] == 400
    assert counts.added() == {
        ("inputs", "stripe_webhook", "fulfilled"): 1,
        ("inputs", "stripe_webhook", "duplicate"): 1,
        ("inputs", "stripe_webhook", "refused"): 1,
        ("timed", "stripe_webhook"): 3,
    }


async def test_a_failing_webhook_is_logged_counted_and_retried_by_stripe(
    world: StripeWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while applying an event: a traceback in the log naming the event, one
    error counted, 500 so Stripe retries; the next delivery of the same event works."""
    order_id, session_id = await world.buy("alice")
    event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
    process = world.service.webhook.process

    async def broken(_event: dict[str, Any]) -> str:
        raise RuntimeError("database went away")

    monkeypatch.setattr(world.service.webhook, "process", broken)
    counts = Counts()
    with caplog.at_level(logging.ERROR):
        status, _body = await world.send(event)
    assert status == 500
    [record] = tracebacks(caplog, "stripe webhook failed; Stripe will retry it")
    assert record.__dict__["event_id"] == event["id"]
    assert counts.added() == {
        ("inputs", "stripe_webhook", "error"): 1,
        ("errors", "stripe_webhook"): 1,
        ("timed", "stripe_webhook"): 1,
    }
    monkeypatch.setattr(world.service.webhook, "process", process)
    assert await world.send(event) == (200, {"received": True, "outcome": "fulfilled"})
    assert (await world.order(order_id)).status == "paid"


async def test_stripe_reconciliation_passes_are_counted_and_survive_a_failure(
    world: StripeWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that settles a lost payment counts as `settled`; one that raises is logged with
    its traceback and counted as an error, and the pass after it settles as usual."""
    order_id, session_id = await world.buy("alice")
    world.fake.pay(session_id)  # the webhook never arrives
    recent = world.payments.recent_sessions

    def unreachable(_since: Any) -> Any:
        raise RuntimeError("stripe listing broke")

    monkeypatch.setattr(world.payments, "recent_sessions", unreachable)
    counts = Counts()
    with caplog.at_level(logging.ERROR):
        assert await world.service.reconcile_once() is None
    assert tracebacks(caplog, "stripe reconciliation failed; the next pass retries")
    monkeypatch.setattr(world.payments, "recent_sessions", recent)
    report = await world.service.reconcile_once()
    assert report is not None and report.settled == 1
    assert (await world.order(order_id)).status == "paid"
    assert counts.added() == {
        ("inputs", "stripe_reconcile", "error"): 1,
        ("inputs", "stripe_reconcile", "settled"): 1,
        ("errors", "stripe_reconcile"): 1,
        ("timed", "stripe_reconcile"): 2,
    }


async def test_a_graceful_shutdown_waits_for_a_webhook_in_flight(
    world: StripeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping the Stripe service while a webhook is being applied: the stop waits, the
    webhook finishes and is answered 200, and the order is paid."""
    order_id, session_id = await world.buy("alice")
    event = world.fake.event("checkout.session.completed", world.fake.pay(session_id))
    inside, release = asyncio.Event(), asyncio.Event()
    process = world.service.webhook.process

    async def slow(received: dict[str, Any]) -> str:
        inside.set()
        await release.wait()
        return await process(received)

    monkeypatch.setattr(world.service.webhook, "process", slow)
    post = asyncio.create_task(world.send(event))
    await asyncio.wait_for(inside.wait(), 10)
    stopping = asyncio.create_task(world.service.stop())
    await asyncio.sleep(0.3)
    assert not stopping.done()  # waits for the webhook
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert post.done() and post.result()[0] == 200
    assert (await world.order(order_id)).status == "paid"


async def test_stars_pre_checkout_and_payment_are_counted(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Paying with Stars is a pre-checkout (ok) and a payment (fulfilled); the same payment
    reported again counts as a duplicate."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    counts = Counts()
    assert await alice.pay(invoice, charge_id="charge-1")
    await bot.deliver(fake.payment_update(alice.user, invoice.params["payload"], STARS, "charge-1"))
    added = counts.added()
    assert added[("inputs", "stars_pre_checkout", "ok")] == 1
    assert added[("inputs", "stars_payment", "fulfilled")] == 1
    assert added[("inputs", "stars_payment", "duplicate")] == 1
    assert added[("timed", "stars_payment")] == 2


async def test_a_stars_payment_that_fails_is_logged_apologised_for_and_asked_again(
    start_bot: StartBot,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Webhook mode: recording the payment raises; the traceback is logged, an error counted,
    the payer gets the apology and Telegram gets 500 so it sends the update again, which then
    fulfils the order; the bot goes on answering."""
    bot, _h = await start_bot(telegram=WEBHOOK)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="c-1", deliver_update=False)
    update = fake.payment_update(alice.user, invoice.params["payload"], STARS, "c-1")
    record = stars.record_payment

    async def broken(*_args: Any, **_kw: Any) -> stars.PaymentOutcome:
        raise RuntimeError("database went away")

    monkeypatch.setattr(stars, "record_payment", broken)
    counts = Counts()
    with caplog.at_level(logging.ERROR):
        assert await bot.post(update, WEBHOOK["webhook_secret"]) == 500
    assert tracebacks(caplog, "a successful Stars payment was not recorded")
    assert alice.texts()[-1].startswith("Sorry, something went wrong on our side.")
    assert counts.added() == {
        ("inputs", "stars_payment", "error"): 1,
        ("errors", "stars_payment"): 1,
        ("timed", "stars_payment"): 1,
    }
    monkeypatch.setattr(stars, "record_payment", record)
    assert await bot.post(update, WEBHOOK["webhook_secret"]) == 200
    assert await orders(bot) == [(1, "paid", "stars", "c-1")]
    assert not (await alice.send("/help")).startswith("Sorry")


async def test_stars_reconciliation_passes_are_counted(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A pass that finds a lost payment counts as `settled`, one with nothing to do as `ok`."""
    bot, _h = await start_bot()
    reconciler = bot.service.reconciler
    assert reconciler is not None
    await asyncio.wait_for(reconciler.reconciled.wait(), 10)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="lost-1", deliver_update=False)
    counts = Counts()
    await reconciler.reconcile_once()
    await reconciler.reconcile_once()
    assert await orders(bot) == [(1, "paid", "stars", "lost-1")]
    assert counts.added() == {
        ("inputs", "stars_reconcile", "settled"): 1,
        ("inputs", "stars_reconcile", "ok"): 1,
        ("timed", "stars_reconcile"): 2,
    }


async def test_a_sweep_is_counted_and_a_failing_one_does_not_stop_the_timers(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sweep counts once; one that raises is logged with its traceback and counted as an
    error, and the next sweep runs normally."""
    app: Marketplace = await make_app()
    timers = Timers(app)
    run_due = app.run_due

    async def broken() -> Any:
        raise RuntimeError("database went away")

    counts = Counts()
    monkeypatch.setattr(app, "run_due", broken)
    with caplog.at_level(logging.ERROR):
        await timers.sweep()
    assert tracebacks(caplog, "sweep failed; the next one retries")
    monkeypatch.setattr(app, "run_due", run_due)
    await timers.sweep()
    assert counts.added() == {
        ("inputs", "sweep", "error"): 1,
        ("inputs", "sweep", "ok"): 1,
        ("errors", "sweep"): 1,
        ("timed", "sweep"): 2,
    }


async def test_chat_counts_as_an_input_beside_its_platform_metrics(make_app: AppFactory) -> None:
    """A chat message is counted by kind `chat` as well as by platform (the older metric)."""
    from bot.core.users import Incoming

    app = await make_app()
    counts = Counts()
    await app.handle(Incoming("console", "alice", "alice", "/help"))
    await app.handle(Incoming("console", "alice", "alice", "/nonsense"))
    added = counts.added()
    assert added[("inputs", "chat", "ok")] == 1
    assert added[("inputs", "chat", "refused")] == 1
