"""Card purchases through Stripe Checkout, from /buy to the confirmation in chat.

The real stripe-python talks to the fake Stripe API in tests/fakes/fake_stripe.py; webhooks are
signed with stripe-python's own helper and POSTed to the bot's real endpoint.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.models import Course, Enrollment, PaymentEvent
from tests.fakes.fake_stripe import StripeWorld


async def test_card_purchase_end_to_end(world: StripeWorld) -> None:
    """/buy sends a Checkout link; a signed checkout.session.completed enrols and confirms."""
    out = await world.h.send("alice", "/buy python-basics")
    assert "Pay $49.00 by card" in out
    order_id, session_id = await world.buy("alice")  # pressing Buy again: the same session
    assert f"Order #{order_id}" in out and session_id in out

    [create] = world.fake.calls_to("POST", "/v1/checkout/sessions")
    session = world.fake.sessions[session_id]
    assert create.params["mode"] == "payment"
    assert create.params["client_reference_id"] == str(order_id)
    assert create.params["metadata"]["order_id"] == str(order_id)
    assert create.params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "4900",
                "product_data": {"name": "Python from zero"},
            },
        }
    ]
    assert create.params["success_url"].startswith("https://mentorbot.example/paid")
    assert create.params["cancel_url"] == "https://mentorbot.example/cancelled"
    assert create.idempotency_key and str(order_id) in create.idempotency_key
    order = await world.order(order_id)
    assert session["expires_at"] == int(order.expires_at.timestamp())

    paid = world.fake.pay(session_id)
    status, body = await world.send(world.fake.event("checkout.session.completed", paid))
    assert (status, body["outcome"]) == (200, "fulfilled")
    output = await world.delivered()
    assert "── message for alice ──" in output
    assert "Payment received for order #1: Python from zero is yours, with 4 mentor sessions." in (
        output
    )
    order = await world.order(order_id)
    assert (order.status, order.provider, order.provider_ref) == (
        "paid",
        "stripe",
        paid["payment_intent"],
    )
    assert "Python from zero: 4 sessions left" in await world.h.send("alice", "/mycourses")


async def test_buy_again_reuses_the_session_and_the_idempotency_key(world: StripeWorld) -> None:
    """Pressing Buy twice shows one Checkout Session; a retried create replays, not duplicates."""
    first = await world.buy("alice")
    second = await world.buy("alice")
    assert first == second
    assert len(world.fake.sessions) == 1
    # A retry of the very same create (e.g. after a timeout) gets the same session back.
    create = world.fake.calls_to("POST", "/v1/checkout/sessions")[0]
    replay = await world.payments.client.v1.checkout.sessions.create_async(
        create.params,  # type: ignore[arg-type]
        {"idempotency_key": create.idempotency_key},
    )
    assert replay.id == first[1]
    assert len(world.fake.sessions) == 1


async def test_delayed_payment_waits_then_fulfils_or_cancels(world: StripeWorld) -> None:
    """completed+unpaid only says 'processing'; async_payment_succeeded fulfils; _failed cancels."""
    order_id, session_id = await world.buy("alice")
    pending = world.fake.pay(session_id, paid=False)
    status, body = await world.send(world.fake.event("checkout.session.completed", pending))
    assert (status, body["outcome"]) == (200, "processing")
    assert "your payment is being processed" in await world.delivered()
    assert (await world.order(order_id)).status == "pending"
    cleared = world.fake.settle_delayed(session_id, succeeded=True)
    event = world.fake.event("checkout.session.async_payment_succeeded", cleared)
    assert (await world.send(event))[1]["outcome"] == "fulfilled"
    assert (await world.order(order_id)).status == "paid"

    order_id, session_id = await world.buy("bob")
    world.fake.pay(session_id, paid=False)
    failed = world.fake.settle_delayed(session_id, succeeded=False)
    event = world.fake.event("checkout.session.async_payment_failed", failed)
    assert (await world.send(event))[1]["outcome"] == "failed"
    assert (await world.order(order_id)).status == "cancelled"
    assert "did not go through, so the order is cancelled" in await world.delivered()
    assert await world.count(Enrollment, Enrollment.order_id == order_id) == 0


async def test_expired_session_expires_the_order_and_tells_the_learner(
    world: StripeWorld,
) -> None:
    """checkout.session.expired: order expired, learner told once; buying again opens a new one."""
    order_id, session_id = await world.buy("alice")
    event = world.fake.event("checkout.session.expired", world.fake.expire(session_id))
    assert (await world.send(event))[1]["outcome"] == "expired"
    assert (await world.send(event))[1]["outcome"] == "duplicate"
    output = await world.delivered()
    assert output.count("Order #1 for Python from zero expired before it was paid") == 1
    assert (await world.order(order_id)).status == "expired"
    new_order, new_session = await world.buy("alice")
    assert new_order != order_id and new_session != session_id


async def test_paid_after_the_order_closed_is_refunded_not_kept(world: StripeWorld) -> None:
    """A payment whose webhook arrives after the order was cancelled (paid at Stripe just
    before `/cancelorder`, whose expiry then finds the page closed) is refunded once; no
    access."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    await world.h.send("alice", f"/cancelorder {order_id}")
    event = world.fake.event("checkout.session.completed", paid)
    assert (await world.send(event))[1]["outcome"] == "refunded_unwanted"
    again = world.fake.event("checkout.session.async_payment_succeeded", paid)
    assert (await world.send(again))[1]["outcome"] == "already"
    assert len(world.fake.refunds) == 1
    assert world.fake.charge_for(paid["payment_intent"])["refunded"]
    output = await world.delivered()
    assert "came after the order was cancelled, so it has been refunded in full" in output
    assert await world.count(Enrollment) == 0
    assert await world.count(PaymentEvent, PaymentEvent.event_id.like("unwanted:%")) == 1


