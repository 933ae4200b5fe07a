"""Free text a command takes inline or asks for in the next message: `/support TEXT` or
`/support` then the message; `/admin reject ID REASON` or the reason next; `/admin reply USER
TEXT` or the answer next.

Either way the text reaches one function, after the same checks: within its limit (the one
`LIMITS` table; longer is refused with the limit and nothing changes, the question still
open), and, for a step only admins may answer, the answerer still an admin. What the command
looked up (a profile, a user) travels in the conversation's data and is looked up again when
the answer comes, as it may have changed in between.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.core import conversations
from bot.core.i18n import Msg
from bot.handlers.args import within
from bot.handlers.registry import flow
from storage.models import Conversation

Then = Callable[[Ctx, dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class FreeText:
    """A step that takes the text `field` (a key of `LIMITS`, named `label` in a refusal)
    and hands it, with the step's data, to `then`."""

    flow: str
    field: str
    label: Msg
    admin: bool
    then: Then

    async def take(self, ctx: Ctx, typed: str, data: dict[str, Any], prompt: Msg) -> None:
        """Use `typed` (the words after the command) if there are any, else ask with
        `prompt`: the next message is the text."""
        if not typed.strip():
            await conversations.begin(ctx.uow, ctx.actor.id, self.flow, self.field, data, ctx.now())
            ctx.say(prompt)
            return
        await self.use(ctx, data, typed)

    async def use(self, ctx: Ctx, data: dict[str, Any], typed: str) -> None:
        if self.admin:
            ctx.require_admin()
        await self.then(ctx, data, within(typed.strip(), self.field, self.label))


def free_text(
    name: str, field: str, label: Msg, *, admin: bool = False
) -> Callable[[Then], FreeText]:
    """Declare the step `name` around the function its text goes to, and register the
    conversation flow that takes the text when it comes in the next message."""

    def register(then: Then) -> FreeText:
        step = FreeText(name, field, label, admin, then)

        @flow(name)
        async def answered(ctx: Ctx, conv: Conversation, text: str) -> None:
            await conversations.end(ctx.uow, ctx.actor.id)
            await step.use(ctx, dict(conv.data), text)

        return step

    return register
