"""What a handler gets: the actor, the unit of work, the clock, config and its reply buffer."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.community.access import Community
from bot.config import Config
from bot.core.clock import Clock
from bot.core.errors import NotAllowed
from bot.core.i18n import Msg, _
from bot.core.outbox import tell, tell_admins
from bot.core.replies import Attachment, Choice, Say
from bot.payments import PaymentProvider
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


AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class Ctx:
    """One update being handled. `uow` is its transaction, which `Marketplace.handle` commits
    when the handler returns; `new_uow` opens another, short one (for work after the commit)."""

    uow: UnitOfWork
    actor: Actor
    clock: Clock
    config: Config
    payments: tuple[PaymentProvider, ...]
    new_uow: Callable[[], UnitOfWork]
    says: list[Say] = field(default_factory=list)
    wake_at: list[datetime] = field(default_factory=list)
    deferred: list[AfterCommit] = field(default_factory=list)
    # Community access's ports and sweep (issue 18), for `/admin spaces repair`.
    community: Community | None = None

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
        await tell(self.uow, user_id, msg, self.now(), choices, attachments)

    async def tell_admins(self, msg: Msg, choices: tuple[Choice, ...] | list[Choice] = ()) -> None:
        """Notify every admin, each in their own language."""
        await tell_admins(self.uow, msg, self.now(), choices)

    def after_commit(self, work: AfterCommit) -> None:
        """Run `work` once this update's transaction has committed, before the replies go out.

        For slow calls to the outside world (Stripe opening a Checkout Session): inside the
        transaction they would hold, while they wait, SQLite's write lock (every other user's
        message waits) or, on PostgreSQL, the user's row lock and a pooled connection. `work`
        may `say()`; it must not use `uow` (closed by then) nor `tell()`, and opens its own
        short transactions with `new_uow()`. It does not run if the transaction is refused or
        rolled back. Like the handler, a `MentorbotError` it raises is shown to the user and
        anything else is logged and answered with an apology; either drops what it said and
        skips the work registered after it, but what was committed stays committed.
        """
        self.deferred.append(work)

    def provider(self, name: str | None) -> PaymentProvider | None:
        return next((p for p in self.payments if p.name == name), None)

    def close_checkout_after_commit(self, ref: str | None) -> None:
        """Once this transaction has committed, close the payment page `ref` (an order's
        `checkout_ref`: an order cancelled, an account erased), so it can no longer be paid:
        `PaymentProvider.close_checkout` of each provider, since an order names its provider
        only once paid; only the one that opened the page has it, and a failure is logged."""
        if ref:
            for provider in self.payments:
                self.after_commit(functools.partial(_close_checkout, provider, ref))

    def require_admin(self) -> None:
        if not self.actor.is_admin:
            raise NotAllowed(_("Only marketplace admins can do that."))


async def _close_checkout(provider: PaymentProvider, ref: str) -> None:
    await provider.close_checkout(ref)
