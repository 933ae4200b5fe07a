"""Attendance and revenue per workshop, for `/admin stats workshops` and its CSV.

Attendance is the host's marks: attended out of those seated at the start (seats marked
attended or absent, or still seated if unmarked). Revenue is what the seats' session credits
were worth, read from the ledger: each credit spent on a seat (net of credits given back) is
worth its order's price ÷ the sessions it included, rounded down, in the order's currency;
credits from demo orders are left out, as everywhere else in the revenue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from bot.core.errors import STATUS_NAMES
from bot.core.i18n import Localized, _
from bot.core.ledger import WORKSHOP_CREDIT_KINDS
from bot.reporting.files import csv_file, csv_header
from bot.sessions.workshops import workshop_title
from storage.models import LedgerEntry, Order, User, Workshop, WorkshopSeat
from storage.uow import UnitOfWork

LIMIT = 200


@dataclass
class WorkshopStats:
    id: int
    title: Localized  # in each reader's language, as `workshop_title` gives it
    host: str
    start: datetime
    status: str
    seats: int
    seated: int = 0
    attended: int = 0
    absent: int = 0
    credits: int = 0
    revenue: dict[str, int] = field(default_factory=dict)


async def workshop_stats(uow: UnitOfWork, limit: int = LIMIT) -> list[WorkshopStats]:
    """The latest workshops (by start), with attendance and the credits' revenue."""
    rows = await uow.session.execute(
        select(Workshop, User.display_name)
        .join(User, User.id == Workshop.host_id)
        .order_by(Workshop.start_at.desc(), Workshop.id.desc())
        .limit(limit)
    )
    found = {
        w.id: WorkshopStats(w.id, workshop_title(w), host, w.start_at, w.status, w.seats)
        for w, host in rows.all()
    }
    if not found:
        return []
    counts = await uow.session.execute(
        select(WorkshopSeat.workshop_id, WorkshopSeat.status, func.count(WorkshopSeat.id))
        .where(WorkshopSeat.workshop_id.in_(list(found)))
        .group_by(WorkshopSeat.workshop_id, WorkshopSeat.status)
    )
    for workshop_id, status, n in counts.all():
        stats = found[workshop_id]
        if status in ("seated", "attended", "absent"):
            stats.seated += n
        if status == "attended":
            stats.attended += n
        elif status == "absent":
            stats.absent += n
    seat_workshop = dict(
        (
            await uow.session.execute(
                select(WorkshopSeat.id, WorkshopSeat.workshop_id).where(
                    WorkshopSeat.workshop_id.in_(list(found))
                )
            )
        ).all()
    )
    entries = await uow.session.execute(
        select(
            LedgerEntry.key,
            LedgerEntry.credits,
            Order.amount_minor,
            Order.sessions_included,
            Order.currency,
            Order.provider,
        )
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.kind.in_([k.value for k in WORKSHOP_CREDIT_KINDS]))
    )
    for key, credits, amount, sessions, currency, provider in entries.all():
        of_seat = seat_workshop.get(int(key.rsplit(":", 1)[1]))
        if of_seat is None:
            continue
        stats = found[of_seat]
        stats.credits -= credits  # spent is negative towards the learner
        if provider != "demo" and sessions > 0:
            value = -credits * amount // sessions
            stats.revenue[currency] = stats.revenue.get(currency, 0) + value
    return list(found.values())


def workshops_csv(stats: list[WorkshopStats], lang: str = "en") -> bytes:
    """One row per workshop and currency, headed in `lang` (`csv_header`), the title in
    `lang` (English where it has none) and the status in words; revenue in the currency's
    minor units."""
    header = [
        _("workshop"),
        _("title"),
        _("host"),
        _("start_utc"),
        _("status"),
        _("seats"),
        _("seated"),
        _("attended"),
        _("absent"),
        _("credits"),
        _("revenue_minor"),
        _("currency"),
    ]
    rows = []
    for s in stats:
        by_currency = sorted(s.revenue.items()) or [("", 0)]
        for currency, amount in by_currency:
            rows.append(
                [
                    s.id,
                    s.title.pick(lang),
                    s.host,
                    s.start.isoformat(),
                    STATUS_NAMES[s.status].render(lang) if s.status in STATUS_NAMES else s.status,
                    s.seats,
                    s.seated,
                    s.attended,
                    s.absent,
                    s.credits,
                    amount,
                    currency,
                ]
            )
    return csv_file(csv_header(header, lang), rows)
