"""Workshops: group sessions with seats, a waitlist, reminders, attendance and ratings.

Each rule takes a unit of work and plain data and returns what happened; a refusal is a
`MentorbotError` and changes nothing. Taking a seat is atomic: the workshop's row is locked
(PostgreSQL FOR NO KEY UPDATE; SQLite's BEGIN IMMEDIATE serialises writers) before its seats
are counted, so however many press Join at once, never more than `seats` are seated; the rest
are waitlisted in the order they got the lock. A partial unique index (one seated row per
person and workshop) is the last guard.

A freed seat is offered to the first in line, who has `workshops.confirm_minutes` to confirm
it with `/join`; an offer left unconfirmed expires in the sweep and the next in line is
offered it. A learner leaving follows the sessions' cancellation window: before
`sessions.cancel_window_hours` the credits come back, later they are used up. A host's
cancellation gives every attendee their credits back and tells everyone, the waitlist too.

The host's rules (cancel, move, attendance, ratings) and erasure's are in
bot/sessions/workshop_host.py, the reminders in bot/sessions/workshop_reminders.py, where a
person already is and what a seat costs in bot/sessions/seats.py, and the platforms' events in
bot/sessions/venues.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select, true

from bot.config import Config
from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.i18n import Localized, Msg, When, _, ngettext
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.core.states import advance_group
from bot.core.users import mentor_profile_of
from bot.learning.courses import course_title
from bot.sessions.scheduling import local_instants
from bot.sessions.seats import (
    clash,
    credits_in_course,
    pay_seat,
    paying_enrollment,
    refund_seat,
    workshop_end,
)
from bot.sessions.workshop_reminders import schedule_reminders
from storage.models import (
    Course,
    Enrollment,
    Order,
    User,
    Workshop,
    WorkshopSeat,
    WorkshopWaitlist,
)
from storage.uow import UnitOfWork

OPEN_WAITLIST = ("waiting", "offered")
AHEAD = timedelta(days=366)  # the furthest ahead a workshop may start
# Seats that count towards the attendees (marked or not).
PRESENT = ("seated", "attended", "absent")


def workshop_title(workshop: Workshop) -> Localized:
    return Localized(workshop.title_en, workshop.title_zh, title=True)


def rating_choices(workshop_id: int) -> list[Choice]:
    return [Choice("★" * n, f"/workshop rate {workshop_id} {n}") for n in range(1, 6)]


@dataclass(frozen=True)
class Plan:
    """A workshop as its host describes it; `day` and `minute` are in the host's timezone.
    `weekly` occurrences, a week apart at the same local time; `host_id` None: the creator."""

    title_en: str
    title_zh: str
    topics: tuple[str, ...]
    day: date
    minute: int
    duration_minutes: int
    seats: int
    course_id: int | None = None
    price_credits: int = 0
    weekly: int = 1
    host_id: int | None = None
    # Sold alone for money (`price_minor` in `currency`'s minor units; `stars` for Telegram).
    price_minor: int | None = None
    currency: str = "USD"
    stars: int | None = None


@dataclass(frozen=True)
class Created:
    workshops: tuple[Workshop, ...]
    wake_at: tuple[datetime, ...]


@dataclass(frozen=True)
class Joined:
    """`seated` with a seat (`already` if it was theirs before); otherwise waitlisted at
    `position`."""

    workshop: Workshop
    seated: bool
    already: bool = False
    position: int = 0
    credits_left: int | None = None


@dataclass(frozen=True)
class Left:
    workshop: Workshop
    from_seat: bool
    credit_back: bool


@dataclass(frozen=True)
class Listed:
    workshop: Workshop
    host_name: str
    taken: int
    mine: bool
    course: Course | None


# --- looking up ------------------------------------------------------------------------------


def _no_workshop(workshop_id: int) -> NotFound:
    return NotFound(_("There is no workshop #{id}. See /workshops.", id=workshop_id))


async def locked_workshop(uow: UnitOfWork, workshop_id: int) -> Workshop:
    workshop = await uow.lock(Workshop, workshop_id)
    if workshop is None:
        raise _no_workshop(workshop_id)
    return workshop


async def workshop_by_id(uow: UnitOfWork, workshop_id: int) -> Workshop:
    """The workshop, read without holding it (`locked_workshop` holds it to change it)."""
    workshop = await uow.get(Workshop, workshop_id)
    if workshop is None:
        raise _no_workshop(workshop_id)
    return workshop


async def user_row(uow: UnitOfWork, user_id: int) -> User:
    user = await uow.get(User, user_id)
    assert user is not None
    return user


async def taken_seats(uow: UnitOfWork, workshop_id: int) -> int:
    """Seats taken: attendees seated, and freed seats held for someone in line to confirm."""
    seated = await uow.session.execute(
        select(func.count(WorkshopSeat.id))
        .where(WorkshopSeat.workshop_id == workshop_id)
        .where(WorkshopSeat.status == "seated")
    )
    offered = await uow.session.execute(
        select(func.count(WorkshopWaitlist.id))
        .where(WorkshopWaitlist.workshop_id == workshop_id)
        .where(WorkshopWaitlist.status == "offered")
    )
    return int(seated.scalar_one()) + int(offered.scalar_one())


async def seat_of(uow: UnitOfWork, workshop_id: int, user_id: int) -> WorkshopSeat | None:
    found = await uow.session.execute(
        select(WorkshopSeat)
        .where(WorkshopSeat.workshop_id == workshop_id)
        .where(WorkshopSeat.user_id == user_id)
        .where(WorkshopSeat.status.in_(PRESENT))
        .order_by(WorkshopSeat.id.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


async def _entry_of(uow: UnitOfWork, workshop_id: int, user_id: int) -> WorkshopWaitlist | None:
    found = await uow.session.execute(
        select(WorkshopWaitlist)
        .where(WorkshopWaitlist.workshop_id == workshop_id)
        .where(WorkshopWaitlist.user_id == user_id)
        .where(WorkshopWaitlist.status.in_(OPEN_WAITLIST))
    )
    return found.scalar_one_or_none()


async def position(uow: UnitOfWork, entry: WorkshopWaitlist) -> int:
    """The entry's place in line among those still waiting (1: next)."""
    found = await uow.session.execute(
        select(func.count(WorkshopWaitlist.id))
        .where(WorkshopWaitlist.workshop_id == entry.workshop_id)
        .where(WorkshopWaitlist.status == "waiting")
        .where(WorkshopWaitlist.id <= entry.id)
    )
    return int(found.scalar_one())


