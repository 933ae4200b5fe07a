"""/buy commits its order first and calls Stripe after, outside any transaction.

The core's `Ctx.after_commit` runs deferred work once the handler's transaction has committed;
`/buy` opens the Checkout Session there. Stripe is the real stripe-python against
tests/fakes/fake_stripe.py, whose `hold` keeps a Checkout Session create waiting until the test
releases it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import SORRY
from bot.context import Ctx
from bot.core.errors import BadInput
from bot.core.i18n import Msg
from bot.core.replies import Reply
from bot.core.users import Incoming
from bot.handlers.registry import COMMANDS, Command
from bot.payments import DemoPayments, PaymentProvider
from storage.models import Order, PaymentEvent, User
from tests.fakes.fake_stripe import StripeWorld
from tests.support import Harness

CHECKOUT = "https://checkout.stripe.com/c/pay/"
UNAVAILABLE = (
    "Card payments are not available right now. Your order stays open: try again in a few "
    "minutes to pay it by card."
)
WAIT = 10  # seconds; only a guard against hanging, never what a test waits for


async def send(world: StripeWorld, who: str, text: str) -> Reply:
    """One console message straight to the marketplace (several may run at once)."""
    [reply] = await world.app.handle(Incoming("console", who, who, text))
    return reply


def card_url(reply: Reply) -> str | None:
    return next((c.payload for c in reply.choices if c.url), None)


async def orders(world: StripeWorld) -> list[tuple[Any, ...]]:
    """(id, status, checkout_ref) of every order."""
    async with world.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(Order.id, Order.status, Order.checkout_ref).order_by(Order.id)
        )
        return [tuple(r) for r in rows]


async def test_a_slow_stripe_does_not_keep_other_users_waiting(world: StripeWorld) -> None:
    """While Stripe is slow to open alice's Checkout Session, her order is already committed
    and bob's /courses is answered; alice's link follows when Stripe answers."""
    world.fake.hold = asyncio.Event()
    buying = asyncio.create_task(send(world, "alice", "/buy python-basics"))
    await asyncio.wait_for(world.fake.held.wait(), WAIT)

    courses = await asyncio.wait_for(send(world, "bob", "/courses"), WAIT)
    assert "Courses on offer" in courses.text
    assert not buying.done()
    assert await orders(world) == [(1, "pending", None)]

    world.fake.hold.set()
    bought = await asyncio.wait_for(buying, WAIT)
    [session_id] = world.fake.sessions
    assert "Order #1: Python from zero" in bought.text
    assert card_url(bought) == CHECKOUT + session_id
    assert await orders(world) == [(1, "pending", session_id)]


async def test_an_order_cancelled_while_its_page_opens_gets_that_page_closed(
    world: StripeWorld,
) -> None:
    """/cancelorder lands while Stripe is still opening the order's Checkout Session: the
    page that opens afterwards is expired at once (only /buy knew of it), and /buy says the
    order was closed instead of showing a link that could still take money."""
    world.fake.hold = asyncio.Event()
    buying = asyncio.create_task(send(world, "alice", "/buy python-basics"))
    await asyncio.wait_for(world.fake.held.wait(), WAIT)
    cancelled = await asyncio.wait_for(send(world, "alice", "/cancelorder 1"), WAIT)
    assert "cancelled" in cancelled.text, cancelled.text
    world.fake.hold.set()
    bought = await asyncio.wait_for(buying, WAIT)
    [session_id] = world.fake.sessions
    assert world.fake.sessions[session_id]["status"] == "expired"
    assert card_url(bought) is None
    assert "was closed while its payment page was opening" in bought.text, bought.text
    assert await orders(world) == [(1, "cancelled", None)]


async def test_refunding_a_payment_its_order_no_longer_takes_keeps_nobody_waiting(
    world: StripeWorld,
) -> None:
    """A card payment arriving after its order was cancelled is refunded with no transaction
    open: while Stripe is slow to refund it, bob's /courses is answered (on SQLite a refund
    inside the webhook's transaction would hold the whole database); then the refund is
    recorded once and alice is told. Stripe down: answered 500, nothing recorded, and Stripe's
    retry refunds it."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    await world.h.send("alice", f"/cancelorder {order_id}")
    world.fake.fail_next.append(400)
    status, _body = await world.send(world.fake.event("checkout.session.completed", paid))
    assert status == 500 and not world.fake.refunds
    assert await world.count(PaymentEvent) == 0
    world.fake.hold = asyncio.Event()
    webhook = asyncio.create_task(world.send(world.fake.event("checkout.session.completed", paid)))
    await asyncio.wait_for(world.fake.held.wait(), WAIT)
    courses = await asyncio.wait_for(send(world, "bob", "/courses"), WAIT)
    assert "Courses on offer" in courses.text
    assert not webhook.done() and not world.fake.refunds
    world.fake.hold.set()
    assert (await asyncio.wait_for(webhook, WAIT))[1]["outcome"] == "refunded_unwanted"
    assert len(world.fake.refunds) == 1
    assert "so it has been refunded in full" in await world.delivered()


