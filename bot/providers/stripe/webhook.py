"""`POST /stripe/webhook`: verify Stripe's signature on the raw body, apply each event once.

Stripe delivers at least once, in no particular order, and retries anything that was not
answered 2xx for days. So:

- the signature is checked on the exact bytes received, and its signed timestamp against our
  clock; a missing, wrong or stale signature is answered 400 and changes nothing;
- a signed body that cannot be read (not JSON, no id, a handled type whose object lacks a
  field or has one of the wrong type: see `shape`) is recorded as "malformed", answered 200
  so that Stripe stops resending it, and reported to the admins once, by its id and type;
- an event's id is recorded (unique per provider) in the same transaction as its effect, so a
  duplicate, even one delivered concurrently, finds it and does nothing, and an event is never
  marked processed unless its effect committed with it;
- anything unexpected rolls the transaction back and answers 500, so Stripe tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import stripe
from aiohttp import web
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.core.i18n import _
from bot.providers.stripe.billing import (
    SUBSCRIPTION_EVENTS,
    GiveBackFirst,
    InvoiceFacts,
    give_back,
    period_for_payment,
    settle_event,
    settle_given_back,
    settle_period_refund,
    unwanted_checkout,
    unwanted_invoice,
)
from bot.providers.stripe.checkout import PROVIDER, SessionFacts, StripePayments
from bot.providers.stripe.settle import (
    ChargeFacts,
    RefundFirst,
    Settled,
    alert_admins,
    can_fulfil,
    fulfil_matching,
    order_for_payment,
    recorded,
    settle_expired,
    settle_failed,
    settle_paid,
    settle_processing,
    settle_refunded,
    settle_refunded_unwanted,
)
from bot.providers.stripe.shape import Malformed, read_event
from storage.models import Course, Order, PaymentEvent, User
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.front_door import Ports

log = logging.getLogger(__name__)

SESSION_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}
PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
REFUND_EVENT = "charge.refunded"
HANDLED = SESSION_EVENTS | {REFUND_EVENT} | SUBSCRIPTION_EVENTS


def _second(answered: tuple[web.Response, str]) -> str:
    return answered[1]


def _retry_later() -> tuple[web.Response, str]:
    """Anything unexpected: 500, so Stripe sends the event again."""
    return web.json_response({"error": "internal error"}, status=500), "error"


class BadWebhook(Exception):
    """The request is not a genuine, fresh Stripe event (answered 400)."""


def signed_timestamp(header: str) -> int:
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            return int(value)
    raise BadWebhook("no timestamp in the signature header")


class StripeWebhook:
    """The route handler; `on_notices` is called after a commit that queued messages."""

    def __init__(
        self,
        app: Ports,
        payments: StripePayments,
        on_notices: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.payments = payments
        self.settings = payments.settings
        self.on_notices = on_notices
        self.batch = GroupCommit(app, on_notices)

    async def handle(self, request: web.Request) -> web.Response:
        """Answer Stripe: 400 for a forged or stale request, 500 to be retried, else 200."""
        body = await request.read()
        header = request.headers.get("Stripe-Signature")
        context: dict[str, object] = {}  # the event's id and type, once verified, for the log
        response, _outcome = await self.app.front.dispatch(
            "stripe_webhook",
            lambda: self._answer(body, header, context),
            outcome=_second,
            on_error=_retry_later,
            context=context,
        )
        return response

    async def _answer(
        self, body: bytes, header: str | None, context: dict[str, object]
    ) -> tuple[web.Response, str]:
        try:
            event = self.verify(body, header)
        except BadWebhook as refused:
            log.warning("stripe webhook refused", extra={"reason": str(refused)})
            refusal = web.json_response({"error": "invalid signature or payload"}, status=400)
            return refusal, "refused"
        except Malformed as malformed:
            context.update(event_id=malformed.event_id, event_type=malformed.event_type)
            outcome = await self.set_aside(malformed)
            return web.json_response({"received": True, "outcome": outcome}), outcome
        context.update(event_id=event["id"], event_type=event["type"])
        outcome = await self.process(event)
        return web.json_response({"received": True, "outcome": outcome}), outcome

    def verify(self, body: bytes, header: str | None) -> dict[str, Any]:
        """The event, if `header` signs exactly `body` with our secret at a fresh instant
        (else `BadWebhook`) and the body holds an event we can read (else `Malformed`)."""
        try:
            stripe.WebhookSignature.verify_header(
                body, header, self.settings.webhook_secret.reveal(), tolerance=None
            )
            assert header is not None
            timestamp = signed_timestamp(header)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise BadWebhook("signature does not match") from exc
        age = self.app.clock.now().timestamp() - timestamp
        if abs(age) > self.settings.signature_tolerance_seconds:
            raise BadWebhook(f"signature timestamp is {age:.0f} s away from our clock")
        return read_event(body)

    async def set_aside(self, malformed: Malformed) -> str:
        """Record a signed event we cannot read and tell the admins, once per event."""
        facts = {
            "event_id": malformed.event_id,
            "event_type": malformed.event_type,
            "field": malformed.field,
        }
        msg = _(
            "Stripe sent event {event_id} ({event_type}), correctly signed, that the bot "
            "cannot read: {field} is missing or has the wrong type. It was recorded and "
            "answered, so Stripe will not send it again, and nothing else changed: look "
            "it up in the Stripe dashboard.",
            **facts,
        )

        async def report(uow: UnitOfWork) -> Settled:
            await alert_admins(uow, msg, self.app.clock.now(), **facts)
            return Settled("malformed")

        return await self._apply({"id": malformed.event_id, "type": malformed.event_type}, report)

    async def process(self, event: dict[str, Any]) -> str:
        """Apply one verified event once; returns what happened (for logs and tests)."""
        event_type = event["type"]
        if event_type not in HANDLED:
            return "ignored"
        obj = event["data"]["object"]
        subscribing = event_type == "checkout.session.completed" and obj.get("mode") == (
            "subscription"
        )
        if event_type in SUBSCRIPTION_EVENTS or subscribing:  # bot.providers.stripe.billing
            now = self.app.clock.now()
            config = self.app.config

            def settle(uow: UnitOfWork) -> Any:
                return settle_event(uow, config, event_type, obj, now)

            try:
                return await self._apply(event, settle)
            except GiveBackFirst:  # an erased account's: nothing applied, Stripe gives it back
                return await self._give_back(event, obj, settle)
        if event_type == REFUND_EVENT:
            return await self._refund(event, ChargeFacts.parse(obj))
        facts = SessionFacts.parse(obj)
        if not facts.ours:
            return "ignored"
        if event_type in PAID_EVENTS and facts.paid:
            outcome = await self.batch.submit(event, facts)
            if outcome is not None:
                return outcome
        try:
            return await self._apply(event, lambda uow: self._session_event(uow, event_type, facts))
        except RefundFirst as first:  # Stripe gives it back first, with no transaction open
            order_id = first.order_id
            await self.payments.refund_payment(order_id, first.payment_ref)
            now = self.app.clock.now()
            return await self._apply(
                event, lambda uow: settle_refunded_unwanted(uow, order_id, facts, now)
            )

    async def _give_back(
        self, event: dict[str, Any], obj: dict[str, Any], settle: Callable[[UnitOfWork], Any]
    ) -> str:
        """An erased account's subscription started or paid (`GiveBackFirst`): Stripe gives it
        back first, with no transaction open, then the event is recorded with it."""
        async with self.app.new_uow() as uow:
            if event["type"] == "invoice.paid":
                unwanted = await unwanted_invoice(uow, InvoiceFacts.parse(obj))
            else:
                unwanted = await unwanted_checkout(uow, obj)
        if unwanted is None:  # given back meanwhile (reconciliation): recorded as such
            return await self._apply(event, settle)
        await give_back(self.payments, unwanted)  # unavailable: answered 500, sent again
        now = self.app.clock.now()
        return await self._apply(event, lambda uow: settle_given_back(uow, unwanted, now))

    async def _session_event(
        self, uow: UnitOfWork, event_type: str, facts: SessionFacts
    ) -> Settled:
        now = self.app.clock.now()
        if event_type == "checkout.session.expired":
            return await settle_expired(uow, facts, now)
        if event_type == "checkout.session.async_payment_failed":
            return await settle_failed(uow, facts, now)
        if facts.paid:  # completed (paid at once) or async_payment_succeeded
            return await settle_paid(uow, self.app.config, facts, now)
        return await settle_processing(uow, facts, now)

    async def _refund(self, event: dict[str, Any], charge: ChargeFacts) -> str:
        """Find the refunded payment's order: ours by payment id, else through its session."""
        async with self.app.new_uow() as uow:
            if await recorded(uow, event["id"]):
                return "duplicate"
            order_id = await order_for_payment(uow, charge.payment_ref)
            period = None if order_id else await period_for_payment(uow, charge.payment_ref)
            period_id = None if period is None else period.id
        if period_id is not None:  # a subscription's invoice, refunded in full
            if not charge.refunded:
                return "partial"
            when = self.app.clock.now()
            return await self._apply(event, lambda uow: settle_period_refund(uow, period_id, when))
        session: SessionFacts | None = None
        if order_id is None and charge.payment_intent:
            session = await self.payments.session_for_payment(charge.payment_intent)
            if session is None or not session.ours:
                return "ignored"
            order_id = session.order_id
        now = self.app.clock.now()
        return await self._apply(
            event,
            lambda uow: settle_refunded(uow, self.app.config, charge, order_id, session, now),
        )

    async def _apply(self, event: dict[str, Any], effect: Callable[[UnitOfWork], Any]) -> str:
        """Record the event and apply its effect in one transaction; a duplicate does nothing."""
        async with self.app.new_uow() as uow:
            if await recorded(uow, event["id"]):
                return "duplicate"
            row = PaymentEvent(
                provider=PROVIDER,
                event_id=event["id"],
                event_type=event["type"],
                outcome="",
                received_at=self.app.clock.now(),
            )
            uow.add(row)
            try:
                await uow.flush()  # PostgreSQL: a concurrent duplicate waits here, then fails
            except IntegrityError:
                return "duplicate"
            settled: Settled = await effect(uow)
            row.outcome = settled.outcome
            row.order_id = settled.order_id
            await uow.commit()
            notified = uow.wrote_outbox
        log.info(
            "stripe event applied",
            extra={"event_id": event["id"], "event_type": event["type"], "outcome": row.outcome},
        )
        if notified:
            self.on_notices()
        return settled.outcome


