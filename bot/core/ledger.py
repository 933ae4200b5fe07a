"""The ledger: every movement of money and of session credits, as append-only entries.

Nothing here decides anything; the rules (bot/payments.py, bot/sessions/) post what they did,
and every balance is a sum of entries: a learner's credits left on an enrollment, a mentor's
earnings, the marketplace's revenue by currency. Entries are never changed: a refund or a
reversal is a new entry with the opposite sign, pointing at what it reverses.

Signs: money (`amount_minor`, ISO 4217 minor units of `currency`) is positive towards the
marketplace (a payment +4900, its refund −4900) and positive towards the mentor for earnings
(+1568, reversed −1568); the platform's fee on a session (its share of the order minus the
mentor's earning) is positive towards the platform (+392, reversed −392); credits are positive
towards the learner (granted +4, used −1, returned +1, revoked −N). Demo payments move no
money: their entries carry `demo`, and the revenue, earnings and fee sums leave them out.

Each entry's `key` says what it is for, once (`paid:order:7`, `earning:session:9`), and is
unique in the table: posting the same movement again is a no-op that returns None. The rule
that posts holds the lock of the row the movement is about (the order, the session), so two
processes never race past the check; the unique key is the last line of defence.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import LedgerEntry, LedgerTotal
from storage.uow import UnitOfWork


class Kind(StrEnum):
    ORDER_PAID = "order_paid"
    ORDER_REFUNDED = "order_refunded"
    PLATFORM_FEE = "platform_fee"
    CREDIT_GRANTED = "credit_granted"
    CREDIT_USED = "credit_used"
    CREDIT_RETURNED = "credit_returned"
    CREDIT_REVOKED = "credit_revoked"
    MENTOR_EARNING = "mentor_earning"
    EARNING_REVERSED = "earning_reversed"
    FEE_REVERSED = "fee_reversed"
    # --- workshops: a seat paid with session credits, and those credits given back
    WORKSHOP_CREDIT_USED = "workshop_credit_used"
    WORKSHOP_CREDIT_RETURNED = "workshop_credit_returned"
    # --- subscriptions (bot/subscriptions/): keyed by the period (`paid:period:12`) ---
    PERIOD_PAID = "period_paid"  # money for one paid period (an invoice, a Stars charge)
    PERIOD_REFUNDED = "period_refunded"  # that period's money given back
    PERIOD_CREDITS = "period_credits"  # the sessions one paid period grants, once
    CREDIT_EXPIRED = "credit_expired"  # unused credits beyond the plan's rollover, at renewal
    PROMO_USED = "promo_used"  # a promo code's discount on a period or order (money given up)


CREDIT_KINDS: tuple[Kind, ...] = (
    Kind.CREDIT_GRANTED,
    Kind.CREDIT_USED,
    Kind.CREDIT_RETURNED,
    Kind.CREDIT_REVOKED,
)
# Workshops spend and return credits of the same enrollments (bot/sessions/seats.py).
CREDIT_KINDS += (Kind.WORKSHOP_CREDIT_USED, Kind.WORKSHOP_CREDIT_RETURNED)
WORKSHOP_CREDIT_KINDS = (Kind.WORKSHOP_CREDIT_USED, Kind.WORKSHOP_CREDIT_RETURNED)
REVENUE_KINDS = (Kind.ORDER_PAID, Kind.ORDER_REFUNDED)
EARNING_KINDS = (Kind.MENTOR_EARNING, Kind.EARNING_REVERSED)
FEE_KINDS = (Kind.PLATFORM_FEE, Kind.FEE_REVERSED)
# --- subscriptions ---
PERIOD_CREDIT_KINDS = (Kind.PERIOD_CREDITS, Kind.CREDIT_EXPIRED)
PERIOD_MONEY_KINDS = (Kind.PERIOD_PAID, Kind.PERIOD_REFUNDED)


async def post(
    uow: UnitOfWork, key: str, kind: Kind, at: datetime, **fields: Any
) -> LedgerEntry | None:
    """Append the entry `key` names, unless it was posted before (then None)."""
    found = await uow.session.execute(select(LedgerEntry.id).where(LedgerEntry.key == key))
    if found.first() is not None:
        return None
    entry = LedgerEntry(key=key, kind=kind.value, at=at, **fields)
    uow.add(entry)
    await uow.flush()
    return entry


async def posted(uow: UnitOfWork, key: str) -> LedgerEntry | None:
    return (
        await uow.session.execute(select(LedgerEntry).where(LedgerEntry.key == key))
    ).scalar_one_or_none()


async def credits_left(uow: UnitOfWork, enrollment_id: int) -> int:
    """The session credits left on an enrollment: granted + returned − used − revoked."""
    total = await uow.session.execute(
        select(func.coalesce(func.sum(LedgerEntry.credits), 0)).where(
            LedgerEntry.enrollment_id == enrollment_id
        )
    )
    return int(total.scalar_one())


async def credits_by_enrollment(uow: UnitOfWork, enrollment_ids: Iterable[int]) -> dict[int, int]:
    """`credits_left` for many enrollments in one query (missing ones have none)."""
    ids = list(enrollment_ids)
    if not ids:
        return {}
    rows = await uow.session.execute(
        select(LedgerEntry.enrollment_id, func.sum(LedgerEntry.credits))
        .where(LedgerEntry.enrollment_id.in_(ids))
        .group_by(LedgerEntry.enrollment_id)
    )
    found = {int(e): int(n) for e, n in rows if e is not None}
    return {i: found.get(i, 0) for i in ids}


async def mentor_earnings(
    uow: UnitOfWork, mentor_id: int | None = None
) -> dict[tuple[int, str], int]:
    """Each mentor's earnings net of reversals, by (mentor profile id, currency)."""
    stmt = (
        select(LedgerEntry.mentor_id, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.kind.in_([k.value for k in EARNING_KINDS]))
        .group_by(LedgerEntry.mentor_id, LedgerEntry.currency)
    )
    if mentor_id is not None:
        stmt = stmt.where(LedgerEntry.mentor_id == mentor_id)
    rows = await uow.session.execute(stmt)
    return {(int(m), str(c)): int(a) for m, c, a in rows if m is not None and c is not None}


