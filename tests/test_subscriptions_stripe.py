"""Subscriptions by card against the fake Stripe: subscription-mode Checkout, invoices paid
once whatever the order, dunning, cancel and resume through the API, the Customer Portal, a
refunded invoice, a plan change, and reconciliation after lost webhooks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.ledger import mentor_earnings, violations
from bot.core.replies import Reply
from bot.core.users import Incoming
from bot.providers.stripe.checkout import StripePayments
from bot.runtime.bootstrap import payment_providers
from storage.models import Enrollment, Plan, Subscription, SubscriptionPeriod
from tests.fakes.fake_stripe import Call, StripeWorld
from tests.support import request_mentor

ADD = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 rollover=1"
)


@pytest.fixture
async def card(world: StripeWorld) -> StripeWorld:
    """The Stripe world with a monthly plan on offer."""
    assert "added" in await world.h.send("admin", ADD)
    return world


async def ours(w: StripeWorld) -> tuple[str, int, bool]:
    """The one subscription's status, credits left and whether it ends at the period's end."""
    async with w.app.new_uow() as uow:
        sub = await uow.get(Subscription, 1)
        assert sub is not None
        left = 0
        if sub.enrollment_id is not None:
            enrollment = await uow.get(Enrollment, sub.enrollment_id)
            assert enrollment is not None
            left = enrollment.credits_remaining
        return sub.status, left, sub.cancel_at_period_end


async def send(w: StripeWorld, type_: str, obj: dict[str, Any]) -> str:
    status, body = await w.send(w.fake.event(type_, obj))
    assert status == 200, body
    return str(body["outcome"])


async def clean(w: StripeWorld) -> None:
    async with w.app.new_uow() as uow:
        assert await violations(uow) == []


async def test_card_subscription_renews_fails_recovers_and_lapses(
    card: StripeWorld, clock: FakeClock
) -> None:
    """Checkout links the subscription; each paid invoice grants its period once; a declined
    renewal starts the grace period with a link to pay; Stripe giving up ends it."""
    w = card
    cs = await w.subscribe()
    session = w.fake.sessions[cs]
    assert session["mode"] == "subscription" and session["locale"] == "en"
    assert w.fake.prices[session["line_price"]]["recurring"]["interval"] == "month"
    session, sub, invoice = w.fake.complete_subscription(cs)
    assert await send(w, "checkout.session.completed", session) == "linked"
    assert await send(w, "invoice.paid", invoice) == "period"
    assert await ours(w) == ("active", 2, False)
    for _ in range(3):
        clock.advance(timedelta(days=30))
        invoice, _sub = w.fake.renew(sub["id"])
        assert await send(w, "invoice.paid", invoice) == "period"
    assert await ours(w) == ("active", 3, False)
    clock.advance(timedelta(days=30))
    invoice, stripe_sub = w.fake.renew(sub["id"], paid=False)
    assert await send(w, "invoice.payment_failed", invoice) == "past due"
    assert await send(w, "customer.subscription.updated", stripe_sub) == "unchanged"
    out = await w.delivered()
    assert "did not go through" in out and "https://invoice.stripe.com/i/" in out, out
    assert (await ours(w))[0] == "past_due"
    invoice, stripe_sub = w.fake.retry(invoice["id"])
    assert await send(w, "invoice.paid", invoice) == "period"
    assert (await ours(w))[0] == "active"
    clock.advance(timedelta(days=30))
    invoice, stripe_sub = w.fake.renew(sub["id"], paid=False)
    assert await send(w, "invoice.payment_failed", invoice) == "past due"
    ended = w.fake.cancel_now(sub["id"], reason="payment_failed")
    assert await send(w, "customer.subscription.deleted", ended) == "ended"
    assert await ours(w) == ("lapsed", 0, False)
    await clean(w)


async def test_duplicate_and_out_of_order_events_grant_each_invoice_once(
    card: StripeWorld, clock: FakeClock
) -> None:
    """invoice.paid before checkout.session.completed, and every event twice: one period each."""
    w = card
    cs = await w.subscribe()
    session, sub, first = w.fake.complete_subscription(cs)
    clock.advance(timedelta(days=30))
    second, _sub = w.fake.renew(sub["id"])
    assert await send(w, "invoice.paid", second) == "period"  # the newer one first
    assert await send(w, "invoice.paid", first) == "period"
    event = w.fake.event("invoice.paid", first)  # Stripe delivering it again, twice
    assert (await w.send(event))[1]["outcome"] == "already"
    assert (await w.send(event))[1]["outcome"] == "duplicate"
    assert await send(w, "checkout.session.completed", session) == "linked"
    assert await ours(w) == ("active", 4, False)  # nothing expired: the older came second
    assert await w.count(SubscriptionPeriod) == 2
    await clean(w)


async def test_cancel_in_chat_sets_cancel_at_period_end_and_resume_clears_it(
    card: StripeWorld,
) -> None:
    """Cancel and Resume call Stripe; the portal opens in the learner's language."""
    w = card
    cs = await w.subscribe()
    session, sub, invoice = w.fake.complete_subscription(cs)
    await send(w, "checkout.session.completed", session)
    await send(w, "invoice.paid", invoice)
    out = await w.h.send("alice", "/subscription cancel 1")
    assert "ends on" in out, out
    assert w.fake.subscriptions[sub["id"]]["cancel_at_period_end"] is True
    assert await ours(w) == ("cancelling", 2, True)
    # Stripe's own echo of the change agrees and changes nothing more.
    assert await send(w, "customer.subscription.updated", w.fake.subscriptions[sub["id"]]) == (
        "unchanged"
    )
    out = await w.h.send("alice", "/subscription resume 1")
    assert "goes on" in out, out
    assert w.fake.subscriptions[sub["id"]]["cancel_at_period_end"] is False
    assert await ours(w) == ("active", 2, False)
    await w.h.send("alice", "/language zh")
    out = await w.h.send("alice", "/subscription billing 1")
    assert "https://billing.stripe.com/p/session/" in out, out
    portal = list(w.fake.portal_sessions.values())[-1]
    assert portal["locale"] == "zh" and portal["customer"] == session["customer"]


