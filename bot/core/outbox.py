"""Durable notifications: written in the transaction that causes them, delivered after commit.

A notice to another user (a mentor offered a request, a learner told it was accepted, a
reminder) is rendered in the recipient's language and timezone and stored as an outbox row in
the same transaction as the change it reports, so a crash can neither lose it nor send news of a
change that was rolled back. Delivery claims rows with a lease (`claimed_until`): a process that
dies mid-delivery leaves rows that another takes after the lease. Delivery is therefore
at-least-once at the platform boundary; a duplicate needs a crash between the platform's
acknowledgement and our commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from bot.core.i18n import Msg
from bot.core.replies import Attachment, Choice, Reply, Say, render
from bot.core.users import admin_ids
from storage.models import Identity, OutboxMessage, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
DIGEST = "digest"  # the key in an outbox row's body naming its digest kind

Sender = Callable[[Identity, Reply], Awaitable[None]]


async def enqueue(
    uow: UnitOfWork, user_id: int, say: Say, now: datetime, digest: str | None = None
) -> None:
    user = await uow.get(User, user_id)
    if user is None or user.deleted_at is not None:  # an erased account has nowhere to be told
        return
    await keep_reply(uow, render(user_id, say, user.language, user.timezone), now, digest)


async def tell(
    uow: UnitOfWork,
    user_id: int,
    msg: Msg,
    now: datetime,
    choices: Sequence[Choice] = (),
    attachments: Sequence[Attachment] = (),
    digest: str | None = None,
) -> None:
    """Tell another user something: written in this transaction, delivered after it commits on
    the platform they use, in their language and timezone. Notices with the same `digest`
    kind may be sent together as one message (see `bot.core.notifier`)."""
    await enqueue(uow, user_id, Say(msg, tuple(choices), tuple(attachments)), now, digest)


async def tell_admins(
    uow: UnitOfWork, msg: Msg, now: datetime, choices: Sequence[Choice] = ()
) -> None:
    """Tell every admin, each in their own language. Notices of one kind (one message: every
    low rating, every mentor application) are a digest kind, so a burst of them reaches each
    admin as one digest rather than one message each (`bot.core.notifier`)."""
    for admin in await admin_ids(uow):
        await tell(uow, admin, msg, now, choices, digest=msg.msgid)


async def keep_reply(
    uow: UnitOfWork, reply: Reply, now: datetime, digest: str | None = None
) -> None:
    """Keep a rendered reply a platform would not take now; the notifier delivers it later.
    `digest` names the kind of notice it may be collected with (`DIGEST`)."""
    body = reply.to_json()
    if digest is not None:
        body[DIGEST] = digest
    row = OutboxMessage(user_id=reply.user_id, body=body, created_at=now, attempts=0)
    uow.add(row)
    uow.outbox.append(row)


async def claim_batch(
    uow: UnitOfWork,
    now: datetime,
    platforms: Collection[str],
    limit: int = 100,
    lease: timedelta = LEASE,
    ids: Collection[int] | None = None,
) -> list[OutboxMessage]:
    """Lease up to `limit` undelivered, unleased rows whose user this process can reach: the
    oldest, or among `ids` (what a transaction that just committed wrote)."""
    reachable = select(Identity.user_id).where(Identity.platform.in_(list(platforms)))
    pending = (
        select(OutboxMessage.id)
        .where(OutboxMessage.sent_at.is_(None))
        .where(OutboxMessage.user_id.in_(reachable))
        .where(or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        pending = pending.where(OutboxMessage.id.in_(list(ids)))
    found = list((await uow.session.execute(pending)).scalars())
    if not found:
        return []
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(found))
        .where(OutboxMessage.sent_at.is_(None))
        .values(claimed_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    rows = list((await uow.session.execute(stmt)).scalars())
    return sorted(rows, key=lambda r: r.id)


async def identities_by_recency(
    uow: UnitOfWork, user_ids: Collection[int]
) -> dict[int, list[Identity]]:
    """Each user's identities, the one they used last first."""
    if not user_ids:
        return {}
    stmt = (
        select(Identity)
        .where(Identity.user_id.in_(list(user_ids)))
        .order_by(Identity.last_seen_at.desc(), Identity.id)
    )
    found: dict[int, list[Identity]] = {}
    for identity in (await uow.session.execute(stmt)).scalars():
        found.setdefault(identity.user_id, []).append(identity)
    return found
