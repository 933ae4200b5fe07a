"""Reminders: rows in the database are the truth; timers only wake us up to claim them.

Each session gets a row per configured offset (default 24 h and 1 h before) and a `followup` row
at its end, which asks the mentor whether it happened. A due row is claimed and its messages are
written to the outbox in one transaction: `UPDATE … RETURNING` under `BEGIN IMMEDIATE` on SQLite,
and under row locks (`FOR UPDATE SKIP LOCKED`) on PostgreSQL, so two bot processes on one
database never send the same reminder. A reminder whose moment passed while the bot was down
still goes out if the session has not started yet, and is skipped otherwise; one for a session
that is no longer scheduled is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from bot.config import Config
from bot.core.i18n import When, _
from bot.core.metrics import REMINDER_LATENESS, REMINDERS_SENT
from bot.core.outbox import enqueue
from bot.core.replies import Choice, Say
from bot.learning.courses import course_title
from storage.models import (
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    Reminder,
    User,
)
from storage.uow import UnitOfWork

FOLLOWUP = "followup"


def before_kind(minutes: int) -> str:
    return f"before_{minutes}"


def rating_choices(session_id: int) -> list[Choice]:
    return [Choice("★" * n, f"/rate {session_id} {n}") for n in range(1, 6)]


def outcome_choices(session_id: int, for_mentor: bool) -> list[Choice]:
    if for_mentor:
        return [
            Choice(_("Yes, completed"), f"/outcome {session_id} completed"),
            Choice(_("The learner did not come"), f"/outcome {session_id} noshow"),
        ]
    return [
        Choice(_("Yes, it took place"), f"/outcome {session_id} completed"),
        Choice(_("My mentor did not come"), f"/outcome {session_id} noshow"),
    ]


async def schedule_for_session(
    uow: UnitOfWork, config: Config, session: MentorSession, now: datetime
) -> list[datetime]:
    """Create the session's reminder rows; returns their due times (for arming timers)."""
    due_times = []
    for minutes in config.reminders.offsets_minutes:
        due = session.start_at - timedelta(minutes=minutes)
        if due <= now:
            continue
        uow.add(Reminder(session_id=session.id, kind=before_kind(minutes), due_at=due))
        due_times.append(due)
    end = session.start_at + timedelta(minutes=session.duration_minutes)
    uow.add(Reminder(session_id=session.id, kind=FOLLOWUP, due_at=end))
    due_times.append(end)
    await uow.flush()
    return due_times


async def skip_for_session(uow: UnitOfWork, session_id: int, now: datetime) -> None:
    await uow.session.execute(
        update(Reminder)
        .where(Reminder.session_id == session_id)
        .where(Reminder.sent_at.is_(None))
        .where(Reminder.skipped_at.is_(None))
        .values(skipped_at=now)
    )


async def claim_due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[Reminder]:
    """Atomically take due reminders for this process; nobody else can take them after."""
    due_ids = (
        select(Reminder.id)
        .where(Reminder.sent_at.is_(None))
        .where(Reminder.skipped_at.is_(None))
        .where(Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await uow.session.execute(due_ids)).scalars())
    if not ids:
        return []
    claimed = await uow.session.execute(
        update(Reminder)
        .where(Reminder.id.in_(ids))
        .where(Reminder.sent_at.is_(None))
        .where(Reminder.skipped_at.is_(None))
        .values(sent_at=now)
        .returning(Reminder)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars(), key=lambda r: (r.due_at, r.id))


async def send_due(uow: UnitOfWork, now: datetime) -> int:
    """Claim due reminders and write their messages to the outbox; returns how many went out."""
    sent = 0
    claimed = await claim_due(uow, now)
    held = await _load_for(uow, claimed)  # the session's identity map holds rows weakly
    for reminder in claimed:
        session = await uow.get(MentorSession, reminder.session_id)
        assert session is not None
        too_late = reminder.kind != FOLLOWUP and now >= session.start_at
        if session.status != "scheduled" or too_late:
            await uow.session.execute(
                update(Reminder)
                .where(Reminder.id == reminder.id)
                .values(sent_at=None, skipped_at=now)
            )
            continue
        await _notify(uow, reminder, session, now)
        REMINDERS_SENT.inc()
        REMINDER_LATENESS.observe(max(0.0, (now - reminder.due_at).total_seconds()))
        sent += 1
    del held
    return sent


