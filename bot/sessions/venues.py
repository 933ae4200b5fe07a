"""Where a workshop happens on a platform that has events of its own (Discord's guild
scheduled events, and optionally a voice channel): a small port, and the sweep keeping the
platform in step with the database.

The core never calls a platform inside a transaction. A change a platform must follow (a
workshop created, moved, cancelled, an attendee in or out when voice channels are on) bumps
`Workshop.venue_version`; the sweep claims the rows whose `venue_synced` is behind (a lease,
so two processes never publish the same row at once), reads what to publish, calls the
platform with no transaction open, then records the version it published. A call that fails
is retried when the lease runs out, so the platform catches up after an outage.

The meeting link is never published: the event says to join through the bot, which reveals
the link to attendees only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update

from bot.core.i18n import _
from bot.sessions.seats import workshop_end
from storage.models import Identity, User, Workshop, WorkshopSeat
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
BATCH = 50
# The longest name a Discord scheduled event takes (1–100 characters): a workshop's title, in
# each language, is held to it when typed.
EVENT_NAME = 100


@dataclass(frozen=True)
class VenueRefs:
    """The platform's ids for a workshop's event and voice channel (None: none yet)."""

    event: str | None = None
    voice: str | None = None


@dataclass(frozen=True)
class VenueEvent:
    """A workshop as a platform's event shows it: plain data, no link."""

    workshop_id: int
    name: str
    description: str
    location: str
    start: datetime
    end: datetime
    seats: int
    cancelled: bool
    # The attendees' (and host's) ids on each platform, by platform name.
    members: dict[str, tuple[str, ...]]


class Venue(Protocol):
    """A platform's events. `publish` creates or updates (returns the refs it now has);
    `withdraw` removes what `refs` name. Both raise on failure (retried later)."""

    name: str

    async def publish(self, event: VenueEvent, refs: VenueRefs) -> VenueRefs: ...

    async def withdraw(self, refs: VenueRefs) -> None: ...


async def _claim(new_uow: Callable[[], UnitOfWork], now: datetime) -> list[tuple[int, int]]:
    async with new_uow() as uow:
        pending = select(Workshop.id).where(Workshop.venue_synced != Workshop.venue_version)
        free = (Workshop.venue_claimed_until.is_(None)) | (Workshop.venue_claimed_until < now)
        ids = list((await uow.session.execute(pending.where(free).limit(BATCH))).scalars())
        if not ids:
            return []
        claimed = await uow.session.execute(
            update(Workshop)
            .where(Workshop.id.in_(ids))
            .where(Workshop.venue_synced != Workshop.venue_version)
            .where(free)
            .values(venue_claimed_until=now + LEASE)
            .returning(Workshop.id, Workshop.venue_version)
            .execution_options(synchronize_session=False)
        )
        rows = [(int(i), int(v)) for i, v in claimed.all()]
        await uow.commit()
    return sorted(rows)


async def _event(uow: UnitOfWork, workshop: Workshop, language: str) -> VenueEvent:
    host = await uow.get(User, workshop.host_id)
    assert host is not None
    people = select(WorkshopSeat.user_id).where(
        WorkshopSeat.workshop_id == workshop.id, WorkshopSeat.status == "seated"
    )
    found = await uow.session.execute(
        select(Identity.platform, Identity.external_id).where(
            (Identity.user_id.in_(people)) | (Identity.user_id == workshop.host_id)
        )
    )
    members: dict[str, list[str]] = {}
    for platform, external_id in found.all():
        members.setdefault(platform, []).append(external_id)
    title = (workshop.title_zh if language == "zh" else "") or workshop.title_en
    if len(title) > EVENT_NAME:  # stored before titles were held to it (bot/handlers/args.py)
        log.warning(
            "workshop title longer than a Discord event name; the event shows it shortened",
            extra={"id": workshop.id, "length": len(title)},
        )
        title = title[: EVENT_NAME - 1] + "…"
    description = _(
        "Hosted by {host}. {seats} seats. Take a seat with /join {id} in the bot, which sends "
        "the meeting link to attendees.",
        host=host.display_name,
        seats=workshop.seats,
        id=workshop.id,
    ).render(language)
    return VenueEvent(
        workshop_id=workshop.id,
        name=title,
        description=description,
        location=_("Online: the link comes from the bot").render(language),
        start=workshop.start_at,
        end=workshop_end(workshop),
        seats=workshop.seats,
        cancelled=workshop.status == "cancelled",
        members={p: tuple(sorted(ids)) for p, ids in members.items()},
    )


async def sync_venues(
    new_uow: Callable[[], UnitOfWork],
    venues: Sequence[Venue],
    now: datetime,
    language: str = "en",
) -> int:
    """Publish every workshop whose platforms are behind; returns how many were brought up to
    date. Workshops that have started are not published any more, only marked done."""
    if not venues:
        return 0
    venue = venues[0]  # one platform with events (Discord); its refs live on the row
    done = 0
    for workshop_id, version in await _claim(new_uow, now):
        async with new_uow() as uow:
            workshop = await uow.get(Workshop, workshop_id)
            assert workshop is not None
            refs = VenueRefs(workshop.venue_ref, workshop.voice_ref)
            event = await _event(uow, workshop, language)
        try:
            if event.cancelled:
                if refs.event or refs.voice:
                    await venue.withdraw(refs)
                refs = VenueRefs()
            elif event.start > now:
                refs = await venue.publish(event, refs)
        except Exception:
            log.exception("workshop event not published; retried later", extra={"id": workshop_id})
            continue
        async with new_uow() as uow:
            await uow.session.execute(
                update(Workshop)
                .where(Workshop.id == workshop_id)
                .values(
                    venue_ref=refs.event,
                    voice_ref=refs.voice,
                    venue_synced=version,
                    venue_claimed_until=None,
                )
            )
            await uow.commit()
        done += 1
    return done
