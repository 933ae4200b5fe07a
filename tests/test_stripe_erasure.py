"""An account erased with /deleteme (or an order cancelled) while a Stripe Checkout page it
opened is still open.

At erasure the page is expired through Stripe's API, so it can no longer be paid. If it is paid
anyway (the expiry never reached Stripe), the webhook gives everything back: the payment is
refunded in full, a subscription is cancelled at Stripe at once, and nothing is granted or
kept in the books; a duplicate or a later copy refunds nothing more. The real stripe-python
talks to tests/fakes/fake_stripe.py; webhooks are signed and POSTed to the bot's endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from sqlalchemy import select

from bot.core.ledger import violations
from bot.providers.stripe.billing import GiveBackFirst, settle_event
from storage.models import Enrollment, Order, Subscription, SubscriptionPeriod
from tests.fakes.fake_stripe import CheckoutClosed, StripeWorld

PLAN = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 rollover=1"
)
ALICE = "── message for alice ──"


async def erase(w: StripeWorld, who: str) -> None:
    assert "Continue?" in await w.h.send(who, "/deleteme")
    await w.h.send(who, "yes")
    assert "erased" in await w.h.send(who, "delete")


async def erased_with_a_page_left_open(w: StripeWorld) -> str:
    """alice opened a subscription's Checkout page and erased her account while Stripe could
    not be reached, so the page was never expired; returns the page."""
    assert "added" in await w.h.send("admin", PLAN)
    checkout = await w.subscribe("alice")
    w.fake.fail_next.append(500)
    await erase(w, "alice")
    return checkout


async def send(w: StripeWorld, type_: str, obj: dict[str, Any]) -> str:
    status, body = await w.send(w.fake.event(type_, obj))
    assert status == 200, body
    return str(body["outcome"])


def expire_calls(w: StripeWorld, session_id: str) -> int:
    return len(w.fake.calls_to("POST", f"/v1/checkout/sessions/{session_id}/expire"))


async def books_balance(w: StripeWorld) -> None:
    async with w.app.new_uow() as uow:
        assert await violations(uow) == []


async def subscription(w: StripeWorld) -> Subscription:
    async with w.app.new_uow() as uow:
        sub = await uow.session.scalar(select(Subscription))
        assert sub is not None
        uow.session.expunge(sub)
        return sub


async def test_deleteme_expires_the_checkout_page_of_a_pending_order(world: StripeWorld) -> None:
    """The order's Checkout page is expired at Stripe, so the erased learner cannot pay it;
    Stripe's expiry event then changes nothing and tells nobody."""
    order_id, session_id = await world.buy("alice")
    await erase(world, "alice")

    assert expire_calls(world, session_id) == 1
    assert world.fake.sessions[session_id]["status"] == "expired"
    with pytest.raises(CheckoutClosed):
        world.fake.pay(session_id)
    assert not world.fake.charges
    assert (await world.order(order_id)).status == "cancelled"
    assert await send(world, "checkout.session.expired", world.fake.sessions[session_id]) == (
        "ignored"
    )
    assert ALICE not in await world.delivered()


async def test_cancelling_an_order_closes_its_checkout_page(world: StripeWorld) -> None:
    """`/cancelorder` says nothing was charged, and the order's Checkout page is expired at
    Stripe after the cancellation commits, so that promise holds for a page left open."""
    order_id, session_id = await world.buy("alice")
    out = await world.h.send("alice", f"/cancelorder {order_id}")
    assert f"Order #{order_id} is cancelled. Nothing was charged." in out, out
    assert expire_calls(world, session_id) == 1
    with pytest.raises(CheckoutClosed):
        world.fake.pay(session_id)
    assert not world.fake.charges


