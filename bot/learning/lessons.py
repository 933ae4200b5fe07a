"""Course lessons delivered in chat: on demand, and on a drip schedule set per course.

A learner with an active enrollment in a course receives its active lessons in order (position,
then id), each once: `lesson_deliveries` has one row per learner and lesson, whichever path sent
it, and its unique key is the last guard against a double send.

**The drip** (`Course.lesson_drip_days` > 0) is durable like reminders. Each learner and course
has a `lesson_drips` row whose `next_due_at` is the truth; `Marketplace.run_due` calls
`send_due_lessons`, which
1. starts drips for enrolled learners who have none yet (their first lesson is due at once, so
   it arrives on the sweep after the purchase; enabling the drip on a course starts it for
   everyone already enrolled),
2. claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and, in
   the same transaction, records the delivery, writes the lesson to the outbox and moves
   `next_due_at` on: `drip days` later, at `lessons.drip_hour` o'clock on the learner's own
   local calendar, so across a daylight-saving change a lesson still arrives at 09:00 local.
A restart loses nothing (the rows are the schedule), and a lesson whose moment passed while the
bot was down goes out on the next sweep, once; the cadence then counts from that delivery, so
downtime never causes a burst of catch-up lessons.

Timers: drip instants are left out of `reminders.next_due`, so no timer is armed at them; the
periodic sweep (`reminders.sweep_seconds`, default 30 s) picks them up. A lesson due every few
days may be that many seconds late, and the reminder code stays untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.config import Config
from bot.core.i18n import Msg, _
from bot.core.outbox import enqueue
from bot.core.replies import Attachment, Choice, Say
from bot.learning.courses import course_title
from storage.models import (
    Course,
    Enrollment,
    Lesson,
    LessonDelivery,
    LessonDrip,
    LessonFile,
    LessonRating,
    User,
)
from storage.uow import UnitOfWork

DRIP = "drip"
DEMAND = "demand"


def next_drip_at(delivered: datetime, every_days: int, hour: int, tz: str) -> datetime:
    """`every_days` local days after the day of `delivered`, at `hour` o'clock in `tz`.

    Computed on the local calendar, so the hour stays put across daylight-saving changes
    (a local time skipped by the change resolves to the hour after it).
    """
    zone = ZoneInfo(tz)
    day = delivered.astimezone(zone).date() + timedelta(days=every_days)
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


async def active_lessons(uow: UnitOfWork, course_id: int) -> list[Lesson]:
    rows = await uow.session.execute(
        select(Lesson)
        .where(Lesson.course_id == course_id)
        .where(Lesson.status == "active")
        .order_by(Lesson.position, Lesson.id)
    )
    return list(rows.scalars())


async def delivered_ids(uow: UnitOfWork, user_id: int, course_id: int) -> dict[int, LessonDelivery]:
    rows = await uow.session.execute(
        select(LessonDelivery)
        .join(Lesson, Lesson.id == LessonDelivery.lesson_id)
        .where(LessonDelivery.user_id == user_id)
        .where(Lesson.course_id == course_id)
    )
    return {d.lesson_id: d for d in rows.scalars()}


async def next_lesson(uow: UnitOfWork, user_id: int, course_id: int) -> Lesson | None:
    """The first active lesson of the course this learner has not received."""
    received = await delivered_ids(uow, user_id, course_id)
    return next((x for x in await active_lessons(uow, course_id) if x.id not in received), None)


async def enrolled(uow: UnitOfWork, user_id: int, course_id: int) -> bool:
    """Lessons are for learners holding an active enrollment in the course."""
    found = await uow.session.execute(
        select(Enrollment.id)
        .where(Enrollment.user_id == user_id)
        .where(Enrollment.course_id == course_id)
        .where(Enrollment.status == "active")
        .limit(1)
    )
    return found.first() is not None


async def lesson_counts(uow: UnitOfWork, user_id: int, course_id: int) -> tuple[int, int, int]:
    """(done, received, total) active lessons of a course for one learner."""
    lessons = await active_lessons(uow, course_id)
    received = await delivered_ids(uow, user_id, course_id)
    mine = [received[x.id] for x in lessons if x.id in received]
    return sum(1 for d in mine if d.done_at is not None), len(mine), len(lessons)


async def lesson_say(uow: UnitOfWork, lesson: Lesson, user_id: int, dripped: bool = False) -> Say:
    """A lesson as a message: its text, its links as buttons, its files attached, and buttons
    to mark it done, rate it and get the next one."""
    course = await uow.get(Course, lesson.course_id)
    assert course is not None
    lessons = await active_lessons(uow, course.id)
    number = next((i for i, x in enumerate(lessons, start=1) if x.id == lesson.id), 0)
    files = (
        await uow.session.execute(
            select(LessonFile).where(LessonFile.lesson_id == lesson.id).order_by(LessonFile.id)
        )
    ).scalars()
    choices = [
        Choice(link if len(link) <= 60 else link[:57] + "…", link, url=True)
        for link in lesson.links
    ]
    delivery = (
        await uow.session.execute(
            select(LessonDelivery)
            .where(LessonDelivery.user_id == user_id)
            .where(LessonDelivery.lesson_id == lesson.id)
        )
    ).scalar_one_or_none()
    if delivery is not None and delivery.done_at is None:
        choices.append(Choice(_("Mark as done"), f"/lessondone {lesson.id}"))
    rated = await uow.session.execute(
        select(LessonRating.id)
        .where(LessonRating.lesson_id == lesson.id)
        .where(LessonRating.user_id == user_id)
    )
    if rated.first() is None:
        choices.append(Choice(_("Rate this lesson"), f"/ratelesson {lesson.id}"))
    if await next_lesson(uow, user_id, course.id) is not None:
        choices.append(Choice(_("Next lesson"), f"/nextlesson {course.slug}"))
    text: Msg = _(
        "{course} · lesson {n} of {total} (#{id}): {title}\n\n{body}",
        course=course_title(course),
        n=number or "—",
        total=len(lessons),
        id=lesson.id,
        title=lesson.title,
        body=lesson.body,
    )
    if dripped:
        text = _("Your next lesson is here.\n{lesson}", lesson=text)
    attachments = tuple(Attachment(f.filename, f.content_type, f.data) for f in files)
    return Say(text, tuple(choices), attachments)


async def record_delivery(
    uow: UnitOfWork, user_id: int, lesson: Lesson, via: str, now: datetime
) -> LessonDelivery:
    delivery = LessonDelivery(
        user_id=user_id, lesson_id=lesson.id, via=via, delivered_at=now, done_at=None
    )
    uow.add(delivery)
    await uow.flush()
    return delivery


async def start_drips(uow: UnitOfWork, now: datetime) -> None:
    """A drip row, due now, for every enrolled learner of a dripped course who has none."""
    has_drip = exists().where(
        and_(LessonDrip.user_id == Enrollment.user_id, LessonDrip.course_id == Enrollment.course_id)
    )
    has_lesson = exists().where(
        and_(Lesson.course_id == Enrollment.course_id, Lesson.status == "active")
    )
    missing = (
        select(Enrollment.user_id, Enrollment.course_id)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.status == "active")
        .where(Course.lesson_drip_days > 0)
        .where(~has_drip)
        .where(has_lesson)
        .distinct()
    )
    rows = (await uow.session.execute(missing)).all()
    if not rows:
        return
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Two processes may find the same learner at once: the unique key keeps one row.
    await uow.session.execute(
        insert(LessonDrip)
        .values([{"user_id": u, "course_id": c, "next_due_at": now} for u, c in rows])
        .on_conflict_do_nothing(index_elements=["user_id", "course_id"])
    )


async def rearm_course(uow: UnitOfWork, course_id: int, now: datetime) -> None:
    """A lesson was added or the drip switched on: finished drips of the course go again."""
    await uow.session.execute(
        update(LessonDrip)
        .where(LessonDrip.course_id == course_id)
        .where(LessonDrip.next_due_at.is_(None))
        .values(next_due_at=now)
    )


async def claim_due_drips(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[LessonDrip]:
    """Due drip rows, locked for this transaction; other processes skip them, and once this
    one commits their `next_due_at` has moved on, so nobody sends the same lesson twice."""
    rows = await uow.session.execute(
        select(LessonDrip)
        .where(LessonDrip.next_due_at.is_not(None))
        .where(LessonDrip.next_due_at <= now)
        .order_by(LessonDrip.next_due_at, LessonDrip.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows.scalars())


async def send_due_lessons(uow: UnitOfWork, config: Config, now: datetime) -> int:
    """Start new drips, then deliver every due lesson through the outbox; returns how many."""
    await start_drips(uow, now)
    sent = 0
    for drip in await claim_due_drips(uow, now):
        # A learner asking for a lesson on demand holds their user row. Rather than wait (and
        # risk a deadlock), leave a busy learner's drip to the next sweep.
        user = (
            await uow.session.execute(
                select(User).where(User.id == drip.user_id).with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if user is None:
            continue
        course = await uow.get(Course, drip.course_id)
        assert course is not None
        lesson = None
        if course.lesson_drip_days > 0 and await enrolled(uow, user.id, course.id):
            lesson = await next_lesson(uow, user.id, course.id)
        if lesson is None:
            drip.next_due_at = None
            continue
        await record_delivery(uow, user.id, lesson, DRIP, now)
        await enqueue(uow, user.id, await lesson_say(uow, lesson, user.id, dripped=True), now)
        more = await next_lesson(uow, user.id, course.id) is not None
        drip.next_due_at = (
            next_drip_at(now, course.lesson_drip_days, config.lessons.drip_hour, user.timezone)
            if more
            else None
        )
        sent += 1
    return sent


async def drip_next_at(uow: UnitOfWork, user_id: int, course_id: int) -> datetime | None:
    found = await uow.session.execute(
        select(LessonDrip.next_due_at)
        .where(LessonDrip.user_id == user_id)
        .where(LessonDrip.course_id == course_id)
    )
    return found.scalar_one_or_none()


async def drips_for(uow: UnitOfWork, user_id: int) -> list[tuple[datetime | None, Course]]:
    """The learner's courses that will send them a lesson on the drip, each with when the next
    one is due (None: on the next sweep, the drip not started yet), soonest first."""
    enrollments = await uow.session.execute(
        select(Course)
        .join(Enrollment, Enrollment.course_id == Course.id)
        .where(Enrollment.user_id == user_id)
        .where(Enrollment.status == "active")
        .where(Course.lesson_drip_days > 0)
    )
    found: list[tuple[datetime | None, Course]] = []
    # No DISTINCT: PostgreSQL cannot compare a course's JSON columns; the dict keeps one each.
    for course in {c.id: c for c in enrollments.scalars()}.values():
        if await next_lesson(uow, user_id, course.id) is None:
            continue
        row = await uow.session.execute(
            select(LessonDrip)
            .where(LessonDrip.user_id == user_id)
            .where(LessonDrip.course_id == course.id)
        )
        drip = row.scalar_one_or_none()
        if drip is not None and drip.next_due_at is None:
            continue  # finished; a new lesson re-arms it (rearm_course)
        found.append((drip.next_due_at if drip is not None else None, course))
    earliest = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda item: (item[0] or earliest, item[1].id))
