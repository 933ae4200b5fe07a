"""Community access that follows payment: one rule, one table of desired and actual state.

A course may give its active learners community spaces (`[community] spaces`): a Discord role
(granting a channel or forum) or a Telegram supergroup. Each person's access to each space is
one `AccessGrant` row: `desired` is what the rule says (granted while they are entitled),
`actual` what the platform was last made or seen to do. Changing `desired` is a database write
in the caller's unit of work (`grant_access`, `revoke_access`), so it commits or rolls back with
the payment, refund or erasure that caused it; the platform is called later, by the sweep,
outside any transaction (`Community.sweep`).

The sweep claims rows whose two states differ with a lease (`UPDATE … RETURNING` under
`BEGIN IMMEDIATE` on SQLite, `FOR UPDATE SKIP LOCKED` on PostgreSQL), as reminders and the
outbox are claimed, so two processes never make the same grant: each call to the platform is
made once (a crash between the platform's answer and our commit repeats it after the lease,
which every operation here tolerates). A failure waits and is retried with a growing pause.
Every `check_minutes` each settled row is also compared with what the platform says
(`SpacePort.check`): someone given the role by hand after a refund, or a revoke that failed
while the platform was down, is put right by the next pass. Every change is logged
(`AccessLog`) for `/admin spaces`.

Who is entitled: a learner with an active enrollment in the course (`entitled`). Other features
(subscriptions) call `grant_access`/`revoke_access` with their own reason; the enrollment pass
(`sync_enrollments`) only revokes what enrollments granted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.community.spaces import PLATFORM as PRIVATE_PLATFORM
from bot.community.spaces import PrivatePort, sweep_private
from bot.config import Config
from bot.core.clock import Clock, real_span
from bot.core.i18n import _
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.learning.lessons import enrolled
from storage.models import AccessGrant, AccessLog, Course, Enrollment, Identity, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

GRANTED, REVOKED, NONE = "granted", "revoked", "none"
# Grants the enrollment rule owns: a subscription's access comes through its enrollment too, so
# the sweep revokes it when no active enrollment in the course is left, as a bought course's.
ENROLLMENT_REASONS = frozenset({"payment", "refund", "revoked", "deleteme", "subscription"})
LEASE = timedelta(seconds=60)
BATCH = 50
INSERT_CHUNK = 500  # rows per insert: SQLite allows 32,766 parameters in one statement
RETRY = timedelta(minutes=1)  # after a failure; doubled per attempt, at most an hour


@dataclass(frozen=True)
class Space:
    """One community space: a course's Discord role or Telegram group."""

    course: str  # the course's slug
    platform: str
    ref: str  # the role id or the chat id

    @property
    def key(self) -> str:
        return f"{self.course}@{self.platform}:{self.ref}"


@dataclass(frozen=True)
class Granted:
    """What the platform did for a grant: a Telegram invite link to send, or nothing."""

    invite_link: str | None = None


class SpacePort(Protocol):
    """A platform's side of community access, implemented by its adapter."""

    async def grant(
        self, ref: str, external_id: str, expires: datetime, previous_link: str | None
    ) -> Granted:
        """Let the person in (add the role; make a single-use link expiring at `expires`,
        revoking `previous_link`, the one sent before, if any)."""
        ...

    async def revoke(self, ref: str, external_id: str, invite_link: str | None) -> None:
        """Take the person out (remove the role; remove from the group, revoke the link)."""
        ...

    async def check(self, ref: str, external_id: str, desired: str) -> str | None:
        """What the platform says now: GRANTED, REVOKED, or None when it cannot tell (e.g.
        an invite not used yet)."""
        ...


def spaces_of(config: Config, slug: str) -> list[Space]:
    return [Space(slug, p, ref) for p, ref in config.community.course_spaces(slug)]


def all_spaces(config: Config) -> list[Space]:
    found: dict[str, Space] = {}
    for entry in config.community.spaces:
        slug = entry.partition("=")[0].strip()
        for space in spaces_of(config, slug):
            found[space.key] = space
    return list(found.values())