async def test_a_trial_starts_from_the_free_invoice_and_the_first_charge_grants_sessions(
    world: StripeWorld, clock: FakeClock
) -> None:
    """A trial plan's $0 first invoice starts the trial without sessions; the next grants."""
    w = world
    await w.h.send("admin", ADD + " trial=7")
    cs = await w.subscribe()
    assert w.fake.sessions[cs]["subscription_data"]["trial_period_days"] == "7"
    _session, sub, invoice = w.fake.complete_subscription(cs)
    assert await send(w, "invoice.paid", invoice) == "trial"
    assert await ours(w) == ("trialing", 0, False)
    clock.advance(timedelta(days=7))
    invoice, _sub = w.fake.renew(sub["id"])
    assert await send(w, "invoice.paid", invoice) == "period"
    assert await ours(w) == ("active", 2, False)


async def test_a_refunded_invoice_takes_back_its_unused_credits(card: StripeWorld) -> None:
    """charge.refunded for an invoice's payment refunds that period once."""
    w = card
    cs = await w.subscribe()
    _session, _sub, invoice = w.fake.complete_subscription(cs)
    await send(w, "invoice.paid", invoice)
    charge = w.fake.refund_charge(invoice["payment_intent"])
    assert await send(w, "charge.refunded", charge) == "refunded"
    assert await send(w, "charge.refunded", charge) == "already"
    assert await ours(w) == ("active", 0, False)
    await clean(w)


async def test_a_plan_change_in_the_portal_applies_from_the_next_invoice(
    card: StripeWorld, clock: FakeClock
) -> None:
    """customer.subscription.updated with another plan's price switches the plan; the sessions
    already granted stay, the next invoice grants the new plan's."""
    w = card
    await w.h.send(
        "admin",
        '/admin plan add intensive course=python-basics name="Intensive" price=59.00 sessions=4',
    )
    cs = await w.subscribe()
    _session, sub, invoice = w.fake.complete_subscription(cs)
    await send(w, "invoice.paid", invoice)
    await w.h.send("bob", "/subscribe intensive")  # creates the intensive plan's Price
    async with w.app.new_uow() as uow:
        intensive = (
            await uow.session.execute(select(Plan).where(Plan.slug == "intensive"))
        ).scalar_one()
        price_id = intensive.stripe_price_id
    assert price_id is not None
    w.fake.subscriptions[sub["id"]]["items"]["data"][0]["price"] = w.fake.prices[price_id]
    assert await send(w, "customer.subscription.updated", w.fake.subscriptions[sub["id"]]) == (
        "plan changed"
    )
    assert await ours(w) == ("active", 2, False)
    clock.advance(timedelta(days=30))
    invoice, _sub = w.fake.renew(sub["id"])
    await send(w, "invoice.paid", invoice)
    assert await ours(w) == ("active", 4, False)  # the new plan carries none over: its 4
    await clean(w)


