"""What a learner is told when a community place opens to them: the single-use invite link,
and the forum topics of their courses there, each named and linked (`bot.community.topics`).
Written to the outbox in the sweep's transaction that records the grant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.community.topics import TopicPort, topic_label
from bot.core.i18n import Lines, Localized, Msg, _
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.learning.courses import course_title
from storage.models import Course
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Placed:
    """A course's topic in a chat, as granted: the course, the topic as config names it, and
    its thread id."""

    course: str  # slug
    topic: str
    chat: str
    thread_id: int


async def _topic_lines(
    uow: UnitOfWork, port: TopicPort, placed: Sequence[Placed]
) -> list[tuple[Msg, Choice]]:
    """How a message names each topic ("“TOPIC” (COURSE)"), and the button that opens it."""
    found: list[tuple[Msg, Choice]] = []
    for one in placed:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == one.course))
        ).scalar_one_or_none()
        title = course_title(course) if course is not None else Localized(one.course)
        label = topic_label(one.topic, title)
        link = port.topic_link(one.chat, one.thread_id)
        found.append(
            (
                _("“{topic}” ({course})", topic=label, course=title),
                Choice(_("Open the topic “{topic}”", topic=label), link, url=True),
            )
        )
    return found


async def tell_invite(
    uow: UnitOfWork,
    user_id: int,
    link: str,
    hours: int,
    port: TopicPort | None,
    placed: Sequence[Placed],
    now: datetime,
) -> None:
    """The single-use invite link, naming and linking the topics it opens."""
    join = Choice(_("Join the group"), link, url=True)
    topics = await _topic_lines(uow, port, placed) if port is not None else []
    if not topics:
        msg = _(
            "Your course's community group is open to you. The link works once, for you, "
            "within {hours} hours:",
            hours=hours,
        )
    else:
        msg = _(
            "Your course's community group is open to you. The link works once, for you, "
            "within {hours} hours. Topics for you there:\n{topics}",
            hours=hours,
            topics=Lines(line for line, _button in topics),
        )
    await tell(uow, user_id, msg, now, [join, *(button for _line, button in topics)])


async def tell_shared(
    uow: UnitOfWork, user_id: int, port: TopicPort | None, placed: Sequence[Placed], now: datetime
) -> None:
    """A course whose topic is in a group the learner already has: no new invite, the topic
    named and linked."""
    if port is None:
        return
    for line, button in await _topic_lines(uow, port, placed):
        await tell(
            uow,
            user_id,
            _(
                "Your course's topic is in the community group you already have, so no new "
                "invite is needed: {topic}.",
                topic=line,
            ),
            now,
            [button],
        )
