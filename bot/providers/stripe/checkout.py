"""Card payments through Stripe Checkout, behind the same payment port as the demo provider.

The provider only talks to Stripe: it opens one Checkout Session per order and refunds
payments. What a payment means for an order is decided by `bot.providers.stripe.settle` (from
webhooks
and reconciliation) through the one fulfilment path in `bot.payments`.

Every call uses stripe-python's async client, so the event loop never blocks, and every POST
carries an idempotency key derived from what it is for (the order, the payment), so a retry
after a timeout, a crash or a restart can never open a second session or refund twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe

from bot.config import StripeSection
from bot.core.clock import Clock
from bot.core.i18n import Money, Msg, _
from bot.core.replies import write_to_admins
from bot.payments import Checkout, PaymentUnavailable, Refund, order_named
from bot.providers.stripe.amounts import NotPayableByCard, from_stripe, to_stripe
from storage.models import Course, Order

log = logging.getLogger(__name__)

PROVIDER = "stripe"
# Marks the sessions this bot opened; others in the same Stripe account are left alone.
METADATA_SOURCE = "mentorbot"
# Stripe accepts a Checkout Session's expires_at from 30 minutes to 24 hours after creation.
MIN_SESSION_LIFE = timedelta(minutes=31)
MAX_SESSION_LIFE = timedelta(hours=23, minutes=59)
# Stripe answers 409 (`idempotency_key_in_use`) to a create whose key another request (another
# process's press) is still using; that one usually answers within a second or two, after
# which the same create replays its answer. So: ask again this often, this many times.
KEY_IN_USE_WAIT_SECONDS = 0.25
KEY_IN_USE_ATTEMPTS = 40


def checkout_key(order: Order, expires_at: int) -> str:
    """The idempotency key of an order's Checkout Session that expires at `expires_at`.

    Besides the id it names the buyer, course, amount and creation instant, so a row id that
    SQLite hands out again after a rolled-back order can never replay another order's session.
    It also names the session's expiry, the one parameter that can differ between two creates
    for one order (see `session_expiry`): Stripe refuses a key reused with other parameters.
    """
    created = int(order.created_at.timestamp() * 1000)
    return (
        f"mentorbot-checkout-{order.id}-u{order.user_id}-c{order.course_id}-"
        f"{order.amount_minor}{order.currency.lower()}-{created}-e{expires_at}"
    )


def session_expiry(order: Order, now: datetime) -> int:
    """When an order's Checkout Session expires: with the order, within the 30 minutes to 24
    hours Stripe allows. Where that depends on `now`, `now` is taken to the minute, so a double
    tap or a retry within the minute asks Stripe the same thing under the same key; a later
    one opens a new session (the order keeps the first it saved)."""
    base = now.replace(second=0, microsecond=0)
    expires = min(max(order.expires_at, base + MIN_SESSION_LIFE), base + MAX_SESSION_LIFE)
    return int(expires.timestamp())


def refund_key(order_id: int | None, payment_ref: str) -> str:
    """Per order and payment; a subscription's period paid with no order, per payment."""
    if order_id is None:
        return f"mentorbot-refund-{payment_ref}"
    return f"mentorbot-refund-{order_id}-{payment_ref}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _stripe_amount(value: Any, currency: str) -> int | None:
    """An amount from a Stripe object, in ISO 4217 minor units (see `amounts`)."""
    amount = _int(value)
    return None if amount is None or not currency else from_stripe(amount, currency)


@dataclass(frozen=True)
class SessionFacts:
    """What we act on in a Checkout Session, from a webhook's JSON or an API object."""

    session_id: str
    status: str
    payment_status: str
    order_id: int | None
    user_id: int | None
    course_id: int | None
    amount_total: int | None
    currency: str
    payment_intent: str | None
    ours: bool = True

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> SessionFacts:
        metadata = obj.get("metadata") or {}
        currency = str(obj.get("currency") or "").upper()
        intent = obj.get("payment_intent")
        if isinstance(intent, Mapping):  # expanded
            intent = intent.get("id")
        return cls(
            session_id=str(obj["id"]),
            status=str(obj.get("status") or ""),
            payment_status=str(obj.get("payment_status") or ""),
            order_id=_int(metadata.get("order_id")),
            user_id=_int(metadata.get("user_id")),
            course_id=_int(metadata.get("course_id")),
            amount_total=_stripe_amount(obj.get("amount_total"), currency),
            currency=currency,
            payment_intent=str(intent) if intent else None,
            ours=metadata.get("source") == METADATA_SOURCE,
        )

    @property
    def paid(self) -> bool:
        return self.payment_status in ("paid", "no_payment_required")

    @property
    def payment_ref(self) -> str:
        """The order's provider_ref once paid: the PaymentIntent, which refunds name too."""
        return self.payment_intent or self.session_id


