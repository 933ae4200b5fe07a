"""Who is talking: platform identities resolved to marketplace users and their roles."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.config import Config
from bot.core.i18n import normalize_language
from storage.models import Conversation, Identity, MentorProfile, User, UserRole
from storage.uow import UnitOfWork

LAST_SEEN_PRECISION = timedelta(minutes=1)
STORED_ROLES = ("learner", "admin")  # rows of user_roles; "mentor" comes from the profile


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
    # The message this one replies to, as "CHAT:MESSAGE" on its platform (Telegram), when it
    # is a reply; a reply to a relayed message continues that conversation (bot.community).
    reply_to: str | None = None


async def resolve_user(
    uow: UnitOfWork, config: Config, msg: Incoming, now: datetime
) -> tuple[User, frozenset[str]]:
    """Find or create the user behind a platform identity and return their roles (see
    `known_user` and `sync_roles`)."""
    found = await known_user(uow, msg, now)
    if found is None:
        user, roles = await create_user(uow, config, msg, now), frozenset({"learner"})
    else:
        user, roles = found
    return user, await sync_roles(uow, config, msg, user.id, roles)


def _identity_is(platform: Any, external_id: Any) -> list[Any]:
    return [Identity.platform == platform, Identity.external_id == external_id]


@functools.cache
def _known_user_query() -> Select[*tuple[Any, ...]]:
    """`known_user`'s read, built once (building it costs more than running it): the
    identity, its user, their conversation step and one boolean column per role: the stored
    roles, and "mentor" while the user's mentor profile is approved."""
    flags = [
        exists().where(UserRole.user_id == User.id).where(UserRole.role == role).label(role)
        for role in STORED_ROLES
    ]
    approved = (
        exists()
        .where(MentorProfile.user_id == User.id)
        .where(MentorProfile.status == "approved")
        .label("mentor")
    )
    return (
        select(Identity, User, Conversation, *flags, approved)
        .join(User, User.id == Identity.user_id)
        .outerjoin(Conversation, Conversation.user_id == User.id)
        .where(*_identity_is(bindparam("platform"), bindparam("external_id")))
    )


@functools.cache
def _lock_query() -> Select[Any]:
    return (
        select(User.id)
        .join(Identity, Identity.user_id == User.id)
        .where(*_identity_is(bindparam("platform"), bindparam("external_id")))
        .with_for_update(key_share=True)
    )


async def known_user(
    uow: UnitOfWork, msg: Incoming, now: datetime
) -> tuple[User, frozenset[str]] | None:
    """The user behind a platform identity, their row locked until commit, and their roles;
    None if the identity is new.

    The user's row is locked, so two updates from one user (a double tap, two processes) run
    one after the other. On SQLite the transaction already holds the whole database, and one
    statement finds the identity, the user, their roles and their conversation step.
    PostgreSQL first locks the row (FOR NO KEY UPDATE, see `UnitOfWork.lock`) and reads in a
    second statement: a statement reads as of its start, so reading in the locking statement would
    miss what the previous lock holder committed meanwhile (the question it just asked).
    `last_seen_at` (which platform notices go to) is kept to the minute, so most updates
    write nothing here.
    """
    params = {"platform": msg.platform, "external_id": msg.external_id}
    if not uow.is_sqlite:
        locked = await uow.session.execute(_lock_query(), params)
        if locked.first() is None:
            return None
    found = (await uow.session.execute(_known_user_query(), params)).first()
    if found is None:
        return None
    identity, user, conversation, *flags = found
    if conversation is None:
        # Most updates are not answers to a question; the step's lookup costs nothing then.
        uow.known_absent(Conversation, user.id)
    if now - identity.last_seen_at >= LAST_SEEN_PRECISION:
        identity.last_seen_at = now
    roles = frozenset(
        role for role, held in zip((*STORED_ROLES, "mentor"), flags, strict=True) if held
    )
    return user, roles


async def create_user(uow: UnitOfWork, config: Config, msg: Incoming, now: datetime) -> User:
    """A new learner for a first contact; their language comes from the platform (console:
    config). Two first messages at once: the identity's unique constraint refuses the second
    (IntegrityError), whose caller looks again."""
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
    uow.add(
        Identity(
            user_id=user.id,
            platform=msg.platform,
            external_id=msg.external_id,
            created_at=now,
            last_seen_at=now,
        )
    )
    uow.add(UserRole(user_id=user.id, role="learner"))
    await uow.flush()
    return user


