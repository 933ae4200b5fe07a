"""Telegram Stars reconciliation: fulfil the payments whose successful_payment update was lost.

In polling mode python-telegram-bot confirms updates to Telegram when it fetches the next
batch, before they are handled, so a process that dies in between loses a payment's update for
good (and Telegram drops any update it could not deliver within 24 hours, in either mode). The
learner's Stars are taken all the same. Reconciliation closes that gap as
`bot.providers.stripe.service` does for Stripe: at start-up and then every `[telegram]
reconcile_interval_minutes`, the bot's Star transactions of the last `reconcile_lookback_hours`
are listed, and each incoming payment for one of our invoices whose charge id no order and no
subscription period records goes through `stars.record_payment`, the update's own path: the
order (or subscription) is locked and the charge id looked up under the lock, so the update and
reconciliation racing each other still fulfil once. A subscription's charge, first or renewal,
grants its period, 30 days from the charge (the only period Telegram allows). The confirmation
goes to the outbox in the transaction that fulfils (there is no update to answer). Payments
Telegram shows refunded, and payments for invoices that are not ours, are left alone.

The core never talks to Telegram: the adapter passes in a `StarLedger` that lists the
transactions as plain data, and the function that refunds a payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.core.errors import BadInput
from bot.core.outbox import keep_reply
from bot.core.users import Incoming
from bot.providers.stars.payment import (
    CURRENCY,
    PROVIDER,
    Refunder,
    parse_invoice_payload,
    record_payment,
)
from bot.providers.stars.subscriptions import parse_subscription_payload
from storage.models import Order, SubscriptionPeriod

if TYPE_CHECKING:
    from bot.front_door import Ports

log = logging.getLogger(__name__)

LIST_SECONDS = 60.0  # listing the transactions; a pass that cannot list in time is retried
STOP_SECONDS = 10.0  # on shutdown, for a pass under way
QUERY_CHUNK = 500  # charge ids per query when looking for the recorded ones


@dataclass(frozen=True)
class StarPayment:
    """An incoming Stars payment for an invoice, as the bot's transaction list shows it."""

    charge_id: str  # the transaction id, the same as the update's telegram_payment_charge_id
    payer: Incoming
    payload: str
    amount: int
    paid_at: datetime


@dataclass(frozen=True)
class StarHistory:
    """The payments made within the lookback, and the charge ids given back to their payers."""

    payments: tuple[StarPayment, ...]
    refunded: frozenset[str]


# Lists the bot's Star transactions made since the given instant.
StarLedger = Callable[[datetime], Awaitable[StarHistory]]


class LedgerUnavailable(Exception):
    """Telegram did not list the transactions (network, 429, 5xx); the next pass retries."""


@dataclass(frozen=True)
class ReconcileReport:
    payments: int  # payments for our invoices within the lookback
    settled: int  # of those, fulfilled or given back by this pass
    outcomes: tuple[str, ...]


async def reconcile(app: Ports, history: StarHistory, refunder: Refunder) -> ReconcileReport:
    """Record every listed payment for our invoices that no order records yet."""
    ours = _ours(history)
    outcomes: list[str] = []
    for payment in await _unrecorded(app, ours):
        try:
            outcome = await _settle(app, payment, refunder)
        except BadInput as exc:  # the refund was refused or Telegram was unreachable
            log.warning(
                "stars reconciliation could not give a payment back; the next pass retries",
                extra={"charge_id": payment.charge_id, "error": exc.message.render("en")},
            )
            continue
        except Exception:
            log.exception(
                "stars reconciliation failed on a payment; the next pass retries",
                extra={"charge_id": payment.charge_id},
            )
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return ReconcileReport(len(ours), len(outcomes), tuple(outcomes))


def _ours(history: StarHistory) -> list[StarPayment]:
    """The payments for our invoices that were not given back; the others are logged."""
    refunded: list[str] = []
    foreign: list[str] = []
    ours: dict[str, StarPayment] = {}
    for payment in history.payments:
        if payment.charge_id in history.refunded:
            refunded.append(payment.charge_id)
        elif not _ours_payload(payment.payload):
            foreign.append(payment.charge_id)
        else:
            ours[payment.charge_id] = payment
    if refunded or foreign:
        log.info(
            "stars reconciliation left alone refunded payments and payments for other invoices",
            extra={"refunded": refunded[:20], "not_ours": foreign[:20]},
        )
    return list(ours.values())


