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
        super().__init__(
            _(
                "{entity} #{id} is {current} and cannot become {target}.",
                entity=ENTITY_NAMES.get(entity, Msg(entity)),
                id=entity_id,
                current=STATUS_NAMES.get(current, Msg(current)),
                target=STATUS_NAMES.get(target, Msg(target)),
            )
        )
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
    "active": _("active"),
    "archived": _("archived"),
    "revoked": _("revoked"),
}