def _log(uow: UnitOfWork, row: AccessGrant, action: str, now: datetime, detail: str = "") -> None:
    _log_values(
        uow,
        row.id,
        row.user_id,
        row.space,
        action,
        row.desired,
        row.actual,
        row.reason,
        now,
        detail,
    )


def _log_values(
    uow: UnitOfWork,
    grant_id: int,
    user_id: int,
    space: str,
    action: str,
    desired: str,
    actual: str,
    reason: str,
    now: datetime,
    detail: str = "",
) -> None:
    uow.session.add(
        AccessLog(
            grant_id=grant_id,
            user_id=user_id,
            space=space,
            action=action,
            desired=desired,
            actual=actual,
            reason=reason,
            detail=detail[:200],
            at=now,
        )
    )


async def grant_access(
    uow: UnitOfWork, user_id: int, space: Space, reason: str, now: datetime
) -> int:
    """The hook: `user_id` should be in `space` (for each of their identities on its
    platform). Returns how many rows changed; the sweep does the platform's part."""
    identities = (
        await uow.session.execute(
            select(Identity.external_id)
            .where(Identity.user_id == user_id)
            .where(Identity.platform == space.platform)
        )
    ).scalars()
    changed = 0
    for external_id in list(identities):
        row = (
            await uow.session.execute(
                select(AccessGrant)
                .where(AccessGrant.user_id == user_id)
                .where(AccessGrant.space == space.key)
                .where(AccessGrant.external_id == external_id)
            )
        ).scalar_one_or_none()
        if row is None:
            # Two processes may grant the same person at once: the unique key keeps one row,
            # and the one that did not insert it leaves it to the other.
            dialect = uow.session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            inserted = await uow.session.execute(
                insert(AccessGrant)
                .values(
                    user_id=user_id,
                    space=space.key,
                    platform=space.platform,
                    space_ref=space.ref,
                    external_id=external_id,
                    desired=GRANTED,
                    actual=NONE,
                    reason=reason,
                    attempts=0,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["user_id", "space", "external_id"])
                .returning(AccessGrant.id)
            )
            new_id = inserted.scalar_one_or_none()
            if new_id is not None:
                _log_values(uow, new_id, user_id, space.key, "grant", GRANTED, NONE, reason, now)
                changed += 1
            continue
        elif row.desired == GRANTED:
            continue
        else:
            row.desired, row.reason, row.updated_at, row.attempts = GRANTED, reason, now, 0
            row.claimed_until = None
        _log(uow, row, "grant", now)
        changed += 1
    return changed


async def revoke_access(
    uow: UnitOfWork, user_id: int, space: Space | str, reason: str, now: datetime
) -> int:
    """The hook: `user_id` should no longer be in `space` (a `Space`, or its key)."""
    key = space if isinstance(space, str) else space.key
    rows = (
        await uow.session.execute(
            select(AccessGrant)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.space == key)
            .where(AccessGrant.desired == GRANTED)
        )
    ).scalars()
    changed = 0
    for row in list(rows):
        row.desired, row.reason, row.updated_at, row.attempts = REVOKED, reason, now, 0
        row.claimed_until = None
        _log(uow, row, "revoke", now)
        changed += 1
    return changed


async def revoke_course_access(
    uow: UnitOfWork, user_id: int, course_id: int, reason: str, now: datetime
) -> int:
    """An enrollment ended (refund, erasure): revoke the course's spaces unless another
    active enrollment in the course still entitles the user."""
    if await enrolled(uow, user_id, course_id):
        return 0
    course = await uow.get(Course, course_id)
    if course is None:
        return 0
    keys = (
        await uow.session.execute(
            select(AccessGrant.space)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.space.like(f"{course.slug}@%"))
            .distinct()
        )
    ).scalars()
    changed = 0
    for key in list(keys):
        changed += await revoke_access(uow, user_id, key, reason, now)
    return changed


