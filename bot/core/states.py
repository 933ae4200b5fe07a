"""The allowed status changes of every entity, in one table each.

Every status change in the core goes through `advance`, so a move that is not listed here is
refused with `TransitionRefused` whatever code path asked for it.

Beyond the foundation's sketch, a request may be `waitlisted` (nobody could take it now; it is
offered again when a mentor frees capacity) and a mentor profile starts `pending` until an admin
approves it.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.errors import TransitionRefused

ORDER = {
    "pending": {"paid", "expired", "cancelled"},
    "paid": {"refunded"},
    "refunded": set(),
    # A Telegram Stars payment made before the order expired but reported after
    # (bot.providers.stars.payment).
    "expired": {"paid"},
    "cancelled": set(),
}
ENROLLMENT = {"active": {"revoked"}, "revoked": set()}
REQUEST = {
    "open": {"offered", "waitlisted", "cancelled"},
    "offered": {"offered", "accepted", "waitlisted", "expired", "cancelled"},
    "waitlisted": {"offered", "cancelled", "expired"},
    "accepted": set(),
    "expired": set(),
    "cancelled": set(),
}
# A session whose two sides disagree about whether it took place is `disputed` (the credit stays
# used, no earnings) until an admin settles it (bot.sessions.booking.settle).
SESSION = {
    "scheduled": {"completed", "cancelled", "no_show", "disputed"},
    "completed": set(),
    "cancelled": set(),
    "no_show": {"disputed"},
    "disputed": {"completed", "no_show"},
}
MENTOR = {
    "pending": {"approved"},
    "approved": {"suspended"},
    "suspended": {"approved"},
}
COURSE = {"active": {"archived"}, "archived": {"active"}}
LESSON = {"active": {"archived"}, "archived": {"active"}}

MACHINES: dict[str, dict[str, set[str]]] = {
    "order": ORDER,
    "enrollment": ENROLLMENT,
    "request": REQUEST,
    "session": SESSION,
    "mentor": MENTOR,
    "course": COURSE,
    "lesson": LESSON,
}


class HasStatus(Protocol):
    id: int
    status: str


def can_advance(entity: str, current: str, target: str) -> bool:
    return target in MACHINES[entity].get(current, set())


def advance(entity: str, row: HasStatus, target: str) -> None:
    """Move `row` to `target`, or raise `TransitionRefused` naming both states."""
    if not can_advance(entity, row.status, target):
        raise TransitionRefused(entity, row.id, row.status, target)
    row.status = target
