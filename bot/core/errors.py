"""One error hierarchy whose messages are safe to show users.

The core raises these when it refuses something; the dispatcher rolls the transaction back and
shows the message in the reader's language. Anything else is a bug: logged with a traceback and
answered with a generic apology.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.i18n import Msg, _
from bot.core.replies import Choice, Say


class MentorbotError(Exception):
    """`choices` offer the way on from a refusal (the times still free when the one picked was
    taken), so the user need not start over; the refusal still changes nothing."""

    def __init__(self, message: Msg, choices: Sequence[Choice] = ()) -> None:
        super().__init__(message.msgid)
        self.message = message
        self.choices = tuple(choices)

    def reply(self) -> Say:
        return Say(self.message, self.choices)


class BadInput(MentorbotError):
    """The user typed something we cannot use; the message says what was wrong."""


class NotFound(MentorbotError):
    """The thing named does not exist, or is not visible to this user."""


class NotAllowed(MentorbotError):
    """The user may not do this (wrong role, not their request, not their session)."""


class TransitionRefused(MentorbotError):
    """A status change not in the entity's table of allowed transitions."""

    def __init__(self, entity: str, entity_id: int, current: str, target: str) -> None:
        params = {
            "entity": ENTITY_NAMES.get(entity, Msg(entity)),
            "id": entity_id,
            "current": STATUS_NAMES.get(current, Msg(current)),
        }
        if current == target:
            message = _("{entity} #{id} is already {current}.", **params)
        else:
            refusal = REFUSALS.get(target)
            message = (
                Msg(refusal.msgid, tuple(sorted(params.items())))
                if refusal is not None
                else _("{entity} #{id} is {current}, so that cannot be done now.", **params)
            )
        super().__init__(message)
        self.entity = entity
        self.current = current
        self.target = target


ENTITY_NAMES: dict[str, Msg] = {
    "order": _("Order"),
    "request": _("Request"),
    "session": _("Session"),
    "mentor": _("Mentor profile"),
    "enrollment": _("Enrollment"),
    "course": _("Course"),
    "lesson": _("Lesson"),
    # workshops (bot/sessions/workshops.py)
    "workshop": _("Workshop"),
    "seat": _("Seat"),
    "waitlist": _("Waitlist place"),
    "subscription": _("Subscription"),
}

STATUS_NAMES: dict[str, Msg] = {
    "pending": _("pending"),
    "paid": _("paid"),
    "refunded": _("refunded"),
    "expired": _("expired"),
    "cancelled": _("cancelled"),
    "open": _("open"),
    "offered": _("offered"),
    "accepted": _("accepted"),
    "waitlisted": _("waitlisted"),
    "scheduled": _("scheduled"),
    "completed": _("completed"),
    "no_show": _("no-show"),
    "disputed": _("disputed"),
    "approved": _("approved"),
    "suspended": _("suspended"),
    "rejected": _("rejected"),
    "active": _("active"),
    "archived": _("archived"),
    "revoked": _("revoked"),
    # workshops (bot/sessions/workshops.py)
    "seated": _("seated"),
    "left": _("left"),
    "attended": _("attended"),
    "absent": _("absent"),
    "waiting": _("waiting"),
    "confirmed": _("confirmed"),
    "incomplete": _("waiting for payment"),
    "trialing": _("in its free trial"),
    "past_due": _("overdue"),
    "cancelling": _("ending at the end of the period"),
    "lapsed": _("lapsed"),
}


# Why a move to a status is refused, worded as the action a person tried, by target status.
REFUSALS: dict[str, Msg] = {
    "paid": _("{entity} #{id} is {current}, so it can no longer be paid."),
    "cancelled": _("{entity} #{id} is {current}, so it can no longer be cancelled."),
    "refunded": _("{entity} #{id} is {current}, so it can no longer be refunded."),
    "expired": _("{entity} #{id} is {current}, so it can no longer expire."),
    "accepted": _("{entity} #{id} is {current}, so it can no longer be accepted."),
    "completed": _("{entity} #{id} is {current}, so it can no longer be marked completed."),
    "no_show": _("{entity} #{id} is {current}, so it can no longer be marked as a no-show."),
    "approved": _("{entity} #{id} is {current}, so it cannot be approved."),
    "suspended": _("{entity} #{id} is {current}, so it cannot be suspended."),
    "rejected": _("{entity} #{id} is {current}, so it cannot be rejected."),
    "archived": _("{entity} #{id} is {current}, so it cannot be archived."),
    "active": _("{entity} #{id} is {current}, so it cannot be restored."),
    "scheduled": _("{entity} #{id} is {current}, so it cannot be booked again."),
}