async def waitlist(uow: UnitOfWork, workshop_id: int) -> list[WorkshopWaitlist]:
    """Everyone in line (offered first, then waiting), in order."""
    found = await uow.session.execute(
        select(WorkshopWaitlist)
        .where(WorkshopWaitlist.workshop_id == workshop_id)
        .where(WorkshopWaitlist.status.in_(OPEN_WAITLIST))
        .order_by(WorkshopWaitlist.id)
    )
    return list(found.scalars())


async def attendees(uow: UnitOfWork, workshop_id: int) -> list[tuple[WorkshopSeat, User]]:
    found = await uow.session.execute(
        select(WorkshopSeat, User)
        .join(User, User.id == WorkshopSeat.user_id)
        .where(WorkshopSeat.workshop_id == workshop_id)
        .where(WorkshopSeat.status.in_(PRESENT))
        .order_by(WorkshopSeat.id)
    )
    return [(seat, user) for seat, user in found.all()]


async def upcoming(uow: UnitOfWork, reader_id: int, now: datetime, limit: int = 20) -> list[Listed]:
    """The scheduled workshops that have not started, soonest first, with seats taken."""
    found = await uow.session.execute(
        select(Workshop, User)
        .join(User, User.id == Workshop.host_id)
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
        .order_by(Workshop.start_at, Workshop.id)
        .limit(limit)
    )
    listed = []
    for workshop, host in found.all():
        mine = (
            workshop.host_id == reader_id
            or (await seat_of(uow, workshop.id, reader_id)) is not None
        )
        course = await uow.get(Course, workshop.course_id) if workshop.course_id else None
        taken = await taken_seats(uow, workshop.id)
        listed.append(Listed(workshop, host.display_name, taken, mine, course))
    return listed


