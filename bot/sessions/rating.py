"""Rating a completed session, 1 to 5 stars with an optional comment.

One rating per person per session, which its author can change for
`ratings.edit_window_hours`. A learner's rating of their mentor feeds the mentor's stored
average, which matching uses; ratings at or below `ratings.alert_at_or_below` alert admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.config import Config
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import _
from bot.core.outbox import tell_admins
from storage.models import MentorProfile, MentorSession, Rating, User
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Rated:
    """The rating as it now stands; `previous` is the stars it replaced (None: a new one)."""

    rating: Rating
    previous: int | None


async def rate(
    uow: UnitOfWork,
    rater_id: int,
    session_id: int,
    stars: int,
    comment: str,
    now: datetime,
    config: Config,
) -> Rated:
    """Rate (or, within the edit window, re-rate) the other side of a completed session.

    `stars` is from 1 to 5 and `comment` within its limit (`LIMITS["comment"]`): the caller
    reads them, refusing what was typed with what was wrong (a comment is never cut here), and
    the table's check constraint refuses other stars. A re-rating without a comment keeps the
    comment given before.
    """
    session = await uow.lock(MentorSession, session_id)
    mentor = await uow.get(MentorProfile, session.mentor_id) if session else None
    if session is None or mentor is None:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    if rater_id == session.learner_id:
        ratee = mentor.user_id
    elif rater_id == mentor.user_id:
        ratee = session.learner_id
    else:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    if session.status != "completed":
        raise BadInput(_("Only completed sessions can be rated."))
    existing = await rating_by(uow, session.id, rater_id)
    comment = comment.strip()
    window = timedelta(hours=config.ratings.edit_window_hours)
    if existing is not None and now - existing.created_at > window:
        raise BadInput(
            _(
                "You rated session #{id} more than {hours} h ago; it can no longer be changed.",
                id=session.id,
                hours=config.ratings.edit_window_hours,
            )
        )
    previous = existing.stars if existing is not None else None
    if existing is None:
        rating = Rating(
            session_id=session.id,
            rater_id=rater_id,
            ratee_id=ratee,
            stars=stars,
            comment=comment,
            created_at=now,
        )
        uow.add(rating)
    else:
        rating = existing
        rating.stars = stars
        rating.comment = comment or rating.comment
        rating.updated_at = now
    if ratee == mentor.user_id:
        await count_in_average(uow, mentor.id, stars, previous)
    await uow.flush()
    if stars <= config.ratings.alert_at_or_below and stars != previous:
        rater = await uow.get(User, rater_id)
        assert rater is not None
        await tell_admins(
            uow,
            _(
                "Low rating: {rater} gave session #{id} {stars}★. {comment}",
                rater=rater.display_name,
                id=session.id,
                stars=stars,
                comment=rating.comment,
            ),
            now,
        )
    return Rated(rating, previous)


async def rating_by(uow: UnitOfWork, session_id: int, rater_id: int) -> Rating | None:
    """The rating `rater_id` gave session `session_id`, if they rated it."""
    found = await uow.session.execute(
        select(Rating).where(Rating.session_id == session_id).where(Rating.rater_id == rater_id)
    )
    return found.scalar_one_or_none()


async def count_in_average(
    uow: UnitOfWork, profile_id: int, stars: int, previous: int | None
) -> None:
    """A rating of a mentor (of a session or a workshop they hosted) counts once in their
    average: a new one adds to the count and the sum, a changed one moves the sum only."""
    locked = await uow.lock(MentorProfile, profile_id)
    assert locked is not None
    if previous is None:
        locked.rating_count += 1
        locked.rating_sum += stars
    else:
        locked.rating_sum += stars - previous
