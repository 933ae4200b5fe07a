"""A private Discord channel per mentorship whose two sides are both on Discord.

With `[discussion] discord_category_id` set, a thread (`RelayThread`) whose learner and mentor
both have a Discord identity is marked `wanted`; the sweep claims it with a lease, as access
grants are claimed, and the Discord adapter makes a channel in that category that only the two
of them (and the bot) can see (`PrivatePort.open_private`). The relay keeps working beside it
(for the other platforms, and for anyone who prefers DMs). When either side erases their data
the channel is deleted (`closing` → `closed`). The core never names a Discord object: the port
takes and returns plain ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update

from bot.config import Config
from bot.core.clock import Clock, real_span
from bot.core.i18n import _
from bot.core.outbox import tell
from storage.models import Identity, RelayThread, User
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PLATFORM = "discord"
LEASE = timedelta(seconds=60)
RETRY = timedelta(minutes=5)


class PrivatePort(Protocol):
    async def open_private(self, category: str, members: list[str], name: str) -> str:
        """A channel in `category` only `members` (platform ids) and the bot can see."""
        ...

    async def close_private(self, ref: str) -> None: ...


async def _discord_id(uow: UnitOfWork, user_id: int) -> str | None:
    found = await uow.session.execute(
        select(Identity.external_id)
        .where(Identity.user_id == user_id)
        .where(Identity.platform == PLATFORM)
        .order_by(Identity.last_seen_at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


async def close_for(uow: UnitOfWork, user_id: int) -> None:
    """/deleteme: the user's open private channels are to be deleted."""
    await uow.session.execute(
        update(RelayThread)
        .where(or_(RelayThread.learner_id == user_id, RelayThread.mentor_user_id == user_id))
        .where(RelayThread.space_state.in_(("open", "wanted")))
        .values(space_state="closing", space_claimed_until=None)
    )


async def _mark_wanted(uow: UnitOfWork) -> None:
    rows = (
        await uow.session.execute(
            select(RelayThread).where(RelayThread.space_state == "none").limit(200)
        )
    ).scalars()
    for thread in list(rows):
        if await _discord_id(uow, thread.learner_id) and await _discord_id(
            uow, thread.mentor_user_id
        ):
            thread.space_state = "wanted"


async def sweep_private(
    new_uow: Callable[[], UnitOfWork], clock: Clock, config: Config, port: PrivatePort
) -> int:
    """Open the wanted channels and delete the closing ones; returns how many were done."""
    category = config.discussion.discord_category_id
    now = clock.now()
    async with new_uow() as uow:
        if category:
            await _mark_wanted(uow)
        due = (
            select(RelayThread.id)
            .where(RelayThread.space_state.in_(("wanted", "closing") if category else ("closing",)))
            .where(
                or_(
                    RelayThread.space_claimed_until.is_(None),
                    RelayThread.space_claimed_until < now,
                )
            )
            .limit(50)
            .with_for_update(skip_locked=True)
        )
        ids = list((await uow.session.execute(due)).scalars())
        claimed: list[tuple[int, str, str | None, int, int]] = []
        if ids:
            rows = await uow.session.execute(
                update(RelayThread)
                .where(RelayThread.id.in_(ids))
                .where(
                    or_(
                        RelayThread.space_claimed_until.is_(None),
                        RelayThread.space_claimed_until < now,
                    )
                )
                .values(space_claimed_until=now + real_span(clock, LEASE))
                .returning(RelayThread)
                .execution_options(synchronize_session=False)
            )
            claimed = [
                (t.id, t.space_state, t.space_ref, t.learner_id, t.mentor_user_id)
                for t in rows.scalars()
            ]
        members: dict[int, list[str]] = {}
        for thread_id, state, _ref, learner, mentor in claimed:
            if state == "wanted":
                ids_ = [await _discord_id(uow, learner), await _discord_id(uow, mentor)]
                members[thread_id] = [i for i in ids_ if i is not None]
        await uow.commit()
    done = 0
    for thread_id, state, ref, learner, mentor in claimed:
        opened: str | None = None
        try:
            if state == "wanted":
                opened = await port.open_private(
                    str(category), members[thread_id], f"mentorship-{thread_id}"
                )
            elif ref is not None:
                await port.close_private(ref)
        except Exception as exc:
            log.warning("discord private space failed; retried later", extra={"error": str(exc)})
            await _retry(new_uow, thread_id, now + RETRY)
            continue
        await _record(new_uow, clock.now(), thread_id, state, opened, learner, mentor)
        done += 1
    return done


async def _retry(new_uow: Callable[[], UnitOfWork], thread_id: int, at: datetime) -> None:
    async with new_uow() as uow:
        await uow.session.execute(
            update(RelayThread).where(RelayThread.id == thread_id).values(space_claimed_until=at)
        )
        await uow.commit()


async def _record(
    new_uow: Callable[[], UnitOfWork],
    now: datetime,
    thread_id: int,
    state: str,
    opened: str | None,
    learner: int,
    mentor: int,
) -> None:
    async with new_uow() as uow:
        thread = await uow.lock(RelayThread, thread_id)
        assert thread is not None
        thread.space_claimed_until = None
        if state == "wanted" and thread.space_state == "wanted":
            thread.space_state, thread.space_ref = "open", opened
            for user_id, other_id in ((learner, mentor), (mentor, learner)):
                other = await uow.get(User, other_id)
                await tell(
                    uow,
                    user_id,
                    _(
                        "You and {name} now have a private channel on the server, "
                        "#mentorship-{id}, that only the two of you can see.",
                        name=other.display_name if other is not None else "—",
                        id=thread_id,
                    ),
                    now,
                )
        elif state == "wanted":  # closed meanwhile: the new channel goes at the next pass
            thread.space_ref = opened
        else:
            thread.space_state, thread.space_ref = "closed", None
        await uow.commit()