async def test_stripe_down_keeps_the_order_and_buying_again_opens_its_session(
    world: StripeWorld,
) -> None:
    """Stripe failing at /buy: the order stays pending and its message shows the other ways to
    pay with a note; /buy once Stripe is back shows the card link for the same order."""
    world.app.payments = (*world.app.payments, DemoPayments())  # another way to pay
    world.fake.fail_next = [500]
    down = await send(world, "alice", "/buy python-basics")
    assert down.text.startswith("Order #1: Python from zero for $49.00.")
    assert down.text.endswith("\n" + UNAVAILABLE)
    assert card_url(down) is None
    assert [(c.label, c.payload) for c in down.choices] == [
        ("Pay (demo — no money moved)", "/pay 1"),
        ("Try again", "/buy python-basics"),
        ("Cancel order", "/cancelorder 1"),
    ]
    assert await orders(world) == [(1, "pending", None)]
    assert world.fake.sessions == {}

    again = await send(world, "alice", "/buy python-basics")  # what Try again sends
    [session_id] = world.fake.sessions
    assert "Order #1:" in again.text and "not available" not in again.text
    assert card_url(again) == CHECKOUT + session_id
    assert [c.label for c in again.choices] == [
        "Pay $49.00 by card",
        "Pay (demo — no money moved)",
        "Cancel order",
    ]
    assert await orders(world) == [(1, "pending", session_id)]
    creates = world.fake.calls_to("POST", "/v1/checkout/sessions")
    assert len(creates) == 2 and creates[0].idempotency_key == creates[1].idempotency_key
    assert world.fake.sessions[session_id]["metadata"]["order_id"] == "1"


async def test_a_double_tap_makes_one_order_and_one_session(world: StripeWorld) -> None:
    """Two /buy at once while Stripe is slow: one order, one Checkout Session, one create
    request (the second waits for the first's), and both replies show the same link."""
    entered = 0
    both_in = asyncio.Event()
    start_checkout = world.payments.start_checkout

    async def counted(order: Order, course: Any) -> Any:
        nonlocal entered
        entered += 1
        if entered == 2:
            both_in.set()
        return await start_checkout(order, course)

    world.payments.start_checkout = counted  # type: ignore[method-assign]
    world.fake.hold = asyncio.Event()
    taps = [asyncio.create_task(send(world, "alice", "/buy python-basics")) for _ in range(2)]
    await asyncio.wait_for(both_in.wait(), WAIT)  # both orders' transactions have committed
    assert await orders(world) == [(1, "pending", None)]
    world.fake.hold.set()
    first, second = await asyncio.wait_for(asyncio.gather(*taps), WAIT)

    [session_id] = world.fake.sessions
    assert card_url(first) == card_url(second) == CHECKOUT + session_id
    assert "Order #1:" in first.text and "Order #1:" in second.text
    assert len(world.fake.calls_to("POST", "/v1/checkout/sessions")) == 1
    assert await orders(world) == [(1, "pending", session_id)]