async def test_reconciliation_repairs_what_lost_webhooks_left_out(
    card: StripeWorld, clock: FakeClock
) -> None:
    """With every webhook lost, a reconciliation pass grants the paid periods and ends what
    Stripe cancelled, once; a second pass changes nothing."""
    w = card
    cs = await w.subscribe()
    _session, sub, _invoice = w.fake.complete_subscription(cs)
    clock.advance(timedelta(days=30))
    w.fake.renew(sub["id"])
    report = await w.service.reconcile_once()
    assert report is not None and report.outcomes.count("subscription") == 2
    assert (await ours(w))[0] == "active"
    w.fake.cancel_now(sub["id"])
    await w.service.reconcile_once()
    assert await ours(w) == ("cancelled", 0, False)
    again = await w.service.reconcile_once()
    assert again is not None and "subscription" not in again.outcomes
    await clean(w)


async def paid_plan_session(w: StripeWorld) -> dict[str, Any]:
    """alice subscribes by card, the first invoice is paid, ada accepts her request and she
    books a session with a plan credit; returns the paid invoice."""
    cs = await w.subscribe()
    session, _sub, invoice = w.fake.complete_subscription(cs)
    await send(w, "checkout.session.completed", session)
    await send(w, "invoice.paid", invoice)
    out = await request_mentor(w.h, "alice")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    assert "You are now mentoring" in await w.h.send("ada", f"/accept {request_id}")
    await w.h.send("alice", f"/book {request_id}")
    assert "Booked" in await w.h.send("alice", "1")
    return invoice


async def ada_earned(w: StripeWorld) -> int:
    async with w.app.new_uow() as uow:
        return sum((await mentor_earnings(uow)).values())


async def test_a_refunded_invoice_takes_back_the_earnings_it_no_longer_pays_for(
    card: StripeWorld, clock: FakeClock
) -> None:
    """A session completed on the only period, then that invoice refunded in Stripe: the
    mentor's earning is reversed, since the learner got the money back (the model-based money
    test found the mentor keeping $14.50 of an order that kept $0)."""
    w = card
    invoice = await paid_plan_session(w)
    clock.advance(timedelta(days=1))
    await w.h.send("ada", "/complete 1")
    assert await ada_earned(w) > 0
    charge = w.fake.refund_charge(invoice["payment_intent"])
    assert await send(w, "charge.refunded", charge) == "refunded"
    assert await ada_earned(w) == 0
    await clean(w)


async def test_a_session_completed_after_its_invoice_was_refunded_earns_nothing(
    card: StripeWorld, clock: FakeClock
) -> None:
    """The session was booked (its credit spent), the invoice refunded, then the session took
    place: the order holds no money, so the mentor is not paid from it."""
    w = card
    invoice = await paid_plan_session(w)
    charge = w.fake.refund_charge(invoice["payment_intent"])
    assert await send(w, "charge.refunded", charge) == "refunded"
    clock.advance(timedelta(days=1))
    assert "completed" in await w.h.send("ada", "/complete 1")
    assert await ada_earned(w) == 0
    await clean(w)


async def test_a_first_period_promo_code_is_a_stripe_coupon_on_the_first_invoice_only(
    card: StripeWorld,
) -> None:
    """`duration=once` on a card subscription: the button says the first month's price, the
    Checkout carries one Coupon (found again for the next learner, never made twice), the first
    invoice is charged less and its period recorded at what was paid; renewals pay the full
    price. On Telegram Stars the same code is refused (tested in test_subscriptions_promo)."""
    w = card
    assert "added" in await w.h.send("admin", "/admin promo add FIRST20 percent=20")
    out = await w.h.send("alice", "/subscribe monthly FIRST20")
    assert "Subscribe by card: $23.20 the first month, then $29.00" in out, out
    [coupon] = w.fake.coupons.values()
    assert (coupon["duration"], coupon["percent_off"]) == ("once", 20.0)
    [cs] = w.fake.sessions
    session, stripe_sub, invoice = w.fake.complete_subscription(cs)
    assert invoice["amount_paid"] == 2320
    assert await send(w, "checkout.session.completed", session) == "linked"
    assert await send(w, "invoice.paid", invoice) == "period"
    renewal, _sub = w.fake.renew(stripe_sub["id"])
    assert renewal["amount_paid"] == 2900
    assert await send(w, "invoice.paid", renewal) == "period"
    async with w.app.new_uow() as uow:
        paid = list(
            (
                await uow.session.execute(
                    select(SubscriptionPeriod.amount_minor).order_by(SubscriptionPeriod.id)
                )
            ).scalars()
        )
    assert paid == [2320, 2900]
    await w.h.send("bob", "/subscribe monthly FIRST20")
    assert len(w.fake.coupons) == 1
    assert len(w.fake.calls_to("POST", "/v1/coupons")) == 1
    await clean(w)


