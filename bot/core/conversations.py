"""Conversation steps kept in the database, so a restart mid-step resumes where the user was."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.models import Conversation
from storage.uow import UnitOfWork


async def current(uow: UnitOfWork, user_id: int) -> Conversation | None:
    return await uow.get(Conversation, user_id)


async def begin(
    uow: UnitOfWork, user_id: int, flow: str, step: str, data: dict[str, Any], now: datetime
) -> None:
    conv = await uow.get(Conversation, user_id)
    if conv is None:
        uow.add(Conversation(user_id=user_id, flow=flow, step=step, data=data, updated_at=now))
    else:
        conv.flow, conv.step, conv.data, conv.updated_at = flow, step, dict(data), now
    await uow.flush()


async def move(uow: UnitOfWork, conv: Conversation, step: str, now: datetime, **data: Any) -> None:
    conv.step = step
    conv.data = {**conv.data, **data}
    conv.updated_at = now
    await uow.flush()


async def end(uow: UnitOfWork, user_id: int) -> bool:
    conv = await uow.get(Conversation, user_id)
    if conv is None:
        return False
    await uow.session.delete(conv)
    await uow.flush()
    return True