def series_key(workshop: Workshop) -> int:
    """The series a workshop belongs to: its first occurrence's id (`series_id`), or its own id
    when it is a single one (a series of one)."""
    return workshop.series_id or workshop.id


SERIES_KEY = func.coalesce(Workshop.series_id, Workshop.id)  # `series_key` in SQL


async def upcoming_for(
    uow: UnitOfWork,
    user_id: int,
    now: datetime,
    limit: int = 20,
    hidden_series: Collection[int] = (),
) -> list[Workshop]:
    """The scheduled workshops that have not started and that `user_id` neither hosts nor has
    a seat or a place in the line of, nor is in a series of `hidden_series`, soonest first: one
    read (the suggestions ask it on every welcome of a returning learner, where `upcoming`'s
    per-workshop counts are not needed)."""
    seated = (
        select(WorkshopSeat.id)
        .where(WorkshopSeat.workshop_id == Workshop.id)
        .where(WorkshopSeat.user_id == user_id)
        .where(WorkshopSeat.status.in_(PRESENT))
    )
    waiting = (
        select(WorkshopWaitlist.id)
        .where(WorkshopWaitlist.workshop_id == Workshop.id)
        .where(WorkshopWaitlist.user_id == user_id)
        .where(WorkshopWaitlist.status.in_(OPEN_WAITLIST))
    )
    found = await uow.session.execute(
        select(Workshop)
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
        .where(Workshop.host_id != user_id)
        .where(~seated.exists())
        .where(~waiting.exists())
        .where(SERIES_KEY.not_in(hidden_series) if hidden_series else true())
        .order_by(Workshop.start_at, Workshop.id)
        .limit(limit)
    )
    return list(found.scalars())


async def may_manage(uow: UnitOfWork, workshop: Workshop, user_id: int, is_admin: bool) -> None:
    """Only the host or an admin manages a workshop (cancel, move, attendance)."""
    if not is_admin and workshop.host_id != user_id:
        raise NotAllowed(
            _("Only the host of workshop #{id} or an admin can do that.", id=workshop.id)
        )


def price_text(workshop: Workshop, course: Course | None) -> Msg:
    if workshop.price_credits <= 0 or course is None:
        return _("free")
    return ngettext(
        "{n} session credit of {course}",
        "{n} session credits of {course}",
        workshop.price_credits,
        course=course_title(course),
    )


# --- creating --------------------------------------------------------------------------------


def local_starts(plan: Plan, tz: str) -> list[datetime]:
    starts = []
    for k in range(plan.weekly):
        try:
            day = plan.day + timedelta(weeks=k)
            found = local_instants(day, plan.minute, tz)
        except (OverflowError, ValueError):
            raise BadInput(_("Workshops can be planned at most a year ahead.")) from None
        if not found:
            raise BadInput(
                _(
                    "{day} {time} does not exist in {tz}: the clocks skip it for daylight "
                    "saving. Pick another time.",
                    day=day.isoformat(),
                    time=f"{plan.minute // 60:02d}:{plan.minute % 60:02d}",
                    tz=tz,
                )
            )
        starts.append(found[0])  # a repeated local time: its first occurrence
    return starts


