"""The Telegram service: python-telegram-bot's Application wired to the marketplace.

Messages and button presses become `Incoming` text for `Marketplace.handle`; its replies are
rendered by `Outgoing`. Stars checkouts and payments go to `bot.providers.stars.payment`. Notices
to Telegram
users go through the notifier's sender registered here. No business rule lives in this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from telegram import Update, User
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    BaseRateLimiter,
    CallbackQueryHandler,
    ChatJoinRequestHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from bot.adapters.telegram.callback_data import CallbackCodec
from bot.adapters.telegram.commands import register_commands
from bot.adapters.telegram.flow_control import PerUserOrder, configured_flood_control
from bot.adapters.telegram.http import AiohttpRequest
from bot.adapters.telegram.incoming import incoming
from bot.adapters.telegram.outgoing import Outgoing
from bot.adapters.telegram.spaces import TelegramSpaces, in_group
from bot.adapters.telegram.star_ledger import StarLedger
from bot.adapters.telegram.webhook import WebhookEndpoint
from bot.app import Marketplace
from bot.community.service import decide_join_request, member_joined, remember_delivery
from bot.config import Config, TelegramSection
from bot.core.errors import BadInput
from bot.core.i18n import Msg, _, normalize_language
from bot.core.outbox import keep_reply
from bot.core.replies import Reply
from bot.core.web import WebServer
from bot.front_door import APOLOGY, already_logged
from bot.providers.stars import payment as stars
from bot.providers.stars.reconcile import StarsReconciler
from storage import models

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.CALLBACK_QUERY,
    Update.PRE_CHECKOUT_QUERY,
    Update.CHAT_JOIN_REQUEST,
    Update.CHAT_MEMBER,  # who joined a community group (sent to admin bots that ask for it)
]
PRE_CHECKOUT_SECONDS = 8.0  # Telegram gives up after 10
DRAIN_SECONDS = 30.0  # on shutdown, for updates in flight and notices being sent
EXPIRED = _("This button has expired. Please use a newer message, or type the command.")
CHECKOUT_FAILED = _(
    "We could not check your order just now; nothing was charged. Please try again."
)

Context = ContextTypes.DEFAULT_TYPE
App = Application[Any, Any, Any, Any, Any, Any]


def build_application(tg: TelegramSection, rate_limiter: BaseRateLimiter[Any] | None) -> App:
    """The PTB Application for `[telegram]`: no PTB job queue (timers live in the core), and
    aiohttp for its HTTP calls (`bot.adapters.telegram.http`)."""
    base = tg.base_url.rstrip("/")
    builder = (
        Application.builder()
        .token(tg.token.reveal())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .concurrent_updates(PerUserOrder(tg.concurrent_updates))
        .job_queue(None)
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connections=1))
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    if tg.mode == "webhook":
        builder = builder.updater(None)
    return builder.build()


class TelegramService:
    """Started by `mentorbot run` when `[telegram] token` is set."""

    name = PLATFORM

    def __init__(
        self,
        config: Config,
        app: Marketplace,
        web: WebServer | None = None,
        *,
        rate_limiter: BaseRateLimiter[Any] | None = None,
    ) -> None:
        """`rate_limiter` replaces the limiter `[telegram] flood_control` asks for (tests)."""
        tg = config.telegram
        self.config = config
        self.app = app
        if rate_limiter is None:
            rate_limiter = configured_flood_control(tg)
        self.application = build_application(tg, rate_limiter)
        self.codec = CallbackCodec(app, tg.token.reveal(), timedelta(days=tg.button_ttl_days))
        self.out = Outgoing(self.application.bot, self.codec)
        self.spaces = TelegramSpaces(self.application.bot)  # community groups and topics
        self._unrecorded: set[int] = set()
        self._stars = next((p for p in app.payments if isinstance(p, stars.StarsPayments)), None)
        self.reconciler: StarsReconciler | None = None  # Stars payments whose update was lost
        if self._stars is not None and tg.reconcile_interval_minutes:
            self.reconciler = StarsReconciler(
                app,
                StarLedger(self.application.bot),
                self.refund,
                interval_minutes=tg.reconcile_interval_minutes,
                lookback_hours=tg.reconcile_lookback_hours,
            )
        self.webhook: WebhookEndpoint | None = None
        if web is not None:
            web.add_readiness_check(PLATFORM, self.ready)
        if tg.mode == "webhook":
            if web is None:
                raise ValueError("Telegram webhook mode needs the web server")
            self.webhook = WebhookEndpoint(
                self.application, tg.webhook_secret.reveal(), self._payment_failed
            )
            web.add_route("POST", urlsplit(tg.webhook_url).path, self.webhook.handle)
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        add = self.application.add_handler
        add(MessageHandler(private & filters.SUCCESSFUL_PAYMENT, self.on_payment))
        add(MessageHandler(private & filters.TEXT, self.on_text))
        add(CallbackQueryHandler(self.on_button))
        add(PreCheckoutQueryHandler(self.on_pre_checkout))
        add(ChatJoinRequestHandler(self.on_join_request))
        add(ChatMemberHandler(self.on_chat_member, ChatMemberHandler.CHAT_MEMBER))
        self.application.add_error_handler(self.on_error)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        tg = self.config.telegram
        await self.application.initialize()  # getMe
        if self._stars is not None:
            self._stars.connect(self.refund, self.edit_star_subscription)
        self.app.notifier.register(PLATFORM, self.deliver)
        self.app.community.register(PLATFORM, self.spaces)
        self.app.community.register_topics(PLATFORM, self.spaces)
        chat = f"https://t.me/{self.application.bot.username}"  # the same chat for everyone
        self.app.chat_links.register(PLATFORM, lambda _external_id: chat)
        await register_commands(self.application.bot, self._admin_chats())
        await self.codec.prune()
        await self.application.start()
        if self.webhook is None:
            assert self.application.updater is not None
            await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        else:
            await self.application.bot.set_webhook(
                tg.webhook_url,
                secret_token=tg.webhook_secret.reveal(),
                allowed_updates=ALLOWED_UPDATES,
            )
            self.webhook.ready.set()
        if self.reconciler is not None:
            await self.reconciler.start()  # in the background: start-up does not wait
        log.info("telegram adapter started", extra={"mode": tg.mode})
        await self.app.notifier.deliver_pending()

    async def stop(self) -> None:
        """Stop taking updates, finish those in flight and the notices being sent, then close
        the HTTP client they all need (closing it first would fail their sends half-way)."""
        if self.reconciler is not None:
            await self.reconciler.stop()
        if self.webhook is not None:
            self.webhook.ready.clear()
            if not await self.webhook.drain(within=DRAIN_SECONDS):
                log.warning("telegram: webhook posts still in flight at shutdown")
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()  # polling: waits for the updates it fetched
        self.app.community.unregister(PLATFORM)
        self.app.chat_links.unregister(PLATFORM)
        if not await self.app.notifier.unregister(PLATFORM, within=DRAIN_SECONDS):
            log.warning("telegram: notices still being sent at shutdown")
        await self.application.shutdown()
        if self._stars is not None:
            self._stars.connect(None)

    async def ready(self) -> bool:
        """Connected and taking updates (for the web server's /readyz)."""
        if not self.application.running:
            return False
        if self.webhook is not None:
            return self.webhook.ready.is_set()
        return self.application.updater is not None and self.application.updater.running

    def _admin_chats(self) -> list[int]:
        prefix = f"{PLATFORM}:"
        return [
            int(ident.removeprefix(prefix))
            for ident in self.config.bot.admins
            if ident.startswith(prefix) and ident.removeprefix(prefix).isdigit()
        ]

    # ── updates ──────────────────────────────────────────────────────────────────────────

    async def on_text(self, update: Update, context: Context) -> None:
        """A typed message or command goes to the core as it is."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        target = message.reply_to_message
        reply_to = f"{target.chat.id}:{target.message_id}" if target is not None else None
        await self.converse(user, message.chat_id, message.text or "", reply_to)

    async def on_button(self, update: Update, context: Context) -> None:
        """A pressed button is the command it carries, once its data checks out."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        payload = await self.codec.decode(str(user.id), query.data or "")
        # A press that waited too long (e.g. while the bot was down) can no longer be
        # answered; the command it carries still runs.
        with contextlib.suppress(BadRequest):
            if payload is None:
                await query.answer(await self.text_for(user, EXPIRED))
                return
            await query.answer()
        if payload is None:
            return
        chat_id = query.message.chat.id if query.message is not None else user.id
        await self.converse(user, chat_id, payload)

    async def on_pre_checkout(self, update: Update, context: Context) -> None:
        """Let a Stars checkout go ahead only if its order can still be paid at that price."""
        query = update.pre_checkout_query
        assert query is not None

        def could_not_check() -> str:
            lang = normalize_language(
                query.from_user.language_code, self.config.bot.default_language
            )
            return CHECKOUT_FAILED.render(lang)

        refusal = await self.app.front.dispatch(
            "stars_pre_checkout",
            lambda: asyncio.wait_for(
                stars.check_checkout(
                    self.app,
                    incoming(query.from_user),
                    query.invoice_payload,
                    query.currency,
                    query.total_amount,
                ),
                PRE_CHECKOUT_SECONDS,
            ),
            outcome=lambda refused: "ok" if refused is None else "refused",
            on_error=could_not_check,
        )
        if refusal is None:
            await query.answer(ok=True)
        else:
            await query.answer(ok=False, error_message=refusal)

    async def on_payment(self, update: Update, context: Context) -> None:
        """Fulfil the order a successful Stars payment names, once per charge."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        paid = message.successful_payment
        assert paid is not None
        outcome = await self.app.front.dispatch(
            "stars_payment",
            lambda: stars.record_payment(
                self.app,
                incoming(user),
                paid.invoice_payload,
                paid.currency,
                paid.total_amount,
                paid.telegram_payment_charge_id,
                paid_at=message.date,
                expires=paid.subscription_expiration_date,
            ),
            outcome=lambda recorded: recorded.label() if recorded else "error",
            on_error=lambda: None,
            context={
                "charge_id": paid.telegram_payment_charge_id,
                "payload": paid.invoice_payload,
                "telegram_user": user.id,
            },
        )
        if outcome is None:  # logged by the front door; webhook mode answers 500 for a retry
            self._unrecorded.add(update.update_id)
            await self.apologise(user)
            return
        if outcome.refund:
            await self.refund(str(user.id), paid.telegram_payment_charge_id)
        await self.send_all(message.chat_id, str(user.id), outcome.replies)

    async def on_join_request(self, update: Update, context: Context) -> None:
        """Approve a request to join a course's group when the person's access is desired
        there (an active enrollment); decline it otherwise."""
        request = update.chat_join_request
        assert request is not None
        allowed = await decide_join_request(
            self.app, PLATFORM, str(request.chat.id), str(request.from_user.id)
        )
        with contextlib.suppress(BadRequest):  # answered already (e.g. by an admin)
            if allowed:
                await request.approve()
            else:
                await request.decline()

    async def on_chat_member(self, update: Update, context: Context) -> None:
        """Someone joined a group the bot administers (by an invite link, or a join request
        approved): post the welcome into each of their courses' topics there."""
        changed = update.chat_member
        assert changed is not None
        was, now = changed.old_chat_member, changed.new_chat_member
        if in_group(was) or not in_group(now):
            return  # not a join: a member promoted, restricted, leaving, removed
        chat = str(changed.chat.id)
        posts = await member_joined(
            self.app, self.app.community.topics(PLATFORM), PLATFORM, chat, str(now.user.id)
        )
        for post in posts:
            try:
                await self.spaces.post(post.chat, post.thread_id, post.text)
            except TelegramError as exc:  # e.g. the topic was deleted: the join stands
                log.warning("telegram: topic welcome failed", extra={"error": str(exc)[:200]})

    async def on_error(self, update: object, context: Context) -> None:
        """Log the failure with its traceback (unless the front door did), then apologise to
        the user in their language."""
        if not already_logged(context.error):
            log.error(
                "telegram update failed",
                exc_info=context.error,
                extra={"update_id": getattr(update, "update_id", None)},
            )
        if not isinstance(update, Update) or update.effective_user is None:
            return
        if update.callback_query is not None:
            with contextlib.suppress(Exception):  # it may have been answered already
                await update.callback_query.answer()
        await self.apologise(update.effective_user)

    async def apologise(self, user: User) -> None:
        """The apology for a failure on our side, in the user's language; best effort."""
        with contextlib.suppress(Exception):
            text = await self.text_for(user, APOLOGY)
            await self.application.bot.send_message(user.id, text)

    def _payment_failed(self, update_id: int) -> bool:
        """Whether this update held a payment that was not recorded (webhook: ask again)."""
        if update_id in self._unrecorded:
            self._unrecorded.discard(update_id)
            return True
        return False

    # ── talking to users ─────────────────────────────────────────────────────────────────

    async def converse(
        self, user: User, chat_id: int, text: str, reply_to: str | None = None
    ) -> None:
        replies = await self.app.handle(incoming(user, text, reply_to))
        await self.send_all(chat_id, str(user.id), replies)

    async def send_all(self, chat_id: int, user: str, replies: list[Reply]) -> None:
        """Send replies in order; what Telegram still refuses after the retries is kept in the
        outbox and delivered later by the notifier, never dropped."""
        for i, reply in enumerate(replies):
            try:
                await self.out.send(chat_id, user, reply)
            except BadRequest:
                raise
            except (RetryAfter, NetworkError) as exc:
                log.warning("reply kept for later delivery", extra={"error": str(exc)})
                async with self.app.new_uow() as uow:
                    for later in replies[i:]:
                        await keep_reply(uow, later, self.app.clock.now())
                    await uow.commit()
                return

    async def deliver(self, identity: models.Identity, reply: Reply) -> None:
        """The notifier's sender: a notice to a Telegram user's private chat."""
        try:
            sent = await self.out.send(int(identity.external_id), identity.external_id, reply)
            if reply.relay is not None and sent is not None:
                await remember_delivery(self.app, identity, reply.relay, str(sent))
        except Forbidden:
            log.warning(
                "notice not delivered: the user blocked the bot",
                extra={"user_id": identity.user_id},
            )

    async def text_for(self, user: User, msg: Msg) -> str:
        """`msg` in the language the user chose here, else their Telegram language."""
        async with self.app.new_uow() as uow:
            row = (
                await uow.session.execute(
                    select(models.User.language, models.User.timezone)
                    .join(models.Identity, models.Identity.user_id == models.User.id)
                    .where(models.Identity.platform == PLATFORM)
                    .where(models.Identity.external_id == str(user.id))
                )
            ).first()
        if row is not None:
            return msg.render(row[0], row[1])
        return msg.render(normalize_language(user.language_code, self.config.bot.default_language))

    async def edit_star_subscription(self, payer: str, charge_id: str, canceled: bool) -> None:
        """Cancel (or resume) a Stars subscription's renewals; access lasts to the period end."""
        try:
            await self.application.bot.edit_user_star_subscription(
                int(payer), charge_id, is_canceled=canceled
            )
        except TelegramError as exc:
            raise BadInput(
                _(
                    "Telegram could not change the subscription ({reason}). Nothing was "
                    "changed; please try again.",
                    reason=exc.message,
                )
            ) from exc

    async def refund(self, payer: str, charge_id: str) -> None:
        """Give a Stars payment back (an admin refund); a refusal leaves the order as it was."""
        try:
            await self.application.bot.refund_star_payment(int(payer), charge_id)
        except BadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" in exc.message.upper():
                return  # refunded before, e.g. by an attempt whose commit failed
            raise BadInput(
                _("Telegram refused the refund: {reason}. Nothing was changed.", reason=exc.message)
            ) from exc
        except TelegramError as exc:
            raise BadInput(
                _(
                    "Telegram could not be reached for the refund ({reason}). Nothing was "
                    "changed; please try again.",
                    reason=exc.message,
                )
            ) from exc
