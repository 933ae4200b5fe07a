"""Workshop reminders: rows in the database are the truth, claimed once across processes like
session reminders (bot/sessions/reminders.py): `UPDATE … RETURNING` under BEGIN IMMEDIATE on
SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL.

Before the start (each of `reminders.offsets_minutes`) every attendee and the host get the
meeting link; at the end the host is asked to mark attendance. A reminder for a workshop no
longer scheduled is skipped, and so is one before the start that fell due after it (the bot
was down). Moving a workshop skips its pending reminders and schedules new ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from bot.config import Config
from bot.core.i18n import Localized, When, _
from bot.core.metrics import REMINDERS_SENT
from bot.core.outbox import enqueue
from bot.core.replies import Choice, Say
from bot.sessions.seats import workshop_end
from storage.models import Workshop, WorkshopReminder, WorkshopSeat, WorkshopWaitlist
from storage.uow import UnitOfWork

FOLLOWUP = "followup"


def _title(workshop: Workshop) -> Localized:
    return Localized(workshop.title_en, workshop.title_zh, title=True)


async def _attendee_ids(uow: UnitOfWork, workshop_id: int) -> list[int]:
    found = await uow.session.execute(
        select(WorkshopSeat.user_id)
        .where(WorkshopSeat.workshop_id == workshop_id)
        .where(WorkshopSeat.status == "seated")
        .order_by(WorkshopSeat.id)
    )
    return list(found.scalars())


async def schedule_reminders(
    uow: UnitOfWork, config: Config, workshop: Workshop, now: datetime
) -> list[datetime]:
    due_times = []
    for minutes in config.reminders.offsets_minutes:
        due = workshop.start_at - timedelta(minutes=minutes)
        if due > now:
            uow.add(WorkshopReminder(workshop_id=workshop.id, kind=f"before_{minutes}", due_at=due))
            due_times.append(due)
    end = workshop_end(workshop)
    uow.add(WorkshopReminder(workshop_id=workshop.id, kind=FOLLOWUP, due_at=end))
    due_times.append(end)
    await uow.flush()
    return due_times


async def skip_reminders(uow: UnitOfWork, workshop_id: int, now: datetime) -> None:
    await uow.session.execute(
        update(WorkshopReminder)
        .where(WorkshopReminder.workshop_id == workshop_id)
        .where(WorkshopReminder.sent_at.is_(None))
        .where(WorkshopReminder.skipped_at.is_(None))
        .values(skipped_at=now)
    )


async def send_due(uow: UnitOfWork, now: datetime, limit: int = 200) -> int:
    """Claim the due workshop reminders (once across processes) and write their notices: before
    it, to every attendee and the host, with the link; after it, the host is asked to mark
    attendance. A reminder for a workshop no longer scheduled, or one before the start that
    fell due after it (the bot was down), is skipped."""
    due_ids = (
        select(WorkshopReminder.id)
        .where(WorkshopReminder.sent_at.is_(None))
        .where(WorkshopReminder.skipped_at.is_(None))
        .where(WorkshopReminder.due_at <= now)
        .order_by(WorkshopReminder.due_at, WorkshopReminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await uow.session.execute(due_ids)).scalars())
    if not ids:
        return 0
    claimed = await uow.session.execute(
        update(WorkshopReminder)
        .where(WorkshopReminder.id.in_(ids))
        .where(WorkshopReminder.sent_at.is_(None))
        .where(WorkshopReminder.skipped_at.is_(None))
        .values(sent_at=now)
        .returning(WorkshopReminder.id, WorkshopReminder.workshop_id, WorkshopReminder.kind)
        .execution_options(synchronize_session=False)
    )
    sent = 0
    for reminder_id, workshop_id, kind in sorted(claimed.all()):
        workshop = await uow.get(Workshop, workshop_id)
        assert workshop is not None
        if workshop.status != "scheduled" or (kind != FOLLOWUP and now >= workshop.start_at):
            await uow.session.execute(
                update(WorkshopReminder)
                .where(WorkshopReminder.id == reminder_id)
                .values(sent_at=None, skipped_at=now)
            )
            continue
        await _notify(uow, workshop, kind, now)
        REMINDERS_SENT.inc()
        sent += 1
    return sent


async def _notify(uow: UnitOfWork, workshop: Workshop, kind: str, now: datetime) -> None:
    title = _title(workshop)
    if kind == FOLLOWUP:
        await enqueue(
            uow,
            workshop.host_id,
            Say(
                _(
                    "Workshop #{id} {title} has ended. Who came? Mark attendance with "
                    "/workshop attendance {id} (everyone, or the seat numbers of those who came).",
                    id=workshop.id,
                    title=title,
                ),
                (Choice(_("Mark attendance"), f"/workshop attendance {workshop.id}"),),
            ),
            now,
        )
        return
    people = await _attendee_ids(uow, workshop.id)
    for user_id in [workshop.host_id, *people]:
        await enqueue(
            uow,
            user_id,
            Say(
                _(
                    "Reminder: workshop #{id} {title} starts {when}.\nJoin: {link}",
                    id=workshop.id,
                    title=title,
                    when=When(workshop.start_at),
                    link=workshop.meeting_link,
                )
            ),
            now,
        )


async def next_due(uow: UnitOfWork) -> datetime | None:
    """The earliest pending workshop reminder or offer deadline (for arming the timer)."""
    reminder = await uow.session.execute(
        select(func.min(WorkshopReminder.due_at))
        .where(WorkshopReminder.sent_at.is_(None))
        .where(WorkshopReminder.skipped_at.is_(None))
    )
    offer = await uow.session.execute(
        select(func.min(WorkshopWaitlist.expires_at)).where(WorkshopWaitlist.status == "offered")
    )
    found = [t for t in (reminder.scalar_one(), offer.scalar_one()) if t is not None]
    return min(found, default=None)