async def anchor_of(w: StripeWorld) -> int:
    async with w.app.new_uow() as uow:
        sub = await uow.get(Subscription, 1)
        assert sub is not None and sub.order_id is not None
        return sub.order_id


async def test_an_admin_refunds_one_card_period_through_stripe_once(
    card: StripeWorld, clock: FakeClock
) -> None:
    """`/admin refund ORDER period=2` refunds the second invoice's payment at Stripe and that
    period here, taking back its sessions; a Stripe outage or refusal changes nothing, is told
    naming the period and its subscription (not the anchor order), and a retry goes through;
    Stripe's report of the refund and a second press change nothing more."""
    w = card
    cs = await w.subscribe()
    session, sub, first = w.fake.complete_subscription(cs)
    await send(w, "checkout.session.completed", session)
    await send(w, "invoice.paid", first)
    clock.advance(timedelta(days=2))
    second, _sub = w.fake.renew(sub["id"])
    await send(w, "invoice.paid", second)
    assert await ours(w) == ("active", 3, False)  # one rolled over, two new
    order = await anchor_of(w)
    w.fake.fail_next.append(500)
    out = await w.h.send("admin", f"/admin refund {order} period=2")
    named = "period 2 of subscription #1 (Monthly Python)"  # never the anchor order
    assert f"Stripe could not be reached to refund {named}; nothing was changed." in out, out
    assert await ours(w) == ("active", 3, False)
    w.fake.fail_next.append(400)
    out = await w.h.send("admin", f"/admin refund {order} period=2")
    assert f"Stripe did not accept the refund of {named}; nothing was changed." in out, out
    assert f"order #{order}" not in out.lower(), out
    assert await ours(w) == ("active", 3, False)
    assert not w.fake.refunds
    out = await w.h.send("admin", f"/admin refund {order} period=2")
    assert "Period 2 of subscription #1 refunded ($29.00); 2 sessions taken back." in out, out
    assert "/admin unsubscribe 1" in out, out
    [refund] = w.fake.refunds.values()
    assert w.fake.charges[refund["charge"]]["payment_intent"] == second["payment_intent"]
    assert w.fake.charge_for(second["payment_intent"])["refunded"] is True
    assert w.fake.charge_for(first["payment_intent"])["refunded"] is False
    charge = w.fake.charge_for(second["payment_intent"])
    assert await send(w, "charge.refunded", charge) == "already"
    out = await w.h.send("admin", f"/admin refund {order} period=2")
    assert "was refunded on" in out, out
    assert len(w.fake.refunds) == 1
    assert await ours(w) == ("active", 1, False)
    assert w.fake.subscriptions[sub["id"]]["cancel_at_period_end"] is False
    await clean(w)
    out = await w.h.send("admin", "/admin unsubscribe 1")
    assert "ends on" in out, out
    assert w.fake.subscriptions[sub["id"]]["cancel_at_period_end"] is True
    assert await ours(w) == ("cancelling", 1, True)


CHECKOUT = "https://checkout.stripe.com/c/pay/"
WAIT = 10  # seconds; only a guard against hanging, never what a test waits for


async def pressed(app: Marketplace, who: str, text: str) -> Reply:
    """One console message straight to a marketplace (several may run at once)."""
    [reply] = await app.handle(Incoming("console", who, who, text))
    return reply


def card_url(reply: Reply) -> str | None:
    return next((c.payload for c in reply.choices if c.url), None)


async def subscriptions(w: StripeWorld) -> list[tuple[Any, ...]]:
    async with w.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(Subscription.id, Subscription.status, Subscription.checkout_ref)
        )
        return [tuple(r) for r in rows]


