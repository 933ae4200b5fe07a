"""What adapters call for discussion spaces and community access, through the front door:
recording where a relayed message landed, deciding a join request, and someone joining."""

from __future__ import annotations

from bot.community import access, relay
from bot.community.topics import Post, Topics, welcome_posts
from bot.front_door import Ports
from storage.models import Identity


async def remember_delivery(
    ports: Ports, identity: Identity, relay_id: int, platform_message_id: str
) -> None:
    """The relayed message `relay_id` landed in `identity`'s private chat as
    `platform_message_id`; a reply to it there continues the conversation."""
    user_id, platform, chat = identity.user_id, identity.platform, identity.external_id

    async def work() -> None:
        async with ports.new_uow() as uow:
            await relay.remember_delivery(
                uow, relay_id, user_id, platform, chat, platform_message_id
            )
            await uow.commit()

    await ports.front.dispatch("relay_delivery", work, on_error=lambda: None)


async def decide_join_request(ports: Ports, platform: str, ref: str, external_id: str) -> bool:
    """A request to join a space: True to approve (the person's access is desired there),
    False to decline. A failure declines (the person may ask again)."""

    async def work() -> bool:
        async with ports.new_uow() as uow:
            allowed = await access.join_allowed(uow, platform, ref, external_id, ports.clock.now())
            await uow.commit()
        return allowed

    return await ports.front.dispatch(
        "join_request",
        work,
        outcome=lambda ok: "ok" if ok else "refused",
        on_error=lambda: False,
    )


async def member_joined(
    ports: Ports, topics: Topics, platform: str, ref: str, external_id: str
) -> list[Post]:
    """The platform says someone joined the place `ref` (by an invite link, or a join request
    approved): the welcome to post into each topic their courses have there, in their
    language; none for someone entitled to nothing there."""

    async def work() -> list[Post]:
        async with ports.new_uow() as uow:
            joined = await access.member_joined(uow, ports.config, platform, ref, external_id)
            if joined is None or not joined.placed:
                return []
            return await welcome_posts(uow, topics, joined.user_id, ref, joined.placed)

    return await ports.front.dispatch("member_joined", work, on_error=list)
