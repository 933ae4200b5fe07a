"""Writing to your mentor or mentee through the bot: `/ask [REQUEST] TEXT` (learners),
`/answer REQUEST TEXT` (mentors), the Reply button on a relayed message, and on Telegram a
reply to that message. The rule is `bot.community.relay`."""

from __future__ import annotations

from bot.community import relay
from bot.context import Ctx
from bot.core import conversations
from bot.core.errors import BadInput
from bot.core.i18n import _
from bot.core.replies import Choice
from bot.handlers.args import MAX_ID
from bot.handlers.registry import command, flow, number, text
from storage.models import Conversation

REQUEST = number("request", _("The mentorship's request number"), required=False)
MESSAGE = text("text", _("Your message"), required=False, words=True)


def _request_number(word: str) -> int | None:
    digits = word.removeprefix("#")
    if digits.isascii() and digits.isdigit() and 0 < int(digits) <= MAX_ID:
        return int(digits)
    return None


async def _write(ctx: Ctx, args: list[str], as_mentor: bool, name: str) -> None:
    pairs = [p for p in await relay.pairs_of(ctx.uow, ctx.actor.id) if p.as_mentor == as_mentor]
    first = _request_number(args[0]) if args else None
    if first is not None and (len(pairs) != 1 or first == pairs[0].request_id):
        request_id, words = first, args[1:]
    elif len(pairs) == 1:
        request_id, words = pairs[0].request_id, args
    elif not pairs:
        if as_mentor:
            raise BadInput(_("You have no mentees to write to yet."))
        raise BadInput(_("You have no mentor to write to yet. Ask for one with /mentor."))
    else:
        ctx.say(
            _("Who is it for?"),
            [Choice(f"#{p.request_id} {p.other_name}", f"/{name} {p.request_id}") for p in pairs],
        )
        return
    pair = await relay.pair_for(ctx.uow, ctx.actor.id, request_id)
    message = " ".join(words).strip()
    if not message:
        await conversations.begin(
            ctx.uow, ctx.actor.id, "relay", "text", {"request_id": request_id}, ctx.now()
        )
        ctx.say(
            _(
                "Your message to {name}? Send it in one message (up to {n} characters), or "
                "/cancel.",
                name=pair.other_name,
                n=relay.MESSAGE_LIMIT,
            )
        )
        return
    await _send(ctx, request_id, message)


async def _send(ctx: Ctx, request_id: int, message: str) -> None:
    pair, _message = await relay.relay(ctx.uow, ctx.actor.id, request_id, message, ctx.now())
    ctx.say(_("Sent to {name}. Their answer will reach you here.", name=pair.other_name))


@command(
    "ask",
    _("Write to your mentor through the bot: /ask [REQUEST] TEXT"),
    args=(REQUEST, MESSAGE),
    section="mentoring",
)
async def ask(ctx: Ctx, args: list[str]) -> None:
    await _write(ctx, args, as_mentor=False, name="ask")


@command(
    "answer",
    _("Write to a mentee through the bot: /answer REQUEST TEXT"),
    role="mentor",
    args=(REQUEST, MESSAGE),
    section="mentors",
)
async def answer(ctx: Ctx, args: list[str]) -> None:
    await _write(ctx, args, as_mentor=True, name="answer")


@flow("relay")
async def relay_text(ctx: Ctx, conv: Conversation, text: str) -> None:
    await conversations.end(ctx.uow, ctx.actor.id)
    await _send(ctx, int(conv.data["request_id"]), text)


async def continue_by_reply(ctx: Ctx, own_chat: str, target: str, text: str) -> bool:
    """A reply on the platform to message `target`: relayed into its conversation when it is
    a relayed message to this person (True); False when it is no relayed message at all."""
    request_id = await relay.thread_of_reply(
        ctx.uow, ctx.actor.id, ctx.actor.platform, own_chat, target
    )
    if request_id is None:
        return False
    await conversations.end(ctx.uow, ctx.actor.id)
    await _send(ctx, request_id, text)
    return True