async def sums_by_currency(
    uow: UnitOfWork, kinds: Iterable[Kind], since: datetime | None = None
) -> dict[str, int]:
    """The money of the entries of `kinds` (posted at or after `since`), by currency; demo
    payments are left out."""
    stmt = (
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.kind.in_([k.value for k in kinds]))
        .where(LedgerEntry.demo.is_(False))
        .group_by(LedgerEntry.currency)
    )
    if since is not None:
        stmt = stmt.where(LedgerEntry.at >= since)
    rows = await uow.session.execute(stmt)
    return {str(c): int(a) for c, a in rows if c is not None}


SETTLED_AFTER = timedelta(days=1)  # an entry this old was committed long ago: its sum is kept


def _key(kind: str, currency: str, demo: bool) -> str:
    return f"{kind}|{currency}|{int(demo)}"


def _add(into: dict[str, int], rows: Any) -> None:
    for kind, currency, demo, amount in rows:
        if currency is not None:
            key = _key(str(kind), str(currency), bool(demo))
            into[key] = into.get(key, 0) + int(amount)


def _grouped(amount: Any, *where: Any) -> Any:
    return (
        select(LedgerEntry.kind, LedgerEntry.currency, LedgerEntry.demo, func.sum(amount))
        .where(*where)
        .group_by(LedgerEntry.kind, LedgerEntry.currency, LedgerEntry.demo)
    )


async def _since_kept(
    uow: UnitOfWork, kept: LedgerTotal, before: datetime | None = None, upto: int | None = None
) -> dict[str, int]:
    """What `kept` does not hold (posted before `before`, with ids up to `upto`, when given),
    summed like `LedgerTotal.sums`, from two index ranges: the entries posted after it was
    kept (ids above its id: rows of the primary key's range, summed here, because a
    planner asked to group them reads the kinds' covering index from end to end instead), and
    the earlier ids with an instant from its day on (the kind-and-instant index)."""
    found: dict[str, int] = {}
    later = select(
        LedgerEntry.kind,
        LedgerEntry.currency,
        LedgerEntry.demo,
        LedgerEntry.amount_minor,
        LedgerEntry.at,
    ).where(LedgerEntry.id > kept.through_id)
    if upto is not None:
        later = later.where(LedgerEntry.id <= upto)
    rows = await uow.session.execute(later)
    _add(found, (row[:4] for row in rows if before is None or row.at < before))
    older = _grouped(
        LedgerEntry.amount_minor,
        LedgerEntry.kind.in_([k.value for k in Kind]),  # every kind: that index's prefix
        LedgerEntry.at >= kept.through_at,
        LedgerEntry.id <= kept.through_id,
        *(() if before is None else (LedgerEntry.at < before,)),
    )
    _add(found, await uow.session.execute(older))
    return found


