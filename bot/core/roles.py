"""Granting roles from trusted places: the config's admin list and the local console."""

from __future__ import annotations

from datetime import datetime

from bot.core.states import advance
from bot.core.users import grant_role, mentor_profile_of
from storage.models import MentorProfile
from storage.uow import UnitOfWork

ROLES = ("learner", "mentor", "admin")


async def make_admin(uow: UnitOfWork, user_id: int) -> None:
    await grant_role(uow, user_id, "admin")


async def make_mentor(uow: UnitOfWork, user_id: int, language: str, now: datetime) -> None:
    """An approved mentor profile, for the console where whoever types owns the database."""
    profile = await mentor_profile_of(uow, user_id)
    if profile is None:
        uow.add(
            MentorProfile(
                user_id=user_id,
                status="approved",
                languages=[language],
                capacity=3,
                bio="",
                rating_count=0,
                rating_sum=0,
                created_at=now,
            )
        )
    elif profile.status != "approved":
        advance("mentor", profile, "approved")
    await uow.flush()
