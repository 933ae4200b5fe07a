"""The notifier port: reaches a user on whichever platform they last used.

Adapters register a sender per platform. A message for a user none of whose platforms is
connected in this process stays in the outbox until one is. An adapter that closes
unregisters first: batches already being sent through it finish (and are recorded), later ones
leave its users' notices to another process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from sqlalchemy import update

from bot.clock import Clock, real_span
from bot.metrics import NOTICES_SENT
from bot.outbox import LEASE, Sender, claim_batch, identities_by_recency
from bot.replies import Reply
from storage.models import OutboxMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


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
            senders = dict(self._senders)  # a batch keeps the senders it is claimed for
            if not senders:
                return sent_total
            self._in_use.update(list(senders))
            try:
                claimed, delivered = await self._deliver_batch(senders)
            finally:
                async with self._batch_done:
                    self._in_use.subtract(list(senders))
                    self._batch_done.notify_all()
            sent_total += delivered
            if not claimed or delivered < claimed:
                return sent_total

    async def _deliver_batch(self, senders: dict[str, Sender]) -> tuple[int, int]:
        """Claim a batch, send it and record what went out; returns (claimed, delivered)."""
        now = self._clock.now()
        async with self._new_uow() as uow:
            rows = await claim_batch(uow, now, senders, lease=real_span(self._clock, LEASE))
            targets = {u: await identities_by_recency(uow, u) for u in {r.user_id for r in rows}}
            await uow.commit()
        delivered: list[int] = []
        for row in rows:
            identity = next((i for i in targets[row.user_id] if i.platform in senders), None)
            if identity is None:
                continue
            try:
                await senders[identity.platform](identity, Reply.from_json(row.user_id, row.body))
            except Exception:
                log.exception("delivery failed", extra={"outbox_id": row.id})
                continue
            delivered.append(row.id)
            NOTICES_SENT.labels(identity.platform).inc()
        if delivered:
            async with self._new_uow() as uow:
                await uow.session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(delivered))
                    .values(sent_at=self._clock.now())
                )
                await uow.commit()
        return len(rows), len(delivered)
