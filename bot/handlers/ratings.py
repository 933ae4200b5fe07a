"""Rating a completed session, 1 to 5 stars with an optional comment.

One rating per person per session, which its author can change for
`ratings.edit_window_hours`. A learner's rating of their mentor feeds the mentor's stored
average, which matching uses; ratings at or below `ratings.alert_at_or_below` alert admins.
A rating sent by button asks for an optional comment as a conversation step; any command (or
/skip) leaves the comment empty.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.context import Ctx
from bot.core import conversations
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import _
from bot.handlers.args import need, need_int
from bot.handlers.registry import command, flow, number, text
from storage.models import Conversation, MentorProfile, MentorSession, Rating

USAGE = "/rate SESSION STARS [COMMENT]"


@command(
    "rate",
    _("Rate a completed session: /rate SESSION STARS [COMMENT]"),
    args=(
        number("session", _("The session number")),
        number("stars", _("From 1 (poor) to 5 (excellent)"), high=5),
        text("comment", _("Optional words for the other side"), required=False, words=True),
    ),
)
async def rate(ctx: Ctx, args: list[str]) -> None:
    session_id = need_int(args, 0, USAGE)
    raw_stars = need(args, 1, USAGE)
    try:
        stars = int(raw_stars)
    except ValueError:
        stars = 0
    if not 1 <= stars <= 5:
        raise BadInput(
            _("A rating is a whole number from 1 to 5; you sent '{value}'.", value=raw_stars)
        )
    session = await ctx.uow.lock(MentorSession, session_id)
    mentor = await ctx.uow.get(MentorProfile, session.mentor_id) if session else None
    if session is None or mentor is None:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    if ctx.actor.id == session.learner_id:
        ratee = mentor.user_id
    elif ctx.actor.id == mentor.user_id:
        ratee = session.learner_id
    else:
        raise NotFound(_("There is no session #{id}.", id=session_id))
    if session.status != "completed":
        raise BadInput(_("Only completed sessions can be rated."))
    existing = (
        await ctx.uow.session.execute(
            select(Rating)
            .where(Rating.session_id == session.id)
            .where(Rating.rater_id == ctx.actor.id)
        )
    ).scalar_one_or_none()
    comment = " ".join(args[2:]).strip()[:1000]
    now = ctx.now()
    window = timedelta(hours=ctx.config.ratings.edit_window_hours)
    if existing is not None and now - existing.created_at > window:
        raise BadInput(
            _(
                "You rated session #{id} more than {hours} h ago; it can no longer be changed.",
                id=session.id,
                hours=ctx.config.ratings.edit_window_hours,
            )
        )
    previous = existing.stars if existing is not None else None
    if existing is None:
        rating = Rating(
            session_id=session.id,
            rater_id=ctx.actor.id,
            ratee_id=ratee,
            stars=stars,
            comment=comment,
            created_at=now,
        )
        ctx.uow.add(rating)
    else:
        rating = existing
        rating.stars = stars
        rating.comment = comment or rating.comment
        rating.updated_at = now
    if ratee == mentor.user_id:
        locked = await ctx.uow.lock(MentorProfile, mentor.id)
        assert locked is not None
        if previous is None:
            locked.rating_count += 1
            locked.rating_sum += stars
        else:
            locked.rating_sum += stars - previous
    await ctx.uow.flush()
    if stars <= ctx.config.ratings.alert_at_or_below and stars != previous:
        await ctx.tell_admins(
            _(
                "Low rating: {rater} gave session #{id} {stars}★. {comment}",
                rater=ctx.actor.user.display_name,
                id=session.id,
                stars=stars,
                comment=rating.comment,
            ),
        )
    if previous is not None:
        ctx.say(_("Your rating of session #{id} is now {stars}★.", id=session.id, stars=stars))
        return
    if comment:
        ctx.say(_("Thank you! You rated session #{id} {stars}★.", id=session.id, stars=stars))
        return
    await conversations.begin(
        ctx.uow, ctx.actor.id, "rate_comment", "comment", {"rating_id": rating.id}, ctx.now()
    )
    ctx.say(
        _(
            "Thank you! You rated session #{id} {stars}★. Add a comment? Send it now, or /skip.",
            id=session.id,
            stars=stars,
        )
    )


@flow("rate_comment")
async def rate_comment(ctx: Ctx, conv: Conversation, text: str) -> None:
    rating = await ctx.uow.get(Rating, conv.data["rating_id"])
    await conversations.end(ctx.uow, ctx.actor.id)
    if rating is None or rating.rater_id != ctx.actor.id:
        return
    rating.comment = text.strip()[:1000]
    ctx.say(_("Your comment is saved. Thank you!"))
