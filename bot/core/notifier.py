"""The notifier port: reaches a user on whichever platform they last used.

Adapters register a sender per platform. A message for a user none of whose platforms is
connected in this process stays in the outbox until one is. An adapter that closes
unregisters first: batches already being sent through it finish (and are recorded), later ones
leave its users' notices to another process.

**Digests.** Admin notices carry a digest kind (their message: every low-rating alert is one
kind, every mentor application another; `bot.core.outbox.tell_admins`). The first notice of a
kind goes to an admin at once. One of that kind claimed within `digest` (`[notices]
digest_seconds`) of the last one sent to that admin is held, its lease set to the moment that
window closes; when it does, a sweep claims every held notice of the kind together and sends
them as one message, a count (`ngettext`) and each notice's text, their buttons merged. So a
burst of ten low ratings in a minute reaches each admin as two messages: the first alert at
once, then a digest of the other nine some minutes later; nothing is dropped, and the digest
opens the next window. Within one process a kind is collected exactly so; two processes
claiming held notices of the same kind at the same moment may each send a digest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.core.clock import Clock, real_span
from bot.core.i18n import ngettext
from bot.core.metrics import NOTICES_SENT
from bot.core.outbox import DIGEST, LEASE, Sender, claim_batch, identities_by_recency
from bot.core.replies import RenderedChoice, Reply
from storage.models import OutboxMessage, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
SEND_AT_ONCE = 16
BATCH = 100  # rows a sweep claims at a time


@dataclass
class _Send:
    """One message to send: a row, or the held rows of one digest kind as one digest."""

    rows: list[OutboxMessage]
    reply: Reply


@dataclass
class _Plan:
    """What to do with a claimed batch: messages per user, and rows held until an instant."""

    sends: dict[int, list[_Send]] = field(default_factory=dict)
    held: dict[int, datetime] = field(default_factory=dict)


class Notifier:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        clock: Clock,
        digest: timedelta = timedelta(0),
    ) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._digest = digest
        self._senders: dict[str, Sender] = {}
        self._in_use: Counter[str] = Counter()  # platforms of the batches being sent
        self._batch_done = asyncio.Condition()

    def register(self, platform: str, sender: Sender) -> None:
        self._senders[platform] = sender

    async def unregister(self, platform: str, within: float = 30.0) -> bool:
        """Send nothing more through `platform` (its adapter is closing) and wait until no
        batch being sent still uses it; False if one was still going after `within` s."""
        self._senders.pop(platform, None)
        try:
            async with asyncio.timeout(within), self._batch_done:
                await self._batch_done.wait_for(lambda: not self._in_use[platform])
        except TimeoutError:
            return False
        return True

    async def deliver_pending(self) -> int:
        """Send what the outbox holds; returns how many messages went out."""
        sent_total = 0
        while True:
            claimed, delivered, held = await self._with_senders(None)
            sent_total += delivered
            if not claimed or delivered + held < claimed:
                return sent_total

    async def deliver(self, ids: Collection[int]) -> int:
        """Send the notices a transaction that just committed wrote. An update's handler sends
        only its own: the rest of the outbox is for the sweeps, so one learner's reply never
        waits behind a backlog of other people's notices."""
        if not ids:
            return 0
        _claimed, delivered, _held = await self._with_senders(ids)
        return delivered

    async def _with_senders(self, ids: Collection[int] | None) -> tuple[int, int, int]:
        senders = dict(self._senders)  # a batch keeps the senders it is claimed for
        if not senders:
            return 0, 0, 0
        self._in_use.update(list(senders))
        try:
            return await self._deliver_batch(senders, ids)
        finally:
            async with self._batch_done:
                self._in_use.subtract(list(senders))
                self._batch_done.notify_all()

    async def _deliver_batch(
        self, senders: dict[str, Sender], ids: Collection[int] | None
    ) -> tuple[int, int, int]:
        """Claim a batch (these rows, or the oldest undelivered), send it and record what went
        out; returns (claimed, delivered, held for a digest). Each recipient's messages go in
        order; different recipients are sent to at once (`SEND_AT_ONCE`), as a backlog of
        reminders due together would otherwise wait for one round trip per message."""
        now = self._clock.now()
        lease = real_span(self._clock, LEASE)
        async with self._new_uow() as uow:
            limit = len(ids) if ids is not None else BATCH
            rows = await claim_batch(uow, now, senders, limit, lease, ids)
            targets = await identities_by_recency(uow, {r.user_id for r in rows})
            plan = await self._plan(uow, rows, now)
            await uow.commit()
        delivered: list[int] = []
        at_once = asyncio.Semaphore(SEND_AT_ONCE)

        async def send_to(user_id: int, queue: list[_Send]) -> None:
            identity = next((i for i in targets.get(user_id, []) if i.platform in senders), None)
            if identity is None:
                return
            async with at_once:
                for send in queue:
                    try:
                        await senders[identity.platform](identity, send.reply)
                    except Exception:
                        log.exception("delivery failed", extra={"outbox_id": send.rows[0].id})
                        continue
                    delivered.extend(row.id for row in send.rows)
                    NOTICES_SENT.labels(identity.platform).inc()

        await asyncio.gather(*(send_to(u, queue) for u, queue in plan.sends.items()))
        if delivered or plan.held:
            async with self._new_uow() as uow:
                if delivered:
                    await uow.session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(delivered))
                        .values(sent_at=self._clock.now())
                    )
                for row_id, until in plan.held.items():
                    await uow.session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id == row_id)
                        .values(claimed_until=until)
                    )
                await uow.commit()
        return len(rows), len(delivered), len(plan.held)

    async def _plan(self, uow: UnitOfWork, rows: list[OutboxMessage], now: datetime) -> _Plan:
        """Each user's messages in order: a row as it is, except digest kinds (see above)."""
        plan = _Plan()
        kinds: dict[tuple[int, str], list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            kind = row.body.get(DIGEST) if self._digest else None
            if kind is None:
                plan.sends.setdefault(row.user_id, []).append(_Send([row], _reply(row)))
            else:
                kinds[(row.user_id, kind)].append(row)
        if not kinds:
            return plan
        last_sent = await self._last_sent(uow, {user for user, _kind in kinds}, now)
        readers = {
            u.id: u
            for u in (
                await uow.session.execute(select(User).where(User.id.in_({u for u, _k in kinds})))
            ).scalars()
        }
        for (user_id, kind), group in kinds.items():
            opened = last_sent.get((user_id, kind))
            if opened is not None and opened + self._digest > now:
                plan.held.update((row.id, opened + self._digest) for row in group)
                continue
            reader = readers.get(user_id)
            lang, tz = (reader.language, reader.timezone) if reader else ("en", "UTC")
            send = _Send(group, _reply(group[0]) if len(group) == 1 else _digest(group, lang, tz))
            plan.sends.setdefault(user_id, []).append(send)
        for queue in plan.sends.values():
            queue.sort(key=lambda send: send.rows[0].id)
        return plan

    async def _last_sent(
        self, uow: UnitOfWork, user_ids: Collection[int], now: datetime
    ) -> dict[tuple[int, str], datetime]:
        """When each (user, digest kind) was last sent a notice within the digest window."""
        stmt = (
            select(OutboxMessage.user_id, OutboxMessage.body, OutboxMessage.sent_at)
            .where(OutboxMessage.user_id.in_(list(user_ids)))
            .where(OutboxMessage.sent_at > now - self._digest)
        )
        found: dict[tuple[int, str], datetime] = {}
        for user_id, body, sent_at in await uow.session.execute(stmt):
            kind = body.get(DIGEST)
            if kind is not None and sent_at is not None:
                key = (user_id, kind)
                found[key] = max(found.get(key, sent_at), sent_at)
        return found


def _reply(row: OutboxMessage) -> Reply:
    return Reply.from_json(row.user_id, row.body)


def _digest(rows: list[OutboxMessage], lang: str, tz: str) -> Reply:
    """Several notices of one kind as one message: how many, then each one's text."""
    replies = [_reply(row) for row in rows]
    count = ngettext(
        "{n} notice of the same kind, collected into one message:",
        "{n} notices of the same kind, collected into one message:",
        len(replies),
    )
    choices: dict[str, RenderedChoice] = {}
    instants: dict[str, int] = {}
    for reply in replies:
        for choice in reply.choices:
            choices.setdefault(choice.payload, choice)
        instants.update(reply.instants)
    text = "\n\n".join([count.render(lang, tz), *(f"• {r.text}" for r in replies)])
    return Reply(
        user_id=rows[0].user_id,
        text=text,
        choices=tuple(choices.values()),
        instants=tuple(instants.items()),
    )
