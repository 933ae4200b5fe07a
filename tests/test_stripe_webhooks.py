"""The Stripe webhook endpoint: genuine events only, each applied once, in any order."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import bot.providers.stripe.settle
import bot.providers.stripe.webhook
from bot.core.clock import FakeClock
from storage.models import Enrollment, OutboxMessage, PaymentEvent
from tests.fakes.fake_stripe import StripeWorld
from tests.support import snapshot


async def _paid_event(world: StripeWorld, who: str = "alice") -> tuple[int, dict[str, Any]]:
    order_id, session_id = await world.buy(who)
    return order_id, world.fake.event("checkout.session.completed", world.fake.pay(session_id))


async def test_forged_or_stale_webhooks_are_refused_and_change_nothing(
    world: StripeWorld, clock: FakeClock
) -> None:
    """Missing, wrong-secret, tampered, stale or future signatures get 400."""
    order_id, event = await _paid_event(world)
    before = await snapshot(world.h)
    payload = json.dumps(event)
    tampered = json.loads(payload)
    tampered["data"]["object"]["amount_total"] = 1
    attempts = [
        await world.send(event, signed=False),
        await world.send(event, secret="whsec_someone_else"),
        await world.send(event, header="t=1,v1=deadbeef"),
        await world.send(event, header="garbage"),
        await world.send(tampered, header=world.sign(payload)),
        await world.send(event, at=clock.now() - timedelta(seconds=301)),
        await world.send(event, at=clock.now() + timedelta(seconds=301)),
        await world.send({"hello": "world"}, secret="whsec_someone_else_0123456789abcdef"),
        await world.send({"hello": "world"}, signed=False),
    ]
    assert [status for status, _body in attempts] == [400] * len(attempts)
    assert await snapshot(world.h) == before
    assert await world.count(PaymentEvent) == 0
    assert (await world.order(order_id)).status == "pending"
    # The genuine one, signed 299 s ago, still works.
    status, body = await world.send(event, at=clock.now() - timedelta(seconds=299))
    assert (status, body["outcome"]) == (200, "fulfilled")


async def test_same_event_100_times_20_at_once_fulfils_once(world: StripeWorld) -> None:
    """One completion delivered 100 times, 20 concurrently: one enrollment, one confirmation."""
    order_id, event = await _paid_event(world)
    outcomes: list[str] = []
    for _round in range(5):
        results = await asyncio.gather(*(world.send(event) for _ in range(20)))
        assert {status for status, _body in results} == {200}
        outcomes += [body["outcome"] for _status, body in results]
    assert outcomes.count("fulfilled") == 1
    assert outcomes.count("duplicate") == 99
    assert await world.count(Enrollment, Enrollment.order_id == order_id) == 1
    assert await world.count(PaymentEvent, PaymentEvent.event_id == event["id"]) == 1
    output = await world.delivered()
    assert output.count("Payment received for order") == 1
    assert await world.count(OutboxMessage) == 1


async def test_completed_and_async_succeeded_racing_fulfil_once(world: StripeWorld) -> None:
    """Two different events for one payment, delivered together, grant one enrollment."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    events = [
        world.fake.event("checkout.session.completed", paid),
        world.fake.event("checkout.session.async_payment_succeeded", paid),
    ] * 5
    results = await asyncio.gather(*(world.send(e) for e in events))
    outcomes = sorted(body["outcome"] for _status, body in results)
    assert outcomes.count("fulfilled") == 1
    assert set(outcomes) == {"fulfilled", "already", "duplicate"}
    assert await world.count(Enrollment, Enrollment.order_id == order_id) == 1


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("amount_total", 100, "$1.00 was paid but the order is for $49.00"),
        ("currency", "eur", "€49.00 was paid but the order is for $49.00"),
        ("metadata", {"user_id": "999"}, "it names another learner or course than the order"),
    ],
)
async def test_payment_that_does_not_match_the_order_is_not_fulfilled(
    world: StripeWorld, field: str, value: Any, shown: str
) -> None:
    """A wrong amount, currency or buyer leaves the order unpaid and alerts the admins once."""
    order_id, event = await _paid_event(world)
    obj = event["data"]["object"]
    obj[field] = {**obj["metadata"], **value} if field == "metadata" else value
    status, body = await world.send(event)
    assert (status, body["outcome"]) == (200, "mismatch")
    retry = world.fake.event("checkout.session.async_payment_succeeded", obj)
    assert (await world.send(retry))[1]["outcome"] == "already"  # alerted once only
    assert (await world.order(order_id)).status == "pending"
    assert await world.count(Enrollment) == 0
    output = await world.delivered()
    assert output.count("── message for admin ──") == 1
    assert f"order #{order_id} was not fulfilled" in output and shown in output
    assert "Payment received" not in output


