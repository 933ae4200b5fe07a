"""Button payloads too long for a platform's button data, kept in the database under a token.

A choice's payload is a command (`/course some-long-slug`). Platforms cap what a button can
carry (Telegram: 64 bytes of callback data), so an adapter that cannot fit a payload stores it
here and puts the token on the button instead. A token belongs to the one identity it was shown
to and ages out; anything else is refused before the command runs.

A button that answers a question (a level, a time of day) rather than running a command is only
meaningful while that question is open; `conversation_marker` names the open question, so an
adapter can refuse an answer button from an earlier step instead of feeding it to a later one.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import delete, select

from storage.models import ButtonPayload, Conversation, Identity
from storage.uow import UnitOfWork

# What `stash` hands out (`secrets.token_urlsafe(12)`: 16 URL-safe characters). Anything else
# a client sends (NUL, which PostgreSQL cannot even take as a parameter, or kilobytes) is
# refused before the lookup.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,32}")


async def stash(
    uow: UnitOfWork, platform: str, external_id: str, payload: str, now: datetime
) -> str:
    """Store `payload` for `external_id` on `platform`; returns a 16-character token."""
    token = secrets.token_urlsafe(12)
    uow.add(
        ButtonPayload(
            token=token,
            platform=platform,
            external_id=external_id,
            payload=payload,
            created_at=now,
        )
    )
    await uow.flush()
    return token


async def fetch(
    uow: UnitOfWork, platform: str, external_id: str, token: str, not_before: datetime
) -> str | None:
    """The payload behind `token` if it was shown to this identity after `not_before`."""
    if not _TOKEN.fullmatch(token):
        return None
    row = await uow.get(ButtonPayload, token)
    if (
        row is None
        or row.platform != platform
        or row.external_id != external_id
        or row.created_at < not_before
    ):
        return None
    return row.payload


async def prune(uow: UnitOfWork, before: datetime) -> int:
    """Forget tokens created before `before`; returns how many went."""
    result = await uow.session.execute(
        delete(ButtonPayload).where(ButtonPayload.created_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def conversation_marker(uow: UnitOfWork, platform: str, external_id: str) -> str:
    """The question this identity's user is answering now ('' if none); it changes with
    every step, so it tells an answer to this question from an answer to an earlier one."""
    row = (
        await uow.session.execute(
            select(Conversation.flow, Conversation.step, Conversation.updated_at)
            .join(Identity, Identity.user_id == Conversation.user_id)
            .where(Identity.platform == platform)
            .where(Identity.external_id == external_id)
        )
    ).first()
    if row is None:
        return ""
    flow, step, updated_at = row
    return f"{flow}:{step}:{updated_at.isoformat()}"
