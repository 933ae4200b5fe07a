"""Writing to the admins: `/support TEXT` relays a message to every admin (as plain text, in
their language's frame) and `/admin reply USER TEXT` answers it.

Every reply that says the admins can help offers this command, so none is a dead end. A person
may send `SUPPORT_LIMIT` messages per `SUPPORT_WINDOW`; the count is read from the admins'
notices themselves (the outbox keeps them), so it holds across restarts and processes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.context import Ctx
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import When, _
from bot.core.replies import Choice
from bot.core.users import admin_ids
from bot.handlers.args import LIMITS, clip, need_int
from bot.handlers.free_text import free_text
from bot.handlers.registry import admin_subcommand, command, number, text
from storage.models import OutboxMessage, User
from storage.uow import UnitOfWork

SUPPORT_LIMIT = 3
SUPPORT_WINDOW = timedelta(hours=1)


def _reply_payload(user_id: int) -> str:
    return f"/admin reply {user_id}"


async def _recent(uow: UnitOfWork, user_id: int, since: datetime) -> list[datetime]:
    """When this user's recent messages reached the admins (one instant per message)."""
    admins = await admin_ids(uow)
    if not admins:
        return []
    rows = await uow.session.execute(
        select(OutboxMessage.created_at, OutboxMessage.body)
        .where(OutboxMessage.user_id == admins[0])
        .where(OutboxMessage.created_at >= since)
        .order_by(OutboxMessage.created_at)
    )
    payload = _reply_payload(user_id)
    return [at for at, body in rows.all() if any(c[1] == payload for c in body.get("choices", ()))]


@command(
    "support",
    _("Write to the marketplace's admins: /support TEXT"),
    args=(text("message", _("What you need help with"), required=False, words=True),),
    section="account",
)
async def support(ctx: Ctx, args: list[str]) -> None:
    await _relay.take(
        ctx,
        " ".join(args),
        {},
        _(
            "What would you like to tell the admins? Send it in one message (up to {n} "
            "characters), or /cancel.",
            n=LIMITS["message"],
        ),
    )


@free_text("support", "message", _("Your message"))
async def _relay(ctx: Ctx, _data: dict[str, Any], message: str) -> None:
    now = ctx.now()
    if not await admin_ids(ctx.uow):
        raise BadInput(_("This marketplace has no admin yet, so nobody could read it."))
    sent = await _recent(ctx.uow, ctx.actor.id, now - SUPPORT_WINDOW)
    if len(sent) >= SUPPORT_LIMIT:
        raise BadInput(
            _(
                "You have written to the admins {n} times in the last hour; they will answer "
                "here. You can write again after {when}.",
                n=len(sent),
                when=When(sent[-SUPPORT_LIMIT] + SUPPORT_WINDOW),
            )
        )
    await ctx.tell_admins(
        _(
            "Message from {name} (user #{id}): “{text}”",
            name=clip(ctx.actor.user.display_name),
            id=ctx.actor.id,
            text=clip(message, LIMITS["message"]),  # invisible characters dropped
        ),
        [Choice(_("Reply"), _reply_payload(ctx.actor.id))],
    )
    ctx.say(_("Sent to the admins. Their answer will reach you here."))


@admin_subcommand(
    "reply",
    _("Answer a message sent with /support"),
    args=(
        number("user", _("The user number in the message")),
        text("text", _("Your answer"), required=False, words=True),
    ),
)
async def admin_reply(ctx: Ctx, args: list[str]) -> None:
    user = await _user(ctx, need_int(args, 0, "/admin reply USER TEXT"))
    await _answer.take(
        ctx,
        " ".join(args[1:]),
        {"user_id": user.id},
        _(
            "Your answer to {name}? Send it in one message, or /cancel.",
            name=clip(user.display_name),
        ),
    )


async def _user(ctx: Ctx, user_id: int) -> User:
    user = await ctx.uow.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound(_("There is no user #{id}.", id=user_id))
    return user


@free_text("support_reply", "answer", _("Your answer"), admin=True)
async def _answer(ctx: Ctx, data: dict[str, Any], answer: str) -> None:
    user = await _user(ctx, int(data["user_id"]))
    await ctx.tell(
        user.id,
        _("The admins answered: “{text}”", text=clip(answer, LIMITS["answer"])),
        [Choice(_("Write back"), "/support")],
    )
    ctx.say(_("Your answer is on its way to {name}.", name=clip(user.display_name)))
