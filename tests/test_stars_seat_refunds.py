"""The unused seat of a workshop sold alone, paid in Telegram Stars (its product course is
archived, yet on sale while the workshop is to come), is given back once across processes:
the refund is made under a lease on the order, so two marketplaces sweeping the same database
at once call refundStarPayment once, and one that dies after claiming it leaves the refund to
the next once the lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.adapters.telegram.service import TelegramService
from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.payments import REFUND_LEASE
from bot.providers.stars.payment import StarsPayments
from storage.models import LedgerEntry, Order, WorkshopSeat
from tests.fakes.fake_telegram import BotUnderTest, FakeTelegram, StartBot, TelegramUser
from tests.support import AppFactory, Harness, buy, snapshot

Second = Callable[[Marketplace], Awaitable[Marketplace]]
NEW = '/workshop new title="Testing with pytest" start="2026-03-05 18:00" seats=2'


async def paid_seat(bot: BotUnderTest, h: Harness, alice: TelegramUser) -> tuple[int, int]:
    """ada hosts a workshop sold alone for 50 ⭐, Alice pays her seat in Stars, and ada cancels
    it: the workshop's id and Alice's order, now an unused seat waiting for its refund."""
    out = await h.send("ada", f"{NEW} price=15.00 currency=USD stars=50")
    assert "workshop created" in out, out
    wid = int(out.split("#", 1)[1].split(" ", 1)[0])
    await alice.send(f"/join {wid}")
    pay = next(b for b in alice.last_with_buttons().buttons if "⭐" in b["text"])
    await alice.press_data(pay["callback_data"])
    invoice = alice.received()[-1]
    assert invoice.method == "sendInvoice", invoice
    assert await alice.pay(invoice, charge_id="seat-charge")
    async with bot.app.new_uow() as uow:
        [order] = (
            await uow.session.execute(select(Order.id).where(Order.provider_ref == "seat-charge"))
        ).scalars()
        seats = await uow.session.execute(select(WorkshopSeat.status))
        assert list(seats.scalars()) == ["seated"]
    out = await h.send("ada", f"/workshop cancel {wid}")
    assert "is cancelled" in out, out
    return wid, order


@pytest.fixture
async def second(make_app: AppFactory, fake: FakeTelegram) -> AsyncIterator[Second]:
    """A second marketplace process on the same database whose Stars refunds go through its
    own Telegram adapter (initialised, not polling: one process per token polls)."""
    services: list[TelegramService] = []

    async def start(config_of: Marketplace) -> Marketplace:
        app = await make_app(config_of.config)
        service = TelegramService(app.config, app, None)
        await service.application.initialize()
        services.append(service)
        stars = next(p for p in app.payments if isinstance(p, StarsPayments))
        stars.connect(service.refund, service.edit_star_subscription)
        return app

    yield start
    for service in services:
        await service.application.shutdown()


async def refunded_ledger(app: Marketplace) -> list[int | None]:
    async with app.new_uow() as uow:
        rows = await uow.session.execute(
            select(LedgerEntry.order_id).where(LedgerEntry.kind == "order_refunded")
        )
        return list(rows.scalars())


async def test_two_processes_sweeping_at_once_refund_the_seat_once(
    start_bot: StartBot, fake: FakeTelegram, second: Second
) -> None:
    """Two marketplaces on one database sweep while Telegram is slow to answer the first
    refundStarPayment: the other leaves the order alone, so Telegram is asked once; the order
    is refunded once in the ledger and Alice is told once."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    _wid, order = await paid_seat(bot, h, alice)
    other = await second(bot.app)
    slow = fake.hold("refundStarPayment")
    first = asyncio.create_task(bot.app.run_due())
    await fake.wait_for(lambda: fake.calls_of("refundStarPayment"))
    late = asyncio.create_task(other.run_due())
    await asyncio.wait({late}, timeout=3)  # done, or held at Telegram as the first is
    slow.set()
    await asyncio.gather(first, late)
    assert len(fake.calls_of("refundStarPayment")) == 1
    assert fake.refunded == {"seat-charge"}
    assert await refunded_ledger(bot.app) == [order]
    await bot.app.run_due()
    await fake.wait_for(lambda: any("is refunded" in t for t in alice.texts()))
    assert sum("is refunded" in t for t in alice.texts()) == 1


async def test_a_process_that_dies_after_claiming_leaves_the_refund_to_another(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock, second: Second
) -> None:
    """A process claims the refund, reaches Telegram (the Stars go back) and dies before
    recording it: while its lease lasts the other process does not call Telegram; once it
    runs out the other refunds the order (Telegram's CHARGE_ALREADY_REFUNDED counts as done),
    and the Stars went back once."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    _wid, order = await paid_seat(bot, h, alice)
    other = await second(bot.app)
    slow = fake.hold("refundStarPayment")
    dying = asyncio.create_task(other.run_due())
    await fake.wait_for(lambda: fake.calls_of("refundStarPayment"))
    fake.star_refund(alice.id, "seat-charge")  # Telegram did it; the answer never arrives
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    slow.set()
    survivor = await second(bot.app)
    await survivor.run_due()
    assert len(fake.calls_of("refundStarPayment")) == 1  # the lease holds
    async with survivor.new_uow() as uow:
        assert (await uow.get(Order, order)).status == "paid"  # type: ignore[union-attr]
    clock.advance(REFUND_LEASE + timedelta(seconds=1))
    await survivor.run_due()
    assert len(fake.calls_of("refundStarPayment")) == 2
    assert fake.calls_of("refundStarPayment")[-1].status == 400  # already refunded
    async with survivor.new_uow() as uow:
        assert (await uow.get(Order, order)).status == "refunded"  # type: ignore[union-attr]
    assert await refunded_ledger(survivor) == [order]


async def test_an_admin_refund_while_another_is_underway_changes_nothing(
    market: Harness, clock: FakeClock
) -> None:
    """An order another process is refunding now (its lease held): the admin is told so and
    nothing changes; once the lease has run out the refund goes through."""
    await buy(market, "alice")
    async with market.app.new_uow() as uow:
        order = await uow.lock(Order, 1)
        assert order is not None
        order.refund_claimed_until = clock.now() + REFUND_LEASE
        await uow.commit()
    before = await snapshot(market)
    out = await market.send("admin", "/admin refund 1")
    assert "Order #1 is being refunded right now" in out, out
    assert await snapshot(market) == before
    clock.advance(REFUND_LEASE + timedelta(seconds=1))
    out = await market.send("admin", "/admin refund 1")
    assert "Order #1 refunded" in out, out