async def _load_for(uow: UnitOfWork, reminders: list[Reminder]) -> list[Any]:
    """Load what the reminders' messages need in five queries, not five per reminder: a
    sweep can claim hundreds at once, and `uow.get` then finds them in the session."""
    if not reminders:
        return []

    async def load(model: type[Any], ids: set[int]) -> list[Any]:
        found = await uow.session.execute(select(model).where(model.id.in_(list(ids))))
        return list(found.scalars())

    sessions = await load(MentorSession, {r.session_id for r in reminders})
    mentors = await load(MentorProfile, {s.mentor_id for s in sessions})
    users = await load(User, {s.learner_id for s in sessions} | {m.user_id for m in mentors})
    enrollments = await load(Enrollment, {s.enrollment_id for s in sessions})
    courses = await load(Course, {e.course_id for e in enrollments})
    return [*sessions, *mentors, *users, *enrollments, *courses]


async def _notify(
    uow: UnitOfWork, reminder: Reminder, session: MentorSession, now: datetime
) -> None:
    mentor = await uow.get(MentorProfile, session.mentor_id)
    learner = await uow.get(User, session.learner_id)
    enrollment = await uow.get(Enrollment, session.enrollment_id)
    assert mentor is not None and learner is not None and enrollment is not None
    mentor_user = await uow.get(User, mentor.user_id)
    course = await uow.get(Course, enrollment.course_id)
    assert mentor_user is not None and course is not None
    course_name = course_title(course)
    if reminder.kind == FOLLOWUP:
        for user, other, for_mentor in (
            (mentor_user, learner, True),
            (learner, mentor_user, False),
        ):
            await enqueue(
                uow,
                user.id,
                Say(
                    _(
                        "Session #{id} with {other} has ended. Did it take place?",
                        id=session.id,
                        other=other.display_name,
                    ),
                    tuple(outcome_choices(session.id, for_mentor)),
                ),
                now,
            )
        return
    for user, other in ((learner, mentor_user), (mentor_user, learner)):
        await enqueue(
            uow,
            user.id,
            Say(
                _(
                    "Reminder: session #{id} ({course}) with {other} starts {when}.\nJoin: {link}",
                    id=session.id,
                    course=course_name,
                    other=other.display_name,
                    when=When(session.start_at),
                    link=session.meeting_link,
                )
            ),
            now,
        )


async def next_due(uow: UnitOfWork) -> datetime | None:
    """The earliest pending reminder's instant (one indexed query, for arming the timer)."""
    rows = await uow.session.execute(
        select(func.min(Reminder.due_at))
        .where(Reminder.sent_at.is_(None))
        .where(Reminder.skipped_at.is_(None))
    )
    return rows.scalar_one()


async def pending_for(
    uow: UnitOfWork, user_id: int, mentor_id: int | None, now: datetime
) -> list[tuple[Reminder, MentorSession]]:
    """The reminders still to be sent about the scheduled sessions `user_id` takes part in
    (as learner, or as mentor `mentor_id`), soonest first: what `/reminders` lists."""
    rows = await uow.session.execute(
        select(Reminder, MentorSession)
        .join(MentorSession, MentorSession.id == Reminder.session_id)
        .where(Reminder.sent_at.is_(None))
        .where(Reminder.skipped_at.is_(None))
        .where(MentorSession.status == "scheduled")
        .where(
            (MentorSession.learner_id == user_id)
            | (MentorSession.mentor_id == (mentor_id if mentor_id is not None else -1))
        )
        .order_by(Reminder.due_at, Reminder.id)
    )
    # A reminder before the start that was missed after the start is never sent (send_due).
    return [
        (r, s) for r, s in rows.all() if r.kind == FOLLOWUP or r.due_at > now or s.start_at > now
    ]