async def test_refund_before_completion_ends_refunded(world: StripeWorld) -> None:
    """charge.refunded overtaking checkout.session.completed: refunded, no access, told once."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    charge = world.fake.refund_charge(paid["payment_intent"])
    status, body = await world.send(world.fake.event("charge.refunded", charge))
    assert (status, body["outcome"]) == (200, "refunded_before_completion")
    late = world.fake.event("checkout.session.completed", paid)
    assert (await world.send(late))[1]["outcome"] == "already"
    order = await world.order(order_id)
    assert (order.status, order.provider_ref) == ("refunded", paid["payment_intent"])
    assert await world.count(Enrollment, Enrollment.status == "active") == 0
    assert "You have no courses yet." in await world.h.send("alice", "/mycourses")
    output = await world.delivered()
    assert "Order #1 is refunded ($49.00)" in output
    assert "Payment received" not in output


async def test_dashboard_refund_revokes_a_fulfilled_order(world: StripeWorld) -> None:
    """A full refund made in Stripe's dashboard revokes the enrollment; a partial one alerts."""
    order_id, event = await _paid_event(world)
    await world.send(event)
    intent = event["data"]["object"]["payment_intent"]
    partial = world.fake.refund_charge(intent, amount=900)
    status, body = await world.send(world.fake.event("charge.refunded", partial))
    assert (status, body["outcome"]) == (200, "partial_refund")
    assert (await world.order(order_id)).status == "paid"
    assert "Stripe refunded $9.00 of order #1's payment" in await world.delivered()
    full = world.fake.refund_charge(intent)
    status, body = await world.send(world.fake.event("charge.refunded", full))
    assert (status, body["outcome"]) == (200, "revoked")
    assert (await world.order(order_id)).status == "refunded"
    assert await world.count(Enrollment, Enrollment.status == "revoked") == 1
    assert "Order #1 is refunded ($49.00)" in await world.delivered()