async def create(
    uow: UnitOfWork, actor_id: int, is_admin: bool, plan: Plan, now: datetime, config: Config
) -> Created:
    """Create the workshop (or each weekly occurrence), hosted by an approved mentor: the
    creator, or whom an admin names. Each occurrence has its own row, link and reminders."""
    host_id = plan.host_id or actor_id
    if host_id != actor_id and not is_admin:
        raise NotAllowed(_("Only admins can create a workshop for someone else."))
    host = await uow.lock(User, host_id)
    profile = await mentor_profile_of(uow, host_id) if host is not None else None
    if host is None or host.deleted_at is not None:
        raise NotFound(_("There is no user #{id}.", id=host_id))
    if not (is_admin and host_id == actor_id) and (profile is None or profile.status != "approved"):
        raise NotAllowed(_("Only approved mentors (and admins) can host workshops."))
    cfg = config.workshops
    if not 1 <= plan.seats <= cfg.max_seats:
        raise BadInput(_("Seats must be from 1 to {n}.", n=cfg.max_seats))
    if not 15 <= plan.duration_minutes <= 480:
        raise BadInput(_("A workshop lasts from 15 to 480 minutes."))
    if not 1 <= plan.weekly <= cfg.max_weekly:
        raise BadInput(_("A weekly series has from 1 to {n} occurrences.", n=cfg.max_weekly))
    if plan.price_credits < 0 or (plan.price_credits > 0) != (plan.course_id is not None):
        raise BadInput(_("A price in credits needs a course: course=SLUG credits=N."))
    if plan.price_minor is not None and plan.course_id is not None:
        raise BadInput(
            _("A workshop is paid either with course credits or with a price, not both.")
        )
    starts = local_starts(plan, host.timezone)
    if starts[0] <= now:
        raise BadInput(_("That time has passed. Pick a time in the future."))
    if starts[0] > now + AHEAD:
        raise BadInput(_("Workshops can be planned at most a year ahead."))
    duration = timedelta(minutes=plan.duration_minutes)
    for start in starts:
        busy = await clash(uow, host_id, start, start + duration)
        if busy is not None:
            raise BadInput(
                _(
                    "The host is already in a session or workshop at {when}.",
                    when=When(busy),
                )
            )
    made: list[Workshop] = []
    wake: list[datetime] = []
    for start in starts:
        workshop = Workshop(
            host_id=host_id,
            created_by=actor_id,
            series_id=made[0].id if made else None,
            title_en=plan.title_en,
            title_zh=plan.title_zh,
            topics=list(plan.topics),
            start_at=start,
            duration_minutes=plan.duration_minutes,
            seats=plan.seats,
            course_id=plan.course_id,
            price_credits=plan.price_credits,
            meeting_link="",
            status="scheduled",
            created_at=now,
            venue_version=1,
            venue_synced=0,
        )
        uow.add(workshop)
        await uow.flush()
        if not made and plan.weekly > 1:
            workshop.series_id = workshop.id
        if plan.price_minor is not None:
            await _own_product(uow, workshop, plan, now)
        workshop.meeting_link = config.sessions.meeting_link_template.format(
            session_id=f"w{workshop.id}", token=secrets.token_hex(8)
        )
        wake += await schedule_reminders(uow, config, workshop, now)
        made.append(workshop)
    return Created(tuple(made), tuple(wake))


# --- joining and leaving ---------------------------------------------------------------------


def open_to_joining(workshop: Workshop, now: datetime) -> None:
    if workshop.status == "cancelled":
        raise BadInput(_("Workshop #{id} was cancelled.", id=workshop.id))
    if workshop.status != "scheduled" or workshop.start_at <= now:
        raise BadInput(_("Workshop #{id} has already started.", id=workshop.id))


