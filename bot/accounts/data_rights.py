"""The user's data rights: a JSON export of everything stored about them, and erasure.

**Export** (`/mydata`): everything stored about the user as JSON. Other people's identifiers
(their user and profile ids, names) are left out of the rows that mention them.

**Erasure** (`/deleteme`): identities, roles, conversation, pending notices, link codes, the
display name and timezone, comments, goals and the mentor profile's text are removed; upcoming
sessions are cancelled (the other side is told, and a learner whose mentor left gets the credit
back); open requests and pending orders are cancelled; enrollments are revoked (no more lessons).
Notices already written for other people (the offer quoting the goals, an admin's alert quoting
a comment, a mentor's notice naming the learner), sent or still waiting in the outbox, keep
their news but lose those words: the name becomes "deleted user" and the goals, comments and
bio "…" (`_redact_notices`). The users row stays as an anonymous tombstone, because paid
orders (the books) and the stars of ratings (mentors' averages) are kept and point at it. The
language stays, so the goodbye is readable. Notes a mentor wrote for learners stay with the
learners.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, update

from bot.community.access import revoke_everything
from bot.community.relay import erase_for as erase_relayed
from bot.community.relay import words_of as relayed_words
from bot.community.spaces import close_for as close_private_spaces
from bot.config import Config
from bot.core.i18n import _, ngettext
from bot.core.outbox import tell, tell_admins
from bot.core.states import advance
from bot.core.users import mentor_profile_of
from bot.mentoring.offers import close_round
from bot.sessions import workshop_host
from bot.sessions.booking import cancel
from bot.subscriptions.lifecycle import end as end_subscription
from storage.models import (
    AccessGrant,
    AccessLog,
    AccountMerge,
    AvailabilityBlock,
    AvailabilityWindow,
    Base,
    ButtonPayload,
    Conversation,
    Enrollment,
    Identity,
    LearnerInterest,
    LedgerEntry,
    LessonDelivery,
    LessonDrip,
    LessonRating,
    LinkCode,
    LinkFailure,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    MergedRow,
    Order,
    OutboxMessage,
    PromoUse,
    Rating,
    RecommendationDismissal,
    RecommendationShown,
    RelayDelivery,
    RelayMessage,
    RelayThread,
    RequestOffer,
    Subscription,
    User,
    UserRole,
    Workshop,
    WorkshopSeat,
    WorkshopWaitlist,
)
from storage.uow import UnitOfWork

DELETED_NAME = "deleted user"

# --- export ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(obj: Base, *leave_out: str) -> dict[str, Any]:
    return {
        c.key: _plain(getattr(obj, c.key))
        for c in obj.__table__.columns
        if c.key not in leave_out and not isinstance(getattr(obj, c.key), bytes)
    }


async def export_user(uow: UnitOfWork, user: User) -> dict[str, Any]:
    """Everything stored about `user`, with other people's identifiers left out."""

    async def rows(stmt: Any) -> list[Any]:
        return list((await uow.session.execute(stmt)).scalars())

    uid = user.id
    profile = await mentor_profile_of(uow, uid)
    data: dict[str, Any] = {
        "account": _row(user),
        "identities": [
            _row(i, "user_id") for i in await rows(select(Identity).where(Identity.user_id == uid))
        ],
        "roles": sorted(
            r.role for r in await rows(select(UserRole).where(UserRole.user_id == uid))
        ),
        "orders": [_row(o) for o in await rows(select(Order).where(Order.user_id == uid))],
        "enrollments": [
            _row(e) for e in await rows(select(Enrollment).where(Enrollment.user_id == uid))
        ],
        "lessons_received": [
            _row(d) for d in await rows(select(LessonDelivery).where(LessonDelivery.user_id == uid))
        ],
        "lesson_ratings": [
            _row(r) for r in await rows(select(LessonRating).where(LessonRating.user_id == uid))
        ],
        "lesson_drips": [
            _row(d) for d in await rows(select(LessonDrip).where(LessonDrip.user_id == uid))
        ],
        "mentorship_requests": [
            _row(r, "mentor_id")
            for r in await rows(
                select(MentorshipRequest).where(MentorshipRequest.learner_id == uid)
            )
        ],
        "sessions_as_learner": [
            _row(s, "mentor_id")
            for s in await rows(select(MentorSession).where(MentorSession.learner_id == uid))
        ],
        "ratings_given": [
            _row(r, "ratee_id") for r in await rows(select(Rating).where(Rating.rater_id == uid))
        ],
        "ratings_received": [
            _row(r, "rater_id") for r in await rows(select(Rating).where(Rating.ratee_id == uid))
        ],
        "conversation": [
            _row(c) for c in await rows(select(Conversation).where(Conversation.user_id == uid))
        ],
        "link_codes": [
            _row(c, "code_hash")
            for c in await rows(select(LinkCode).where(LinkCode.user_id == uid))
        ],
        "link_failures": [
            _row(f) for f in await rows(select(LinkFailure).where(LinkFailure.user_id == uid))
        ],
        "ledger": [
            _row(e)
            for e in await rows(
                select(LedgerEntry).where(LedgerEntry.user_id == uid).order_by(LedgerEntry.id)
            )
        ],
        "linked_accounts": [
            _row(m) for m in await rows(select(AccountMerge).where(AccountMerge.survivor_id == uid))
        ],
        "pending_notices": [
            _row(m)
            for m in await rows(
                select(OutboxMessage)
                .where(OutboxMessage.user_id == uid)
                .where(OutboxMessage.sent_at.is_(None))
            )
        ],
        "mentor_profile": None,
        # workshops (bot/sessions/workshops.py): hosted, seats taken, places in line
        "workshops_hosted": [
            _row(w) for w in await rows(select(Workshop).where(Workshop.host_id == uid))
        ],
        "workshop_seats": [
            _row(s) for s in await rows(select(WorkshopSeat).where(WorkshopSeat.user_id == uid))
        ],
        "workshop_waitlist": [
            _row(e)
            for e in await rows(select(WorkshopWaitlist).where(WorkshopWaitlist.user_id == uid))
        ],
        **await _community_export(uow, uid),
        # subscriptions (bot/subscriptions/): plans subscribed to, promo codes used
        "subscriptions": [
            _row(x) for x in await rows(select(Subscription).where(Subscription.user_id == uid))
        ],
        "promo_codes_used": [
            _row(x) for x in await rows(select(PromoUse).where(PromoUse.user_id == uid))
        ],
        # Recommendations: what they said they want to learn, what was suggested, what not.
        "learning_interests": [
            _row(x)
            for x in await rows(select(LearnerInterest).where(LearnerInterest.user_id == uid))
        ],
        "suggestions_shown": [
            _row(x)
            for x in await rows(
                select(RecommendationShown).where(RecommendationShown.user_id == uid)
            )
        ],
        "not_interested": [
            _row(x)
            for x in await rows(
                select(RecommendationDismissal).where(RecommendationDismissal.user_id == uid)
            )
        ],
    }
    if profile is not None:
        pid = profile.id
        data["mentor_profile"] = {
            **_row(profile),
            "topics": [
                _row(t, "mentor_id")
                for t in await rows(select(MentorTopic).where(MentorTopic.mentor_id == pid))
            ],
            "availability": [
                _row(w, "mentor_id")
                for w in await rows(
                    select(AvailabilityWindow).where(AvailabilityWindow.mentor_id == pid)
                )
            ],
            "blocks": [
                _row(b, "mentor_id")
                for b in await rows(
                    select(AvailabilityBlock).where(AvailabilityBlock.mentor_id == pid)
                )
            ],
            "offers": [
                _row(o, "mentor_id")
                for o in await rows(select(RequestOffer).where(RequestOffer.mentor_id == pid))
            ],
            "sessions_as_mentor": [
                _row(s, "learner_id")
                for s in await rows(select(MentorSession).where(MentorSession.mentor_id == pid))
            ],
        }
    return data