async def settled_totals(uow: UnitOfWork, now: datetime) -> LedgerTotal:
    """The money of every entry posted before the UTC midnight a day or more before `now`,
    as one kept row: read if it is there, else summed from the newest older row and the
    entries between (the first time, from every entry) and kept for the next reader.

    Entries are append-only, so a kept sum stays true; one posted later with an older instant
    (a clock set back) has a larger id and is added by `totals_by_currency`. What no kept row
    can see is an entry with an instant over a day old committed after the row was kept,
    which would take a transaction open for a day. Two processes keeping the same row at
    once: the first one stays (`ON CONFLICT DO NOTHING`), and both sums are the same."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    horizon = day - SETTLED_AFTER
    run = uow.session.execute
    latest = (
        await run(
            select(LedgerTotal)
            .where(LedgerTotal.through_at <= horizon)
            .order_by(LedgerTotal.through_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest is not None and latest.through_at == horizon:
        return latest
    newest = int((await run(select(func.max(LedgerEntry.id)))).scalar_one() or 0)
    # From here, what this transaction reads of ids up to `newest` (SQLite: the whole
    # database is held; PostgreSQL: an entry over a day old is committed long since).
    sums: dict[str, int] = dict(latest.sums) if latest is not None else {}
    if latest is None:
        every = _grouped(LedgerEntry.amount_minor, LedgerEntry.at < horizon)
        _add(sums, await run(every.where(LedgerEntry.id <= newest)))
    else:
        for key, amount in (await _since_kept(uow, latest, horizon, newest)).items():
            sums[key] = sums.get(key, 0) + amount
    kept = LedgerTotal(through_at=horizon, through_id=newest, sums=sums)
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await run(
        insert(LedgerTotal)
        .values(through_at=horizon, through_id=newest, sums=sums)
        .on_conflict_do_nothing(index_elements=["through_at"])
    )
    await run(delete(LedgerTotal).where(LedgerTotal.through_at < horizon - timedelta(days=7)))
    return kept


async def totals_by_currency(
    uow: UnitOfWork, now: datetime, *groups: Iterable[Kind]
) -> list[dict[str, int]]:
    """`sums_by_currency` over all time for each group of kinds, demo left out, from one read
    that does not touch every entry: the kept sum of the settled past (`settled_totals`) plus
    the entries after it (two index ranges: the recent instants, and the ids posted since the
    sum was kept)."""
    settled = await settled_totals(uow, now)
    since = await _since_kept(uow, settled)
    found: list[dict[str, int]] = []
    for kinds in groups:
        wanted = {k.value for k in kinds}
        totals: dict[str, int] = {}
        for sums in (settled.sums, since):
            for key, amount in sums.items():
                kind, currency, demo = key.split("|")
                if kind in wanted and demo == "0":
                    totals[currency] = totals.get(currency, 0) + amount
        found.append(totals)
    return found


async def revenue(uow: UnitOfWork, since: datetime | None = None) -> dict[str, int]:
    """Money taken minus money refunded, by currency; demo payments are left out."""
    return await sums_by_currency(uow, REVENUE_KINDS, since)


async def order_sums(uow: UnitOfWork, order_id: int, kinds: Iterable[Kind]) -> dict[str, int]:
    """The sum of one order's entries of each of `kinds` (absent: none), in minor units."""
    rows = await uow.session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.order_id == order_id)
        .where(LedgerEntry.kind.in_([k.value for k in kinds]))
        .group_by(LedgerEntry.kind)
    )
    return {str(k): int(a) for k, a in rows}


async def order_balance(uow: UnitOfWork, order_id: int) -> tuple[int, int]:
    """(paid, refunded) of one order, in its currency's minor units, both ≥ 0."""
    sums = await order_sums(uow, order_id, REVENUE_KINDS)
    return sums.get(Kind.ORDER_PAID.value, 0), -sums.get(Kind.ORDER_REFUNDED.value, 0)


