"""Telegram Stars: invoice, pre-checkout, exactly-once fulfilment and refunds.

Telegram may deliver a successful payment more than once, and an old invoice can be paid after
its order was settled; the charge id is the key that keeps one payment to one enrollment.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.clock import FakeClock
from tests.fakes.fake_telegram import (
    STARS,
    FakeTelegram,
    StartBot,
    enrollments,
    invoice_for,
    orders,
)

ADMIN_ID = 9001


async def test_duplicate_successful_payment_enrolls_once(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The same payment delivered twice: one enrollment, one confirmation, no refund."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="charge-dup")
    confirmations = len(alice.received())
    payload = invoice.params["payload"]
    await bot.deliver(fake.payment_update(alice.user, payload, STARS, "charge-dup"))
    assert len(alice.received()) == confirmations  # nothing more said
    assert await orders(bot) == [(1, "paid", "stars", "charge-dup")]
    assert await enrollments(bot) == [(1, "active", 4)]
    assert fake.calls_of("refundStarPayment") == []


async def test_second_payment_for_a_paid_order_is_given_back(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """An old invoice paid again (another charge) after the order was paid: refunded, told."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    assert await alice.pay(invoice, charge_id="first")
    payload = invoice.params["payload"]
    await bot.deliver(fake.payment_update(alice.user, payload, STARS, "second"))
    assert "could not be applied to an open order" in alice.texts()[-1]
    refund = fake.calls_of("refundStarPayment")
    assert [(c.params["user_id"], c.params["telegram_payment_charge_id"]) for c in refund] == [
        (alice.id, "second")
    ]
    assert await orders(bot) == [(1, "paid", "stars", "first")]
    assert await enrollments(bot) == [(1, "active", 4)]

    await bot.deliver(fake.payment_update(alice.user, payload, STARS, "second"))  # again
    assert fake.refunded == {"second"}
    assert not any(t.startswith("Sorry") for t in alice.texts())
    assert await enrollments(bot) == [(1, "active", 4)]


async def test_pre_checkout_after_a_price_change_is_refused(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The admin changes the Stars price after the invoice: checkout refused, nothing paid."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    await h.send("admin", "/admin course edit python-basics stars=300")
    assert not await alice.pay(invoice, charge_id="never")
    answer = fake.calls_of("answerPreCheckoutQuery")[-1]
    assert answer.params["ok"] is False
    assert "price of Python from zero has changed" in answer.params["error_message"]
    assert await orders(bot) == [(1, "pending", None, None)]
    assert await enrollments(bot) == []

    fresh = await invoice_for(alice)  # buying again shows the new price and works
    assert fresh.params["prices"][0]["amount"] == 300
    assert await alice.pay(fresh, charge_id="new-price")
    assert await enrollments(bot) == [(1, "active", 4)]


async def test_pre_checkout_refused_for_expired_cancelled_or_foreign_orders(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """Only the payer's own pending order, before it expires, can be checked out."""
    bot, _h = await start_bot()
    alice, bob = bot.user("Alice"), bot.user("Bob")
    invoice = await invoice_for(alice)
    payload = invoice.params["payload"]

    await bot.deliver(fake.pre_checkout_update(bob.user, payload, STARS))
    assert (
        "not valid any more" in fake.calls_of("answerPreCheckoutQuery")[-1].params["error_message"]
    )
    await bot.deliver(fake.pre_checkout_update(alice.user, "order:1:1", 1))
    assert fake.calls_of("answerPreCheckoutQuery")[-1].params["ok"] is False

    clock.advance(timedelta(minutes=61))
    assert not await alice.pay(invoice, charge_id="late")
    assert (
        "Order #1 is expired" in fake.calls_of("answerPreCheckoutQuery")[-1].params["error_message"]
    )
    assert await enrollments(bot) == []


async def test_admin_refund_calls_refund_star_payment_and_revokes(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """`/admin refund` from a Telegram admin: refundStarPayment, order refunded, access gone."""
    bot, _h = await start_bot(bot={"admins": ["console:admin", f"telegram:{ADMIN_ID}"]})
    alice = bot.user("Alice")
    assert await alice.pay(await invoice_for(alice), charge_id="to-refund")
    root = bot.user("Root", user_id=ADMIN_ID)
    out = await root.send("/admin refund 1")
    assert "Order #1 refunded" in out
    refund = fake.calls_of("refundStarPayment")
    assert [(c.params["user_id"], c.params["telegram_payment_charge_id"]) for c in refund] == [
        (alice.id, "to-refund")
    ]
    assert "Order #1 is refunded" in alice.texts()[-1]
    assert await orders(bot) == [(1, "refunded", "stars", "to-refund")]
    assert await enrollments(bot) == [(1, "revoked", 0)]


async def test_refund_refused_by_telegram_changes_nothing(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Telegram refuses the refund: the admin is told and the order stays paid."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    assert await alice.pay(await invoice_for(alice), charge_id="stuck")
    fake.fail("refundStarPayment", status=400, description="Bad Request: CHARGE_NOT_FOUND")
    out = await h.send("admin", "/admin refund 1")
    assert "Telegram refused the refund" in out and "Nothing was changed" in out
    assert await orders(bot) == [(1, "paid", "stars", "stuck")]
    assert await enrollments(bot) == [(1, "active", 4)]

    fake.refunded.add("stuck")  # refunded at Telegram already (an earlier attempt)
    out = await h.send("admin", "/admin refund 1")
    assert "Order #1 refunded" in out
    assert await orders(bot) == [(1, "refunded", "stars", "stuck")]


async def test_a_course_without_a_stars_price_is_not_offered_for_stars(
    start_bot: StartBot,
) -> None:
    """No Stars price, no Stars button; /paystars says so instead of sending an invoice."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/buy git-teamwork")
    labels = [b["text"] for b in alice.last_with_buttons().buttons]
    assert labels == ["Cancel order"]
    out = await alice.send("/paystars 1")
    assert "Git for teams is not sold for Telegram Stars." in out
    assert all(c.method != "sendInvoice" for c in alice.received())


async def test_a_payment_whose_amount_differs_from_its_invoice_is_returned(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Defect 8: a successful payment is compared with its invoice, not only at pre-checkout.
    A different amount fulfils nothing: the Stars go back, the learner and admins are told."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    invoice = await invoice_for(alice)
    payload = invoice.params["payload"]
    await bot.deliver(fake.payment_update(alice.user, payload, 1, "one-star"))
    assert "did not match the invoice for order #1" in alice.texts()[-1]
    assert fake.refunded == {"one-star"}
    assert await orders(bot) == [(1, "pending", None, None)]
    assert await enrollments(bot) == []
    assert "did not match its invoice" in await h.tick() + "\n".join(h.output)