async def test_expiring_a_page_that_is_not_open_is_stripes_400_and_counts_as_done(
    world: StripeWorld,
) -> None:
    """Stripe refuses to expire a session that is not open with a 400 saying why; the bot's
    call takes that as done (a paid page is the webhook's to give back)."""
    _order_id, session_id = await world.buy("alice")
    world.fake.expire(session_id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await world.payments.client.v1.checkout.sessions.expire_async(session_id)
    assert refused.value.http_status == 400
    assert 'Only Checkout Sessions with a status in ["open"] can be expired' in str(refused.value)
    assert await world.payments.close_checkout(session_id)
    world.fake.fail_next.append(503)
    assert not await world.payments.close_checkout(session_id)  # unreachable: not done


async def test_deleteme_expires_a_subscription_checkout_and_stops_a_live_subscription(
    world: StripeWorld,
) -> None:
    """Alice's subscription page, waiting for its first payment, is expired and cannot be
    paid; Bob's paid card subscription is set to end at its period's end at Stripe."""
    assert "added" in await world.h.send("admin", PLAN)
    waiting = await world.subscribe("alice")
    await world.subscribed("bob")
    [bobs] = world.fake.subscriptions.values()

    await erase(world, "alice")
    assert world.fake.sessions[waiting]["status"] == "expired"
    with pytest.raises(CheckoutClosed):
        world.fake.complete_subscription(waiting)
    assert not bobs["cancel_at_period_end"]

    await erase(world, "bob")
    assert bobs["cancel_at_period_end"] and bobs["status"] == "active"
    assert len(world.fake.subscriptions) == 1
    await books_balance(world)


async def test_an_order_paid_after_erasure_is_refunded_once_and_grants_nothing(
    world: StripeWorld,
) -> None:
    """The expiry failed (Stripe down), the erased learner pays the open page: the payment
    is refunded in full, no course is granted, the books balance and only the admins are
    told. The same event again, the delayed-payment copy and reconciliation refund nothing
    more."""
    order_id, session_id = await world.buy("alice")
    world.fake.fail_next.append(500)
    await erase(world, "alice")
    assert world.fake.sessions[session_id]["status"] == "open"

    paid = world.fake.pay(session_id)
    event = world.fake.event("checkout.session.completed", paid)
    status, body = await world.send(event)
    assert (status, body["outcome"]) == (200, "refunded_unwanted")
    charge = world.fake.charge_for(paid["payment_intent"])
    assert charge["refunded"] and charge["amount_refunded"] == charge["amount"] == 4900

    assert (await world.send(event))[1]["outcome"] == "duplicate"
    again = world.fake.event("checkout.session.async_payment_succeeded", paid)
    assert (await world.send(again))[1]["outcome"] == "already"
    await world.service.reconcile_once()
    assert len(world.fake.refunds) == 1
    assert await send(world, "charge.refunded", charge) == "ignored"

    order = await world.order(order_id)
    assert (order.status, order.provider_ref) == ("cancelled", None)
    assert await world.count(Enrollment) == 0
    await books_balance(world)
    output = await world.delivered()
    assert ALICE not in output
    assert f"for order #{order_id} (cancelled) was refunded automatically" in output


@pytest.mark.parametrize("invoice_first", [False, True])
async def test_a_subscription_paid_after_erasure_is_refunded_and_cancelled_at_stripe(
    world: StripeWorld, invoice_first: bool
) -> None:
    """The expiry failed, the erased learner completes the subscription page: its events, in
    either order, cancel the Stripe subscription at once and refund the first invoice in
    full; no period, no credits, nothing in the books. Duplicates, Stripe's own echo of the
    cancellation and reconciliation change nothing more."""
    checkout = await erased_with_a_page_left_open(world)

    session, stripe_sub, invoice = world.fake.complete_subscription(checkout)
    completed = world.fake.event("checkout.session.completed", session)
    paid = world.fake.event("invoice.paid", invoice)
    for event in [paid, completed] if invoice_first else [completed, paid]:
        status, body = await world.send(event)
        assert status == 200, body
        want = "refunded_unwanted" if event is paid else "cancelled_unwanted"
        assert body["outcome"] == want
    remote = world.fake.subscriptions[stripe_sub["id"]]
    assert remote["status"] == "canceled"
    charge = world.fake.charge_for(invoice["payment_intent"])
    assert charge["refunded"] and charge["amount_refunded"] == charge["amount"] == 2900

    assert (await world.send(paid))[1]["outcome"] == "duplicate"
    assert (await world.send(completed))[1]["outcome"] == "duplicate"
    assert await send(world, "customer.subscription.deleted", remote) == "already"
    assert await send(world, "charge.refunded", charge) == "ignored"
    await world.service.reconcile_once()
    assert len(world.fake.refunds) == 1

    sub = await subscription(world)
    assert (sub.status, sub.provider_ref, sub.enrollment_id) == ("cancelled", remote["id"], None)
    assert await world.count(SubscriptionPeriod) == 0
    assert await world.count(Enrollment) == 0
    assert await world.count(Order) == 0
    await books_balance(world)
    output = await world.delivered()
    assert ALICE not in output
    assert f"for subscription #{sub.id} came after the account was erased" in output


async def test_a_trial_started_after_erasure_is_cancelled_and_the_admins_told(
    world: StripeWorld,
) -> None:
    """A trial's page completed after its account was erased: nothing was paid ($0 first
    invoice), so nothing is refunded, but the Stripe subscription is cancelled at once and the
    admins are told once, since the dashboard shows it."""
    assert "added" in await world.h.send("admin", PLAN.replace("rollover=1", "rollover=1 trial=7"))
    checkout = await world.subscribe("alice")
    world.fake.fail_next.append(500)
    await erase(world, "alice")
    session, stripe_sub, invoice = world.fake.complete_subscription(checkout)
    assert invoice["amount_paid"] == 0
    assert await send(world, "checkout.session.completed", session) == "cancelled_unwanted"
    assert await send(world, "invoice.paid", invoice) == "cancelled_unwanted"
    assert await send(world, "invoice.paid", invoice) == "already"  # told of it again
    assert world.fake.subscriptions[stripe_sub["id"]]["status"] == "canceled"
    assert not world.fake.refunds
    output = await world.delivered()
    assert ALICE not in output
    assert output.count("started after the account was erased: it was cancelled at Stripe") == 1
    await books_balance(world)


async def test_stripe_down_when_the_payment_arrives_answers_500_and_the_retry_refunds(
    world: StripeWorld,
) -> None:
    """Giving back needs Stripe: while it cannot be reached the webhook is answered 500 and
    nothing is recorded, so Stripe sends it again, and that delivery refunds."""
    checkout = await erased_with_a_page_left_open(world)
    _session, _sub, invoice = world.fake.complete_subscription(checkout)
    paid = world.fake.event("invoice.paid", invoice)

    world.fake.fail_next.append(503)
    assert (await world.send(paid))[0] == 500
    assert not world.fake.refunds
    assert (await world.send(paid))[1]["outcome"] == "refunded_unwanted"
    assert len(world.fake.refunds) == 1
    assert await world.count(SubscriptionPeriod) == 0
    await books_balance(world)


async def test_reconciliation_gives_back_a_payment_no_webhook_reached(world: StripeWorld) -> None:
    """The invoice.paid webhook was lost: the next reconciliation refunds it and cancels the
    subscription, once."""
    checkout = await erased_with_a_page_left_open(world)
    _session, stripe_sub, _invoice = world.fake.complete_subscription(checkout)

    await world.service.reconcile_once()
    await world.service.reconcile_once()
    assert len(world.fake.refunds) == 1
    assert world.fake.subscriptions[stripe_sub["id"]]["status"] == "canceled"
    assert await world.count(SubscriptionPeriod) == 0
    await books_balance(world)


async def test_a_payment_applied_before_it_was_given_back_is_refused_for_a_retry(
    world: StripeWorld,
) -> None:
    """Should the account be erased between the webhook's check and the transaction that
    applies the payment, that transaction applies nothing (Stripe is answered 500 and sends
    it again, when it is given back first)."""
    checkout = await erased_with_a_page_left_open(world)
    session, _sub, invoice = world.fake.complete_subscription(checkout)
    for type_, obj in (("checkout.session.completed", session), ("invoice.paid", invoice)):
        async with world.app.new_uow() as uow:
            with pytest.raises(GiveBackFirst):
                await settle_event(uow, world.app.config, type_, obj, world.clock.now())
    assert await world.count(SubscriptionPeriod) == 0
