"""`/admin disputes` and `/admin settle`: admins decide sessions whose two sides disagree.

The rule is `bot.sessions.booking.settle`; this lists what awaits a decision (with how often
each learner has claimed a no-show, so a pattern shows) and turns the verdict into a reply.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from bot.context import Ctx
from bot.core import words
from bot.core.errors import STATUS_NAMES, BadInput
from bot.core.i18n import Lines, Msg, When, _
from bot.handlers.args import clip, need, need_int
from bot.handlers.registry import admin_subcommand, choice, number
from bot.sessions import booking
from storage.models import MentorSession, User

SETTLE_USAGE = "/admin settle SESSION completed|noshow|refund-credit"


def _answer(outcome: str | None) -> Msg:
    return STATUS_NAMES.get(outcome or "", Msg("—"))


async def _claims_by_learner(ctx: Ctx, learner_ids: set[int]) -> dict[int, int]:
    rows = await ctx.uow.session.execute(
        select(MentorSession.learner_id, func.count(MentorSession.id))
        .where(MentorSession.learner_id.in_(learner_ids))
        .where(MentorSession.learner_outcome == "no_show")
        .group_by(MentorSession.learner_id)
    )
    return {learner_id: n for learner_id, n in rows.all()}


@admin_subcommand("disputes", _("The sessions whose two sides disagree, for an admin to settle"))
async def disputes(ctx: Ctx, args: list[str]) -> None:
    """The sessions awaiting an admin's decision, oldest first, with both answers."""
    rows = [
        s
        for s in (
            await ctx.uow.session.execute(
                select(MentorSession)
                .where(
                    or_(
                        MentorSession.status == "disputed",
                        MentorSession.learner_outcome == "no_show",
                    )
                )
                .order_by(MentorSession.start_at)
            )
        ).scalars()
        if booking.awaits_admin(s)
    ]
    if not rows:
        ctx.say(_("No disputed sessions."))
        return
    claims = await _claims_by_learner(ctx, {s.learner_id for s in rows})
    lines = []
    for s in rows:
        learner = await ctx.uow.get(User, s.learner_id)
        mentor = await booking.other_side(ctx.uow, s, is_mentor=False)
        assert learner is not None
        lines.append(
            _(
                "#{id} {when} ({status}): mentor {mentor} says {mentor_answer}, learner "
                "{learner} says {learner_answer} (no-show claims by this learner: {claims})"
                "{note}",
                id=s.id,
                when=When(s.start_at),
                status=STATUS_NAMES[s.status],
                mentor=mentor.display_name,
                mentor_answer=_answer(s.mentor_outcome),
                learner=learner.display_name,
                learner_answer=_answer(s.learner_outcome),
                claims=claims.get(s.learner_id, 0),
                note=f" · {clip(s.mentor_note)}" if s.mentor_note else "",
            )
        )
    ctx.say(
        _("Sessions to settle:\n{list}\nSettle with {usage}", list=Lines(lines), usage=SETTLE_USAGE)
    )


@admin_subcommand(
    "settle",
    _("Decide a disputed session: completed, noshow or refund-credit"),
    args=(
        number("session", _("The session number")),
        choice(
            "decision",
            _("What happened"),
            "completed",
            "noshow",
            "refund-credit",
            required=True,
            also=words.VERDICTS,
        ),
    ),
)
async def settle(ctx: Ctx, args: list[str]) -> None:
    """Decide a disputed session; both sides are told."""
    session_id = need_int(args, 0, SETTLE_USAGE)
    verdict = words.lookup(words.VERDICTS, need(args, 1, SETTLE_USAGE))
    if verdict is None:
        raise BadInput(
            _("Unknown decision '{value}'. Usage: {usage}", value=clip(args[1]), usage=SETTLE_USAGE)
        )
    session = await booking.settle(ctx.uow, session_id, verdict, ctx.now(), ctx.config)
    ctx.say(
        _(
            "Session #{id} is settled as {status}. Both sides are told.",
            id=session.id,
            status=STATUS_NAMES[session.status],
        )
    )
