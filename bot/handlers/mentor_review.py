"""Admins and mentors: the mentor list, applications to review, approving, rejecting (with a
reason the applicant reads in their own language) and suspending.

Every reply says what the person told should do next: an approved mentor how to get requests,
a rejected applicant how to apply again, a suspended mentor how to reach the admins.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot.context import Ctx
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import Lines, Msg, When, _, ngettext
from bot.core.replies import Choice
from bot.core.states import advance
from bot.handlers.args import LIMITS, clip, need, need_int
from bot.handlers.free_text import free_text
from bot.handlers.registry import Sub, admin_subcommand, number, text
from bot.mentoring.offers import LEVEL_NAMES, active_mentees, reoffer_waitlist
from storage.models import MentorProfile, MentorSession, MentorTopic, User

STATUS_WORDS: dict[str, Msg] = {
    "pending": _("waiting for an admin's review"),
    "approved": _("approved, taking requests"),
    "suspended": _("suspended, gets no requests"),
    "rejected": _("application rejected"),
}


def rating_text(rating_sum: int, rating_count: int) -> Msg:
    """A mentor's average with what it rests on: "4.6 ★ from 12 ratings", "no ratings yet"."""
    if not rating_count:
        return _("no ratings yet")
    return ngettext(
        "{average} ★ from {n} rating",
        "{average} ★ from {n} ratings",
        rating_count,
        average=f"{rating_sum / rating_count:.1f}",
    )


async def _topics(ctx: Ctx, mentor_ids: list[int]) -> dict[int, Lines | Msg]:
    found: dict[int, list[Msg]] = defaultdict(list)
    rows = await ctx.uow.session.execute(
        select(MentorTopic)
        .where(MentorTopic.mentor_id.in_(mentor_ids))
        .order_by(MentorTopic.mentor_id, MentorTopic.topic)
    )
    for t in rows.scalars():
        found[t.mentor_id].append(
            _("{topic} ({level})", topic=t.topic, level=LEVEL_NAMES.get(t.level, LEVEL_NAMES[1]))
        )
    return {m: Lines(found[m], ", ") if found[m] else _("none set yet") for m in mentor_ids}


async def _booked(ctx: Ctx, mentor_ids: list[int], now: datetime) -> dict[int, int]:
    rows = await ctx.uow.session.execute(
        select(MentorSession.mentor_id, func.count(MentorSession.id))
        .where(MentorSession.mentor_id.in_(mentor_ids))
        .where(MentorSession.status == "scheduled")
        .where(MentorSession.start_at >= now)
        .group_by(MentorSession.mentor_id)
    )
    return {m: int(n) for m, n in rows.all()}


async def _profiles(
    ctx: Ctx, *order: Any, pending: bool = False
) -> list[tuple[MentorProfile, User]]:
    """Mentor profiles with their people, in `order`; only applications when `pending`."""
    stmt = select(MentorProfile, User).join(User, User.id == MentorProfile.user_id)
    if pending:
        stmt = stmt.where(MentorProfile.status == "pending")
    rows = await ctx.uow.session.execute(stmt.order_by(*order))
    return [(p, u) for p, u in rows.all()]


@admin_subcommand("mentors", _("List mentor profiles: topics, load, rating, status"))
async def list_mentors(ctx: Ctx, args: list[str]) -> None:
    rows = await _profiles(ctx, MentorProfile.id)
    if not rows:
        ctx.say(_("No mentors yet. People apply with /becomementor."))
        return
    ids = [p.id for p, _u in rows]
    topics = await _topics(ctx, ids)
    load = await active_mentees(ctx.uow, ids)
    booked = await _booked(ctx, ids, ctx.now())
    lines = [
        _(
            "#{id} {name}: {status}\n   Topics: {topics}\n   Load: {mentees} · {booked}\n"
            "   Rating: {rating}",
            id=p.id,
            name=clip(u.display_name),
            status=STATUS_WORDS[p.status],
            topics=topics[p.id],
            mentees=ngettext(
                "{active} of {n} mentee",
                "{active} of {n} mentees",
                p.capacity,
                active=load.get(p.id, 0),
            ),
            booked=ngettext("{n} session booked", "{n} sessions booked", booked.get(p.id, 0)),
            rating=rating_text(p.rating_sum, p.rating_count),
        )
        for p, u in rows
    ]
    pending = sum(1 for p, _u in rows if p.status == "pending")
    choices = [Choice(_("Applications to review"), "/admin applications")] if pending else []
    ctx.say(_("Mentors:\n{list}", list=Lines(lines)), choices)


