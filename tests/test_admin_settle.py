"""Two processes starting at once both settle the admin roles (`Marketplace.settle_admins`):
neither may fail its start because the other granted or revoked the same role first (seen in
the load test: a duplicate key on `user_roles` stopped a bot at start-up)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from bot.app import Marketplace
from bot.core.users import grant_role, revoke_role
from storage.models import User, UserRole
from storage.uow import UnitOfWork
from tests.support import AppFactory

Act = Callable[[UnitOfWork, int, str], Awaitable[None]]


async def _alone(app: Marketplace, act: Act, user_id: int) -> None:
    async with app.new_uow() as uow:
        await act(uow, user_id, "admin")
        await uow.commit()


@pytest.mark.parametrize("act", [grant_role, revoke_role], ids=["grant", "revoke"])
async def test_the_same_role_change_by_two_transactions_at_once_is_no_error(
    make_app: AppFactory, act: Act
) -> None:
    app: Marketplace = await make_app()
    async with app.new_uow() as uow:
        user = User(display_name="Ada", language="en", timezone="UTC", created_at=app.clock.now())
        uow.add(user)
        await uow.flush()
        user_id = user.id
        if act is revoke_role:
            uow.add(UserRole(user_id=user_id, role="admin"))
        await uow.commit()
    async with app.new_uow() as first:
        await act(first, user_id, "admin")
        # The other process acts while this change is uncommitted: on PostgreSQL it waits
        # on the row's key, then must find the work done rather than fail.
        other = asyncio.create_task(_alone(app, act, user_id))
        await asyncio.sleep(0.3)
        await first.commit()
    await other
    async with app.new_uow() as uow:
        roles = (
            await uow.session.execute(select(UserRole.role).where(UserRole.user_id == user_id))
        ).scalars()
        assert list(roles) == (["admin"] if act is grant_role else [])