async def _own_product(uow: UnitOfWork, workshop: Workshop, plan: Plan, now: datetime) -> None:
    """A workshop sold alone: one seat is one session of an archived course of its own (not in
    the catalogue), so it is paid, fulfilled, reconciled and refunded by the order flow like
    any course, with every provider."""
    product = Course(
        slug=f"workshop-{workshop.id}-{secrets.token_hex(2)}",
        title_en=plan.title_en,
        title_zh=plan.title_zh,
        description_en="",
        description_zh="",
        price_minor=plan.price_minor,
        currency=plan.currency,
        sessions_included=1,
        topics=list(plan.topics),
        status="archived",
        created_at=now,
        price_stars=plan.stars,
        lesson_drip_days=0,
    )
    uow.add(product)
    await uow.flush()
    workshop.course_id, workshop.price_credits, workshop.own_product = product.id, 1, True


async def own_workshop(uow: UnitOfWork, course_id: int) -> Workshop | None:
    """The workshop sold alone whose product is `course_id`, if it is one."""
    found = await uow.session.execute(
        select(Workshop)
        .where(Workshop.course_id == course_id)
        .where(Workshop.own_product.is_(True))
    )
    return found.scalar_one_or_none()


async def on_sale(uow: UnitOfWork, course: Course, now: datetime) -> bool:
    """Whether an order for `course` may still be paid: an active course, or the (archived)
    product of a workshop sold alone that is still to come."""
    if course.status == "active":
        return True
    workshop = await own_workshop(uow, course.id)
    return workshop is not None and workshop.status == "scheduled" and workshop.start_at > now


async def take_paid_seat(
    uow: UnitOfWork, enrollment: Enrollment, now: datetime, config: Config
) -> bool:
    """A workshop sold alone was paid (any provider, from the order flow's fulfilment, in its
    transaction): the payment takes the seat at once, through `join` (the same lock and seat
    limit), and the buyer is told. False when the course is not a workshop's (the payment's
    confirmation then says the course is theirs).

    If the workshop filled up while they paid, the buyer joins its waitlist, in the order of
    payment: not ahead of the line, since everyone in it has paid too. A paid seat that ends
    up unused (no seat freed before the start, the workshop cancelled, or the buyer left) is
    refunded through its provider by the sweep (`unused_seat_orders`). A seat that cannot be
    taken at all (the workshop has started, or the buyer is in another session then) is
    refunded the same way, and the buyer told why."""
    workshop = await own_workshop(uow, enrollment.course_id)
    if workshop is None:
        return False
    title, when = workshop_title(workshop), When(workshop.start_at)
    try:
        joined = await join(uow, enrollment.user_id, workshop.id, now, config)
    except BadInput as refused:
        await tell(
            uow,
            enrollment.user_id,
            _(
                "Your payment for a seat in workshop #{id} {title} came in, but the seat could "
                "not be taken: {why} The payment will be refunded to you.",
                id=workshop.id,
                title=title,
                why=refused.message,
            ),
            now,
        )
        return True
    if joined.seated:
        await tell(
            uow,
            enrollment.user_id,
            _(
                "Your seat in workshop #{id} {title} on {when} is paid and yours. Join: {link}",
                id=workshop.id,
                title=title,
                when=when,
                link=workshop.meeting_link,
            ),
            now,
            [Choice(_("Leave"), f"/leave {workshop.id}")],
        )
    else:
        await tell(
            uow,
            enrollment.user_id,
            _(
                "Your seat in workshop #{id} {title} is paid, but the workshop filled up while "
                "you paid. You are number {position} on its waitlist; if no seat frees up "
                "for you before it starts, your payment is refunded.",
                id=workshop.id,
                title=title,
                position=joined.position,
            ),
            now,
            [Choice(_("Leave the waitlist"), f"/leave {workshop.id}")],
        )
    return True