async def _community_export(uow: UnitOfWork, uid: int) -> dict[str, Any]:
    """The user's relayed conversations (their own messages, and the thread ids) and their
    community access with its log (issue 18)."""

    async def rows(stmt: Any) -> list[Any]:
        return list((await uow.session.execute(stmt)).scalars())

    threads = await rows(
        select(RelayThread).where(
            (RelayThread.learner_id == uid) | (RelayThread.mentor_user_id == uid)
        )
    )
    return {
        "conversations_with_mentors": {
            "threads": [_row(t, "learner_id", "mentor_user_id") for t in threads],
            "messages_sent": [
                _row(m)
                for m in await rows(select(RelayMessage).where(RelayMessage.sender_id == uid))
            ],
            "deliveries": [
                _row(d)
                for d in await rows(select(RelayDelivery).where(RelayDelivery.recipient_id == uid))
            ],
        },
        "community_access": {
            "grants": [
                _row(g) for g in await rows(select(AccessGrant).where(AccessGrant.user_id == uid))
            ],
            "log": [_row(e) for e in await rows(select(AccessLog).where(AccessLog.user_id == uid))],
        },
    }


# Every table with a user column, and the section of the export that covers it (checked by
# tests/test_account.py, so a new table holding personal data gets an export and an erasure).
EXPORTED = {
    "identities": "identities",
    "user_roles": "roles",
    "conversations": "conversation",
    "orders": "orders",
    "enrollments": "enrollments",
    "mentor_profiles": "mentor_profile",
    "mentorship_requests": "mentorship_requests",
    "sessions": "sessions_as_learner",
    "ratings": "ratings_given",
    "outbox": "pending_notices",
    "lesson_deliveries": "lessons_received",
    "lesson_ratings": "lesson_ratings",
    "lesson_drips": "lesson_drips",
    "link_codes": "link_codes",
    "link_failures": "link_failures",
    "account_merges": "linked_accounts",
    "ledger_entries": "ledger",
    # workshops
    "workshops": "workshops_hosted",
    "workshop_seats": "workshop_seats",
    "workshop_waitlist": "workshop_waitlist",
    # issue 18: discussion spaces and community access
    "relay_threads": "conversations_with_mentors",
    "relay_messages": "conversations_with_mentors",
    "relay_deliveries": "conversations_with_mentors",
    "access_grants": "community_access",
    "access_log": "community_access",
    "subscriptions": "subscriptions",
    "promo_uses": "promo_codes_used",
    "learner_interests": "learning_interests",
    "recommendations_shown": "suggestions_shown",
    "recommendation_dismissals": "not_interested",
}


