"""Stripe as a running service: the webhook route, reconciliation, and prompt notices.

Webhooks can be lost for good: the bot may be down longer than Stripe keeps retrying, or the
process may die after Stripe took the money but before any webhook arrived. Reconciliation
closes that gap. At start-up and then every `reconcile_interval_minutes` it lists the
completed Checkout Sessions created within `reconcile_lookback_hours` and settles every paid
one whose order does not show it yet, through the same `settle_paid` as the webhook (so the two
racing each other still fulfil once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.core.web import WebServer
from bot.providers.stripe.billing import reconcile_subscriptions
from bot.providers.stripe.checkout import PROVIDER, SessionFacts, StripePayments
from bot.providers.stripe.landing import LandingPages
from bot.providers.stripe.settle import RefundFirst, settle_paid, settle_refunded_unwanted
from bot.providers.stripe.webhook import StripeWebhook
from storage.models import Order

if TYPE_CHECKING:
    from bot.front_door import Ports

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0  # on shutdown, for webhooks in flight


@dataclass(frozen=True)
class ReconcileReport:
    paid_sessions: int
    settled: int
    outcomes: tuple[str, ...]


async def reconcile(app: Ports, payments: StripePayments) -> ReconcileReport:
    """Settle every recent paid session that its order does not reflect yet."""
    now = app.clock.now()
    since = now - timedelta(hours=payments.settings.reconcile_lookback_hours)
    paid = [
        s
        async for s in payments.recent_sessions(since)
        if s.paid and s.ours and s.order_id is not None
    ]
    outcomes = []
    for facts in await _not_yet_settled(app, paid):
        try:
            async with app.new_uow() as uow:
                settled = await settle_paid(uow, app.config, facts, app.clock.now())
                await uow.commit()
                notified = uow.wrote_outbox
        except RefundFirst as first:  # Stripe gives it back first, with no transaction open
            await payments.refund_payment(first.order_id, first.payment_ref)
            async with app.new_uow() as uow:
                settled = await settle_refunded_unwanted(
                    uow, first.order_id, facts, app.clock.now()
                )
                await uow.commit()
                notified = uow.wrote_outbox
        if settled.outcome == "already":
            continue
        outcomes.append(settled.outcome)
        log.warning(
            "reconciliation settled a payment no webhook had reached",
            extra={"order_id": facts.order_id or 0, "outcome": settled.outcome},
        )
        if notified:
            await app.notifier.deliver_pending()
    repaired = await reconcile_subscriptions(payments, app.new_uow, app.config, app.clock.now)
    if repaired:
        log.warning("reconciliation repaired subscriptions", extra={"repaired": repaired})
        outcomes.extend(["subscription"] * repaired)
        await app.notifier.deliver_pending()
    return ReconcileReport(len(paid), len(outcomes), tuple(outcomes))


async def _not_yet_settled(app: Ports, paid: list[SessionFacts]) -> list[SessionFacts]:
    """The sessions whose order is not already paid by them (one query, no locks)."""
    if not paid:
        return []
    async with app.new_uow() as uow:
        rows = await uow.session.execute(
            select(Order.id, Order.provider, Order.provider_ref).where(
                Order.id.in_({s.order_id for s in paid})
            )
        )
        settled = {(oid, ref) for oid, provider, ref in rows if provider == PROVIDER}
    return [s for s in paid if (s.order_id, s.payment_ref) not in settled]


def _settled_any(report: ReconcileReport | None) -> str:
    return "settled" if report is not None and report.settled else "ok"


class StripeService:
    """Adds the webhook route and the landing pages to the web server; reconciles and
    delivers in the background."""

    name = "stripe"

    def __init__(
        self,
        app: Ports,
        payments: StripePayments,
        web: WebServer,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.payments = payments
        self._sleep = sleep  # between reconciliation passes (tests pass their own)
        self.webhook = StripeWebhook(app, payments, on_notices=self.deliver_soon)
        web.add_route("POST", payments.settings.webhook_path, self.webhook.handle)
        self.landing = LandingPages(app)
        self.landing.add_routes(web)
        self.reconciled = asyncio.Event()  # set after each pass (tests wait for the first)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._reconcile_loop(), name="stripe-reconcile"),
            asyncio.create_task(self._deliver_loop(), name="stripe-notices"),
        ]

    async def stop(self) -> None:
        """Stop the background passes; let webhooks in flight finish before the client closes."""
        if not await self.app.front.drain(DRAIN_SECONDS, kind="stripe_webhook"):
            log.warning("stripe: webhooks still in flight at shutdown")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.payments.close()

    def deliver_soon(self) -> None:
        """Wake the delivery task; many webhooks in a burst share one delivery pass."""
        self._wake.set()

    async def reconcile_once(self) -> ReconcileReport | None:
        """One pass through the front door; None when it failed (the next pass retries)."""
        try:
            return await self.app.front.dispatch(
                "stripe_reconcile",
                lambda: reconcile(self.app, self.payments),
                outcome=_settled_any,
                on_error=lambda: None,
            )
        finally:
            self.reconciled.set()

    async def _reconcile_loop(self) -> None:
        interval = self.payments.settings.reconcile_interval_minutes * 60
        while True:
            await self.reconcile_once()
            await self._sleep(interval)

    async def _deliver_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.app.notifier.deliver_pending()
            except Exception:
                log.exception("delivering stripe notices failed; the sweep retries")