async def test_internal_error_answers_500_and_records_nothing(
    world: StripeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the effect rolls everything back, event id included; the retry works."""
    order_id, event = await _paid_event(world)
    real = bot.providers.stripe.settle.fulfil_matching

    async def fulfil_then_crash(*args: Any) -> Any:
        await real(*args)
        raise RuntimeError("database went away")

    # Both the batched path and the one-by-one fallback it hands a failed batch to.
    monkeypatch.setattr(bot.providers.stripe.webhook, "fulfil_matching", fulfil_then_crash)
    monkeypatch.setattr(bot.providers.stripe.settle, "fulfil_matching", fulfil_then_crash)
    status, _body = await world.send(event)
    assert status == 500
    assert await world.count(PaymentEvent) == 0
    assert await world.count(Enrollment) == 0
    assert await world.count(OutboxMessage) == 0
    monkeypatch.undo()
    status, body = await world.send(event)  # Stripe's retry
    assert (status, body["outcome"]) == (200, "fulfilled")
    assert (await world.order(order_id)).status == "paid"


async def test_events_we_do_not_handle_or_do_not_own_are_acknowledged(
    world: StripeWorld,
) -> None:
    """Other event types, and sessions another app opened in the account, get 200 and no-op."""
    status, body = await world.send(world.fake.event("customer.created", {"id": "cus_1"}))
    assert (status, body["outcome"]) == (200, "ignored")
    foreign = {
        "id": "cs_test_foreign",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 4900,
        "currency": "usd",
        "metadata": {"order_id": "1"},
        "payment_intent": "pi_foreign",
    }
    status, body = await world.send(world.fake.event("checkout.session.completed", foreign))
    assert (status, body["outcome"]) == (200, "ignored")
    assert await world.count(PaymentEvent) == 0


async def _post_signed(world: StripeWorld, payload: str) -> tuple[int, dict[str, Any]]:
    """POST any body, correctly signed, to the bot's endpoint."""
    headers = {"Content-Type": "application/json", "Stripe-Signature": world.sign(payload)}
    async with world.http.post(world.webhook_url, data=payload.encode(), headers=headers) as r:
        return r.status, await r.json()


async def test_signed_but_malformed_events_are_recorded_answered_and_reported_once(
    world: StripeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A correctly signed body we cannot read (no id, not JSON, a handled event with a field
    missing or of the wrong type, or an object of another kind) is answered 200 so Stripe
    stops resending it, recorded once, and the admins hear of it once, by event id and type,
    never its contents; redelivered, it does nothing more."""
    order_id, session_id = await world.buy("alice")
    session = world.fake.pay(session_id)
    session["customer_details"] = {"email": "alice@private.example"}  # must not be shown
    no_status = {k: v for k, v in session.items() if k != "payment_status"}
    charge = world.fake.charge_for(session["payment_intent"])
    events = {
        "evt_bad_missing": world.fake.event("checkout.session.completed", no_status),
        "evt_bad_type": world.fake.event(
            "checkout.session.completed", {**session, "amount_total": "4900"}
        ),
        "evt_bad_kind": world.fake.event("charge.refunded", session),
        "evt_bad_amount": world.fake.event("charge.refunded", {**charge, "amount": True}),
    }
    for event_id, event in events.items():
        event["id"] = event_id
    payloads = [json.dumps(e) for e in events.values()]
    payloads += [json.dumps({"hello": "alice@private.example"}), "not json at all"]
    with caplog.at_level(logging.INFO):
        first = [await _post_signed(world, p) for p in payloads]
    assert first == [(200, {"received": True, "outcome": "malformed"})] * len(payloads)
    async with world.app.new_uow() as uow:
        stmt = select(PaymentEvent.event_id, PaymentEvent.event_type, PaymentEvent.outcome)
        rows = (await uow.session.execute(stmt)).all()
    assert sorted(outcome for _id, _type, outcome in rows) == ["malformed"] * len(payloads)
    assert {event_id for event_id, _type, _outcome in rows} >= set(events)
    kinds = {"checkout.session.completed", "charge.refunded", "unknown"}
    assert {event_type for _id, event_type, _outcome in rows} == kinds
    # The first alert goes at once, the others in one digest when the window closes.
    world.clock.advance(timedelta(seconds=world.app.config.notices.digest_seconds + 1))
    await world.app.run_due()
    output = await world.delivered()
    for event_id, field in (
        ("evt_bad_missing", "data.object.payment_status"),
        ("evt_bad_type", "data.object.amount_total"),
        ("evt_bad_kind", "data.object.object"),
        ("evt_bad_amount", "data.object.amount"),
    ):
        expected = f"{event_id} ({events[event_id]['type']}), correctly signed"
        assert output.count(expected) == 1, output
        assert f"{field} is missing or has the wrong type" in output
    assert output.count("correctly signed, that the bot cannot read") == len(payloads)
    assert "alice@private.example" not in output and "alice@private.example" not in caplog.text
    # Stripe redelivers each (a new signature, the same bytes): acknowledged, nothing more.
    before = await world.count(OutboxMessage)
    again = [await _post_signed(world, p) for p in payloads]
    assert {body["outcome"] for _status, body in again} == {"duplicate"}
    assert {status for status, _body in again} == {200}
    assert await world.count(OutboxMessage) == before
    assert await world.count(PaymentEvent) == len(payloads)
    assert (await world.order(order_id)).status == "pending"
    assert await world.count(Enrollment) == 0


async def test_a_malformed_event_delivered_at_once_is_reported_once(world: StripeWorld) -> None:
    """Ten concurrent deliveries of one malformed event: one record, one notice per admin."""
    payload = json.dumps({"id": "evt_bad_racing", "type": "charge.refunded", "data": {}})
    results = await asyncio.gather(*(_post_signed(world, payload) for _ in range(10)))
    outcomes = sorted(body["outcome"] for _status, body in results)
    assert {status for status, _body in results} == {200}
    assert outcomes == ["duplicate"] * 9 + ["malformed"]
    assert await world.count(PaymentEvent, PaymentEvent.event_id == "evt_bad_racing") == 1
    output = await world.delivered()
    assert output.count("evt_bad_racing (charge.refunded)") == 1
    assert "data.object is missing or has the wrong type" in output