async def regrant_course_access(
    uow: UnitOfWork, user_id: int, course_id: int, reason: str, now: datetime
) -> int:
    """An enrollment became active again (a lapsed subscription renewed): every space of the
    course the user was taken out of is theirs again at once. A first grant needs the
    configured spaces and comes from the sweep's enrollment rule, within a sweep, as for a
    bought course."""
    course = await uow.get(Course, course_id)
    if course is None:
        return 0
    rows = (
        await uow.session.execute(
            select(AccessGrant.space, AccessGrant.platform, AccessGrant.space_ref)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.space.like(f"{course.slug}@%"))
            .where(AccessGrant.desired == REVOKED)
            .distinct()
        )
    ).all()
    changed = 0
    for _key, platform, ref in rows:
        changed += await grant_access(uow, user_id, Space(course.slug, platform, ref), reason, now)
    return changed


async def revoke_everything(uow: UnitOfWork, user_id: int, reason: str, now: datetime) -> int:
    """/deleteme: every space the user is in, whatever granted it."""
    keys = (
        await uow.session.execute(
            select(AccessGrant.space)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.desired == GRANTED)
            .distinct()
        )
    ).scalars()
    changed = 0
    for key in list(keys):
        changed += await revoke_access(uow, user_id, key, reason, now)
    return changed


async def sync_enrollments(uow: UnitOfWork, config: Config, now: datetime) -> int:
    """The rule over every configured space: each active learner of the course (with an
    identity on its platform) granted; each enrollment grant whose learner is no longer
    entitled revoked. Returns the rows changed."""
    changed = 0
    for space in all_spaces(config):
        course = (
            await uow.session.execute(select(Course).where(Course.slug == space.course))
        ).scalar_one_or_none()
        if course is None:
            continue
        entitled_ids = (
            select(Enrollment.user_id, Identity.external_id)
            .join(Identity, Identity.user_id == Enrollment.user_id)
            .join(User, User.id == Enrollment.user_id)
            .where(Enrollment.course_id == course.id)
            .where(Enrollment.status == "active")
            .where(Identity.platform == space.platform)
            .where(User.deleted_at.is_(None))
        )
        row_for = select(AccessGrant.id).where(
            AccessGrant.user_id == Enrollment.user_id,
            AccessGrant.space == space.key,
            AccessGrant.external_id == Identity.external_id,
        )
        # New learners: one insert for all (a row another process inserted meanwhile is kept).
        new = list((await uow.session.execute(entitled_ids.where(~row_for.exists()))).all())
        changed += await _insert_grants(uow, space, set(new), now)
        # Learners whose access had been revoked and who are entitled again (bought again).
        again = await uow.session.execute(
            entitled_ids.with_only_columns(Enrollment.user_id)
            .where(row_for.where(AccessGrant.desired == REVOKED).exists())
            .distinct()
        )
        for user_id in list(again.scalars()):
            changed += await grant_access(uow, user_id, space, "payment", now)
        still_entitled = (
            select(Enrollment.id)
            .where(Enrollment.user_id == AccessGrant.user_id)
            .where(Enrollment.course_id == course.id)
            .where(Enrollment.status == "active")
        )
        lapsed = await uow.session.execute(
            select(AccessGrant.user_id)
            .where(AccessGrant.space == space.key)
            .where(AccessGrant.desired == GRANTED)
            .where(AccessGrant.reason.in_(ENROLLMENT_REASONS))
            .where(~still_entitled.exists())
            .distinct()
        )
        for user_id in list(lapsed.scalars()):
            changed += await revoke_access(uow, user_id, space, "revoked", now)
    return changed


