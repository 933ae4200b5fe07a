"""One person, one account: joining identities across platforms with one-time codes.

**Linking.** `/link` gives a one-time code (valid `accounts.link_code_minutes`, single use; only
its SHA-256 is stored). Entering it elsewhere (`/link CODE`) moves the code owner's identities
onto the account entering it and merges that account into it, in the one transaction of that
message: orders, enrollments, lessons, requests, sessions, ratings, the mentor profile (when only
one side has one), roles, pending notices; the earlier-created account's language and timezone
win. Every table that refers to a user is merged (`merge_accounts` finds them in the schema), so
new tables follow without changes here. Linking is refused, changing nothing, when the two
accounts cannot be one: both are mentors, one mentored the other, both hold the same course
with sessions left, or both booked a session at the same time. Wrong, expired and used codes are
counted per user in `link_failures`; after `link_max_failures` within
`link_failure_window_minutes` every code is refused until the window passes, which makes
guessing the 32⁸ ≈ 10¹² codes hopeless.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, delete, func, literal, or_, select, update
from sqlalchemy.orm import aliased

from bot.core.errors import BadInput
from bot.core.i18n import When, _
from bot.core.replies import write_to_admins
from bot.core.users import mentor_profile_of
from bot.learning.courses import course_title
from storage.models import (
    AccountMerge,
    Base,
    Conversation,
    Course,
    Enrollment,
    Identity,
    LessonDelivery,
    LessonDrip,
    LessonRating,
    LinkCode,
    LinkFailure,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    MergedRow,
    User,
    UserRole,
)
from storage.uow import UnitOfWork

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud or retyped
CODE_LENGTH = 8
SHARED_ROLE = "role held by both"  # a MergedRow column name: a role copied back on parting


# --- link codes -----------------------------------------------------------------------------


def normalize_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode("ascii", "ignore")).hexdigest()


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


async def new_link_code(uow: UnitOfWork, user_id: int, now: datetime, minutes: int) -> str:
    """A fresh code for this user; their earlier unused codes stop working."""
    await uow.session.execute(
        delete(LinkCode).where(LinkCode.user_id == user_id).where(LinkCode.used_at.is_(None))
    )
    code = "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))
    uow.add(
        LinkCode(
            user_id=user_id,
            code_hash=hash_code(code),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
            used_at=None,
        )
    )
    await uow.flush()
    return format_code(code)


async def recent_failures(uow: UnitOfWork, user_id: int, since: datetime) -> list[datetime]:
    rows = await uow.session.execute(
        select(LinkFailure.attempted_at)
        .where(LinkFailure.user_id == user_id)
        .where(LinkFailure.attempted_at > since)
        .order_by(LinkFailure.attempted_at)
    )
    return list(rows.scalars())


async def find_code(uow: UnitOfWork, code: str, *, lock: bool = False) -> LinkCode | None:
    """The code's row; `lock` holds it (and rereads it) so that two people entering it at
    once cannot both use it. Lock the code's user first: generating a code locks its user,
    then the codes, and the same order everywhere keeps deadlocks out."""
    stmt = select(LinkCode).where(LinkCode.code_hash == hash_code(code))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await uow.session.execute(stmt)).scalar_one_or_none()


# --- merging --------------------------------------------------------------------------------


def user_columns() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) in the schema that refers to a user."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table.name == User.__tablename__ for fk in column.foreign_keys):
                found.append((table, column))
    return found


async def check_mergeable(uow: UnitOfWork, keep: int, gone: int) -> None:
    """Refuse (BadInput, nothing changed) what one account cannot hold."""
    mentors = [await mentor_profile_of(uow, u) for u in (keep, gone)]
    if all(m is not None for m in mentors):
        raise BadInput(
            _(
                "Both accounts have a mentor profile, and one account can have only one. "
                "Ask the admins to help with /support."
            ),
            [write_to_admins()],
        )
    mentor = next((m for m in mentors if m is not None), None)
    if mentor is not None:
        together = await uow.session.execute(
            select(MentorshipRequest.id)
            .where(MentorshipRequest.mentor_id == mentor.id)
            .where(MentorshipRequest.learner_id.in_((keep, gone)))
            .limit(1)
        )
        if together.first() is not None:
            raise BadInput(
                _(
                    "These two accounts mentor each other, so they cannot be joined into one "
                    "account."
                )
            )
    e1, e2 = aliased(Enrollment), aliased(Enrollment)
    both = await uow.session.execute(
        select(Course)
        .join(e1, e1.course_id == Course.id)
        .join(e2, e2.course_id == Course.id)
        .where(e1.user_id == keep, e2.user_id == gone)
        .where(e1.status == "active", e2.status == "active")
        .where(e1.credits_remaining > 0, e2.credits_remaining > 0)
        .limit(1)
    )
    course = both.scalar_one_or_none()
    if course is not None:
        raise BadInput(
            _(
                "Both accounts have {title} with sessions left. Use up the sessions on one of "
                "them, or ask the admins to refund one (/support), then link again.",
                title=course_title(course),
            ),
            [write_to_admins()],
        )
    # One person is in at most one session at a time, whatever their role on either account.
    keep_busy, gone_busy = [
        await _booked(uow, u, m) for u, m in zip((keep, gone), mentors, strict=True)
    ]
    start = next(
        (max(a, b) for a, a_end in keep_busy for b, b_end in gone_busy if a < b_end and b < a_end),
        None,
    )
    if start is not None:
        raise BadInput(
            _(
                "Both accounts have a session booked at {when}. Cancel one, then link again.",
                when=When(start),
            )
        )


async def _booked(
    uow: UnitOfWork, user_id: int, profile: MentorProfile | None
) -> list[tuple[datetime, datetime]]:
    """When the account is in a scheduled session, as the learner or as the mentor."""
    sessions = await uow.session.execute(
        select(MentorSession)
        .where(MentorSession.status == "scheduled")
        .where(
            or_(
                MentorSession.learner_id == user_id,
                MentorSession.mentor_id == (profile.id if profile is not None else -1),
            )
        )
    )
    return [
        (s.start_at, s.start_at + timedelta(minutes=s.duration_minutes)) for s in sessions.scalars()
    ]


async def merge_accounts(uow: UnitOfWork, keep: User, gone: User, now: datetime) -> AccountMerge:
    """Move everything of `gone` onto `keep`, in the caller's transaction, and delete `gone`.

    Call `check_mergeable` first. Rows `keep` already has an equivalent of (the same role,
    lesson received or rated, drip), `gone`'s conversation step and unused link codes are
    dropped first; then every column that refers to a user is repointed, and each repointed
    row is recorded under the returned merge so that `part_accounts` can move it back.
    """
    merge = AccountMerge(
        survivor_id=keep.id,
        survivor_name=keep.display_name,
        merged_name=gone.display_name,
        merged_language=gone.language,
        merged_timezone=gone.timezone,
        merged_created_at=gone.created_at,
        merged_at=now,
        undone_at=None,
    )
    uow.add(merge)
    await uow.flush()
    older = keep if keep.created_at <= gone.created_at else gone
    keep.language, keep.timezone = older.language, older.timezone
    run = uow.session.execute
    # A role both hold stays once, on `keep`; `gone`'s copy is recorded, for parting to give
    # it back: an admin who linked an account that is an admin too is still one after /unlink.
    shared = await run(
        select(UserRole.role)
        .where(UserRole.user_id == gone.id)
        .where(UserRole.role.in_(select(UserRole.role).where(UserRole.user_id == keep.id)))
    )
    for role in shared.scalars():
        uow.add(
            MergedRow(
                merge_id=merge.id,
                table_name=UserRole.__tablename__,
                column_name=SHARED_ROLE,
                row_key=role,
            )
        )
    for model, key in (
        (UserRole, UserRole.role),
        (LessonDelivery, LessonDelivery.lesson_id),
        (LessonRating, LessonRating.lesson_id),
        (LessonDrip, LessonDrip.course_id),
    ):
        kept = select(key).where(model.user_id == keep.id)
        await run(
            delete(model)
            .where(model.user_id == gone.id)
            .where(key.in_(kept))
            .execution_options(synchronize_session=False)
        )
    await run(delete(Conversation).where(Conversation.user_id == gone.id))
    await run(delete(LinkCode).where(LinkCode.user_id == gone.id).where(LinkCode.used_at.is_(None)))
    for table, column in user_columns():
        if table.name == User.__tablename__:
            continue
        others = [c for c in table.primary_key.columns if c is not column]
        picked: list[Any] = list(others) or [literal(1)]
        moved = await run(select(*picked).where(column == gone.id))
        for row in moved:
            row_key = json.dumps({c.name: _plain(v) for c, v in zip(others, row, strict=False)})
            uow.add(
                MergedRow(
                    merge_id=merge.id,
                    table_name=table.name,
                    column_name=column.name,
                    row_key=row_key,
                )
            )
        await run(update(table).where(column == gone.id).values({column.key: keep.id}))
    await uow.session.delete(gone)
    await uow.flush()
    return merge


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, str)) or value is None else str(value)


async def merges_to_undo(uow: UnitOfWork, identity: Identity) -> list[AccountMerge]:
    """The merges to undo so that `identity` stands apart with what it brought.

    An identity a merge brought in leaves by undoing that merge (the latest such one): it goes
    with the rows its account brought. An identity native to the account stays, and every
    account merged into it leaves instead, each with what it brought. Either way the account
    that bought something keeps it, whichever side unlinks.
    """
    current = await uow.session.execute(
        select(AccountMerge)
        .where(AccountMerge.survivor_id == identity.user_id)
        .where(AccountMerge.undone_at.is_(None))
        .order_by(AccountMerge.id.desc())
    )
    merges = list(current.scalars())
    brought = await uow.session.execute(
        select(MergedRow.merge_id)
        .where(MergedRow.merge_id.in_([m.id for m in merges]))
        .where(MergedRow.table_name == Identity.__tablename__)
        .where(MergedRow.row_key == json.dumps({"id": identity.id}))
        .order_by(MergedRow.merge_id.desc())
        .limit(1)
    )
    merge_id = brought.scalar_one_or_none()
    if merge_id is not None:
        return [m for m in merges if m.id == merge_id]
    return merges


async def part_accounts(uow: UnitOfWork, merge: AccountMerge, now: datetime) -> User:
    """Undo `merge`: the merged account comes back as a new user with the rows it brought that
    are still on the survivor; the survivor gets its own name back."""
    survivor = await uow.get(User, merge.survivor_id)
    assert survivor is not None
    parted = User(
        display_name=merge.merged_name,
        language=merge.merged_language,
        timezone=merge.merged_timezone,
        created_at=merge.merged_created_at,
        deleted_at=None,
    )
    uow.add(parted)
    await uow.flush()
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    rows = await uow.session.execute(select(MergedRow).where(MergedRow.merge_id == merge.id))
    for moved in rows.scalars():
        if moved.column_name == SHARED_ROLE:
            uow.add(UserRole(user_id=parted.id, role=moved.row_key))
            continue
        table = tables.get(moved.table_name)
        if table is None:
            continue
        column = table.columns[moved.column_name]
        where = [column == survivor.id]
        where += [table.columns[k] == v for k, v in json.loads(moved.row_key).items()]
        await uow.session.execute(update(table).where(*where).values({column.key: parted.id}))
    survivor.display_name = merge.survivor_name
    merge.undone_at = now
    await uow.flush()
    return parted


async def platforms_of(uow: UnitOfWork, user_id: int) -> list[str]:
    """The platforms an account is on, sorted."""
    rows = await uow.session.execute(
        select(Identity.platform).where(Identity.user_id == user_id).distinct()
    )
    return sorted(rows.scalars())


async def count_identities(uow: UnitOfWork, user_id: int) -> int:
    found = await uow.session.execute(
        select(func.count(Identity.id)).where(Identity.user_id == user_id)
    )
    return int(found.scalar_one())
