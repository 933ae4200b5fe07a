"""Button payloads too long for a platform's button data, kept in the database under a token.

A choice's payload is a command (`/course some-long-slug`). Platforms cap what a button can
carry (Telegram: 64 bytes of callback data), so an adapter that cannot fit a payload stores it
here and puts the token on the button instead. A token belongs to the one identity it was shown
to and ages out; anything else is refused before the command runs.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import delete

from storage.models import ButtonPayload
from storage.uow import UnitOfWork


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
