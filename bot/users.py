"""Who is talking: platform identities resolved to marketplace users and their roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.config import Config
from bot.i18n import normalize_language
from storage.models import Identity, MentorProfile, User, UserRole
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Incoming:
    """One message or button press from a platform, in plain data."""

    platform: str
    external_id: str
    display_name: str
    text: str
    language_code: str | None = None
    # The sender's role ids on the platform where they wrote (Discord guild roles), when the
    # platform says; None when it does not (a DM, the console). See `resolve_user`.
    platform_roles: frozenset[str] | None = None


async def resolve_user(
    uow: UnitOfWork, config: Config, msg: Incoming, now: datetime
) -> tuple[User, frozenset[str]]:
    """Find or create the user behind a platform identity and return their roles.

    A new user's language comes from the platform (console: config); admins listed in config
    are granted the admin role whenever they write. Where the platform's section configures
    admin role ids and the message carries the sender's roles, those roles decide: holding one
    grants the admin role (kept, so admin notices reach them elsewhere too), holding none
    revokes it, unless the identity is listed in config.
    """
    identity = (
        await uow.session.execute(
            select(Identity)
            .where(Identity.platform == msg.platform)
            .where(Identity.external_id == msg.external_id)
        )
    ).scalar_one_or_none()
    if identity is None:
        default_lang = (
            config.console.language if msg.platform == "console" else config.bot.default_language
        )
        default_tz = (
            config.console.timezone if msg.platform == "console" else config.bot.default_timezone
        )
        user = User(
            display_name=msg.display_name[:200] or msg.external_id,
            language=normalize_language(msg.language_code, default_lang),
            timezone=default_tz,
            created_at=now,
        )
        uow.add(user)
        await uow.flush()
        identity = Identity(
            user_id=user.id,
            platform=msg.platform,
            external_id=msg.external_id,
            created_at=now,
            last_seen_at=now,
        )
        uow.add(identity)
        uow.add(UserRole(user_id=user.id, role="learner"))
        await uow.flush()
    else:
        identity.last_seen_at = now
        found = await uow.get(User, identity.user_id)
        assert found is not None
        user = found
    roles = await roles_of(uow, user.id)
    listed = f"{msg.platform}:{msg.external_id}" in config.bot.admins
    admin_roles = config.admin_roles_for(msg.platform)
    by_role = (
        bool(admin_roles & msg.platform_roles)
        if admin_roles and msg.platform_roles is not None
        else None
    )
    if (listed or by_role) and "admin" not in roles:
        await grant_role(uow, user.id, "admin")
        roles = roles | {"admin"}
    elif by_role is False and not listed and "admin" in roles:
        await revoke_role(uow, user.id, "admin")
        roles = roles - {"admin"}
    return user, roles


async def roles_of(uow: UnitOfWork, user_id: int) -> frozenset[str]:
    rows = await uow.session.execute(select(UserRole.role).where(UserRole.user_id == user_id))
    roles = set(rows.scalars())
    mentor = await mentor_profile_of(uow, user_id)
    if mentor is not None and mentor.status == "approved":
        roles.add("mentor")
    return frozenset(roles)


async def grant_role(uow: UnitOfWork, user_id: int, role: str) -> None:
    if await uow.get(UserRole, (user_id, role)) is None:
        uow.add(UserRole(user_id=user_id, role=role))
        await uow.flush()


async def revoke_role(uow: UnitOfWork, user_id: int, role: str) -> None:
    found = await uow.get(UserRole, (user_id, role))
    if found is not None:
        await uow.session.delete(found)
        await uow.flush()


async def mentor_profile_of(uow: UnitOfWork, user_id: int) -> MentorProfile | None:
    return (
        await uow.session.execute(select(MentorProfile).where(MentorProfile.user_id == user_id))
    ).scalar_one_or_none()


async def admin_ids(uow: UnitOfWork) -> list[int]:
    rows = await uow.session.execute(
        select(UserRole.user_id).where(UserRole.role == "admin").order_by(UserRole.user_id)
    )
    return list(rows.scalars())
