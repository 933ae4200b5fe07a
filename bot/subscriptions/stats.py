"""Subscription figures for `/admin stats`: monthly recurring revenue and churn by month.

MRR of a month is what the periods paid in that month brought, net of their refunds, per
currency (ledger entries of Kind.PERIOD_PAID and PERIOD_REFUNDED; demo periods left out, as
the revenue figures leave demo orders out). Churn of a month is the share of the
subscriptions live at its start (their first period paid before it, not ended before it)
that ended in it, lapsed or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.core.ledger import PERIOD_MONEY_KINDS
from storage.models import LedgerEntry, Subscription, SubscriptionPeriod
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Month:
    start: datetime
    mrr: dict[str, int]
    live_at_start: int
    ended: int

    @property
    def label(self) -> str:
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def churn_percent(self) -> float | None:
        return None if not self.live_at_start else 100 * self.ended / self.live_at_start


def month_starts(now: datetime, months: int) -> list[datetime]:
    year, month = now.year, now.month
    starts = []
    for _ in range(months):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _month_of(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


async def by_month(uow: UnitOfWork, now: datetime, months: int = 6) -> list[Month]:
    starts = month_starts(now, months)
    rows = await uow.session.execute(
        select(LedgerEntry.at, LedgerEntry.currency, LedgerEntry.amount_minor)
        .where(LedgerEntry.kind.in_([k.value for k in PERIOD_MONEY_KINDS]))
        .where(LedgerEntry.demo.is_(False))
        .where(LedgerEntry.at >= starts[0])
    )
    mrr: dict[datetime, dict[str, int]] = {s: {} for s in starts}
    for at, currency, amount in rows:
        bucket = mrr.get(_month_of(at))
        if bucket is not None and currency is not None:
            bucket[currency] = bucket.get(currency, 0) + int(amount)
    first_paid = (
        select(SubscriptionPeriod.subscription_id, func.min(SubscriptionPeriod.paid_at).label("p"))
        .group_by(SubscriptionPeriod.subscription_id)
        .subquery()
    )
    subs = (
        await uow.session.execute(
            select(first_paid.c.p, Subscription.ended_at).join(
                Subscription, Subscription.id == first_paid.c.subscription_id
            )
        )
    ).all()
    found = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        live = [
            ended
            for paid, ended in subs
            if paid is not None and paid < start and (ended is None or ended >= start)
        ]
        gone = sum(1 for ended in live if ended is not None and (end is None or ended < end))
        found.append(Month(start, mrr[start], len(live), gone))
    return found
