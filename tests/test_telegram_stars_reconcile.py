"""Telegram Stars reconciliation: a payment whose successful_payment update never reached the
bot (polling confirms updates before they are handled) is found in getStarTransactions and
fulfilled once, through the same path as the update, whichever of the two comes first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from bot.config import ConfigError
from bot.core.clock import FakeClock
from tests.fakes.fake_telegram import (
    DATE,
    STARS,
    BotUnderTest,
    FakeTelegram,
    StartBot,
    enrollments,
    invoice_for,
    orders,
)
from tests.support import make_config

PAID = f"Paid with {STARS} ⭐. Python from zero is yours, with 4 mentor sessions."
PAID_ZH = f"已支付 {STARS} ⭐。《零基础学 Python》已归你所有，含 4 次导师辅导。"
HOUR = 3600


async def started(start_bot: StartBot, **sections: Any) -> BotUnderTest:
    """A bot process whose start-up reconciliation has run."""
    bot, _h = await start_bot(**sections)
    assert bot.service.reconciler is not None
    async with asyncio.timeout(10):
        await bot.service.reconciler.reconciled.wait()
    return bot


async def next_pass(bot: BotUnderTest) -> None:
    """What the next interval does, run now instead of after `reconcile_interval_minutes`."""
    assert bot.service.reconciler is not None
    await bot.service.reconciler.reconcile_once()


async def test_payment_whose_update_was_lost_is_fulfilled_at_start_up(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The process died after fetching the payment update: the next start enrols the learner
    once and tells them in their chat, in their language."""
    bot = await started(start_bot)
    mei = bot.user("Mei", language_code="zh")
    invoice = await invoice_for(mei)
    assert await mei.pay(invoice, charge_id="lost-1", deliver_update=False)
    await bot.stop()  # the update is gone with the process
    assert await enrollments(bot) == []

    again = await started(start_bot)  # a new process on the same database
    assert await orders(again) == [(1, "paid", "stars", "lost-1")]
    assert await enrollments(again) == [(1, "active", 4)]
    assert mei.texts()[-1] == PAID_ZH
    assert [b["text"] for b in mei.received()[-1].buttons] == ["寻找导师"]

    await next_pass(again)  # later passes find it recorded
    assert mei.texts().count(PAID_ZH) == 1
    assert await enrollments(again) == [(1, "active", 4)]
    assert fake.calls_of("refundStarPayment") == []


@pytest.mark.parametrize("first", ["update", "reconciliation", "both at once"])
async def test_update_and_reconciliation_fulfil_once(
    start_bot: StartBot, fake: FakeTelegram, first: str
) -> None:
    """The update and a reconciliation pass both bring the same payment, in either order or
    concurrently: one enrollment, one confirmation, nothing refunded."""
    bot = await started(start_bot)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="charge-1", deliver_update=False)
    update = fake.payment_update(alice.user, invoice.params["payload"], STARS, "charge-1")
    if first == "update":
        await bot.deliver(update)
        await next_pass(bot)
    elif first == "reconciliation":
        await next_pass(bot)
        assert alice.texts()[-1] == PAID
        await bot.deliver(update)  # late, e.g. a webhook retry
    else:
        await asyncio.gather(bot.deliver(update), next_pass(bot))
    assert alice.texts().count(PAID) == 1
    assert await orders(bot) == [(1, "paid", "stars", "charge-1")]
    assert await enrollments(bot) == [(1, "active", 4)]
    assert fake.calls_of("refundStarPayment") == []
    assert not any(t.startswith("Sorry") for t in alice.texts())


async def test_refunded_and_foreign_payments_are_left_alone(
    start_bot: StartBot, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """A lost payment that Telegram shows refunded is not fulfilled; a payment for someone
    else's invoice is ignored: nothing changes, nobody is told, nothing is refunded again."""
    bot = await started(start_bot)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="given-back", deliver_update=False)
    fake.star_refund(alice.id, "given-back")
    fake.star_payment(alice.user, "subscription:gold", 100, "not-ours")
    seen = len(alice.received())
    refunds = len(fake.calls_of("refundStarPayment"))

    with caplog.at_level(logging.INFO, logger="bot.providers.stars.reconcile"):
        await next_pass(bot)
    assert await orders(bot) == [(1, "pending", None, None)]
    assert await enrollments(bot) == []
    assert len(alice.received()) == seen
    assert len(fake.calls_of("refundStarPayment")) == refunds
    left_alone = [r for r in caplog.records if "left alone" in r.getMessage()]
    assert [
        (r.levelname, getattr(r, "refunded", None), getattr(r, "not_ours", None))
        for r in left_alone
    ] == [("INFO", ["given-back"], ["not-ours"])]

    fresh = await invoice_for(alice)  # the order is still open: paying it works
    assert await alice.pay(fresh, charge_id="second-try")
    assert await enrollments(bot) == [(1, "active", 4)]


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "description": "Internal Server Error"},
        {"retry_after": 30},  # 429
    ],
)
async def test_telegram_failing_to_list_does_not_stop_start_up_and_the_next_pass_retries(
    start_bot: StartBot,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    failure: dict[str, Any],
) -> None:
    """getStarTransactions fails at start-up: the bot starts and answers, the failure is a
    warning, nothing changes; the next pass fulfils the lost payment."""
    no_waiting = {"telegram": {"max_retries": 0}}  # a 429 is not waited out and repeated
    bot = await started(start_bot, **no_waiting)
    alice = bot.user("Alice")
    assert await alice.pay(await invoice_for(alice), charge_id="lost-2", deliver_update=False)
    await bot.stop()

    fake.fail("getStarTransactions", **failure)
    with caplog.at_level(logging.WARNING, logger="bot.providers.stars.reconcile"):
        again = await started(start_bot, **no_waiting)
    assert fake.calls_of("getStarTransactions")[-1].status in (429, 500)
    assert any(
        r.levelname == "WARNING" and "could not list transactions" in r.getMessage()
        for r in caplog.records
    )
    alice.deliver = again.deliver
    assert await alice.send("/mycourses") == "You have no courses yet."  # started, answering
    assert await orders(again) == [(1, "pending", None, None)]
    assert await enrollments(again) == []

    await next_pass(again)
    assert alice.texts()[-1] == PAID
    assert await orders(again) == [(1, "paid", "stars", "lost-2")]
    assert await enrollments(again) == [(1, "active", 4)]