async def unused_seat_orders(uow: UnitOfWork, now: datetime, limit: int = 50) -> list[int]:
    """Paid orders of workshops sold alone whose seat went unused: the paid session is still
    on the buyer's enrollment while the workshop is cancelled or has started, or while the
    buyer holds neither a seat nor a place in its line (they left, or the seat could not be
    taken). The sweep refunds them (`bot.payments.refund_unused_seats`): the credit is good
    for nothing else."""
    held_seat = (
        select(WorkshopSeat.id)
        .where(WorkshopSeat.workshop_id == Workshop.id)
        .where(WorkshopSeat.user_id == Order.user_id)
        .where(WorkshopSeat.status.in_(PRESENT))
    )
    held_place = (
        select(WorkshopWaitlist.id)
        .where(WorkshopWaitlist.workshop_id == Workshop.id)
        .where(WorkshopWaitlist.user_id == Order.user_id)
        .where(WorkshopWaitlist.status.in_(OPEN_WAITLIST))
    )
    found = await uow.session.execute(
        select(Order.id)
        .join(Enrollment, Enrollment.order_id == Order.id)
        .join(Workshop, Workshop.course_id == Order.course_id)
        .where(Workshop.own_product.is_(True))
        .where(Order.status == "paid")
        .where(or_(Order.refund_claimed_until.is_(None), Order.refund_claimed_until < now))
        .where(Enrollment.status == "active")
        .where(Enrollment.credits_remaining > 0)
        .where(
            or_(
                Workshop.status != "scheduled",
                Workshop.start_at <= now,
                ~held_seat.exists() & ~held_place.exists(),
            )
        )
        .order_by(Order.id)
        .limit(limit)
    )
    return list(found.scalars())


class NeedsPayment(BadInput):
    """The learner cannot pay the seat now; `product` is the course to buy (a workshop sold
    alone has its own, which the caller may open an order for)."""

    def __init__(self, message: Msg, choices: list[Choice], product: Course, own: bool) -> None:
        super().__init__(message, choices)
        self.product = product
        self.own = own


async def _can_pay(uow: UnitOfWork, workshop: Workshop, user_id: int) -> None:
    """Refuse a learner who could not pay the seat now."""
    if workshop.price_credits <= 0 or workshop.course_id is None:
        return
    have = await credits_in_course(uow, user_id, workshop.course_id)
    if have >= workshop.price_credits:
        return
    course = await uow.get(Course, workshop.course_id)
    assert course is not None
    raise NeedsPayment(
        ngettext(
            "Workshop #{id} costs {n} session credit of {course}; you have {have}. "
            "Buy the course with /buy {slug}.",
            "Workshop #{id} costs {n} session credits of {course}; you have {have}. "
            "Buy the course with /buy {slug}.",
            workshop.price_credits,
            id=workshop.id,
            course=course_title(course),
            have=have,
            slug=course.slug,
        ),
        [Choice(_("Buy the course"), f"/buy {course.slug}")],
        course,
        workshop.own_product,
    )


async def join(
    uow: UnitOfWork, user_id: int, workshop_id: int, now: datetime, config: Config
) -> Joined:
    """Take a seat (or confirm the one offered from the waitlist); a full workshop puts the
    learner in line. Pressing Join again changes nothing and says where they stand."""
    workshop = await locked_workshop(uow, workshop_id)
    open_to_joining(workshop, now)
    if workshop.host_id == user_id:
        raise BadInput(_("You host workshop #{id}.", id=workshop.id))
    if await seat_of(uow, workshop.id, user_id) is not None:
        return Joined(workshop, seated=True, already=True)
    entry = await _entry_of(uow, workshop.id, user_id)
    if entry is not None and entry.status == "waiting":
        return Joined(workshop, seated=False, already=True, position=await position(uow, entry))
    if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
        await _expire(uow, workshop, entry, now, config)
        raise BadInput(
            _(
                "The seat offered to you in workshop #{id} was not confirmed in time.",
                id=workshop.id,
            )
        )
    await _can_pay(uow, workshop, user_id)
    if entry is None and await taken_seats(uow, workshop.id) >= workshop.seats:
        entry = WorkshopWaitlist(
            workshop_id=workshop.id, user_id=user_id, status="waiting", created_at=now
        )
        uow.add(entry)
        await uow.flush()
        return Joined(workshop, seated=False, position=await position(uow, entry))
    busy = await clash(uow, user_id, workshop.start_at, workshop_end(workshop), workshop.id)
    if busy is not None:
        raise BadInput(
            _(
                "You are already in a session or workshop at {when}, so you cannot join "
                "workshop #{id} too.",
                when=When(busy),
                id=workshop.id,
            )
        )
    seat = WorkshopSeat(
        workshop_id=workshop.id,
        user_id=user_id,
        status="seated",
        credits=workshop.price_credits,
        created_at=now,
        comment="",
    )
    uow.add(seat)
    await uow.flush()
    credits_left = None
    if workshop.price_credits > 0 and workshop.course_id is not None:
        enrollment = await paying_enrollment(
            uow, user_id, workshop.course_id, workshop.price_credits
        )
        assert enrollment is not None  # _can_pay checked, and the learner's row is locked
        await pay_seat(uow, enrollment, seat, now)
        credits_left = enrollment.credits_remaining
    if entry is not None:
        advance_group("waitlist", entry, "confirmed")
    if config.workshops.discord_voice_channels:  # who may connect to its voice channel
        workshop.venue_version += 1
    return Joined(workshop, seated=True, credits_left=credits_left)


