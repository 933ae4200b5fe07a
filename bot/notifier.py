"""The notifier port: reaches a user on whichever platform they last used.

Adapters register a sender per platform. A message for a user none of whose platforms is
connected in this process stays in the outbox until one is.
"""

from __future__ import annotations

import logging
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

    def register(self, platform: str, sender: Sender) -> None:
        self._senders[platform] = sender

    async def deliver_pending(self) -> int:
        """Send what the outbox holds; returns how many messages went out."""
        sent_total = 0
        if not self._senders:
            return 0
        while True:
            now = self._clock.now()
            async with self._new_uow() as uow:
                rows = await claim_batch(
                    uow, now, self._senders, lease=real_span(self._clock, LEASE)
                )
                targets = {r.user_id: await identities_by_recency(uow, r.user_id) for r in rows}
                await uow.commit()
            if not rows:
                return sent_total
            delivered: list[int] = []
            for row in rows:
                identity = next(
                    (i for i in targets[row.user_id] if i.platform in self._senders), None
                )
                if identity is None:
                    continue
                try:
                    await self._senders[identity.platform](
                        identity, Reply.from_json(row.user_id, row.body)
                    )
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
            sent_total += len(delivered)
            if len(delivered) < len(rows):
                return sent_total