# --- erasure --------------------------------------------------------------------------------


async def erase_user(uow: UnitOfWork, user: User, now: datetime, config: Config) -> None:
    """Erase `user`'s personal data, keeping anonymised orders and rating stars (see above)."""
    uid = user.id
    run = uow.session.execute
    profile = await mentor_profile_of(uow, uid)
    words = await _own_words(uow, user, profile)
    await _cancel_upcoming(uow, user, profile, now, config)
    await workshop_host.withdraw_user(uow, uid, now, config)  # seats given up, hosted cancelled
    for request in (
        await run(
            select(MentorshipRequest).where(MentorshipRequest.learner_id == uid).with_for_update()
        )
    ).scalars():
        if request.status in ("open", "offered", "waitlisted"):
            await close_round(uow, request, "cancelled")
            advance("request", request, "cancelled")
        request.goals, request.preferred_times = "", []
    for order in (
        await run(select(Order).where(Order.user_id == uid).where(Order.status == "pending"))
    ).scalars():
        advance("order", order, "cancelled")
    for sub in (
        await run(
            select(Subscription)
            .where(Subscription.user_id == uid, Subscription.ended_at.is_(None))
            .with_for_update()
        )
    ).scalars():  # no more renewals; the provider is told after commit (handlers/account.py)
        await end_subscription(uow, sub, "cancelled", now)
    for enrollment in (
        await run(
            select(Enrollment).where(Enrollment.user_id == uid).where(Enrollment.status == "active")
        )
    ).scalars():
        advance("enrollment", enrollment, "revoked")
    await revoke_everything(uow, uid, "deleteme", now)  # community spaces (bot.community)
    await erase_relayed(uow, uid)
    await close_private_spaces(uow, uid)
    await run(update(LessonDrip).where(LessonDrip.user_id == uid).values(next_due_at=None))
    await run(
        update(Rating).where((Rating.rater_id == uid) | (Rating.ratee_id == uid)).values(comment="")
    )
    await run(update(LessonRating).where(LessonRating.user_id == uid).values(comment=""))
    await run(update(WorkshopSeat).where(WorkshopSeat.user_id == uid).values(comment=""))
    await run(update(MentorSession).where(MentorSession.learner_id == uid).values(mentor_note=""))
    if profile is not None:
        await _retire_profile(uow, profile, now)
    identities = list((await run(select(Identity).where(Identity.user_id == uid))).scalars())
    for identity in identities:
        await run(
            delete(ButtonPayload)
            .where(ButtonPayload.platform == identity.platform)
            .where(ButtonPayload.external_id == identity.external_id)
        )
    for model in (Identity, UserRole, Conversation, OutboxMessage, LinkCode, LinkFailure):
        await run(delete(model).where(model.user_id == uid))
    for suggested in (LearnerInterest, RecommendationShown, RecommendationDismissal):
        await run(delete(suggested).where(suggested.user_id == uid))
    merges = select(AccountMerge.id).where(AccountMerge.survivor_id == uid)
    await run(delete(MergedRow).where(MergedRow.merge_id.in_(merges)))
    await run(delete(AccountMerge).where(AccountMerge.survivor_id == uid))
    user.display_name = DELETED_NAME
    user.timezone = "UTC"
    user.deleted_at = now
    await uow.flush()
    await _redact_notices(uow, user.created_at, words)


