"""The marketplace as one object: handle a message, run what fell due, deliver notices.

Adapters call `handle()` with plain data and render the replies it returns; timers call
`run_due()`. Every input, a message here as much as a webhook or a sweep elsewhere, passes the
one `FrontDoor` (`bot.front_door`) that `Marketplace.front` holds. Each message is one
transaction: a refused action (`MentorbotError`) rolls back everything it touched and shows its
message, so bad input changes nothing. What a handler must not do while holding that
transaction (call Stripe) it defers with `Ctx.after_commit`, which runs after the commit,
outside any transaction.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.handlers  # noqa: F401  (registers the commands)
from bot.community.access import Community
from bot.community.relay import prune as prune_relay
from bot.config import Config
from bot.context import Actor, Ctx
from bot.core import conversations
from bot.core.chat_links import ChatLinks
from bot.core.clock import Clock, real_span
from bot.core.errors import BadInput, MentorbotError
from bot.core.i18n import _
from bot.core.metrics import HANDLING_SECONDS, UPDATES
from bot.core.notifier import Notifier
from bot.core.replies import Reply, Say, render
from bot.core.users import Incoming, create_user, known_user, settle_all_admins, sync_roles
from bot.core.words import fold
from bot.front_door import APOLOGY, FrontDoor
from bot.handlers.args import refuse_control_characters
from bot.handlers.registry import COMMANDS, FLOWS, spelt_out
from bot.handlers.relay import continue_by_reply
from bot.learning.lessons import send_due_lessons
from bot.mentoring.offers import expire_offers, pass_on_from_full_mentors, reoffer_waitlist
from bot.payments import REFUND_LEASE, PaymentProvider, expire_orders, refund_unused_seats
from bot.recommending.signals import MODELS
from bot.sessions import workshop_reminders, workshops  # group sessions: offers, reminders
from bot.sessions.reminders import send_due
from bot.sessions.venues import Venue, sync_venues
from bot.subscriptions.sweep import sweep as sweep_subscriptions
from storage.db import is_sqlite
from storage.uow import UnitOfWork, make_uow_factory

log = logging.getLogger(__name__)

KEEP_CONVERSATION = {"help", "cancel", "skip"}  # these look at the step themselves
SORRY = Say(APOLOGY)


@dataclass(frozen=True)
class DueReport:
    reminders: int
    offers_expired: int
    orders_expired: int
    delivered: int
    lessons: int = 0
    offers_withdrawn: int = 0


def parse_command(text: str) -> tuple[str, list[str]]:
    """`/Name@bot a "b c"` → ("name", ["a", "b c"]); unbalanced quotes fall back to spaces."""
    head, _sep, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    try:
        args = shlex.split(rest)
    except ValueError:
        args = rest.split()
    return name, args


def _second(handled: tuple[list[Reply], str]) -> str:
    return handled[1]


class Marketplace:
    def __init__(
        self,
        config: Config,
        engine: AsyncEngine,
        clock: Clock,
        payments: Sequence[PaymentProvider] = (),
    ) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.payments = tuple(payments)
        self._sessionmaker = make_uow_factory(engine)
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None
        self.notifier = Notifier(
            self.new_uow, clock, timedelta(seconds=config.notices.digest_seconds)
        )
        self.on_new_due: Callable[[list[datetime]], None] = lambda _times: None
        self.front = FrontDoor()
        # Platforms showing workshops as their own events (Discord's scheduled events); an
        # adapter appends its own when it connects (bot/sessions/venues.py).
        self.venues: list[Venue] = []
        self.community = Community(self.new_uow, clock, config)  # access follows payment
        # How a web page links a user back to their chat; adapters register when connected.
        self.chat_links = ChatLinks()

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessionmaker, self._write_lock)

    async def handle(self, msg: Incoming) -> list[Reply]:
        """One message or button press from a user; returns the replies to show them."""
        started = time.perf_counter()
        outcome = "error"
        try:
            replies, outcome = await self.front.dispatch(
                "chat", lambda: self._handle(msg), outcome=_second
            )
            return replies
        finally:
            UPDATES.labels(msg.platform, outcome).inc()
            HANDLING_SECONDS.labels(msg.platform).observe(time.perf_counter() - started)

    async def _handle(self, msg: Incoming) -> tuple[list[Reply], str]:
        """Find the sender, lock their row and run the command in ONE transaction: each update
        costs one write-lock wait and one commit, which is most of what it costs. A first
        contact is stored on its own first, so a refused first message still keeps the user
        (and their language)."""
        now = self.clock.now()
        for _attempt in range(3):
            handled = await self._handle_known(msg, now)
            if handled is not None:
                return handled
            await self._create_user(msg, now)
        raise AssertionError("a user just stored was not found")

    async def _handle_known(self, msg: Incoming, now: datetime) -> tuple[list[Reply], str] | None:
        committed = False
        outcome = "ok"
        opened: list[UnitOfWork] = []  # by deferred work, to know whether it wrote notices

        def new_uow() -> UnitOfWork:
            uow = self.new_uow()
            opened.append(uow)
            return uow

        async with self.new_uow() as uow:
            found = await known_user(uow, msg, now)
            if found is None:
                return None
            user, known_roles = found
            user_id, lang, tz = user.id, user.language, user.timezone
            roles = await sync_roles(uow, self.config, msg, user_id, known_roles)
            actor = Actor(user, roles, msg.platform)
            ctx = Ctx(uow, actor, self.clock, self.config, self.payments, new_uow)
            ctx.community = self.community
            try:
                await self._dispatch(ctx, msg.text, msg)
                lang, tz = user.language, user.timezone
                await uow.commit()
                committed = True
            except MentorbotError as refused:
                ctx.says[:] = [refused.reply()]
                outcome = "refused"
            except Exception:
                self.front.failed("chat", "handle", {"platform": msg.platform, "user_id": user_id})
                ctx.says[:] = [SORRY]
                outcome = "error"
        says_roles = msg.platform_roles is not None and self.config.admin_roles_for(msg.platform)
        if not committed and (roles != known_roles or says_roles):
            await self._keep_roles(msg, user_id, known_roles, now)
        if committed:  # and the write lock / row lock released
            outcome = await self._run_after_commit(ctx, msg)
        if ctx.wake_at:
            self.on_new_due(ctx.wake_at)
        written = [i for u in (uow, *opened) for i in u.written_outbox_ids()]
        if written:
            await self.notifier.deliver(written)
        return [render(user_id, s, lang, tz) for s in ctx.says], outcome

    async def _keep_roles(
        self, msg: Incoming, user_id: int, known: frozenset[str], now: datetime
    ) -> None:
        """A refused or failed message rolls back its transaction, but not what the platform
        said about the sender's roles: an admin whose role was taken away and who is refused
        `/admin` stays no admin (also in DMs, which carry no roles), and the identity keeps the
        platform's word about its roles even when the role itself did not change."""
        async with self.new_uow() as uow:
            await sync_roles(uow, self.config, msg, user_id, known)
            await uow.commit()

    async def _run_after_commit(self, ctx: Ctx, msg: Incoming) -> str:
        """The work the handler deferred until its transaction committed (`Ctx.after_commit`),
        in order. A refusal or an error ends it as in the handler, except that what was
        committed stays so, and so does what the handler said about it."""
        for work in ctx.deferred:
            said = len(ctx.says)
            try:
                await work()
            except MentorbotError as refused:
                ctx.says[said:] = [refused.reply()]
                return "refused"
            except Exception:
                self.front.failed(
                    "chat", "after_commit", {"platform": msg.platform, "user_id": ctx.actor.id}
                )
                ctx.says[said:] = [SORRY]
                return "error"
        return "ok"

    async def _create_user(self, msg: Incoming, now: datetime) -> None:
        """Store a first contact. Two first messages from one new identity race: the unique
        constraint lets one in and the other finds that user when it looks again."""
        try:
            async with self.new_uow() as uow:
                await create_user(uow, self.config, msg, now)
                await uow.commit()
        except IntegrityError:
            pass

    async def database_reachable(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def warm(self) -> None:
        """Start building the recommendation model in the background, as a serving process
        starts (`ModelCache.warm`), so that the first learner shown suggestions does not wait."""
        MODELS.warm(self.new_uow(), self.config, self.clock.now(), self.engine)

    async def settle_admins(self) -> None:
        """Everyone's admin role as today's config gives it (`settle_all_admins`), at start."""
        async with self.new_uow() as uow:
            granted, revoked = await settle_all_admins(uow, self.config)
            await uow.commit()
        if granted or revoked:
            log.info(
                "admin roles follow the config", extra={"granted": granted, "revoked": revoked}
            )

    async def drain(self, within: float) -> bool:
        """Wait until no input is being handled and no recommendation model is being rebuilt
        (graceful shutdown); False on timeout."""
        drained = await self.front.drain(within)
        try:
            await asyncio.wait_for(MODELS.settled(), within)
        except TimeoutError:
            return False
        return drained

    async def _dispatch(self, ctx: Ctx, text: str, msg: Incoming | None = None) -> None:
        text = text.strip()
        if not text:
            raise BadInput(_("Send a command such as /help."))
        # A command line is read with its full-width forms folded (`／ｂｏｏｋ　１` is `/book 1`).
        # An answer to a question is kept as typed (goals read as written) and folded where it
        # is parsed (bot.core.words).
        refuse_control_characters(text)
        command_line = fold(text)
        if command_line.startswith("/"):
            name, args = parse_command(command_line)
            command = COMMANDS.get(name)
            if command is None:
                raise BadInput(_("Unknown command /{name}. See /help.", name=name or "?"))
            if command.for_admins:  # before its words are read: they are no one else's business
                ctx.require_admin()
            spelt = spelt_out(args, command.args, command.subs.values(), name)
            if name not in KEEP_CONVERSATION:
                await conversations.end(ctx.uow, ctx.actor.id)
            await command.handler(ctx, spelt)
            return
        # A reply to a relayed message (Telegram) continues that mentorship's conversation.
        if (
            msg is not None
            and msg.reply_to is not None
            and await continue_by_reply(ctx, msg.external_id, msg.reply_to, text)
        ):
            return
        conv = await conversations.current(ctx.uow, ctx.actor.id)
        if conv is None or conv.flow not in FLOWS:
            raise BadInput(_("I did not understand that. Commands start with /; see /help."))
        await FLOWS[conv.flow](ctx, conv, text)

    async def run_due(self) -> DueReport:
        """Expire what timed out, send due reminders and dripped lessons, deliver the outbox."""
        now = self.clock.now()
        async with self.new_uow() as uow:
            orders = await expire_orders(uow, now)
            await uow.commit()
        async with self.new_uow() as uow:
            offers = await expire_offers(uow, self.config, now)
            withdrawn = await pass_on_from_full_mentors(uow, self.config, now)
            # Capacity frees as mentorships end, refunds land or mentors raise capacity;
            # this offers waitlisted requests as soon as someone can take them.
            await reoffer_waitlist(uow, self.config, now)
            await uow.commit()
        async with self.new_uow() as uow:
            reminders = await send_due(uow, now)
            await uow.commit()
        async with self.new_uow() as uow:
            lessons = await send_due_lessons(uow, self.config, now)
            await uow.commit()
        async with self.new_uow() as uow:  # workshops: offers not confirmed, reminders
            await workshops.expire_offers(uow, now, self.config)
            await workshops.promote_waiting(uow, now, self.config)
            reminders += await workshop_reminders.send_due(uow, now)
            await uow.commit()
        try:  # unused seats of workshops sold alone: their money back, through the providers
            lease = real_span(self.clock, REFUND_LEASE)
            await refund_unused_seats(self.new_uow, self.config, self.payments, now, lease)
        except Exception:
            self.front.failed("sweep", "seat_refunds")
        await sync_venues(self.new_uow, self.venues, now, self.config.bot.default_language)
        async with self.new_uow() as uow:
            await prune_relay(uow, self.config.discussion.keep_days, now)
            await uow.commit()
        async with self.new_uow() as uow:  # renewals, lapses, renewal reminders
            await sweep_subscriptions(uow, self.config, now)
            await uow.commit()
        try:  # community access (after lapses, so a lapse reaches the platforms in this pass)
            await self.community.sweep()
        except Exception:
            self.front.failed("sweep", "community_sweep")
        delivered = await self.notifier.deliver_pending()
        return DueReport(reminders, offers, orders, delivered, lessons, withdrawn)