def leaving_loses_credits(
    workshop: Workshop, seat: WorkshopSeat, now: datetime, config: Config
) -> bool:
    """Leaving now would use the seat's credits up (inside the cancellation window)."""
    window = timedelta(hours=config.sessions.cancel_window_hours)
    return seat.credits > 0 and workshop.start_at - now < window


async def seat_to_leave(
    uow: UnitOfWork, user_id: int, workshop_id: int, now: datetime
) -> tuple[Workshop, WorkshopSeat | None, WorkshopWaitlist | None]:
    """The workshop, and the user's seat or place in line in it (one of them)."""
    workshop = await locked_workshop(uow, workshop_id)
    seat = await seat_of(uow, workshop.id, user_id)
    entry = None if seat is not None else await _entry_of(uow, workshop.id, user_id)
    if seat is None and entry is None:
        raise NotFound(_("You are not in workshop #{id}.", id=workshop.id))
    if seat is not None and (workshop.status != "scheduled" or workshop.start_at <= now):
        raise BadInput(_("Workshop #{id} has already started.", id=workshop.id))
    return workshop, seat, entry


async def leave(
    uow: UnitOfWork, user_id: int, workshop_id: int, now: datetime, config: Config
) -> Left:
    """Give up a seat (credits back before the cancellation window, used up inside it) or a
    place in line; a freed seat goes to the first in line."""
    workshop, seat, entry = await seat_to_leave(uow, user_id, workshop_id, now)
    credit_back = False
    if seat is not None:
        late = leaving_loses_credits(workshop, seat, now, config)
        advance_group("seat", seat, "left")
        seat.left_at = now
        if not late:
            credit_back = await refund_seat(uow, seat, now)
        if config.workshops.discord_voice_channels:
            workshop.venue_version += 1
    elif entry is not None:
        advance_group("waitlist", entry, "left")
    await promote(uow, workshop, now, config)
    return Left(workshop, seat is not None, credit_back)


async def promote(uow: UnitOfWork, workshop: Workshop, now: datetime, config: Config) -> int:
    """Offer each free seat of the locked workshop to the next in line, who has
    `workshops.confirm_minutes` (at most until the start) to confirm it."""
    if workshop.status != "scheduled" or workshop.start_at <= now:
        return 0
    offered = 0
    free = workshop.seats - await taken_seats(uow, workshop.id)
    line = [e for e in await waitlist(uow, workshop.id) if e.status == "waiting"]
    for entry in line[: max(free, 0)]:
        advance_group("waitlist", entry, "offered")
        entry.offered_at = now
        entry.expires_at = min(
            now + timedelta(minutes=config.workshops.confirm_minutes), workshop.start_at
        )
        await tell(
            uow,
            entry.user_id,
            _(
                "A seat is free for you in workshop #{id} {title} on {when}. Confirm it by "
                "{deadline} with /join {id}, or it goes to the next in line.",
                id=workshop.id,
                title=workshop_title(workshop),
                when=When(workshop.start_at),
                deadline=When(entry.expires_at),
            ),
            now,
            [
                Choice(_("Confirm my seat"), f"/join {workshop.id}"),
                Choice(_("Leave the waitlist"), f"/leave {workshop.id}"),
            ],
        )
        offered += 1
    await uow.flush()
    return offered