async def violations(uow: UnitOfWork) -> list[str]:
    """Every way the entries break the ledger's invariants, as sentences (none: empty).

    For every order, refunds ≤ paid; for every enrollment, credits never below zero and never
    more used than granted; each session (and each workshop seat) earns its mentor at most once
    net, and only from an order that is paid and not refunded; what an order's sessions earned
    their mentors plus the platform's fees on them never exceeds what the order brought in (a
    subscription's periods count as its order's payments); credits only ever come from a paid
    period.
    """
    found: list[str] = []
    entries = list((await uow.session.execute(select(LedgerEntry))).scalars())
    paid: dict[int, int] = {}
    refunded: dict[int, int] = {}
    granted: dict[int, int] = {}
    net_credits: dict[int, int] = {}
    earned: dict[str, int] = {}  # by what earned it: "session 9", "seat 4"
    earned_from: dict[str, int] = {}
    paid_out: dict[int, int] = {}
    standing: dict[int, int] = {}  # a seat's earnings not reversed
    credit_kinds = [k.value for k in CREDIT_KINDS + PERIOD_CREDIT_KINDS]
    for e in entries:
        if e.kind in (Kind.ORDER_PAID, Kind.PERIOD_PAID) and e.order_id is not None:
            paid[e.order_id] = paid.get(e.order_id, 0) + e.amount_minor
        elif e.kind in (Kind.ORDER_REFUNDED, Kind.PERIOD_REFUNDED) and e.order_id is not None:
            refunded[e.order_id] = refunded.get(e.order_id, 0) - e.amount_minor
        if e.kind in credit_kinds and e.enrollment_id is not None:
            net_credits[e.enrollment_id] = net_credits.get(e.enrollment_id, 0) + e.credits
            if e.kind in (Kind.CREDIT_GRANTED, Kind.PERIOD_CREDITS):
                granted[e.enrollment_id] = granted.get(e.enrollment_id, 0) + e.credits
        if e.kind in [k.value for k in EARNING_KINDS + FEE_KINDS] and e.order_id is not None:
            paid_out[e.order_id] = paid_out.get(e.order_id, 0) + e.amount_minor
        subject = (
            f"session {e.session_id}"
            if e.session_id is not None
            else f"seat {e.seat_id}"
            if e.seat_id is not None
            else None
        )
        if e.kind in [k.value for k in EARNING_KINDS] and subject is not None:
            earned[subject] = earned.get(subject, 0) + e.amount_minor
            if e.kind == Kind.MENTOR_EARNING and e.order_id is not None:
                earned_from[subject] = e.order_id
            if e.kind == Kind.MENTOR_EARNING and e.seat_id is not None:
                standing[e.seat_id] = standing.get(e.seat_id, 0) + 1
            elif e.seat_id is not None:
                standing[e.seat_id] = standing.get(e.seat_id, 0) - 1
    for order_id, amount in refunded.items():
        if amount > paid.get(order_id, 0):
            found.append(f"order {order_id}: refunded {amount} of {paid.get(order_id, 0)} paid")
    for order_id, amount in paid_out.items():
        kept = paid.get(order_id, 0) - refunded.get(order_id, 0)
        if amount > kept:
            found.append(f"order {order_id}: earnings and fees {amount} exceed {kept} it brought")
    for enrollment_id, left in net_credits.items():
        if left < 0:
            found.append(f"enrollment {enrollment_id}: {left} credits left")
        if left > granted.get(enrollment_id, 0):
            found.append(
                f"enrollment {enrollment_id}: {left} left of {granted.get(enrollment_id, 0)}"
            )
    for subject, amount in earned.items():
        source = earned_from.get(subject)
        if amount < 0:
            found.append(f"{subject}: earnings {amount} below zero")
        unpaid = source is not None and (
            paid.get(source, 0) <= 0 or refunded.get(source, 0) >= paid.get(source, 0)
        )
        if unpaid and amount > 0:
            found.append(f"{subject}: earns from order {source}, not paid")
    for seat_id, n in standing.items():
        if n not in (0, 1):
            found.append(f"seat {seat_id}: {n} earnings standing")
    found.extend(_period_violations(entries))
    return found


def _period_violations(entries: list[LedgerEntry]) -> list[str]:
    """Subscriptions: credits are granted only for a paid period (`credits:period:N` has its
    `paid:period:N`), never more than once, and a period's refund never exceeds its payment."""
    found: list[str] = []
    by_key = {e.key: e for e in entries}
    for e in entries:
        if e.kind == Kind.PERIOD_CREDITS:
            period = e.key.removeprefix("credits:period:")
            payment = by_key.get(f"paid:period:{period}")
            if payment is None or payment.kind != Kind.PERIOD_PAID:
                found.append(f"period {period}: {e.credits} credits granted, never paid")
            if e.credits < 0:
                found.append(f"period {period}: {e.credits} credits granted")
        elif e.kind == Kind.PERIOD_REFUNDED:
            period = e.key.removeprefix("refunded:period:")
            payment = by_key.get(f"paid:period:{period}")
            kept = 0 if payment is None else payment.amount_minor
            if -e.amount_minor > kept:
                found.append(f"period {period}: refunded {-e.amount_minor} of {kept} paid")
    return found