async def _insert_grants(
    uow: UnitOfWork, space: Space, pairs: set[tuple[int, str]], now: datetime
) -> int:
    """Rows granting `space` to each (user, platform id), with their log, in two statements."""
    if not pairs:
        return 0
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = [
        {
            "user_id": user_id,
            "space": space.key,
            "platform": space.platform,
            "space_ref": space.ref,
            "external_id": external_id,
            "desired": GRANTED,
            "actual": NONE,
            "reason": "payment",
            "attempts": 0,
            "updated_at": now,
        }
        for user_id, external_id in sorted(pairs)
    ]
    made: list[Any] = []
    for start in range(0, len(values), INSERT_CHUNK):  # bound parameters per statement
        inserted = await uow.session.execute(
            insert(AccessGrant)
            .values(values[start : start + INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=["user_id", "space", "external_id"])
            .returning(AccessGrant.id, AccessGrant.user_id)
        )
        made.extend(inserted.all())
    for grant_id, user_id in made:
        _log_values(uow, grant_id, user_id, space.key, "grant", GRANTED, NONE, "payment", now)
    return len(made)


REISSUE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Mine:
    """One of the user's community spaces, for `/community`."""

    course: str
    platform: str
    reissued: bool  # a new invite link is on its way
    wait_until: datetime | None = None  # a link was just sent: the next from then


async def my_spaces(uow: UnitOfWork, user_id: int, now: datetime) -> list[Mine]:
    """The user's spaces; an invite link (Telegram) is made anew for each, by the next sweep,
    unless one was sent within `REISSUE_AFTER` (the old link is revoked then)."""
    rows = (
        await uow.session.execute(
            select(AccessGrant)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.desired == GRANTED)
            .order_by(AccessGrant.id)
        )
    ).scalars()
    found = []
    for row in list(rows):
        course = row.space.partition("@")[0]
        if row.actual != GRANTED or row.invite_link is None:
            found.append(Mine(course, row.platform, reissued=row.actual != GRANTED))
            continue
        sent = row.checked_at or row.updated_at
        if sent > now - REISSUE_AFTER:
            found.append(Mine(course, row.platform, False, sent + REISSUE_AFTER))
            continue
        row.actual, row.claimed_until = NONE, None
        _log(uow, row, "reissue", now)
        found.append(Mine(course, row.platform, reissued=True))
    return found


