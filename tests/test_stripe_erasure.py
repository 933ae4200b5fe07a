"""An account erased with /deleteme while a Stripe Checkout page it opened is still open.

At erasure the page is expired through Stripe's API, so it can no longer be paid. The real
stripe-python talks to tests/fakes/fake_stripe.py; webhooks are signed and POSTed to the bot's
endpoint.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from bot.core.ledger import violations
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


async def send(w: StripeWorld, type_: str, obj: dict[str, Any]) -> str:
    status, body = await w.send(w.fake.event(type_, obj))
    assert status == 200, body
    return str(body["outcome"])


def expire_calls(w: StripeWorld, session_id: str) -> int:
    return len(w.fake.calls_to("POST", f"/v1/checkout/sessions/{session_id}/expire"))


async def books_balance(w: StripeWorld) -> None:
    async with w.app.new_uow() as uow:
        assert await violations(uow) == []


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
    assert await world.payments.expire_checkout(session_id)
    world.fake.fail_next.append(503)
    assert not await world.payments.expire_checkout(session_id)  # unreachable: not done


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
