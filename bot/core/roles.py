"""Granting roles from trusted places: the config's admin list and the local console."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from bot.core.states import advance
from bot.core.users import grant_role, mentor_profile_of
from storage.models import Identity, MentorProfile
from storage.uow import UnitOfWork

ROLES = ("learner", "mentor", "admin")


async def make_admin(uow: UnitOfWork, user_id: int, platform: str, external_id: str) -> None:
    """The admin role for the user, given by their identity `platform`:`external_id` (the
    console's word about its own identity): it goes with that identity on link and unlink."""
    await uow.session.execute(
        update(Identity)
        .where(Identity.user_id == user_id)
        .where(Identity.platform == platform)
        .where(Identity.external_id == external_id)
        .values(admin_word=True)
    )
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
