"""Admin refunds through Stripe, reconciliation after lost webhooks, and keeping keys secret."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.i18n import Msg
from bot.core.logs import JsonFormatter
from bot.core.web import WebServer
from bot.providers.stripe.service import StripeService, reconcile
from storage.models import Enrollment, MentorSession, Order, PaymentEvent
from tests.fakes.fake_stripe import SECRET_KEY, WEBHOOK_SECRET, StripeWorld
from tests.support import request_mentor, snapshot


async def _bought(world: StripeWorld, who: str = "alice") -> tuple[int, dict[str, Any]]:
    order_id, session_id = await world.buy(who)
    paid = world.fake.pay(session_id)
    status, body = await world.send(world.fake.event("checkout.session.completed", paid))
    assert (status, body["outcome"]) == (200, "fulfilled")
    return order_id, paid


async def test_admin_refund_calls_stripe_once_and_cancels_sessions(world: StripeWorld) -> None:
    """/admin refund: one Stripe refund (idempotency key), enrollment revoked, session
    cancelled, learner and mentor told; Stripe's charge.refunded then changes nothing."""
    order_id, paid = await _bought(world)
    out = await request_mentor(world.h, "alice")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    assert "You are now mentoring" in await world.h.send("ada", f"/accept {request_id}")
    await world.h.send("alice", f"/book {request_id}")
    assert "booked" in (await world.h.send("alice", "3")).lower()
    assert await world.count(MentorSession, MentorSession.status == "scheduled") == 1

    out = await world.h.send("admin", f"/admin refund {order_id}")
    assert f"Order #{order_id} refunded; 1 future session cancelled." in out
    [call] = world.fake.calls_to("POST", "/v1/refunds")
    assert call.params["payment_intent"] == paid["payment_intent"]
    assert call.idempotency_key == f"mentorbot-refund-{order_id}-{paid['payment_intent']}"
    assert world.fake.charge_for(paid["payment_intent"])["refunded"]
    assert (await world.order(order_id)).status == "refunded"
    assert await world.count(Enrollment, Enrollment.status == "revoked") == 1
    assert await world.count(MentorSession, MentorSession.status == "cancelled") == 1
    output = await world.delivered()
    assert "── message for ada ──" in output
    assert "is cancelled: the learner's course was refunded." in output
    assert f"Order #{order_id} is refunded ($49.00)" in output

    charge = world.fake.charge_for(paid["payment_intent"])
    status, body = await world.send(world.fake.event("charge.refunded", charge))
    assert (status, body["outcome"]) == (200, "already")
    out = await world.h.send("admin", f"/admin refund {order_id}")
    assert "is already refunded" in out
    assert len(world.fake.calls_to("POST", "/v1/refunds")) == 1


async def test_admin_refund_when_stripe_fails_changes_nothing(world: StripeWorld) -> None:
    """If Stripe refuses or cannot be reached, the admin is told and the order stays paid."""
    order_id, _paid = await _bought(world)
    before = await snapshot(world.h)
    world.fake.fail_next = [500]
    out = await world.h.send("admin", f"/admin refund {order_id}")
    assert f"Stripe could not be reached to refund order #{order_id}" in out
    assert await snapshot(world.h) == before
    out = await world.h.send("admin", f"/admin refund {order_id}")  # the admin tries again
    assert f"Order #{order_id} refunded" in out
    assert len(world.fake.refunds) == 1