async def test_reconciliation_pages_back_to_the_lookback_and_no_further(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A lost payment behind a full page of newer transactions is still found; paging stops at
    the first page that reaches past `reconcile_lookback_hours`."""
    bot = await started(start_bot)
    alice, other = bot.user("Alice"), bot.user("Other")
    for i in range(120):  # long before the lookback (72 h)
        fake.star_payment(other.user, f"old:{i}", 1, f"old-{i}", date=DATE - 100 * HOUR)
    assert await alice.pay(await invoice_for(alice), charge_id="lost-3", deliver_update=False)
    for i in range(150):
        fake.star_payment(other.user, f"gift:{i}", 1, f"new-{i}")
    listed = len(fake.calls_of("getStarTransactions"))

    await next_pass(bot)
    assert alice.texts()[-1] == PAID
    assert await enrollments(bot) == [(1, "active", 4)]
    pages = fake.calls_of("getStarTransactions")[listed:]
    assert [(c.params.get("offset") or 0, c.params["limit"]) for c in pages] == [
        (0, 100),
        (100, 100),
    ]


async def test_reconciliation_can_be_switched_off(start_bot: StartBot, fake: FakeTelegram) -> None:
    """`reconcile_interval_minutes = 0`: Telegram is never asked for the transactions."""
    bot, _h = await start_bot(telegram={"reconcile_interval_minutes": 0})
    assert bot.service.reconciler is None
    alice = bot.user("Alice")
    assert await alice.pay(await invoice_for(alice), charge_id="c-1")
    assert fake.calls_of("getStarTransactions") == []


def test_config_refuses_a_negative_interval_or_an_empty_lookback() -> None:
    """The two `[telegram]` reconciliation keys are checked when the config loads."""
    for telegram in ({"reconcile_interval_minutes": -1}, {"reconcile_lookback_hours": 0}):
        with pytest.raises(ConfigError, match=next(iter(telegram))):
            make_config(telegram=telegram)


@pytest.mark.parametrize("paid", ["before it expired", "after it expired"])
async def test_a_lost_payment_found_after_its_order_expired(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock, paid: str
) -> None:
    """The bot was down longer than the order stays open: the start-up sweep expires the
    order before reconciliation finds the payment. Paid while the order was open, it is
    fulfilled (the learner paid in time); a payment dated after expiry is refunded."""
    bot = await started(start_bot)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="late-1", deliver_update=False)
    await bot.stop()
    clock.advance(timedelta(hours=2))  # longer than [payments] order_ttl_minutes
    await bot.app.run_due()
    assert [o[1] for o in await orders(bot)] == ["expired"]
    stamp = clock.now() if paid == "after it expired" else clock.now() - timedelta(hours=2)
    fake.star_transactions[-1]["date"] = int(stamp.timestamp())

    again = await started(start_bot)
    if paid == "before it expired":
        assert await orders(again) == [(1, "paid", "stars", "late-1")]
        assert await enrollments(again) == [(1, "active", 4)]
        assert alice.texts()[-1] == PAID
        assert fake.calls_of("refundStarPayment") == []
    else:
        assert [o[1] for o in await orders(again)] == ["expired"]
        assert await enrollments(again) == []
        assert [
            c.params["telegram_payment_charge_id"] for c in fake.calls_of("refundStarPayment")
        ] == ["late-1"]


@pytest.mark.parametrize("paid", ["before it expired", "after it expired"])
async def test_a_payment_update_arriving_after_its_order_expired(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock, paid: str
) -> None:
    """The same rule on the update's path (a webhook redelivered after an outage): the
    payment's own date decides, not when the update arrives."""
    bot = await started(start_bot)
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="late-2", deliver_update=False)
    clock.advance(timedelta(hours=2))
    await bot.app.run_due()
    stamp = clock.now() if paid == "after it expired" else clock.now() - timedelta(hours=2)
    update = fake.payment_update(alice.user, invoice.params["payload"], STARS, "late-2")
    update["message"]["date"] = int(stamp.timestamp())
    await bot.deliver(update)
    if paid == "before it expired":
        assert await orders(bot) == [(1, "paid", "stars", "late-2")]
        assert alice.texts()[-1] == PAID
    else:
        assert [o[1] for o in await orders(bot)] == ["expired"]
        assert await enrollments(bot) == []
        assert len(fake.calls_of("refundStarPayment")) == 1
