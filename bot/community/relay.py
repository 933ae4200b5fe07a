"""A mentorship's private conversation, relayed through the bot.

When a mentor accepts a request the pair gets a thread (`open_thread`; made on first use for
older mentorships too). Either side writes into it (`relay`): the text is stored for
`[discussion] keep_days` and written to the other side's outbox as a notice, in their language
and on their platform, with a Reply button. Neither side sees the other's handle, only the
display name the marketplace already shows them. The text reaches the other side inert: as a
value inside our message, which Telegram sends as plain text and the Discord adapter escapes
(`bot.adapters.discord.render.inert`) and sends with no mentions parsed.

On a platform where people reply to a message (Telegram), the adapter records where each
relayed message landed (`remember_delivery`); a reply to it continues the thread
(`thread_of_reply`). A reply whose target was not delivered to that person, in their own chat,
is refused. Messages are pruned by the sweep (`prune`) and erased by /deleteme (`erase_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from bot.core.errors import BadInput, NotAllowed, NotFound
from bot.core.i18n import _
from bot.core.outbox import enqueue
from bot.core.replies import Choice, Say
from storage.models import (
    MentorProfile,
    MentorshipRequest,
    RelayDelivery,
    RelayMessage,
    RelayThread,
    User,
)
from storage.uow import UnitOfWork

MESSAGE_LIMIT = 1000  # characters relayed in one message


@dataclass(frozen=True)
class Pair:
    """One of the actor's mentorships, seen from their side."""

    request_id: int
    other_id: int
    other_name: str
    as_mentor: bool


async def open_thread(uow: UnitOfWork, request: MentorshipRequest, now: datetime) -> RelayThread:
    """The accepted request's thread, made if it has none yet."""
    found = (
        await uow.session.execute(select(RelayThread).where(RelayThread.request_id == request.id))
    ).scalar_one_or_none()
    if found is not None:
        return found
    assert request.mentor_id is not None
    mentor = await uow.get(MentorProfile, request.mentor_id)
    assert mentor is not None
    thread = RelayThread(
        request_id=request.id,
        learner_id=request.learner_id,
        mentor_user_id=mentor.user_id,
        created_at=now,
        space_state="none",
    )
    uow.add(thread)
    await uow.flush()
    return thread


async def pairs_of(uow: UnitOfWork, user_id: int) -> list[Pair]:
    """The user's accepted mentorships, as learner and as mentor, oldest first."""
    rows = await uow.session.execute(
        select(MentorshipRequest, MentorProfile.user_id)
        .join(MentorProfile, MentorProfile.id == MentorshipRequest.mentor_id)
        .where(MentorshipRequest.status == "accepted")
        .where(or_(MentorshipRequest.learner_id == user_id, MentorProfile.user_id == user_id))
        .order_by(MentorshipRequest.id)
    )
    pairs = []
    for request, mentor_user in rows.all():
        as_mentor = mentor_user == user_id
        other_id = request.learner_id if as_mentor else mentor_user
        other = await uow.get(User, other_id)
        if other is None or other.deleted_at is not None:
            continue
        pairs.append(Pair(request.id, other_id, other.display_name, as_mentor))
    return pairs


async def pair_for(uow: UnitOfWork, user_id: int, request_id: int) -> Pair:
    """The actor's side of mentorship `request_id`, or a refusal: it must be theirs."""
    for pair in await pairs_of(uow, user_id):
        if pair.request_id == request_id:
            return pair
    raise NotAllowed(
        _("Request #{id} is not a mentorship of yours, so you cannot write in it.", id=request_id)
    )


def reply_choice(request_id: int, as_mentor: bool) -> Choice:
    """The recipient's Reply button: `/answer` for a mentor, `/ask` for a learner."""
    return Choice(_("Reply"), f"/answer {request_id}" if as_mentor else f"/ask {request_id}")


