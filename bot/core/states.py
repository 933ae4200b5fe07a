"""The allowed status changes of every entity, in one table each.

Every status change in the core goes through `advance`, so a move that is not listed here is
refused with `TransitionRefused` whatever code path asked for it.

Each machine's states are a `Literal` type, and its table is keyed by it: the models' `status`
columns carry the same type, so a misspelt status (`advance("order", order, "payed")`,
`order.status = "payed"`) fails `mypy --strict` instead of waiting for a test or a user to
find it.

Beyond the foundation's sketch, a request may be `waitlisted` (nobody could take it now; it is
offered again when a mentor frees capacity) and a mentor profile starts `pending` until an admin
approves it or rejects it (with a reason the applicant is told; a rejected applicant may apply
again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, overload

from bot.core.errors import TransitionRefused

OrderStatus: TypeAlias = Literal["pending", "paid", "refunded", "expired", "cancelled"]
EnrollmentStatus: TypeAlias = Literal["active", "revoked"]
RequestStatus: TypeAlias = Literal[
    "open", "offered", "waitlisted", "accepted", "expired", "cancelled"
]
# A request still in play: waiting for a mentor, or the mentorship itself. An enrollment has at
# most one (bot.sessions.booking.mentorship_for).
LIVE_REQUEST_STATES: tuple[RequestStatus, ...] = ("open", "offered", "waitlisted", "accepted")
# One mentor's offer of one request: `won` by the mentor who accepted, `taken` for the others
# of that round, `withdrawn` when the mentor filled up, `cancelled` with the request. Offers
# have no `id` of their own (request and mentor are the key), so bot.mentoring.offers sets
# their status directly; the type still checks every value it sets.
OfferStatus: TypeAlias = Literal[
    "offered", "won", "declined", "taken", "withdrawn", "expired", "cancelled"
]
SessionStatus: TypeAlias = Literal["scheduled", "completed", "cancelled", "no_show", "disputed"]
MentorStatus: TypeAlias = Literal["pending", "approved", "suspended", "rejected"]
# The states of courses and lessons alike: shown to learners, or put away by an admin.
ShelfStatus: TypeAlias = Literal["active", "archived"]

Entity: TypeAlias = Literal[
    "order",
    "enrollment",
    "request",
    "offer",
    "session",
    "mentor",
    "course",
    "lesson",
    "subscription",
]

S = TypeVar("S", bound=str)
Table: TypeAlias = Mapping[S, frozenset[S]]

ORDER: Table[OrderStatus] = {
    "pending": frozenset({"paid", "expired", "cancelled"}),
    "paid": frozenset({"refunded"}),
    "refunded": frozenset(),
    # A Telegram Stars payment made before the order expired but reported after
    # (bot.providers.stars.payment).
    "expired": frozenset({"paid"}),
    "cancelled": frozenset(),
}
ENROLLMENT: Table[EnrollmentStatus] = {"active": frozenset({"revoked"}), "revoked": frozenset()}
REQUEST: Table[RequestStatus] = {
    "open": frozenset({"offered", "waitlisted", "cancelled"}),
    "offered": frozenset({"offered", "accepted", "waitlisted", "expired", "cancelled"}),
    "waitlisted": frozenset({"offered", "cancelled", "expired"}),
    "accepted": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}
OFFER: Table[OfferStatus] = {
    "offered": frozenset({"won", "declined", "taken", "withdrawn", "expired", "cancelled"}),
    "won": frozenset(),
    "declined": frozenset(),
    "taken": frozenset(),
    "withdrawn": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}
# A session whose two sides disagree about whether it took place is `disputed` (the credit stays
# used, no earnings) until an admin settles it (bot.sessions.booking.settle).
SESSION: Table[SessionStatus] = {
    "scheduled": frozenset({"completed", "cancelled", "no_show", "disputed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "no_show": frozenset({"disputed"}),
    "disputed": frozenset({"completed", "no_show"}),
}
MENTOR: Table[MentorStatus] = {
    "pending": frozenset({"approved", "rejected"}),
    "approved": frozenset({"suspended"}),
    "suspended": frozenset({"approved"}),
    "rejected": frozenset({"pending"}),  # applying again
}
COURSE: Table[ShelfStatus] = {"active": frozenset({"archived"}), "archived": frozenset({"active"})}
LESSON: Table[ShelfStatus] = {"active": frozenset({"archived"}), "archived": frozenset({"active"})}

# --- Subscriptions (bot/subscriptions/) -------------------------------------------------
# `incomplete` until its first period is paid (or its trial starts); `past_due` after a failed
# renewal, keeping access through the grace period; `cancelling` while set to end at the
# period's end (a resume makes it `active` again); `lapsed` when a renewal never came (grace
# over, or a Stars subscription past its expiration); `cancelled` when it ended as asked, or an
# unpaid checkout was abandoned. A lapsed one comes back to `active` when a late payment lands.
SubscriptionStatus: TypeAlias = Literal[
    "incomplete", "trialing", "active", "past_due", "cancelling", "lapsed", "cancelled"
]
SUBSCRIPTION: Table[SubscriptionStatus] = {
    "incomplete": frozenset({"trialing", "active", "cancelled"}),
    "trialing": frozenset({"active", "past_due", "cancelling", "lapsed", "cancelled"}),
    "active": frozenset({"past_due", "cancelling", "lapsed", "cancelled"}),
    "past_due": frozenset({"active", "cancelling", "lapsed", "cancelled"}),
    "cancelling": frozenset({"active", "trialing", "past_due", "cancelled", "lapsed"}),
    "lapsed": frozenset({"active"}),
    "cancelled": frozenset(),
}
# Statuses in which the learner keeps access (the period's credits can be booked).
SUBSCRIPTION_LIVE: frozenset[SubscriptionStatus] = frozenset(
    {"trialing", "active", "past_due", "cancelling"}
)
# --- end subscriptions -------------------------------------------------------------------

MACHINES: Mapping[Entity, Table[Any]] = {
    "order": ORDER,
    "enrollment": ENROLLMENT,
    "request": REQUEST,
    "offer": OFFER,
    "session": SESSION,
    "mentor": MENTOR,
    "course": COURSE,
    "lesson": LESSON,
    "subscription": SUBSCRIPTION,
}


class HasStatus(Protocol[S]):
    id: int
    status: S


def can_advance(entity: Entity, current: str, target: str) -> bool:
    return target in MACHINES[entity].get(current, frozenset())


@overload
def advance(entity: Literal["order"], row: HasStatus[OrderStatus], target: OrderStatus) -> None: ...
@overload
def advance(
    entity: Literal["enrollment"], row: HasStatus[EnrollmentStatus], target: EnrollmentStatus
) -> None: ...
@overload
def advance(
    entity: Literal["request"], row: HasStatus[RequestStatus], target: RequestStatus
) -> None: ...
@overload
def advance(
    entity: Literal["session"], row: HasStatus[SessionStatus], target: SessionStatus
) -> None: ...
@overload
def advance(
    entity: Literal["mentor"], row: HasStatus[MentorStatus], target: MentorStatus
) -> None: ...
@overload
def advance(
    entity: Literal["course", "lesson"], row: HasStatus[ShelfStatus], target: ShelfStatus
) -> None: ...
@overload
def advance(
    entity: Literal["subscription"],
    row: HasStatus[SubscriptionStatus],
    target: SubscriptionStatus,
) -> None: ...
def advance(entity: Entity, row: HasStatus[Any], target: str) -> None:
    """Move `row` to `target`, or raise `TransitionRefused` naming both states.

    One overload per machine ties the entity's name to its row's and target's status type.
    """
    if not can_advance(entity, row.status, target):
        raise TransitionRefused(entity, row.id, row.status, target)
    row.status = target


# --- workshops (group sessions): bot/sessions/workshops.py -----------------------------------
# A workshop is `scheduled` until its host marks attendance (`completed`) or cancels it. A seat
# is one attendee's place: `left` by the learner, `cancelled` with the workshop, then
# `attended` or `absent` as the host marks it. A waitlist entry `waiting` in line is `offered`
# a freed seat for a limited time, then `confirmed` (a seat) or `expired` (the next is offered).
WorkshopStatus: TypeAlias = Literal["scheduled", "completed", "cancelled"]
SeatStatus: TypeAlias = Literal["seated", "left", "cancelled", "attended", "absent"]
WaitlistStatus: TypeAlias = Literal[
    "waiting", "offered", "confirmed", "expired", "left", "cancelled"
]
WorkshopEntity: TypeAlias = Literal["workshop", "seat", "waitlist"]

WORKSHOP: Table[WorkshopStatus] = {
    "scheduled": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
SEAT: Table[SeatStatus] = {
    "seated": frozenset({"left", "cancelled", "attended", "absent"}),
    "left": frozenset(),
    "cancelled": frozenset(),
    # The host may correct a mark while the workshop's ratings are open.
    "attended": frozenset({"absent"}),
    "absent": frozenset({"attended"}),
}
WAITLIST: Table[WaitlistStatus] = {
    "waiting": frozenset({"offered", "left", "cancelled"}),
    "offered": frozenset({"confirmed", "expired", "left", "cancelled"}),
    "confirmed": frozenset(),
    "expired": frozenset(),
    "left": frozenset(),
    "cancelled": frozenset(),
}
WORKSHOP_MACHINES: Mapping[WorkshopEntity, Table[Any]] = {
    "workshop": WORKSHOP,
    "seat": SEAT,
    "waitlist": WAITLIST,
}


@overload
def advance_group(
    entity: Literal["workshop"], row: HasStatus[WorkshopStatus], target: WorkshopStatus
) -> None: ...
@overload
def advance_group(
    entity: Literal["seat"], row: HasStatus[SeatStatus], target: SeatStatus
) -> None: ...
@overload
def advance_group(
    entity: Literal["waitlist"], row: HasStatus[WaitlistStatus], target: WaitlistStatus
) -> None: ...
def advance_group(entity: WorkshopEntity, row: HasStatus[Any], target: str) -> None:
    """`advance` for the workshop machines: move `row` to `target` or raise
    `TransitionRefused`."""
    if target not in WORKSHOP_MACHINES[entity].get(row.status, frozenset()):
        raise TransitionRefused(entity, row.id, row.status, target)
    row.status = target
