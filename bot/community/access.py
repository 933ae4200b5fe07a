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

Several courses may share one platform place (a Telegram forum supergroup, each course with its
own topic, `bot.community.topics`; or one Discord role). The platform sees one membership, so
a person's rows for one place are claimed, decided and checked together by the rule in
`bot.community.membership`: in while any course entitles them, one invite, one removal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.community import membership
from bot.community.invites import Placed, tell_invite, tell_shared
from bot.community.membership import SHARED, Plan
from bot.community.spaces import PLATFORM as PRIVATE_PLATFORM
from bot.community.spaces import PrivatePort, sweep_private
from bot.community.topics import Post, TopicPort, Topics, welcome_posts
from bot.config import Config
from bot.core.clock import Clock, real_span
from bot.learning.lessons import enrolled
from storage.models import AccessGrant, AccessLog, Course, Enrollment, Identity, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

GRANTED, REVOKED, NONE = membership.GRANTED, membership.REVOKED, "none"
# Grants the enrollment rule owns: a subscription's access comes through its enrollment too, so
# the sweep revokes it when no active enrollment in the course is left, as a bought course's.
ENROLLMENT_REASONS = frozenset({"payment", "refund", "revoked", "deleteme", "subscription"})
LEASE = timedelta(seconds=60)
BATCH = 50
INSERT_CHUNK = 500  # rows per insert: SQLite allows 32,766 parameters in one statement
RETRY = timedelta(minutes=1)  # after a failure; doubled per attempt, at most an hour


@dataclass(frozen=True)
class Space:
    """One community space: a course's Discord role or Telegram group (or a topic in it)."""

    course: str  # the course's slug
    platform: str
    ref: str  # the role id or the chat id
    # A forum topic in the chat: its name, or its message_thread_id as digits; "" for none.
    # Not part of the key: access is to the chat, the topic only says where the course talks.
    topic: str = ""

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
    return [Space(slug, p, ref, topic) for p, ref, topic in config.community.course_spaces(slug)]


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


def _place(row: AccessGrant | Claimed) -> tuple[str, str, str]:
    """The membership a row belongs to: the platform's place and the person there."""
    ref = row.space_ref if isinstance(row, AccessGrant) else row.ref
    return (row.platform, ref, row.external_id)


async def my_spaces(uow: UnitOfWork, user_id: int, now: datetime) -> list[Mine]:
    """The user's spaces; an invite link (Telegram) is made anew for each place, by the next
    sweep, unless one was sent within `REISSUE_AFTER` (the old link is revoked then). The
    courses sharing a place share its link, so they are reissued together."""
    rows = (
        await uow.session.execute(
            select(AccessGrant)
            .where(AccessGrant.user_id == user_id)
            .where(AccessGrant.desired == GRANTED)
            .order_by(AccessGrant.id)
        )
    ).scalars()
    places: dict[tuple[str, str, str], list[AccessGrant]] = {}
    for row in list(rows):
        places.setdefault(_place(row), []).append(row)
    found = []
    for together in places.values():
        linked = [r for r in together if r.actual == GRANTED and r.invite_link]
        sent = min((r.checked_at or r.updated_at for r in linked), default=None)
        for row in together:
            course = row.space.partition("@")[0]
            if sent is None or row.actual != GRANTED:
                found.append(Mine(course, row.platform, reissued=row.actual != GRANTED))
            elif sent > now - REISSUE_AFTER:
                found.append(Mine(course, row.platform, False, sent + REISSUE_AFTER))
            else:
                row.actual, row.claimed_until = NONE, None
                _log(uow, row, "reissue", now)
                found.append(Mine(course, row.platform, reissued=True))
    return found