class StripePayments:
    """The `PaymentProvider` for cards: a Checkout link button, refunds by PaymentIntent."""

    name = PROVIDER

    def __init__(self, settings: StripeSection, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._http = stripe.AIOHTTPClient(timeout=settings.timeout_seconds)
        self.client = stripe.StripeClient(
            settings.secret_key.reveal(),
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            http_client=self._http,
            max_network_retries=settings.max_network_retries,
        )
        # Checkout Session creates in flight, by idempotency key (see `create_session_once`).
        self._creating: dict[str, asyncio.Future[stripe.checkout.Session]] = {}

    def available_on(self, platform: str) -> bool:
        return platform in self.settings.platforms

    async def start_checkout(self, order: Order, course: Course) -> Checkout:
        """The order's Checkout Session: created once (Buy again shows the same page), outside
        any transaction; `/buy` keeps the returned `ref` and `url` on the order."""
        label = _("Pay {price} by card", price=Money(order.amount_minor, order.currency))
        if order.checkout_ref and order.checkout_url:
            return Checkout(label=label, url=order.checkout_url, ref=order.checkout_ref)
        try:
            unit_amount = to_stripe(order.amount_minor, order.currency)
        except NotPayableByCard:
            raise PaymentUnavailable(
                _(
                    "Card payments cannot take {price}: in {currency} the last digit must be 0. "
                    "Pay another way, or ask the admins to round the price with /support.",
                    price=Money(order.amount_minor, order.currency),
                    currency=order.currency,
                ),
                [write_to_admins()],
            ) from None
        expires = session_expiry(order, self._clock.now())
        metadata = {
            "source": METADATA_SOURCE,
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "course_id": str(order.course_id),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency.lower(),
                        "unit_amount": unit_amount,
                        "product_data": {"name": course.title_en},
                    },
                }
            ],
            "client_reference_id": str(order.id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": self.settings.success_url,
            "cancel_url": self.settings.cancel_url,
            "expires_at": expires,
        }
        try:
            session = await self.create_session_once(checkout_key(order, expires), params)
        except stripe.StripeError as exc:
            _log_failure("creating a Checkout Session", exc, order.id)
            raise PaymentUnavailable(
                _(
                    "Card payments are not available right now. Your order stays open: try "
                    "again in a few minutes to pay it by card."
                )
            ) from None
        return Checkout(label=label, url=session.url, ref=session.id)

    async def create_session_once(
        self, key: str, params: dict[str, Any]
    ) -> stripe.checkout.Session:
        """Create a Checkout Session (an order's, a subscription's) under `key`, once. A second
        create with the same key while the first is in flight (a double tap) waits for the
        first's answer instead of asking again, since Stripe refuses a key that is still in
        use (409) rather than waiting; one from another process that meets that 409 asks
        again shortly (`_create_waiting_out_409`) and gets the first's answer replayed."""
        pending = self._creating.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._create_waiting_out_409(key, params))
            self._creating[key] = pending

            def forget(done: asyncio.Future[stripe.checkout.Session]) -> None:
                self._creating.pop(key, None)
                if not done.cancelled():
                    done.exception()  # seen, even if every caller has given up

            pending.add_done_callback(forget)
        # Shielded: a caller that gives up (cancelled) does not cancel the others' request.
        return await asyncio.shield(pending)

    async def _create_waiting_out_409(
        self, key: str, params: dict[str, Any]
    ) -> stripe.checkout.Session:
        for attempt in range(1, KEY_IN_USE_ATTEMPTS + 1):
            try:
                return await self.client.v1.checkout.sessions.create_async(
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": key},
                )
            except stripe.StripeError as exc:  # stripe-python raises a v1 409 as APIError
                if exc.http_status != 409 or attempt == KEY_IN_USE_ATTEMPTS:
                    raise
                log.info(
                    "stripe key in use by another request; asking again", extra={"try": attempt}
                )
            await asyncio.sleep(KEY_IN_USE_WAIT_SECONDS)
        raise AssertionError("unreachable")

    async def refund(self, refund: Refund) -> None:
        """Refund an order's whole payment (an admin's refund, before the bookkeeping)."""
        if not refund.provider_ref:
            raise PaymentUnavailable(
                _("There is no Stripe payment to refund for {what}.", what=refund.named())
            )
        await self.refund_payment(refund.order_id, refund.provider_ref, what=refund.named())

    async def refund_payment(
        self, order_id: int | None, payment_ref: str, what: Msg | None = None
    ) -> None:
        """Refund a PaymentIntent in full, once: the key makes a repeat return the same refund.

        A payment that was refunded already (e.g. from the Stripe dashboard) counts as done.
        A refusal names `what` was refunded (by default the order).
        """
        metadata = {} if order_id is None else {"order_id": str(order_id)}
        named = what if what is not None else order_named(order_id)
        try:
            await self.refund_in_full(payment_ref, refund_key(order_id, payment_ref), metadata)
        except stripe.InvalidRequestError as exc:
            _log_failure("refunding", exc, order_id)
            raise PaymentUnavailable(
                _("Stripe did not accept the refund of {what}; nothing was changed.", what=named)
            ) from None
        except stripe.StripeError as exc:
            _log_failure("refunding", exc, order_id)
            raise PaymentUnavailable(
                _("Stripe could not be reached to refund {what}; nothing was changed.", what=named)
            ) from None

    async def refund_in_full(self, payment_ref: str, key: str, metadata: dict[str, str]) -> None:
        """Refund a PaymentIntent (or a Charge) in full under `key`, so a repeat returns the
        same refund; one already refunded (e.g. from the dashboard) counts as done. Stripe's
        refusals are raised as stripe-python's errors, for the caller to word."""
        params: dict[str, Any] = {"metadata": metadata}
        params["payment_intent" if payment_ref.startswith("pi_") else "charge"] = payment_ref
        try:
            await self.client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "charge_already_refunded":
                raise

    async def close_checkout(self, session_id: str) -> bool:
        """Expire an open Checkout Session so that it can no longer be paid (an order
        cancelled, the pages an erased account had opened). False when Stripe could not be
        reached; a session that is not open any more (paid, expired) is left as it is and
        counts as done: a payment that came first is given back by the webhook (`settle`)."""
        try:
            await self.client.v1.checkout.sessions.expire_async(session_id)
        except stripe.InvalidRequestError:
            log.info("checkout session not open, left as it is", extra={"session": session_id})
        except stripe.StripeError as exc:
            log.warning(
                "could not expire a checkout session",
                extra={"session": session_id, "error": type(exc).__name__},
            )
            return False
        return True

    async def session_for_payment(self, payment_intent: str) -> SessionFacts | None:
        """The Checkout Session that created a PaymentIntent (for a refund seen first)."""
        page = await self.client.v1.checkout.sessions.list_async(
            {"payment_intent": payment_intent, "limit": 1}
        )
        for session in page.data:
            return SessionFacts.parse(session.to_dict())
        return None

    async def recent_sessions(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[SessionFacts]:
        """Every completed Checkout Session created since `since`, newest first."""
        page = await self.client.v1.checkout.sessions.list_async(
            {"created": {"gte": int(since.timestamp())}, "status": "complete", "limit": page_size}
        )
        async for session in page.auto_paging_iter():
            yield SessionFacts.parse(session.to_dict())

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # stripe: untyped


def _log_failure(action: str, exc: stripe.StripeError, order_id: int | None) -> None:
    """Log what Stripe said without anything secret: its error type, code and request id."""
    log.warning(
        "stripe call failed",
        extra={
            "action": action,
            "order_id": order_id or 0,
            "error": type(exc).__name__,
            "code": exc.code or "",
            "http_status": exc.http_status or 0,
            "request_id": exc.request_id or "",
        },
    )