async def sync_roles(
    uow: UnitOfWork, config: Config, msg: Incoming, user_id: int, roles: frozenset[str]
) -> frozenset[str]:
    """The user's `roles`, the admin role brought in line with what the message says.

    The rule: a user holds the admin role exactly when one of their identities is listed in
    `bot.admins`, or the platform of one of their identities last said that identity holds an
    admin role (`Identity.admin_word`: a Discord guild role listed in `admin_role_ids`, or a
    console grant, `/as NAME admin`, which is the console's own word about its identity).

    Where the platform's section configures admin role ids and the message carries the
    sender's roles, the message is the platform's latest word about this identity: it is
    remembered, and holding one grants the admin role, holding none revokes it unless another
    identity of the user still gives it. A message without roles (a DM, the console) changes
    no word; a listed identity is granted the role whenever it writes. Linking and unlinking
    re-derive the role of each account involved from its identities (`settle_admin`), so an
    identity's word goes with the identity to whichever account it ends up on.
    """
    listed = f"{msg.platform}:{msg.external_id}" in config.bot.admins
    admin_roles = config.admin_roles_for(msg.platform)
    by_role = (
        bool(admin_roles & msg.platform_roles)
        if admin_roles and msg.platform_roles is not None
        else None
    )
    if by_role is not None:
        said = ",".join(sorted(msg.platform_roles or ()))
        await uow.session.execute(
            update(Identity)
            .where(*_identity_is(msg.platform, msg.external_id))
            .where(
                Identity.admin_word.is_distinct_from(by_role)
                | Identity.platform_roles.is_distinct_from(said)
            )
            .values(admin_word=by_role, platform_roles=said)
        )
    if (listed or by_role) and "admin" not in roles:
        await grant_role(uow, user_id, "admin")
        roles = roles | {"admin"}
    elif (
        by_role is False
        and not listed
        and "admin" in roles
        and not await admin_given(uow, config, user_id)
    ):
        await revoke_role(uow, user_id, "admin")
        roles = roles - {"admin"}
    return roles


def gives_admin(
    config: Config, platform: str, external_id: str, word: bool | None, said: str | None
) -> bool:
    """Whether one identity gives the admin role under today's config: listed in `bot.admins`;
    or, where its platform reported its roles, holding one of the `admin_role_ids` configured
    now; else its platform's last word (a console grant, or a word older than migration 0018)."""
    if f"{platform}:{external_id}" in config.bot.admins:
        return True
    if said is not None:
        return bool(config.admin_roles_for(platform) & set(said.split(",")))
    return bool(word)


_ADMIN_INPUTS = (
    Identity.platform,
    Identity.external_id,
    Identity.admin_word,
    Identity.platform_roles,
)


async def admin_given(uow: UnitOfWork, config: Config, user_id: int) -> bool:
    """Whether an identity of the user gives the admin role (`gives_admin`)."""
    rows = await uow.session.execute(select(*_ADMIN_INPUTS).where(Identity.user_id == user_id))
    return any(gives_admin(config, *row) for row in rows)


async def settle_all_admins(uow: UnitOfWork, config: Config) -> tuple[int, int]:
    """At start-up, the admin role of everyone as today's config gives it: an identity taken
    off `bot.admins`, or holding a role no longer in `admin_role_ids`, stops giving it (also in
    DMs, where no roles come), a role newly listed starts giving it. Returns (granted,
    revoked)."""
    holders = select(UserRole.user_id).where(UserRole.role == "admin")
    listed = [tuple(a.split(":", 1)) for a in config.bot.admins if ":" in a]
    # Only identities that could give the role, or whose user holds it: not every identity.
    rows = await uow.session.execute(
        select(Identity.user_id, *_ADMIN_INPUTS).where(
            or_(
                Identity.admin_word.is_(True),
                Identity.platform_roles.is_not(None),  # stored where roles decide
                tuple_(Identity.platform, Identity.external_id).in_(listed),
                Identity.user_id.in_(holders),
            )
        )
    )
    given: set[int] = set()
    for user_id, platform, external_id, word, said in rows:
        if gives_admin(config, platform, external_id, word, said):
            given.add(user_id)
    holding = set(
        (await uow.session.execute(select(UserRole.user_id).where(UserRole.role == "admin")))
        .scalars()
        .all()
    )
    for user_id in given - holding:
        await grant_role(uow, user_id, "admin")
    for user_id in holding - given:
        await revoke_role(uow, user_id, "admin")
    return len(given - holding), len(holding - given)


async def settle_admin(uow: UnitOfWork, config: Config, user_id: int) -> None:
    """Grant or revoke the user's admin role as their identities now give it, after identities
    moved between accounts (a link or an unlink)."""
    if await admin_given(uow, config, user_id):
        await grant_role(uow, user_id, "admin")
    else:
        await revoke_role(uow, user_id, "admin")


async def grant_role(uow: UnitOfWork, user_id: int, role: str) -> None:
    """Idempotent under concurrency: two processes starting at once both settle the admins,
    and the second insert of the same role must not fail the start (`user_roles`' key keeps
    one row)."""
    insert = pg_insert if uow.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await uow.session.execute(
        insert(UserRole).values(user_id=user_id, role=role).on_conflict_do_nothing()
    )


async def revoke_role(uow: UnitOfWork, user_id: int, role: str) -> None:
    """A statement, not an ORM delete: a row another process removed first is no error."""
    await uow.session.execute(
        delete(UserRole).where(UserRole.user_id == user_id, UserRole.role == role)
    )


async def mentor_profile_of(uow: UnitOfWork, user_id: int) -> MentorProfile | None:
    return (
        await uow.session.execute(select(MentorProfile).where(MentorProfile.user_id == user_id))
    ).scalar_one_or_none()


async def admin_ids(uow: UnitOfWork) -> list[int]:
    rows = await uow.session.execute(
        select(UserRole.user_id).where(UserRole.role == "admin").order_by(UserRole.user_id)
    )
    return list(rows.scalars())
