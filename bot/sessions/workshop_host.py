"""What the host (or an admin) does with a workshop, and what erasure does with a user's.

Cancelling gives every attendee their credits back and tells them and the waitlist (a workshop
can only be cancelled before it starts, so before any seat has earned its host); moving
keeps the host's local time rules (a time a daylight-saving change skips is refused), tells
everyone in it and re-schedules its reminders; after the start the host marks who came, and
those who came may rate it, which counts in the host's average like a one-on-one session's.
Only the host or an admin may manage a workshop (`may_manage`). A change a platform's event
must follow bumps `venue_version` (bot/sessions/venues.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.config import Config
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import When, _, ngettext
from bot.core.outbox import tell, tell_admins
from bot.core.replies import Choice
from bot.core.states import SeatStatus, advance_group
from bot.core.users import mentor_profile_of
from bot.sessions.earnings import credit_host, reverse_seat_earning
from bot.sessions.rating import count_in_average
from bot.sessions.seats import clash, refund_seat
from bot.sessions.workshop_reminders import schedule_reminders, skip_reminders
from bot.sessions.workshops import (
    AHEAD,
    OPEN_WAITLIST,
    Plan,
    attendees,
    leave,
    local_starts,
    locked_workshop,
    may_manage,
    open_to_joining,
    rating_choices,
    seat_of,
    user_row,
    waitlist,
    workshop_title,
)
from storage.models import User, Workshop, WorkshopSeat, WorkshopWaitlist
from storage.uow import UnitOfWork


async def cancel(
    uow: UnitOfWork, actor_id: int, is_admin: bool, workshop_id: int, now: datetime
) -> tuple[Workshop, int, int]:
    """The host (or an admin) cancels: every attendee gets the credits back and is told, and
    so is everyone in line. Returns the workshop, attendees and people in line told."""
    workshop = await locked_workshop(uow, workshop_id)
    await may_manage(uow, workshop, actor_id, is_admin)
    if workshop.status == "scheduled" and workshop.start_at <= now:
        raise BadInput(_("Workshop #{id} has already started.", id=workshop.id))
    advance_group("workshop", workshop, "cancelled")
    workshop.venue_version += 1
    await skip_reminders(uow, workshop.id, now)
    title, when = workshop_title(workshop), When(workshop.start_at)
    seated = 0
    for seat, user in await attendees(uow, workshop.id):
        advance_group("seat", seat, "cancelled")
        back = await refund_seat(uow, seat, now)
        msg = (
            ngettext(
                "Workshop #{id} {title} on {when} is cancelled by its host. Your {n} session "
                "credit is back.",
                "Workshop #{id} {title} on {when} is cancelled by its host. Your {n} session "
                "credits are back.",
                seat.credits,
                id=workshop.id,
                title=title,
                when=when,
            )
            if back
            else _(
                "Workshop #{id} {title} on {when} is cancelled by its host.",
                id=workshop.id,
                title=title,
                when=when,
            )
        )
        await tell(uow, user.id, msg, now, [Choice(_("Other workshops"), "/workshops")])
        seated += 1
    line = await waitlist(uow, workshop.id)
    for entry in line:
        advance_group("waitlist", entry, "cancelled")
        await tell(
            uow,
            entry.user_id,
            _(
                "Workshop #{id} {title} on {when}, which you were waiting for, is cancelled.",
                id=workshop.id,
                title=title,
                when=when,
            ),
            now,
        )
    await uow.flush()
    return workshop, seated, len(line)


async def move(
    uow: UnitOfWork,
    actor_id: int,
    is_admin: bool,
    workshop_id: int,
    day: date,
    minute: int,
    now: datetime,
    config: Config,
) -> tuple[Workshop, tuple[datetime, ...]]:
    """Move a workshop to another local time of its host's; attendees and the line are told,
    reminders follow it, the platforms' events are updated."""
    workshop = await locked_workshop(uow, workshop_id)
    await may_manage(uow, workshop, actor_id, is_admin)
    open_to_joining(workshop, now)
    host = await user_row(uow, workshop.host_id)
    plan = Plan("", "", (), day, minute, workshop.duration_minutes, workshop.seats)
    start = local_starts(plan, host.timezone)[0]
    if start <= now:
        raise BadInput(_("That time has passed. Pick a time in the future."))
    if start > now + AHEAD:
        raise BadInput(_("Workshops can be planned at most a year ahead."))
    busy = await clash(
        uow,
        workshop.host_id,
        start,
        start + timedelta(minutes=workshop.duration_minutes),
        workshop.id,
    )
    if busy is not None:
        raise BadInput(
            _("The host is already in a session or workshop at {when}.", when=When(busy))
        )
    old = workshop.start_at
    workshop.start_at = start
    workshop.venue_version += 1
    await skip_reminders(uow, workshop.id, now)
    await uow.flush()
    wake = await schedule_reminders(uow, config, workshop, now)
    told = {seat.user_id for seat, _user in await attendees(uow, workshop.id)}
    told |= {e.user_id for e in await waitlist(uow, workshop.id)}
    for user_id in sorted(told):
        await tell(
            uow,
            user_id,
            _(
                "Workshop #{id} {title} moved from {old} to {when}. /leave {id} if that time "
                "does not suit you.",
                id=workshop.id,
                title=workshop_title(workshop),
                old=When(old),
                when=When(start),
            ),
            now,
        )
    return workshop, tuple(wake)