async def relay(
    uow: UnitOfWork, sender_id: int, request_id: int, text: str, now: datetime
) -> tuple[Pair, RelayMessage]:
    """Store `text` in the mentorship's thread and write it to the other side's outbox."""
    text = text.strip()
    if not text:
        raise BadInput(_("There is nothing to send: write the message after the command."))
    if len(text) > MESSAGE_LIMIT:
        raise BadInput(
            _(
                "A message can be at most {limit} characters; yours has {count}. Nothing was "
                "sent: please shorten it and send it again.",
                limit=MESSAGE_LIMIT,
                count=len(text),
            )
        )
    pair = await pair_for(uow, sender_id, request_id)
    request = await uow.get(MentorshipRequest, request_id)
    sender = await uow.get(User, sender_id)
    assert request is not None and sender is not None
    thread = await open_thread(uow, request, now)
    message = RelayMessage(thread_id=thread.id, sender_id=sender_id, body=text, created_at=now)
    uow.add(message)
    await uow.flush()
    if pair.as_mentor:
        said = _(
            "Your mentor {name} writes (request #{id}):\n“{text}”",
            name=sender.display_name,
            id=request_id,
            text=text,
        )
    else:
        said = _(
            "Your mentee {name} writes (request #{id}):\n“{text}”",
            name=sender.display_name,
            id=request_id,
            text=text,
        )
    # The recipient answers from the other side of the pair.
    choice = reply_choice(request_id, as_mentor=not pair.as_mentor)
    await enqueue(uow, pair.other_id, Say(said, (choice,), relay=message.id), now)
    return pair, message


async def remember_delivery(
    uow: UnitOfWork,
    message_id: int,
    recipient_id: int,
    platform: str,
    chat_id: str,
    platform_message_id: str,
) -> None:
    """Where relayed message `message_id` landed (a platform with replies records it)."""
    if await uow.get(RelayMessage, message_id) is None:
        return  # pruned or erased meanwhile
    uow.add(
        RelayDelivery(
            message_id=message_id,
            recipient_id=recipient_id,
            platform=platform,
            chat_id=chat_id,
            platform_message_id=platform_message_id,
        )
    )
    await uow.flush()


async def thread_of_reply(
    uow: UnitOfWork, user_id: int, platform: str, own_chat: str, target: str
) -> int | None:
    """The mentorship a reply continues: `target` is "CHAT:MESSAGE" as the platform named the
    replied-to message. None when it is no relayed message (a reply to a question, say).

    Refused when the message is not one relayed to this person in their own chat: a forged
    reply target never reaches anyone."""
    chat, _sep, message = target.rpartition(":")
    if chat != own_chat:
        raise NotAllowed(_("That message was not sent to you, so you cannot answer it."))
    found = (
        await uow.session.execute(
            select(RelayDelivery, RelayMessage.thread_id)
            .join(RelayMessage, RelayMessage.id == RelayDelivery.message_id)
            .where(RelayDelivery.platform == platform)
            .where(RelayDelivery.chat_id == chat)
            .where(RelayDelivery.platform_message_id == message)
        )
    ).first()
    if found is None:
        return None
    delivery, thread_id = found
    if delivery.recipient_id != user_id:
        raise NotAllowed(_("That message was not sent to you, so you cannot answer it."))
    thread = await uow.get(RelayThread, thread_id)
    if thread is None:
        raise NotFound(_("That conversation no longer exists."))
    return thread.request_id


async def prune(uow: UnitOfWork, keep_days: int, now: datetime) -> int:
    """Erase relayed messages older than `keep_days`; returns how many."""
    old = select(RelayMessage.id).where(RelayMessage.created_at < now - timedelta(days=keep_days))
    ids = list((await uow.session.execute(old.limit(1000))).scalars())
    if not ids:
        return 0
    await uow.session.execute(delete(RelayDelivery).where(RelayDelivery.message_id.in_(ids)))
    await uow.session.execute(delete(RelayMessage).where(RelayMessage.id.in_(ids)))
    return len(ids)


async def words_of(uow: UnitOfWork, user_id: int) -> list[str]:
    """What the user wrote in relayed messages (erasure takes it out of pending notices)."""
    rows = await uow.session.execute(
        select(RelayMessage.body).where(RelayMessage.sender_id == user_id)
    )
    return list(rows.scalars())


async def erase_for(uow: UnitOfWork, user_id: int) -> int:
    """/deleteme: every message of the user's conversations (both sides' words: a
    conversation is erased whole) and where they landed; returns how many messages."""
    threads = select(RelayThread.id).where(
        or_(RelayThread.learner_id == user_id, RelayThread.mentor_user_id == user_id)
    )
    ids = list(
        (
            await uow.session.execute(
                select(RelayMessage.id).where(
                    or_(RelayMessage.thread_id.in_(threads), RelayMessage.sender_id == user_id)
                )
            )
        ).scalars()
    )
    await uow.session.execute(
        delete(RelayDelivery).where(
            or_(RelayDelivery.message_id.in_(ids), RelayDelivery.recipient_id == user_id)
        )
    )
    await uow.session.execute(delete(RelayMessage).where(RelayMessage.id.in_(ids)))
    return len(ids)
