"""The chat flows, one module per feature; importing this package registers every command."""

from bot.handlers import (  # noqa: F401
    account,
    admin,
    availability,
    catalogue,
    cohort,
    disputes,
    earnings,
    lessons,
    mentor_review,
    mentorship,
    profile,
    progress,
    ratings,
    recommend,
    sessions,
    stars,
    support,
    upcoming,
)