def _ours_payload(payload: str) -> bool:
    """An order's invoice or a subscription's."""
    return (
        parse_invoice_payload(payload) is not None
        or parse_subscription_payload(payload) is not None
    )


async def _unrecorded(app: Ports, payments: list[StarPayment]) -> list[StarPayment]:
    """The payments no order and no subscription period records (plain reads, no locks)."""
    recorded: set[str] = set()
    async with app.new_uow() as uow:
        for start in range(0, len(payments), QUERY_CHUNK):
            charges = [p.charge_id for p in payments[start : start + QUERY_CHUNK]]
            for column, provider in (
                (Order.provider_ref, Order.provider),
                (SubscriptionPeriod.provider_ref, SubscriptionPeriod.provider),
            ):
                rows = await uow.session.execute(
                    select(column).where(provider == PROVIDER).where(column.in_(charges))
                )
                recorded.update(ref for ref in rows.scalars() if ref is not None)
    return [p for p in payments if p.charge_id not in recorded]


async def _settle(app: Ports, payment: StarPayment, refunder: Refunder) -> str | None:
    """What the lost update would have done; None when the update got there first."""
    outcome = await record_payment(
        app,
        payment.payer,
        payment.payload,
        CURRENCY,
        payment.amount,
        payment.charge_id,
        via_outbox=True,
        paid_at=payment.paid_at,
    )
    if outcome.duplicate:
        return None
    if outcome.refund:
        await refunder(payment.payer.external_id, payment.charge_id)
        async with app.new_uow() as uow:
            for reply in outcome.replies:
                await keep_reply(uow, reply, app.clock.now())
            await uow.commit()
    result = "fulfilled" if outcome.fulfilled else "refunded"
    log.warning(
        "stars reconciliation settled a payment whose update was lost",
        extra={"charge_id": payment.charge_id, "payload": payment.payload, "outcome": result},
    )
    await app.notifier.deliver_pending()
    return result


def _listed(report: ReconcileReport | None) -> str:
    """`unlisted` when Telegram could not list the transactions (a warning, not an error)."""
    if report is None:
        return "unlisted"
    return "settled" if report.settled else "ok"


class StarsReconciler:
    """Reconciles at start-up and then every `interval_minutes`, in the background; the
    Telegram adapter starts it once it can call the Bot API and stops it before closing."""

    def __init__(
        self,
        app: Ports,
        ledger: StarLedger,
        refunder: Refunder,
        *,
        interval_minutes: int,
        lookback_hours: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        list_seconds: float = LIST_SECONDS,
    ) -> None:
        self.app = app
        self._ledger = ledger
        self._refunder = refunder
        self._interval = interval_minutes * 60
        self._lookback = timedelta(hours=lookback_hours)
        self._sleep = sleep  # between passes (tests pass their own)
        self._list_seconds = list_seconds
        self.reconciled = asyncio.Event()  # set after each pass (tests wait for the first)
        self._one_pass = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the passes; start-up waits for none of them."""
        self._task = asyncio.create_task(self._loop(), name="stars-reconcile")

    async def stop(self, within: float = STOP_SECONDS) -> None:
        """Let a pass under way finish (up to `within` s), then start no more. A pass cut short
        is safe: its transaction rolls back, and the next pass (or process) redoes it."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            async with asyncio.timeout(within), self._one_pass:
                task.cancel()  # between passes: asleep, or waiting for the lock
        except TimeoutError:
            log.warning("stars reconciliation still running at shutdown; cancelled")
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def reconcile_once(self) -> ReconcileReport | None:
        """One pass; None when it failed (logged; the next pass retries)."""
        async with self._one_pass:
            try:
                return await self.app.front.dispatch(
                    "stars_reconcile", self._pass, outcome=_listed, on_error=lambda: None
                )
            finally:
                self.reconciled.set()

    async def _pass(self) -> ReconcileReport | None:
        try:
            since = self.app.clock.now() - self._lookback
            async with asyncio.timeout(self._list_seconds):
                history = await self._ledger(since)
        except LedgerUnavailable as exc:
            log.warning(
                "stars reconciliation could not list transactions; the next pass retries",
                extra={"error": str(exc)},
            )
            return None
        except TimeoutError:
            log.warning(
                "stars reconciliation: listing the transactions took longer than %s s; "
                "the next pass retries",
                self._list_seconds,
            )
            return None
        return await reconcile(self.app, history, self._refunder)

    async def _loop(self) -> None:
        while True:
            await self.reconcile_once()
            await self._sleep(self._interval)