async def _granted_at(
    uow: UnitOfWork, platform: str, ref: str, external_id: str
) -> list[AccessGrant]:
    """The person's rows desired GRANTED at one place, one per course entitling them."""
    rows = await uow.session.execute(
        select(AccessGrant)
        .where(AccessGrant.platform == platform)
        .where(AccessGrant.space_ref == ref)
        .where(AccessGrant.external_id == external_id)
        .where(AccessGrant.desired == GRANTED)
        .order_by(AccessGrant.id)
    )
    return list(rows.scalars())


async def join_allowed(
    uow: UnitOfWork, platform: str, ref: str, external_id: str, now: datetime
) -> bool:
    """A join request to a space (a Telegram group's join link): allowed when the person's
    access there is desired for any course; then it is actual for each of them."""
    rows = await _granted_at(uow, platform, ref, external_id)
    for row in rows:
        row.actual, row.updated_at = GRANTED, now
        _log(uow, row, "joined", now)
    return bool(rows)


@dataclass(frozen=True)
class Joined:
    """An entitled person joined a place: who, and the courses with a topic there."""

    user_id: int
    placed: tuple[tuple[str, str], ...]  # (course slug, topic) of each entitling space


async def member_joined(
    uow: UnitOfWork, config: Config, platform: str, ref: str, external_id: str
) -> Joined | None:
    """The platform says the person joined the place (a Telegram chat_member update): who
    they are and where their courses talk, or None when nothing entitles them there. Nothing
    changes here: an update handled late must not undo a later removal, and someone let in by
    hand is found by the check (`Community._check`)."""
    rows = await _granted_at(uow, platform, ref, external_id)
    if not rows:
        return None
    topic_of = {s.key: s.topic for s in all_spaces(config)}
    placed = tuple(
        (row.space.partition("@")[0], topic_of[row.space])
        for row in rows
        if topic_of.get(row.space)
    )
    return Joined(rows[0].user_id, placed)


@dataclass(frozen=True)
class Claimed:
    """A row taken for the platform, as plain data (no transaction stays open)."""

    id: int
    user_id: int
    space: str  # the space's key
    platform: str
    ref: str
    external_id: str
    desired: str
    actual: str
    invite_link: str | None
    attempts: int


def _claimed(r: AccessGrant) -> Claimed:
    return Claimed(
        r.id,
        r.user_id,
        r.space,
        r.platform,
        r.space_ref,
        r.external_id,
        r.desired,
        r.actual,
        r.invite_link,
        r.attempts,
    )


@dataclass(frozen=True)
class Outcome:
    """What the platform did for one membership's rows: the plan, the invite link a grant
    made, the thread id of each granted space's topic; or the failure."""

    plan: Plan
    link: str | None = None
    threads: dict[str, int] = field(default_factory=dict)  # space key → message_thread_id
    error: Exception | None = None
    member: bool = False  # SHARED into a topic: the platform says they are in the place now


@dataclass(frozen=True)
class SweepReport:
    changed: int = 0  # desired states the enrollment rule changed
    done: int = 0  # platform calls that succeeded
    failed: int = 0
    drift: int = 0  # memberships found differing from what the platform says
    private: int = 0  # mentorship channels opened or deleted


