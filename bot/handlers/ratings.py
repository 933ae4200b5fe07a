"""Chat commands for rating a completed session (the rule is `bot.sessions.rating.rate`).

A rating sent by button asks for an optional comment as a conversation step; any command (or
/skip) leaves the comment empty.
"""

from __future__ import annotations

from bot.context import Ctx
from bot.core import conversations
from bot.core.errors import BadInput
from bot.core.i18n import _
from bot.handlers.args import clip, need, need_int, within
from bot.handlers.registry import command, flow, number, text
from bot.sessions.rating import rate as rate_session
from storage.models import Conversation, Rating

USAGE = "/rate SESSION STARS [COMMENT]"


@command(
    "rate",
    _("Rate a completed session: /rate SESSION STARS [COMMENT]"),
    args=(
        number("session", _("The session number")),
        number("stars", _("From 1 (poor) to 5 (excellent)"), high=5),
        text("comment", _("Optional words for the other side"), required=False, words=True),
    ),
    section="mentoring",
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
            _("A rating is a whole number from 1 to 5; you sent '{value}'.", value=clip(raw_stars))
        )
    comment = within(" ".join(args[2:]).strip(), "comment", _("A comment"))
    rated = await rate_session(
        ctx.uow, ctx.actor.id, session_id, stars, comment, ctx.now(), ctx.config
    )
    if rated.previous is not None:
        ctx.say(_("Your rating of session #{id} is now {stars}★.", id=session_id, stars=stars))
        return
    if rated.rating.comment:
        ctx.say(_("Thank you! You rated session #{id} {stars}★.", id=session_id, stars=stars))
        return
    await conversations.begin(
        ctx.uow, ctx.actor.id, "rate_comment", "comment", {"rating_id": rated.rating.id}, ctx.now()
    )
    ctx.say(
        _(
            "Thank you! You rated session #{id} {stars}★. Add a comment? Send it now, or /skip.",
            id=session_id,
            stars=stars,
        )
    )


@flow("rate_comment", optional=True)
async def rate_comment(ctx: Ctx, conv: Conversation, text: str) -> None:
    rating = await ctx.uow.get(Rating, conv.data["rating_id"])
    await conversations.end(ctx.uow, ctx.actor.id)
    if rating is None or rating.rater_id != ctx.actor.id:
        return
    rating.comment = within(text.strip(), "comment", _("A comment"))
    ctx.say(_("Your comment is saved. Thank you!"))
