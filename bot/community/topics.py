"""Forum topics: a course's place inside a Telegram forum supergroup that several courses share.

A `[community] spaces` entry "SLUG=telegram:CHAT_ID/TOPIC" gives the course's learners the
supergroup CHAT_ID and points them at one of its topics. TOPIC is the topic's
message_thread_id (digits) or its name; a name the bot has not made yet is made
(createForumTopic) the first time a learner is let in, and its thread id kept in
`ForumTopic`, because the Bot API lists no topics: a restart, or a second process, finds it
there instead of making a duplicate. The row's lease means one process makes it; another that
needs it meanwhile watches the row for the thread id (`WAIT`, a few seconds: Telegram answers
createForumTopic in well under one), and only if it is not there by then, or the maker gave up,
leaves the grant to the next pass. Each process also keeps the ids it has seen in memory.

Topics are not access-controlled by Telegram: a member of the supergroup sees all of its
topics. Access is therefore decided per chat (`bot.community.membership`); the topic only says
where the learner's course talks: in the invite, and in the welcome posted when they join. A
member who buys a further course is told its topic privately and, being in the group already
(no join will come), welcomed into that topic by the sweep, as a community greets a newcomer
to a course; someone merely invited is welcomed at their join instead, into every topic of
theirs, so nobody is welcomed twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.core.clock import Clock, real_span
from bot.core.i18n import Localized, Msg, _
from bot.learning.courses import course_title
from storage.models import Course, ForumTopic, User
from storage.uow import UnitOfWork

LEASE = timedelta(seconds=60)
WAIT = 5.0  # seconds a process watches a topic another is making before leaving it
POLL = 0.1


class TopicPort(Protocol):
    """A platform's forum topics (Telegram), implemented by its adapter. Welcomes
    (`welcome_posts`) are posted by the adapter that saw the join, or by the sweep for a
    member who is in already (`post`)."""

    async def create_topic(self, chat: str, name: str) -> int:
        """Make a topic named `name` in the forum supergroup `chat`; its message_thread_id."""
        ...

    def topic_link(self, chat: str, thread_id: int) -> str:
        """A link that opens the topic for a member of the chat."""
        ...

    async def post(self, chat: str, thread_id: int, text: str) -> None:
        """Post `text` into the topic, inert: no formatting, no mention that pings."""
        ...


class TopicBusy(Exception):
    """Another process is making this topic now; the grant waiting for it is retried."""


@dataclass(frozen=True)
class Post:
    """A message for a topic, rendered in the language of the learner it welcomes."""

    chat: str
    thread_id: int
    text: str


def given_id(topic: str) -> int | None:
    """The thread id when config names the topic by id (digits), else None (a name)."""
    return int(topic) if topic.isdigit() else None


class Topics:
    """Thread ids by (chat, topic), from config, memory, the table, or made once."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], clock: Clock, platform: str) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._platform = platform
        self._known: dict[tuple[str, str], int] = {}

    async def known(self, uow: UnitOfWork, chat: str, topic: str) -> int | None:
        """The thread id if the topic exists (given, seen, or stored), without making it."""
        thread = given_id(topic) or self._known.get((chat, topic))
        if thread is not None:
            return thread
        thread = (
            await uow.session.execute(
                select(ForumTopic.thread_id)
                .where(ForumTopic.platform == self._platform)
                .where(ForumTopic.chat == chat)
                .where(ForumTopic.name == topic)
            )
        ).scalar_one_or_none()
        if thread is not None:
            self._known[(chat, topic)] = thread
        return thread

    async def ensure(self, port: TopicPort, chat: str, topic: str) -> int:
        """The topic's thread id, making the topic first if nobody has. Raises `TopicBusy`
        while another process holds the lease, and the port's error when Telegram refuses
        (not a forum, no right to manage topics): the caller retries later."""
        now = self._clock.now()
        async with self._new_uow() as uow:
            thread = await self.known(uow, chat, topic)
            if thread is not None:
                return thread
            dialect = uow.session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            await uow.session.execute(
                insert(ForumTopic)
                .values(platform=self._platform, chat=chat, name=topic)
                .on_conflict_do_nothing(index_elements=["platform", "chat", "name"])
            )
            claimed = (
                await uow.session.execute(
                    update(ForumTopic)
                    .where(ForumTopic.platform == self._platform)
                    .where(ForumTopic.chat == chat)
                    .where(ForumTopic.name == topic)
                    .where(ForumTopic.thread_id.is_(None))
                    .where(or_(ForumTopic.claimed_until.is_(None), ForumTopic.claimed_until < now))
                    .values(claimed_until=now + real_span(self._clock, LEASE))
                    .returning(ForumTopic.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            await uow.commit()
        if claimed is None:
            thread = await self._made_by_another(chat, topic)
            if thread is None:
                raise TopicBusy(f"topic {topic!r} in {chat} is being made by another process")
            return thread
        try:
            thread = await port.create_topic(chat, topic)
        except BaseException:
            await self._settle(claimed, None)
            raise
        await self._settle(claimed, thread)
        self._known[(chat, topic)] = thread
        return thread

    async def _made_by_another(self, chat: str, topic: str) -> int | None:
        """The thread id another process is making, read from its row until it is there
        (at most `WAIT` seconds); None when it is not by then, or the maker's lease ended
        without one (Telegram refused it, or the maker died)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + WAIT
        while True:
            async with self._new_uow() as uow:
                row = (
                    await uow.session.execute(
                        select(ForumTopic.thread_id, ForumTopic.claimed_until)
                        .where(ForumTopic.platform == self._platform)
                        .where(ForumTopic.chat == chat)
                        .where(ForumTopic.name == topic)
                    )
                ).one_or_none()
            if row is not None and row.thread_id is not None:
                self._known[(chat, topic)] = row.thread_id
                return int(row.thread_id)
            lease = row.claimed_until if row is not None else None
            if lease is None or lease < self._clock.now() or loop.time() >= until:
                return None
            await asyncio.sleep(POLL)

    async def _settle(self, row_id: int, thread: int | None) -> None:
        async with self._new_uow() as uow:
            row = await uow.lock(ForumTopic, row_id)
            assert row is not None
            row.claimed_until = None
            if thread is not None:
                row.thread_id, row.created_at = thread, self._clock.now()
            await uow.commit()


def topic_label(topic: str, title: Localized) -> Localized | str:
    """How a message names a topic: its name, or (given by id, name unknown) the course."""
    return title if given_id(topic) is not None else topic


async def welcome_posts(
    uow: UnitOfWork, topics: Topics, user_id: int, chat: str, placed: Sequence[tuple[str, str]]
) -> list[Post]:
    """A welcome into each topic of `placed` ((course slug, topic) pairs) that exists, in
    the joining learner's language, naming them as the marketplace shows them."""
    user = await uow.get(User, user_id)
    if user is None or user.deleted_at is not None:
        return []
    posts = []
    for slug, topic in placed:
        thread = await topics.known(uow, chat, topic)
        course = (
            await uow.session.execute(select(Course).where(Course.slug == slug))
        ).scalar_one_or_none()
        if thread is None or course is None:
            continue
        msg: Msg = _(
            "Welcome, {name}! You are here as a learner of {course}: this topic is where "
            "its learners talk.",
            name=user.display_name,
            course=course_title(course),
        )
        posts.append(Post(chat, thread, msg.render(user.language, user.timezone)))
    return posts