async def mark_attendance(
    uow: UnitOfWork,
    actor_id: int,
    is_admin: bool,
    workshop_id: int,
    present: Collection[int] | None,
    now: datetime,
    config: Config,
) -> tuple[Workshop, list[tuple[WorkshopSeat, User]]]:
    """After the start, the host (or an admin) says which seats came (`present`, seat ids;
    None: everyone); the rest are absent. The workshop is then completed and those who came
    are asked to rate it. Each paid seat that came earns the host, as a completed session
    earns its mentor (`credit_host`); marking it absent later reverses that. Marking again
    corrects it."""
    workshop = await locked_workshop(uow, workshop_id)
    await may_manage(uow, workshop, actor_id, is_admin)
    if workshop.status == "cancelled":
        raise BadInput(_("Workshop #{id} was cancelled.", id=workshop.id))
    if now < workshop.start_at:
        raise BadInput(_("Workshop #{id} has not started yet.", id=workshop.id))
    seats = await attendees(uow, workshop.id)
    known = {seat.id for seat, _user in seats}
    unknown = sorted(set(present or ()) - known)
    if unknown:
        raise BadInput(_("Workshop #{id} has no seat #{seat}.", id=workshop.id, seat=unknown[0]))
    if workshop.status == "scheduled":
        advance_group("workshop", workshop, "completed")
    for seat, user in seats:
        came = present is None or seat.id in present
        target: SeatStatus = "attended" if came else "absent"
        if came:
            await credit_host(uow, config, seat, workshop.host_id, now)
        else:
            await reverse_seat_earning(uow, seat, now)
        if seat.status == target:
            continue
        first = seat.status == "seated"
        advance_group("seat", seat, target)
        if came and first:
            await tell(
                uow,
                user.id,
                _(
                    "Thank you for coming to workshop #{id} {title}. How was it? Rate it from "
                    "1 to 5:",
                    id=workshop.id,
                    title=workshop_title(workshop),
                ),
                now,
                rating_choices(workshop.id),
            )
    await uow.flush()
    return workshop, seats


async def rate(
    uow: UnitOfWork,
    user_id: int,
    workshop_id: int,
    stars: int,
    comment: str,
    now: datetime,
    config: Config,
) -> int | None:
    """An attendee who came rates the workshop 1-5, changeable for `ratings.edit_window_hours`;
    the rating feeds the host's average like a one-on-one session's. Returns the stars it
    replaced (None: a new rating)."""
    workshop = await locked_workshop(uow, workshop_id)
    seat = await seat_of(uow, workshop.id, user_id)
    if seat is None:
        raise NotFound(_("You are not in workshop #{id}.", id=workshop.id))
    if seat.status != "attended":
        raise BadInput(
            _("Only those who came to a workshop can rate it, once its host has marked attendance.")
        )
    window = timedelta(hours=config.ratings.edit_window_hours)
    if seat.rated_at is not None and now - seat.rated_at > window:
        raise BadInput(
            _(
                "You rated workshop #{id} more than {hours} h ago; it can no longer be changed.",
                id=workshop.id,
                hours=config.ratings.edit_window_hours,
            )
        )
    previous = seat.stars
    seat.stars = stars
    seat.comment = comment.strip() or seat.comment
    if seat.rated_at is None:
        seat.rated_at = now
    profile = await mentor_profile_of(uow, workshop.host_id)
    if profile is not None:
        await count_in_average(uow, profile.id, stars, previous)
    await uow.flush()
    if stars <= config.ratings.alert_at_or_below and stars != previous:
        rater = await user_row(uow, user_id)
        await tell_admins(
            uow,
            _(
                "Low rating: {rater} gave workshop #{id} {stars}★. {comment}",
                rater=rater.display_name,
                id=workshop.id,
                stars=stars,
                comment=seat.comment,
            ),
            now,
        )
    return previous


async def withdraw_user(uow: UnitOfWork, user_id: int, now: datetime, config: Config) -> None:
    """A user erasing their account (/deleteme): the workshops they host that have not started
    are cancelled (everyone credited back and told), their seats and places in line in others
    are given up (the seats go to the next in line)."""
    hosted = await uow.session.execute(
        select(Workshop.id)
        .where(Workshop.host_id == user_id)
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
        .order_by(Workshop.id)
    )
    for workshop_id in list(hosted.scalars()):
        await cancel(uow, user_id, True, workshop_id, now)
    seats = select(WorkshopSeat.workshop_id).where(
        WorkshopSeat.user_id == user_id, WorkshopSeat.status == "seated"
    )
    lines = select(WorkshopWaitlist.workshop_id).where(
        WorkshopWaitlist.user_id == user_id, WorkshopWaitlist.status.in_(OPEN_WAITLIST)
    )
    joined = await uow.session.execute(
        select(Workshop.id)
        .where(Workshop.id.in_(seats) | Workshop.id.in_(lines))
        .where(Workshop.status == "scheduled")
        .where(Workshop.start_at > now)
        .order_by(Workshop.id)
    )
    for workshop_id in list(joined.scalars()):
        await leave(uow, user_id, workshop_id, now, config)