async def test_a_retry_seconds_later_of_a_long_lived_order_gets_the_same_session(
    world: StripeWorld,
) -> None:
    """An order open longer than a Checkout Session may live (24 h): its session's expiry
    follows the clock, so a retry a few seconds later (a duplicate update on another process,
    a lost answer) must still ask Stripe the same thing under the same key and get the same
    session, not Stripe's 400 for a key reused with other parameters."""
    order_id, _session = await world.buy("alice")
    order = await world.order(order_id)
    order.checkout_ref = order.checkout_url = None
    order.expires_at = order.created_at + timedelta(days=2)
    async with world.app.new_uow() as uow:
        course = await uow.get(Course, order.course_id)
        assert course is not None
        uow.session.expunge(course)  # readable after the transaction ends
    world.clock.set(world.clock.now().replace(second=10))
    first = await world.payments.start_checkout(order, course)
    world.clock.advance(timedelta(seconds=5))
    again = await world.payments.start_checkout(order, course)
    assert first.ref is not None and again.ref == first.ref


@pytest.mark.parametrize(
    ("currency", "price", "shown", "sent"),
    [
        ("XOF", "5000", "5,000", "5000"),
        ("UGX", "5000", "5,000", "5000"),
        ("KWD", "12.500", "12.500", "12500"),
        ("ISK", "1000", "1,000", "100000"),
    ],
)
async def test_stripe_is_charged_what_the_learner_was_shown(
    world: StripeWorld, currency: str, price: str, shown: str, sent: str
) -> None:
    """Amounts go to Stripe in the unit Stripe wants for that currency (5,000 XOF is 5000, not
    500,000; 12.500 KWD is 12500, not 1,250) and the paid session fulfils the order."""
    await world.h.send(
        "admin", f"/admin course edit python-basics currency={currency} price={price}"
    )
    out = await world.h.send("alice", "/buy python-basics")
    assert shown in out
    order_id, session_id = await world.buy("alice")
    [create] = world.fake.calls_to("POST", "/v1/checkout/sessions")
    assert create.params["line_items"][0]["price_data"]["currency"] == currency.lower()
    assert create.params["line_items"][0]["price_data"]["unit_amount"] == sent
    paid = world.fake.pay(session_id)
    status, body = await world.send(world.fake.event("checkout.session.completed", paid))
    assert (status, body["outcome"]) == (200, "fulfilled")
    assert (await world.order(order_id)).status == "paid"