class Community:
    """The platforms' ports and the sweep that makes each platform match `desired`."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock, config: Config) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._config = config
        self._ports: dict[str, SpacePort] = {}
        self._private: dict[str, PrivatePort] = {}
        self._topic_ports: dict[str, TopicPort] = {}
        self._topics: dict[str, Topics] = {}  # kept across restarts of an adapter: a cache
        self._spaces = {s.key: s for s in all_spaces(config)}
        self._checked_at: datetime | None = None

    def register(self, platform: str, port: SpacePort) -> None:
        self._ports[platform] = port

    def register_private(self, platform: str, port: PrivatePort) -> None:
        """The platform that makes a mentorship's private channel (Discord)."""
        self._private[platform] = port

    def register_topics(self, platform: str, port: TopicPort) -> None:
        """The platform whose spaces may be forum topics (Telegram)."""
        self._topic_ports[platform] = port

    def unregister(self, platform: str) -> None:
        self._ports.pop(platform, None)
        self._private.pop(platform, None)
        self._topic_ports.pop(platform, None)

    def topics(self, platform: str) -> Topics:
        """The platform's topics by chat and name (made on first use, cached)."""
        if platform not in self._topics:
            self._topics[platform] = Topics(self._new_uow, self._clock, platform)
        return self._topics[platform]

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
            groups, due = await self._claim(now)
            if not groups:
                break
            outcomes = [(group, await self._call(group)) for group in groups]
            await self._post(await self._record(outcomes))
            calls = [o for _g, o in outcomes if o.plan.action != SHARED or o.error]
            failures = sum(o.error is not None for o in calls)
            failed += failures
            done += len(calls) - failures
            if due < BATCH:
                break
        private = self._private.get(PRIVATE_PLATFORM)
        opened = 0
        if private is not None:
            opened = await sweep_private(self._new_uow, self._clock, self._config, private)
        return SweepReport(changed, done, failed, drift, opened)

    async def _claim(self, now: datetime) -> tuple[list[list[Claimed]], int]:
        """Memberships with a row waiting for the platform, each with all its rows, under one
        lease; and how many waiting rows were found. A membership another process is
        claiming (a row locked, or leased) is left to it."""
        lease = real_span(self._clock, LEASE)
        platforms = list(self._ports)
        async with self._new_uow() as uow:
            due = (
                select(AccessGrant.id, AccessGrant.user_id)
                .where(AccessGrant.desired != AccessGrant.actual)
                .where(AccessGrant.platform.in_(platforms))
                .where(or_(AccessGrant.claimed_until.is_(None), AccessGrant.claimed_until < now))
                .order_by(AccessGrant.updated_at, AccessGrant.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            found = list((await uow.session.execute(due)).all())
            if not found:
                return [], 0
            # A person's rows for one place share their user id, which is indexed.
            of_users = (
                select(
                    AccessGrant.id,
                    AccessGrant.platform,
                    AccessGrant.space_ref,
                    AccessGrant.external_id,
                    AccessGrant.claimed_until,
                )
                .where(AccessGrant.user_id.in_({user for _id, user in found}))
                .where(AccessGrant.platform.in_(platforms))
            )
            everyone = list((await uow.session.execute(of_users)).all())
            lockable = set(
                (
                    await uow.session.execute(
                        select(AccessGrant.id)
                        .where(AccessGrant.id.in_([r.id for r in everyone]))
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            candidates = {i for i, _u in found}
            places: dict[tuple[str, str, str], list[Any]] = {}
            for r in everyone:
                places.setdefault((r.platform, r.space_ref, r.external_id), []).append(r)
            ids = [
                r.id
                for together in places.values()
                if any(r.id in candidates for r in together)
                and all(
                    r.id in lockable and (r.claimed_until is None or r.claimed_until < now)
                    for r in together
                )
                for r in together
            ]
            if not ids:
                return [], len(found)
            taken = await uow.session.execute(
                update(AccessGrant)
                .where(AccessGrant.id.in_(ids))
                .values(
                    claimed_until=now + lease,
                    attempts=case(
                        (AccessGrant.desired != AccessGrant.actual, AccessGrant.attempts + 1),
                        else_=AccessGrant.attempts,
                    ),
                )
                .returning(AccessGrant)
                .execution_options(synchronize_session=False)
            )
            claimed = sorted((_claimed(r) for r in taken.scalars()), key=lambda c: c.id)
            await uow.commit()
        groups: dict[tuple[str, str, str], list[Claimed]] = {}
        for one in claimed:
            groups.setdefault(_place(one), []).append(one)
        return list(groups.values()), len(found)

    async def _call(self, group: list[Claimed]) -> Outcome:
        """The one platform call (or none) for a membership's rows; its failure as the
        value. A granted space's topic is made first if it has to be."""
        decided = membership.plan(group)
        first = group[0]
        port = self._ports[first.platform]
        try:
            threads = await self._threads(group) if decided.action != membership.REVOKE else {}
            if decided.action == membership.GRANT:
                expires = self._clock.now() + timedelta(hours=self._config.community.invite_hours)
                granted = await port.grant(first.ref, first.external_id, expires, decided.link)
                return Outcome(decided, granted.invite_link, threads)
            if decided.action == membership.REVOKE:
                await port.revoke(first.ref, first.external_id, decided.link)
            if decided.action == SHARED and threads:
                return Outcome(decided, None, threads, member=await self._in_place(first))
        except Exception as exc:
            log.warning(
                "community access change failed; retried later",
                extra={"grant_id": first.id, "error": str(exc)[:200]},
            )
            return Outcome(decided, error=exc)
        return Outcome(decided, None, threads)

    async def _in_place(self, row: Claimed) -> bool:
        """Whether the platform says the person is in the place now (not merely invited: the
        join that follows welcomes them into every topic of theirs)."""
        try:
            seen = await self._ports[row.platform].check(row.ref, row.external_id, GRANTED)
        except Exception as exc:
            log.warning("community membership check failed", extra={"error": str(exc)[:200]})
            return False
        return seen == GRANTED

    async def _post(self, posts: list[tuple[str, Post]]) -> None:
        """The welcomes a sweep owes, after its commit (a crash before loses a welcome, never
        doubles one); a topic Telegram refuses (deleted meanwhile) changes nothing."""
        for platform, one in posts:
            port = self._topic_ports.get(platform)
            if port is None:
                continue
            try:
                await port.post(one.chat, one.thread_id, one.text)
            except Exception as exc:
                log.warning("topic welcome failed", extra={"error": str(exc)[:200]})

    async def _threads(self, group: list[Claimed]) -> dict[str, int]:
        """The thread id of the topic of each space in `group` being granted now."""
        platform, ref = group[0].platform, group[0].ref
        port = self._topic_ports.get(platform)
        threads: dict[str, int] = {}
        for row in group:
            space = self._spaces.get(row.space)
            if port is None or space is None or not space.topic or row.desired != GRANTED:
                continue
            if row.actual != row.desired:
                threads[row.space] = await self.topics(platform).ensure(port, ref, space.topic)
        return threads

    async def _record(
        self, outcomes: list[tuple[list[Claimed], Outcome]]
    ) -> list[tuple[str, Post]]:
        """What the platform calls of a claimed batch did, in one transaction: the actual
        state, the log, the invite link for the learner; a failure waits, then is retried.
        Returns the welcomes to post into topics (by platform) once that has committed."""
        now = self._clock.now()
        ids = [row.id for group, _o in outcomes for row in group]
        async with self._new_uow() as uow:
            grants = {
                g.id: g
                for g in (
                    await uow.session.execute(
                        select(AccessGrant).where(AccessGrant.id.in_(ids)).with_for_update()
                    )
                ).scalars()
            }
            erased = set(
                (
                    await uow.session.execute(
                        select(User.id)
                        .where(User.id.in_({row.user_id for row in grants.values()}))
                        .where(User.deleted_at.is_not(None))
                    )
                ).scalars()
            )
            posts = [
                (group[0].platform, post)
                for group, outcome in outcomes
                for post in await self._record_one(uow, grants, erased, group, outcome, now)
            ]
            await uow.commit()
        return posts

    async def _record_one(
        self,
        uow: UnitOfWork,
        grants: dict[int, AccessGrant],
        erased: set[int],
        group: list[Claimed],
        outcome: Outcome,
        now: datetime,
    ) -> list[Post]:
        """One membership's rows after its platform call (or none); the welcomes it owes."""
        told: list[Claimed] = []
        for row in group:
            grant = grants[row.id]
            if row.desired == row.actual:  # settled already: only the lease ends
                grant.claimed_until = None
                continue
            if outcome.error is not None:
                pause = min(RETRY * (2 ** max(row.attempts - 1, 0)), timedelta(hours=1))
                # Asked otherwise meanwhile: the next pass acts at once.
                grant.claimed_until = now + pause if grant.desired == row.desired else None
                _log(uow, grant, "failed", now, str(outcome.error))
                continue
            grant.actual, grant.invite_link = membership.settled(
                row, outcome.plan, outcome.link or row.invite_link
            )
            grant.claimed_until = None
            grant.checked_at = now
            _log(uow, grant, "shared" if outcome.plan.action == SHARED else "done", now)
            if row.desired == GRANTED and grant.desired == GRANTED:
                told.append(row)
            if row.user_id in erased and row.desired == REVOKED:
                grant.external_id = f"erased:{grant.id}"  # the platform id goes too
        if not told:
            return []
        port = self._topic_ports.get(group[0].platform)
        placed = [
            Placed(space.course, space.topic, row.ref, outcome.threads[row.space])
            for row in told
            if (space := self._spaces.get(row.space)) is not None and row.space in outcome.threads
        ]
        user_id = group[0].user_id
        if outcome.plan.action == membership.GRANT and outcome.link:
            hours = self._config.community.invite_hours
            await tell_invite(uow, user_id, outcome.link, hours, port, placed, now)
        elif outcome.plan.action == SHARED:
            await tell_shared(uow, user_id, port, placed, now)
            if outcome.member and placed:  # already in: no join will come to welcome them
                topics = self.topics(group[0].platform)
                pairs = [(one.course, one.topic) for one in placed]
                return await welcome_posts(uow, topics, user_id, group[0].ref, pairs)
        return []

    async def _check(self, now: datetime, every: timedelta) -> int:
        """Compare settled memberships not checked for `every` with what each platform says
        (one question per membership, judged by `membership.desired_of`); differing ones
        become drift that the claim pass that follows repairs."""
        async with self._new_uow() as uow:
            rows = (
                await uow.session.execute(
                    select(AccessGrant.user_id, AccessGrant.platform, AccessGrant.space_ref)
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
            ).all()
            everyone = (
                await uow.session.execute(
                    select(AccessGrant)
                    .where(AccessGrant.user_id.in_({user for user, _p, _r in rows}))
                    .where(AccessGrant.platform.in_(list(self._ports)))
                    .where(~AccessGrant.external_id.like("erased:%"))
                    .order_by(AccessGrant.id)
                )
            ).scalars()
            due = {(platform, ref) for _u, platform, ref in rows}
            places: dict[tuple[str, str, str], list[AccessGrant]] = {}
            for row in everyone:
                if (row.platform, row.space_ref) in due:
                    places.setdefault(_place(row), []).append(row)
            # A membership with a row waiting for the platform is the claim pass's to settle.
            settled = {
                place: ([r.id for r in together], membership.desired_of(together))
                for place, together in places.items()
                if all(
                    r.desired == r.actual and (r.claimed_until is None or r.claimed_until < now)
                    for r in together
                )
            }
        seen: dict[tuple[str, str, str], str | None] = {}
        for place, (_ids, desired) in settled.items():
            platform, ref, external_id = place
            try:
                seen[place] = await self._ports[platform].check(ref, external_id, desired)
            except Exception as exc:
                log.warning("community access check failed", extra={"error": str(exc)[:200]})
        drift = 0
        async with self._new_uow() as uow:
            for place, state in seen.items():
                grants = [await uow.lock(AccessGrant, i) for i in settled[place][0]]
                if any(g is None or g.desired != g.actual for g in grants):
                    continue
                together = [g for g in grants if g is not None]
                desired = membership.desired_of(together)
                for grant in together:
                    grant.checked_at = now
                if state is None or state == desired:
                    continue
                for grant in together:
                    if grant.desired == desired:  # the rows that stand for the membership
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
