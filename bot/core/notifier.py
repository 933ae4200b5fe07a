"""The notifier port: reaches a user on whichever platform they last used.

Adapters register a sender per platform. A message for a user none of whose platforms is
connected in this process stays in the outbox until one is. An adapter that closes
unregisters first: batches already being sent through it finish (and are recorded), later ones
leave its users' notices to another process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection

from sqlalchemy import update

from bot.core.clock import Clock, real_span
from bot.core.metrics import NOTICES_SENT
from bot.core.outbox import LEASE, Sender, claim_batch, identities_by_recency
from bot.core.replies import Reply
from storage.models import OutboxMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
SEND_AT_ONCE = 16
BATCH = 100  # rows a sweep claims at a time


class Notifier:
    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock) -> None:
        self._new_uow = new_uow
        self._clock = clock
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
            claimed, delivered = await self._with_senders(None)
            sent_total += delivered
            if not claimed or delivered < claimed:
                return sent_total

    async def deliver(self, ids: Collection[int]) -> int:
        """Send the notices a transaction that just committed wrote. An update's handler sends
        only its own: the rest of the outbox is for the sweeps, so one learner's reply never
        waits behind a backlog of other people's notices."""
        if not ids:
            return 0
        _claimed, delivered = await self._with_senders(ids)
        return delivered

    async def _with_senders(self, ids: Collection[int] | None) -> tuple[int, int]:
        senders = dict(self._senders)  # a batch keeps the senders it is claimed for
        if not senders:
            return 0, 0
        self._in_use.update(list(senders))
        try:
            return await self._deliver_batch(senders, ids)
        finally:
            async with self._batch_done:
                self._in_use.subtract(list(senders))
                self._batch_done.notify_all()

    async def _deliver_batch(
        self, senders: dict[str, Sender], ids: Collection[int] | None
    ) -> tuple[int, int]:
        """Claim a batch (these rows, or the oldest undelivered), send it and record what went
        out; returns (claimed, delivered). Each recipient's messages go in order; different
        recipients are sent to at once (`SEND_AT_ONCE`), as a backlog of reminders due together
        would otherwise wait for one round trip per message."""
        now = self._clock.now()
        lease = real_span(self._clock, LEASE)
        async with self._new_uow() as uow:
            limit = len(ids) if ids is not None else BATCH
            rows = await claim_batch(uow, now, senders, limit, lease, ids)
            targets = await identities_by_recency(uow, {r.user_id for r in rows})
            await uow.commit()
        by_user: dict[int, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_user[row.user_id].append(row)
        delivered: list[int] = []
        at_once = asyncio.Semaphore(SEND_AT_ONCE)

        async def send_to(user_id: int, queue: list[OutboxMessage]) -> None:
            identity = next((i for i in targets.get(user_id, []) if i.platform in senders), None)
            if identity is None:
                return
            async with at_once:
                for row in queue:
                    try:
                        reply = Reply.from_json(row.user_id, row.body)
                        await senders[identity.platform](identity, reply)
                    except Exception:
                        log.exception("delivery failed", extra={"outbox_id": row.id})
                        continue
                    delivered.append(row.id)
                    NOTICES_SENT.labels(identity.platform).inc()

        await asyncio.gather(*(send_to(u, queue) for u, queue in by_user.items()))
        if delivered:
            async with self._new_uow() as uow:
                await uow.session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(delivered))
                    .values(sent_at=self._clock.now())
                )
                await uow.commit()
        return len(rows), len(delivered)