async def test_admin_refund_calls_stripe_outside_the_transaction(
    world: StripeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Stripe is slow to refund, other users are answered and the order is still paid;
    it is revoked once Stripe has returned the money."""
    order_id, _paid = await _bought(world)
    release = asyncio.Event()
    waiting = asyncio.Event()
    give_back = world.payments.refund_payment

    async def slow_refund(order: int, payment_ref: str, what: Msg | None = None) -> None:
        waiting.set()
        await release.wait()
        await give_back(order, payment_ref, what)

    monkeypatch.setattr(world.payments, "refund_payment", slow_refund)
    refunding = asyncio.create_task(world.h.send("admin", f"/admin refund {order_id}"))
    await asyncio.wait_for(waiting.wait(), 10)
    assert "Courses on offer" in await asyncio.wait_for(world.h.send("bob", "/courses"), 10)
    assert (await world.order(order_id)).status == "paid"
    release.set()
    assert f"Order #{order_id} refunded" in await asyncio.wait_for(refunding, 10)
    assert (await world.order(order_id)).status == "refunded"
    assert len(world.fake.refunds) == 1


async def test_restart_after_payment_without_webhook_reconciles_on_start(
    world: StripeWorld,
) -> None:
    """Killed after Stripe took the money, before any webhook: the next start fulfils it once."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)  # Stripe says paid; the webhook never arrives
    await world.restart()  # start-up reconciliation runs before boot() returns
    order = await world.order(order_id)
    assert (order.status, order.provider_ref) == ("paid", paid["payment_intent"])
    assert "Payment received for order #1" in await world.delivered()
    late = world.fake.event("checkout.session.completed", paid)
    assert (await world.send(late))[1]["outcome"] == "already"
    report = await reconcile(world.app, world.payments)
    assert (report.paid_sessions, report.settled) == (1, 0)
    assert await world.count(Enrollment) == 1


async def test_reconciliation_refunds_a_payment_its_cancelled_order_no_longer_takes(
    world: StripeWorld,
) -> None:
    """Paid at Stripe just before /cancelorder, and the webhook lost: reconciliation refunds it
    once (Stripe first, then the record), tells alice, grants nothing; a second pass and the
    late webhook change nothing more."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    await world.h.send("alice", f"/cancelorder {order_id}")
    report = await reconcile(world.app, world.payments)
    assert report.outcomes == ("refunded_unwanted",)
    assert len(world.fake.refunds) == 1 and await world.count(Enrollment) == 0
    assert "so it has been refunded in full" in await world.delivered()
    assert (await reconcile(world.app, world.payments)).outcomes == ()
    late = world.fake.event("checkout.session.completed", paid)
    assert (await world.send(late))[1]["outcome"] == "already"
    assert len(world.fake.refunds) == 1


async def test_reconciliation_runs_again_every_interval(world: StripeWorld) -> None:
    """After the start-up pass, reconciliation repeats every reconcile_interval_minutes."""
    naps: asyncio.Queue[float] = asyncio.Queue()
    wake = asyncio.Event()

    async def sleep(seconds: float) -> None:
        naps.put_nowait(seconds)
        await wake.wait()
        wake.clear()

    service = StripeService(world.app, world.payments, WebServer("127.0.0.1", 0), sleep=sleep)
    await service.start()
    assert await asyncio.wait_for(naps.get(), 5) == 15 * 60  # first pass done, now waiting
    order_id, session_id = await world.buy("alice")
    world.fake.pay(session_id)
    assert (await world.order(order_id)).status == "pending"
    service.reconciled.clear()
    wake.set()  # the interval has passed
    await asyncio.wait_for(service.reconciled.wait(), 5)
    assert (await world.order(order_id)).status == "paid"
    await service.stop()


async def test_reconciliation_pages_through_sessions_and_skips_settled_ones(
    world: StripeWorld, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of recent sessions is read; only paid ones no webhook reached are settled."""
    orders = {}
    for who in ("alice", "bob", "carol", "dan", "erin"):
        orders[who] = await world.buy(who)
    paid = {who: world.fake.pay(orders[who][1]) for who in ("alice", "bob", "carol", "dan")}
    await world.send(world.fake.event("checkout.session.completed", paid["alice"]))
    real = world.payments.recent_sessions
    monkeypatch.setattr(world.payments, "recent_sessions", lambda since: real(since, page_size=2))
    report = await world.service.reconcile_once()
    assert report is not None
    assert (report.paid_sessions, report.settled) == (4, 3)
    assert len(world.fake.calls_to("GET", "/v1/checkout/sessions")) >= 3
    statuses = {who: (await world.order(orders[who][0])).status for who in orders}
    assert statuses == {
        "alice": "paid",
        "bob": "paid",
        "carol": "paid",
        "dan": "paid",
        "erin": "pending",
    }
    assert await world.count(Enrollment) == 4


async def test_reconciliation_ignores_sessions_older_than_the_lookback(
    world: StripeWorld, clock: FakeClock
) -> None:
    """Sessions created before `reconcile_lookback_hours` are not listed (Stripe filters)."""
    order_id, session_id = await world.buy("alice")
    world.fake.pay(session_id)
    world.fake.sessions[session_id]["created"] -= 73 * 3600
    report = await reconcile(world.app, world.payments)
    assert report.paid_sessions == 0
    assert (await world.order(order_id)).status == "pending"
    [listing] = world.fake.calls_to("GET", "/v1/checkout/sessions")[-1:]
    assert int(listing.params["created"]["gte"]) == int(clock.now().timestamp()) - 72 * 3600


async def test_keys_never_reach_logs_or_messages(
    world: StripeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Failures are logged without the secret key or webhook secret, in text or JSON."""
    caplog.set_level(logging.DEBUG)  # stripe-python logs each request's details at DEBUG
    world.fake.api_key = "sk_test_rotated"  # our key is now refused: 401
    out = await world.h.send("alice", "/buy python-basics")
    assert "Card payments are not available right now" in out
    status, _body = await world.send({"id": "evt_x"}, secret="whsec_wrong")
    assert status == 400
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for record in caplog.records:
        handler.emit(record)
    logged = stream.getvalue() + caplog.text + out
    assert "stripe call failed" in logged and "AuthenticationError" in logged
    assert SECRET_KEY not in logged and WEBHOOK_SECRET not in logged
    assert SECRET_KEY not in repr(world.config) and WEBHOOK_SECRET not in str(world.config)
    # The order stays pending (buying again retries Stripe); no payment was recorded.
    assert await world.count(Order, Order.status == "pending") == 1
    assert await world.count(PaymentEvent) == 0