async def test_a_session_is_kept_on_the_order_only_if_it_has_none(world: StripeWorld) -> None:
    """Should a provider come back with another session for an order that has one kept, the
    kept one is shown and stays (a payment is accepted only for it)."""
    order_id, session_id = await world.buy("alice")
    other: PaymentProvider = world.payments

    class Forgetful:
        """Stripe as it would answer a stale order with no idempotency key remembered."""

        name = other.name
        available_on = other.available_on
        refund = other.refund

        async def start_checkout(self, order: Order, course: Any) -> Any:
            order.checkout_ref = order.checkout_url = None
            world.fake._idempotency.clear()  # Stripe would replay; make it answer anew
            return await other.start_checkout(order, course)

    world.app.payments = (Forgetful(),)
    again = await send(world, "alice", "/buy python-basics")
    assert len(world.fake.sessions) == 2
    assert card_url(again) == CHECKOUT + session_id
    assert await orders(world) == [(order_id, "pending", session_id)]


# -- Ctx.after_commit itself ----------------------------------------------------------------


Work = Callable[[Ctx], Awaitable[None]]


def install(monkeypatch: pytest.MonkeyPatch, handler: Work, deferred: Work) -> list[str]:
    """A /try command: sets the user's timezone to Asia/Tokyo, says so, defers `deferred`."""
    ran: list[str] = []

    async def try_(ctx: Ctx, args: list[str]) -> None:
        ctx.actor.user.timezone = "Asia/Tokyo"
        ctx.say(Msg("timezone set"))

        async def later() -> None:
            ran.append("deferred")
            await deferred(ctx)

        ctx.after_commit(later)
        await handler(ctx)

    monkeypatch.setitem(COMMANDS, "try", Command("try", try_, Msg("test")))
    return ran


async def timezone(h: Harness, who: str) -> str:
    async with h.app.new_uow() as uow:
        tz = await uow.session.execute(select(User.timezone).where(User.display_name == who))
        return str(tz.scalar_one())


async def nothing(ctx: Ctx) -> None:
    return None


async def test_deferred_work_runs_after_the_commit_in_its_own_transaction(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred work sees what the handler committed, opens its own unit of work, and adds
    replies after the handler's."""

    async def deferred(ctx: Ctx) -> None:
        async with ctx.new_uow() as uow:
            user = await uow.lock(User, ctx.actor.id)
            assert user is not None and user.timezone == "Asia/Tokyo"
            user.language = "zh"
            await uow.commit()
        ctx.say(Msg("deferred done"))

    ran = install(monkeypatch, nothing, deferred)
    out = await harness.send("ann", "/try")
    assert ran == ["deferred"]
    assert out.index("timezone set") < out.index("deferred done")
    async with harness.app.new_uow() as uow:
        user = await uow.session.execute(select(User).where(User.display_name == "ann"))
        assert user.scalar_one().language == "zh"


async def test_deferred_work_does_not_run_when_the_handler_is_refused(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused handler rolls back and its deferred work never runs."""

    async def refuse(ctx: Ctx) -> None:
        raise BadInput(Msg("no, thanks"))

    ran = install(monkeypatch, refuse, nothing)
    await harness.send("ann", "/start")
    out = await harness.send("ann", "/try")
    assert out == "no, thanks"
    assert ran == []
    assert await timezone(harness, "ann") != "Asia/Tokyo"


async def test_a_refusal_in_deferred_work_is_a_polite_reply_and_keeps_the_commit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MentorbotError from deferred work is shown after what the handler said; the
    handler's transaction stays committed."""

    async def refuse(ctx: Ctx) -> None:
        ctx.say(Msg("half-way"))
        raise BadInput(Msg("the outside world said no"))

    install(monkeypatch, nothing, refuse)
    out = await harness.send("ann", "/try")
    assert out.splitlines() == ["timezone set", "the outside world said no"]
    assert await timezone(harness, "ann") == "Asia/Tokyo"


async def test_a_crash_in_deferred_work_is_logged_and_apologised_for(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error in deferred work: logged, the usual apology, the commit kept."""

    async def crash(ctx: Ctx) -> None:
        raise RuntimeError("boom")

    install(monkeypatch, nothing, crash)
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        out = await harness.send("ann", "/try")
    assert out.splitlines() == ["timezone set", SORRY.msg.render("en", "UTC")]
    assert "after a message's transaction committed" in caplog.text
    assert await timezone(harness, "ann") == "Asia/Tokyo"