async def _expire(
    uow: UnitOfWork, workshop: Workshop, entry: WorkshopWaitlist, now: datetime, config: Config
) -> None:
    advance_group("waitlist", entry, "expired")
    await tell(
        uow,
        entry.user_id,
        _(
            "You did not confirm the seat offered in workshop #{id} {title} in time, so it went "
            "to the next in line. /join {id} puts you in line again.",
            id=workshop.id,
            title=workshop_title(workshop),
        ),
        now,
    )
    await uow.flush()
    await promote(uow, workshop, now, config)


async def expire_offers(uow: UnitOfWork, now: datetime, config: Config, limit: int = 200) -> int:
    """The sweep: offers not confirmed in time expire and the next in line is offered the seat.
    Each workshop is locked before its entries are read again, as `join` does, so a
    confirmation and the expiry never both win, and two processes expire an offer once."""
    due = await uow.session.execute(
        select(WorkshopWaitlist.workshop_id)
        .where(WorkshopWaitlist.status == "offered")
        .where(WorkshopWaitlist.expires_at <= now)
        .group_by(WorkshopWaitlist.workshop_id)
        .limit(limit)
    )
    expired = 0
    for workshop_id in list(due.scalars()):
        workshop = await locked_workshop(uow, workshop_id)
        for entry in await waitlist(uow, workshop.id):
            await uow.session.refresh(entry)
            if (
                entry.status == "offered"
                and entry.expires_at is not None
                and entry.expires_at <= now
            ):
                await _expire(uow, workshop, entry, now, config)
                expired += 1
    return expired


async def promote_waiting(uow: UnitOfWork, now: datetime, config: Config, limit: int = 200) -> int:
    """The sweep's safety net: a seat freed where nobody was there to offer it (a refund
    cancelled a seat) goes to the first in line."""
    due = await uow.session.execute(
        select(WorkshopWaitlist.workshop_id)
        .join(Workshop, Workshop.id == WorkshopWaitlist.workshop_id)
        .where(WorkshopWaitlist.status == "waiting")
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
        .group_by(WorkshopWaitlist.workshop_id)
        .limit(limit)
    )
    offered = 0
    for workshop_id in list(due.scalars()):
        offered += await promote(uow, await locked_workshop(uow, workshop_id), now, config)
    return offered


async def drop_seats_paid_by(uow: UnitOfWork, enrollment_id: int, now: datetime) -> int:
    """A refunded enrollment's seats in workshops yet to start are cancelled (their credits
    went with the refund) and their learners told; the sweep offers the seats to the line."""
    found = await uow.session.execute(
        select(WorkshopSeat, Workshop)
        .join(Workshop, Workshop.id == WorkshopSeat.workshop_id)
        .where(WorkshopSeat.enrollment_id == enrollment_id)
        .where(WorkshopSeat.status == "seated")
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
    )
    dropped = 0
    for seat, workshop in found.all():
        advance_group("seat", seat, "cancelled")
        seat.left_at = now
        await tell(
            uow,
            seat.user_id,
            _(
                "Your seat in workshop #{id} {title} on {when} is cancelled: the course it was "
                "paid with was refunded.",
                id=workshop.id,
                title=workshop_title(workshop),
                when=When(workshop.start_at),
            ),
            now,
        )
        dropped += 1
    return dropped