async def test_two_subscribe_presses_at_once_get_the_same_checkout_page(card: StripeWorld) -> None:
    """Two /subscribe at the same instant while Stripe is slow to open the first page: one
    subscription, one Checkout Session create, and both replies carry the same link (the
    second waits for the first's answer, never Stripe's 409 for a key still in use)."""
    w = card
    w.fake.hold = asyncio.Event()
    presses = [asyncio.create_task(pressed(w.app, "alice", "/subscribe monthly")) for _ in (1, 2)]
    await asyncio.wait_for(w.fake.held.wait(), WAIT)
    await asyncio.sleep(0.2)  # the second press is in too, waiting on the first
    w.fake.hold.set()
    first, second = await asyncio.wait_for(asyncio.gather(*presses), WAIT)
    [session_id] = w.fake.sessions
    assert card_url(first) == card_url(second) == CHECKOUT + session_id, (first, second)
    assert "Subscription #1:" in first.text and "Subscription #1:" in second.text
    assert len(w.fake.calls_to("POST", "/v1/checkout/sessions")) == 1
    assert await subscriptions(w) == [(1, "incomplete", session_id)]


async def test_a_press_in_another_process_waits_out_stripes_409_and_gets_the_same_page(
    card: StripeWorld,
) -> None:
    """The same learner presses Subscribe in two bot processes at once: Stripe answers the
    second process's create with 409 (the key is in use by the first, still held); it tries
    again shortly and gets the first's answer replayed, so both show the same page and Stripe
    made one Checkout Session; the subscription keeps that one."""
    w = card

    def creates() -> list[Call]:
        return w.fake.calls_to("POST", "/v1/checkout/sessions")

    providers = payment_providers(w.config, w.clock)
    other = Marketplace(w.config, w.database.engine(), w.clock, providers)
    try:
        w.fake.hold = asyncio.Event()
        first = asyncio.create_task(pressed(w.app, "alice", "/subscribe monthly"))
        await asyncio.wait_for(w.fake.held.wait(), WAIT)
        second = asyncio.create_task(pressed(other, "alice", "/subscribe monthly"))
        for _ in range(500):  # until the second process has met the 409
            if len(creates()) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(creates()) >= 2 and not second.done()
        w.fake.hold.set()
        one, two = await asyncio.wait_for(asyncio.gather(first, second), WAIT)
    finally:
        for provider in providers:
            if isinstance(provider, StripePayments):
                await provider.close()
        await other.engine.dispose()
    [session_id] = w.fake.sessions
    assert card_url(one) == card_url(two) == CHECKOUT + session_id, (one, two)
    assert {c.idempotency_key for c in creates()} == {creates()[0].idempotency_key}
    assert await subscriptions(w) == [(1, "incomplete", session_id)]


async def test_a_period_paid_on_a_subscription_that_never_got_access_is_refunded_by_its_number(
    card: StripeWorld,
) -> None:
    """Stripe's report that the subscription was deleted arrives before its first invoice's:
    the invoice's period is recorded on a subscription with no order (it never got access),
    which `/admin refund ORDER` cannot name. `/admin subscriptions` offers `/admin refund
    sub=ID`, which lists it and refunds it through the same rule (once, at Stripe too); an
    unknown subscription is refused by its number and nothing changes."""
    w = card
    cs = await w.subscribe()
    session, stripe_sub, invoice = w.fake.complete_subscription(cs)
    assert await send(w, "checkout.session.completed", session) == "linked"
    ended = w.fake.cancel_now(stripe_sub["id"])
    await send(w, "customer.subscription.deleted", ended)
    assert await send(w, "invoice.paid", invoice) == "period"
    async with w.app.new_uow() as uow:
        sub = await uow.get(Subscription, 1)
        assert sub is not None and sub.order_id is None and sub.status == "cancelled"

    out = await w.h.send("admin", "/admin subscriptions")
    assert "/admin refund sub=1 refunds a period" in out, out
    out = await w.h.send("admin", "/admin refund sub=1")
    assert "The payments of subscription #1" in out and "Period 1 from" in out, out
    assert "Refund period 1" in out, out
    assert "There is no subscription #9." in await w.h.send("admin", "/admin refund sub=9")
    assert not w.fake.refunds
    out = await w.h.send("admin", "/admin refund sub=1 period=1")
    assert "Period 1 of subscription #1 refunded ($29.00); 0 sessions taken back." in out, out
    [refund] = w.fake.refunds.values()
    assert w.fake.charges[refund["charge"]]["payment_intent"] == invoice["payment_intent"]
    out = await w.h.send("admin", "/admin refund sub=1 period=1")
    assert "Period 1 of subscription #1 was refunded on" in out, out
    charge = w.fake.charge_for(invoice["payment_intent"])
    assert await send(w, "charge.refunded", charge) == "already"
    assert len(w.fake.refunds) == 1
    await clean(w)