async def _own_words(uow: UnitOfWork, user: User, profile: MentorProfile | None) -> dict[str, str]:
    """What the user wrote that notices to others may quote, each with what replaces it."""
    run = uow.session.execute
    texts = [
        *(
            await run(
                select(MentorshipRequest.goals).where(MentorshipRequest.learner_id == user.id)
            )
        ).scalars(),
        *(await run(select(Rating.comment).where(Rating.rater_id == user.id))).scalars(),
        *(await run(select(LessonRating.comment).where(LessonRating.user_id == user.id))).scalars(),
        profile.bio if profile is not None else "",
        *await relayed_words(uow, user.id),
    ]
    words = {text.strip(): "…" for text in texts if text.strip()}
    words[user.display_name] = DELETED_NAME
    return words


def _pattern(words: Collection[str]) -> re.Pattern[str] | None:
    """One regex for all `words`, longest first, each matched as a whole (a name "Al" is not
    taken out of "Also")."""

    def whole(word: str) -> str:
        before = r"(?<!\w)" if word[0].isalnum() or word[0] == "_" else ""
        after = r"(?!\w)" if word[-1].isalnum() or word[-1] == "_" else ""
        return before + re.escape(word) + after

    found = sorted((w for w in words if w), key=len, reverse=True)
    return re.compile("|".join(whole(w) for w in found)) if found else None


async def _redact_notices(uow: UnitOfWork, since: datetime, words: dict[str, str]) -> None:
    """Take `words` out of every notice stored for anyone since `since` (the user's arrival):
    its text, its buttons' labels and the instants' texts (which are times, left alone)."""
    pattern = _pattern(words)
    if pattern is None:
        return

    def redact(text: str) -> str:
        return pattern.sub(lambda m: words[m[0]], text)

    # Only rows whose stored JSON holds one of the words (as json.dumps writes it, escapes
    # and all) are loaded: a pass over the outbox in the database, not in Python.
    stored = cast(OutboxMessage.body, Text)
    quoting = or_(*(stored.contains(json.dumps(w)[1:-1], autoescape=True) for w in words))
    rows = await uow.session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.created_at >= since)
        .where(quoting)
        .order_by(OutboxMessage.id)
    )
    for row in rows.scalars():
        body = row.body
        text = redact(body["text"])
        choices = [[redact(label), *rest] for label, *rest in body["choices"]]
        if text != body["text"] or choices != body["choices"]:
            row.body = {**body, "text": text, "choices": choices}
    await uow.flush()


async def _cancel_upcoming(
    uow: UnitOfWork, user: User, profile: MentorProfile | None, now: datetime, config: Config
) -> None:
    """Cancel the user's sessions yet to start through the one cancellation rule, which tells
    the other side (and gives a learner whose mentor left the credit back)."""
    mine = MentorSession.learner_id == user.id
    if profile is not None:
        mine = mine | (MentorSession.mentor_id == profile.id)
    upcoming = (
        await uow.session.execute(
            select(MentorSession.id)
            .where(mine)
            .where(MentorSession.status == "scheduled")
            .where(MentorSession.start_at > now)
            .order_by(MentorSession.id)
            .with_for_update()
        )
    ).scalars()
    for session_id in list(upcoming):
        await cancel(uow, user.id, session_id, now, config, account_closed=True)


async def _retire_profile(uow: UnitOfWork, profile: MentorProfile, now: datetime) -> None:
    """A leaving mentor: no more offers; their learners and the admins are told."""
    run = uow.session.execute
    for model in (MentorTopic, AvailabilityWindow, AvailabilityBlock):
        await run(delete(model).where(model.mentor_id == profile.id))
    profile.bio, profile.languages, profile.capacity = "", [], 0
    if profile.status == "pending":
        await uow.session.delete(profile)
        return
    if profile.status == "approved":
        advance("mentor", profile, "suspended")
    mentees = (
        await run(
            select(MentorshipRequest)
            .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
            .where(MentorshipRequest.mentor_id == profile.id)
            .where(MentorshipRequest.status == "accepted")
            .where(Enrollment.status == "active")
            .where(Enrollment.credits_remaining > 0)
        )
    ).scalars()
    left_behind = 0
    for request in mentees:
        left_behind += 1
        await tell(
            uow,
            request.learner_id,
            _(
                "Your mentor for request #{id} has left the marketplace. The admins are told "
                "and will help you find a new mentor; to add anything, write to them with "
                "/support.",
                id=request.id,
            ),
            now,
        )
    if left_behind:
        await tell_admins(
            uow,
            ngettext(
                "Mentor #{id} deleted their account; {n} learner with sessions left needs "
                "a new mentor.",
                "Mentor #{id} deleted their account; {n} learners with sessions left need "
                "a new mentor.",
                left_behind,
                id=profile.id,
            ),
            now,
        )