async def join_allowed(
    uow: UnitOfWork, platform: str, ref: str, external_id: str, now: datetime
) -> bool:
    """A join request to a space (a Telegram group's join link): allowed when the person's
    access there is desired; then it is actual too."""
    row = (
        await uow.session.execute(
            select(AccessGrant)
            .where(AccessGrant.platform == platform)
            .where(AccessGrant.space_ref == ref)
            .where(AccessGrant.external_id == external_id)
            .where(AccessGrant.desired == GRANTED)
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        return False
    row.actual, row.updated_at = GRANTED, now
    _log(uow, row, "joined", now)
    return True


@dataclass(frozen=True)
class Claimed:
    """A row taken for one platform call, as plain data (no transaction stays open)."""

    id: int
    user_id: int
    platform: str
    ref: str
    external_id: str
    desired: str
    invite_link: str | None
    attempts: int


@dataclass(frozen=True)
class SweepReport:
    changed: int = 0  # desired states the enrollment rule changed
    done: int = 0  # platform calls that succeeded
    failed: int = 0
    drift: int = 0  # rows found differing from what the platform says
    private: int = 0  # mentorship channels opened or deleted


class Community:
    """The platforms' ports and the sweep that makes each platform match `desired`."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock, config: Config) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._config = config
        self._ports: dict[str, SpacePort] = {}
        self._private: dict[str, PrivatePort] = {}
        self._checked_at: datetime | None = None

    def register(self, platform: str, port: SpacePort) -> None:
        self._ports[platform] = port

    def register_private(self, platform: str, port: PrivatePort) -> None:
        """The platform that makes a mentorship's private channel (Discord)."""
        self._private[platform] = port

    def unregister(self, platform: str) -> None:
        self._ports.pop(platform, None)
        self._private.pop(platform, None)

    @property
    def platforms(self) -> list[str]:
        return list(self._ports)

    async def sweep(self, *, check: bool | None = None) -> SweepReport:
        """Apply the enrollment rule, make the platforms match, and every `check_minutes`
        (or when `check`) compare settled rows with the platforms first."""
        now = self._clock.now()
        changed = 0
        if self._config.community.spaces:
            async with self._new_uow() as uow:
                changed = await sync_enrollments(uow, self._config, now)
                await uow.commit()
        every = timedelta(minutes=self._config.community.check_minutes)
        forced = bool(check)
        if check is None:
            check = self._checked_at is None or now - self._checked_at >= every
        drift = 0
        if check and self._ports:
            drift = await self._check(now, timedelta(0) if forced else every)
        if check:
            self._checked_at = now
        done = failed = 0
        while self._ports:
            claimed = await self._claim(now)
            if not claimed:
                break
            outcomes = [(row, await self._call(row)) for row in claimed]
            await self._record(outcomes)
            failures = sum(isinstance(o, Exception) for _r, o in outcomes)
            failed += failures
            done += len(outcomes) - failures
            if len(claimed) < BATCH:
                break
        private = self._private.get(PRIVATE_PLATFORM)
        opened = 0
        if private is not None:
            opened = await sweep_private(self._new_uow, self._clock, self._config, private)
        return SweepReport(changed, done, failed, drift, opened)

    async def _claim(self, now: datetime) -> list[Claimed]:
        lease = real_span(self._clock, LEASE)
        async with self._new_uow() as uow:
            due = (
                select(AccessGrant.id)
                .where(AccessGrant.desired != AccessGrant.actual)
                .where(AccessGrant.platform.in_(list(self._ports)))
                .where(or_(AccessGrant.claimed_until.is_(None), AccessGrant.claimed_until < now))
                .order_by(AccessGrant.updated_at, AccessGrant.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            ids = list((await uow.session.execute(due)).scalars())
            if not ids:
                return []
            rows = await uow.session.execute(
                update(AccessGrant)
                .where(AccessGrant.id.in_(ids))
                .where(AccessGrant.desired != AccessGrant.actual)
                .where(or_(AccessGrant.claimed_until.is_(None), AccessGrant.claimed_until < now))
                .values(claimed_until=now + lease, attempts=AccessGrant.attempts + 1)
                .returning(AccessGrant)
                .execution_options(synchronize_session=False)
            )
            claimed = [
                Claimed(
                    r.id,
                    r.user_id,
                    r.platform,
                    r.space_ref,
                    r.external_id,
                    r.desired,
                    r.invite_link,
                    r.attempts,
                )
                for r in rows.scalars()
            ]
            await uow.commit()
        return sorted(claimed, key=lambda c: c.id)

    async def _call(self, row: Claimed) -> Granted | Exception:
        """The one platform call for a claimed row; its failure as the value."""
        port = self._ports[row.platform]
        try:
            if row.desired == GRANTED:
                expires = self._clock.now() + timedelta(hours=self._config.community.invite_hours)
                return await port.grant(row.ref, row.external_id, expires, row.invite_link)
            await port.revoke(row.ref, row.external_id, row.invite_link)
        except Exception as exc:
            log.warning(
                "community access change failed; retried later",
                extra={"grant_id": row.id, "error": str(exc)[:200]},
            )
            return exc
        return Granted()

    async def _record(self, outcomes: list[tuple[Claimed, Granted | Exception]]) -> None:
        """What the platform calls of a claimed batch did, in one transaction: the actual
        state, the log, the invite link for the learner; a failure waits, then is retried."""
        now = self._clock.now()
        async with self._new_uow() as uow:
            grants = {
                g.id: g
                for g in (
                    await uow.session.execute(
                        select(AccessGrant)
                        .where(AccessGrant.id.in_([row.id for row, _o in outcomes]))
                        .with_for_update()
                    )
                ).scalars()
            }
            erased = set(
                (
                    await uow.session.execute(
                        select(User.id)
                        .where(User.id.in_({row.user_id for row, _o in outcomes}))
                        .where(User.deleted_at.is_not(None))
                    )
                ).scalars()
            )
            for row, outcome in outcomes:
                grant = grants[row.id]
                if isinstance(outcome, Exception):
                    pause = min(RETRY * (2 ** max(row.attempts - 1, 0)), timedelta(hours=1))
                    # Asked otherwise meanwhile: the next pass acts at once.
                    grant.claimed_until = now + pause if grant.desired == row.desired else None
                    _log(uow, grant, "failed", now, str(outcome))
                    continue
                grant.actual = row.desired
                grant.claimed_until = None
                grant.checked_at = now
                link = outcome.invite_link
                grant.invite_link = link if row.desired == GRANTED and link else None
                if row.desired == GRANTED and not link:
                    grant.invite_link = row.invite_link
                _log(uow, grant, "done", now)
                if link and grant.desired == GRANTED:
                    await tell(
                        uow,
                        row.user_id,
                        _(
                            "Your course's community group is open to you. The link works "
                            "once, for you, within {hours} hours:",
                            hours=self._config.community.invite_hours,
                        ),
                        now,
                        [Choice(_("Join the group"), link, url=True)],
                    )
                if row.user_id in erased and row.desired == REVOKED:
                    grant.external_id = f"erased:{grant.id}"  # the platform id goes too
            await uow.commit()

    async def _check(self, now: datetime, every: timedelta) -> int:
        """Compare settled rows not checked for `every` with what each platform says;
        differing ones become drift that the claim pass that follows repairs."""
        async with self._new_uow() as uow:
            rows = (
                await uow.session.execute(
                    select(AccessGrant)
                    .where(AccessGrant.desired == AccessGrant.actual)
                    .where(AccessGrant.platform.in_(list(self._ports)))
                    .where(~AccessGrant.external_id.like("erased:%"))
                    .where(
                        or_(
                            AccessGrant.checked_at.is_(None),
                            AccessGrant.checked_at <= now - every,
                        )
                    )
                    .where(
                        or_(
                            AccessGrant.claimed_until.is_(None),
                            AccessGrant.claimed_until < now,
                        )
                    )
                    .order_by(AccessGrant.checked_at, AccessGrant.id)
                    .limit(BATCH * 4)
                )
            ).scalars()
            settled = [(r.id, r.platform, r.space_ref, r.external_id, r.desired) for r in rows]
        seen: dict[int, str | None] = {}
        for row_id, platform, ref, external_id, desired in settled:
            try:
                seen[row_id] = await self._ports[platform].check(ref, external_id, desired)
            except Exception as exc:
                log.warning("community access check failed", extra={"error": str(exc)[:200]})
        drift = 0
        async with self._new_uow() as uow:
            for row_id, state in seen.items():
                grant = await uow.lock(AccessGrant, row_id)
                if grant is None or grant.desired != grant.actual:
                    continue
                grant.checked_at = now
                if state is not None and state != grant.desired:
                    grant.actual = state
                    _log(uow, grant, "drift", now)
                    drift += 1
            await uow.commit()
        return drift


async def state_by_space(uow: UnitOfWork) -> dict[str, dict[str, int]]:
    """For `/admin spaces`: per space, how many rows are in each state."""
    rows = await uow.session.execute(
        select(AccessGrant.space, AccessGrant.desired, AccessGrant.actual)
    )
    counts: dict[str, dict[str, int]] = {}
    for space, desired, actual in rows.all():
        bucket = counts.setdefault(space, {"in": 0, "out": 0, "pending": 0})
        if desired != actual:
            bucket["pending"] += 1
        elif desired == GRANTED:
            bucket["in"] += 1
        else:
            bucket["out"] += 1
    return counts


async def recent_log(uow: UnitOfWork, limit: int = 10) -> list[AccessLog]:
    rows = await uow.session.execute(
        select(AccessLog).order_by(AccessLog.at.desc(), AccessLog.id.desc()).limit(limit)
    )
    return list(rows.scalars())
