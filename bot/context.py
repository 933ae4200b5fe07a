"""What a handler gets: the actor, the unit of work, the clock, config and its reply buffer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import Clock
from bot.config import Config
from bot.errors import NotAllowed
from bot.i18n import Msg, _
from bot.outbox import enqueue
from bot.payments import PaymentProvider
from bot.replies import Attachment, Choice, Say
from storage.models import User
from storage.uow import UnitOfWork


@dataclass
class Actor:
    user: User
    roles: frozenset[str]
    platform: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass
class Ctx:
    uow: UnitOfWork
    actor: Actor
    clock: Clock
    config: Config
    payments: tuple[PaymentProvider, ...]
    says: list[Say] = field(default_factory=list)
    wake_at: list[datetime] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.now()

    def say(
        self,
        msg: Msg,
        choices: tuple[Choice, ...] | list[Choice] = (),
        attachments: tuple[Attachment, ...] = (),
    ) -> None:
        self.says.append(Say(msg, tuple(choices), attachments))

    async def tell(
        self,
        user_id: int,
        msg: Msg,
        choices: tuple[Choice, ...] | list[Choice] = (),
        attachments: tuple[Attachment, ...] = (),
    ) -> None:
        """Notify another user; delivered after this transaction commits, on their platform."""
        await enqueue(self.uow, user_id, Say(msg, tuple(choices), attachments), self.now())

    def provider(self, name: str | None) -> PaymentProvider | None:
        return next((p for p in self.payments if p.name == name), None)

    def require_admin(self) -> None:
        if not self.actor.is_admin:
            raise NotAllowed(_("Only marketplace admins can do that."))