class GroupCommit:
    """Fulfils paid completions in batches, one transaction each: the hot path under load.

    Requests queue their event and wait; one drain task takes up to `max_batch` of them and,
    in one transaction, skips the ids already recorded, locks their orders (in id order, so
    two processes cannot deadlock), fulfils each pending order that its session matches and
    records those events. Every other event is handed back (`None`) for the general path to
    apply on its own, as is the whole batch if its transaction fails, so an unusual or broken
    event can neither hold back nor undo the others. On SQLite this also queues writers in
    the event loop instead of in SQLite's sleeping busy handler.
    """

    def __init__(self, app: Ports, on_notices: Callable[[], None], max_batch: int = 64) -> None:
        self.app = app
        self.on_notices = on_notices
        self.max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], SessionFacts, asyncio.Future[str | None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, event: dict[str, Any], facts: SessionFacts) -> str | None:
        """The event's outcome, or None if it must be applied on its own."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.append((event, facts, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_queue(), name="stripe-group-commit")
        return await future

    async def _drain_queue(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                results = await self._run([(event, facts) for event, facts, _f in batch])
            except asyncio.CancelledError:
                for _event, _facts, future in batch:
                    future.cancel()
                raise
            except Exception:
                log.warning(
                    "batched fulfilment failed; applying its events one by one", exc_info=True
                )
                results = [None] * len(batch)
            for (_event, _facts, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _run(self, batch: list[tuple[dict[str, Any], SessionFacts]]) -> list[str | None]:
        now = self.app.clock.now()
        async with self.app.new_uow() as uow:
            ids = {event["id"] for event, _facts in batch}
            recorded = set(
                (
                    await uow.session.execute(
                        select(PaymentEvent.event_id)
                        .where(PaymentEvent.provider == PROVIDER)
                        .where(PaymentEvent.event_id.in_(ids))
                    )
                ).scalars()
            )
            order_ids = sorted({f.order_id for _e, f in batch if f.order_id is not None})
            locked = await uow.session.execute(
                select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
            )
            orders = {order.id: order for order in locked.scalars()}
            # Loaded once for the batch (and held: the identity map only keeps referenced
            # rows), so fulfilling each order finds its learner and course without a query.
            users = await uow.session.execute(
                select(User).where(User.id.in_({o.user_id for o in orders.values()}))
            )
            courses = await uow.session.execute(
                select(Course).where(Course.id.in_({o.course_id for o in orders.values()}))
            )
            held = [*users.scalars(), *courses.scalars()]
            results: list[str | None] = []
            rows: list[dict[str, Any]] = []
            for event, facts in batch:
                order = orders.get(facts.order_id) if facts.order_id is not None else None
                if event["id"] in recorded:
                    results.append("duplicate")
                elif order is None or not can_fulfil(order, facts):
                    results.append(None)
                else:
                    settled = await fulfil_matching(uow, self.app.config, order, facts, now)
                    recorded.add(event["id"])
                    rows.append(
                        {
                            "provider": PROVIDER,
                            "event_id": event["id"],
                            "event_type": event["type"],
                            "order_id": order.id,
                            "outcome": settled.outcome,
                            "received_at": now,
                        }
                    )
                    results.append(settled.outcome)
            if rows:
                await uow.session.execute(insert(PaymentEvent), rows)  # one executemany
                await uow.commit()
            notified = uow.wrote_outbox
            del held
        if notified:
            self.on_notices()
        return results