@admin_subcommand("applications", _("Mentor applications waiting for review"))
async def applications(ctx: Ctx, args: list[str]) -> None:
    rows = await _profiles(ctx, MentorProfile.created_at, MentorProfile.id, pending=True)
    if not rows:
        ctx.say(_("No mentor applications are waiting for review."))
        return
    topics = await _topics(ctx, [p.id for p, _u in rows])
    lines = [
        _(
            "#{id} {name}, applied {when}\n   Topics: {topics}\n   Languages: {languages} · "
            "timezone {tz}\n   Bio: {bio}",
            id=p.id,
            name=clip(u.display_name),
            when=When(p.created_at),
            topics=topics[p.id],
            languages=Lines(p.languages, ", ") if p.languages else "—",
            tz=u.timezone,
            bio=clip(p.bio, LIMITS["bio"]) if p.bio else _("none yet"),
        )
        for p, u in rows
    ]
    choices: list[Choice] = []
    for p, _u in rows[:5]:
        choices.append(Choice(_("Approve #{id}", id=p.id), f"/admin mentor approve {p.id}"))
        choices.append(Choice(_("Reject #{id}", id=p.id), f"/admin reject {p.id}"))
    ctx.say(_("Mentor applications (oldest first):\n{list}", list=Lines(lines)), choices)


async def _profile(ctx: Ctx, mentor_id: int) -> MentorProfile:
    profile = await ctx.uow.lock(MentorProfile, mentor_id)
    if profile is None:
        raise NotFound(_("There is no mentor profile #{id}.", id=mentor_id))
    return profile


async def _name(ctx: Ctx, profile: MentorProfile) -> str:
    user = await ctx.uow.get(User, profile.user_id)
    return clip(user.display_name) if user is not None else f"#{profile.id}"


@admin_subcommand(
    "mentor",
    _("Approve or suspend a mentor"),
    subs=(
        Sub("approve", _("Approve a mentor profile"), (number("profile", _("The profile")),)),
        Sub("suspend", _("Suspend a mentor profile"), (number("profile", _("The profile")),)),
    ),
)
async def decide_mentor(ctx: Ctx, args: list[str]) -> None:
    usage = "/admin mentor approve|suspend ID"
    action = need(args, 0, usage).lower()
    if action not in ("approve", "suspend"):
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(action), usage=usage)
        )
    profile = await _profile(ctx, need_int(args, 1, usage))
    if action == "approve":
        advance("mentor", profile, "approved")
        await ctx.uow.flush()
        await ctx.tell(
            profile.user_id,
            _(
                "Your mentor profile is approved. Welcome aboard! Requests will reach you here. "
                "Keep your topics (/profile) and weekly times (/availability) up to date so "
                "learners can find and book you."
            ),
            [Choice(_("My profile"), "/profile"), Choice(_("My availability"), "/availability")],
        )
        ctx.say(
            _(
                "Mentor #{id} ({name}) is approved and told.",
                id=profile.id,
                name=await _name(ctx, profile),
            )
        )
        await reoffer_waitlist(ctx.uow, ctx.config, ctx.now())
    else:
        advance("mentor", profile, "suspended")
        await ctx.tell(
            profile.user_id,
            _(
                "Your mentor profile is suspended: you get no new requests for now. To ask "
                "why or to be reinstated, write to the admins with /support and your message."
            ),
            [Choice(_("Write to the admins"), "/support")],
        )
        ctx.say(
            _(
                "Mentor #{id} ({name}) is suspended and told.",
                id=profile.id,
                name=await _name(ctx, profile),
            )
        )


@admin_subcommand(
    "reject",
    _("Reject a mentor application, with the reason the applicant is told"),
    args=(
        number("profile", _("The application's profile number")),
        text("reason", _("Why, in a sentence the applicant reads"), required=False, words=True),
    ),
)
async def reject(ctx: Ctx, args: list[str]) -> None:
    profile = await _profile(ctx, need_int(args, 0, "/admin reject ID REASON"))
    if profile.status != "pending":
        advance("mentor", profile, "rejected")  # refused, with the profile's state in words
    await _reject.take(
        ctx,
        " ".join(args[1:]),
        {"profile_id": profile.id},
        _(
            "Why is application #{id} ({name}) rejected? Send the reason in one message; "
            "the applicant reads it. /cancel keeps the application waiting.",
            id=profile.id,
            name=await _name(ctx, profile),
        ),
    )


@free_text("reject_reason", "reason", _("A reason"), admin=True)
async def _reject(ctx: Ctx, data: dict[str, Any], reason: str) -> None:
    profile = await _profile(ctx, int(data["profile_id"]))
    advance("mentor", profile, "rejected")
    await ctx.tell(
        profile.user_id,
        _(
            "Your application to mentor (profile #{id}) was not accepted. The admins' reason: "
            "“{reason}”. You can improve your profile (/profile topics, /profile bio) and apply "
            "again with /becomementor, or ask the admins with /support.",
            id=profile.id,
            reason=clip(reason, LIMITS["reason"]),  # invisible characters dropped
        ),
        [Choice(_("Apply again"), "/becomementor"), Choice(_("Write to the admins"), "/support")],
    )
    ctx.say(
        _(
            "Application #{id} ({name}) is rejected; the applicant is told your reason.",
            id=profile.id,
            name=await _name(ctx, profile),
        )
    )
