"""The command table: one entry per chat command, and one per multi-step conversation flow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.context import Ctx
from bot.core.i18n import Msg
from storage.models import Conversation

Handler = Callable[[Ctx, list[str]], Awaitable[None]]
StepHandler = Callable[[Ctx, Conversation, str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: Msg
    role: str | None = None  # None: anyone; "mentor"/"admin": shown only to them in /help


COMMANDS: dict[str, Command] = {}
FLOWS: dict[str, StepHandler] = {}
ADMIN_SUBCOMMANDS: dict[str, Handler] = {}


def command(name: str, help: Msg, role: str | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if name in COMMANDS:
            raise RuntimeError(f"command /{name} registered twice")
        COMMANDS[name] = Command(name, fn, help, role)
        return fn

    return register


def flow(name: str) -> Callable[[StepHandler], StepHandler]:
    def register(fn: StepHandler) -> StepHandler:
        FLOWS[name] = fn
        return fn

    return register


def admin_subcommand(name: str) -> Callable[[Handler], Handler]:
    """Register `/admin NAME …`; the admin role is checked before any of these runs."""

    def register(fn: Handler) -> Handler:
        if name in ADMIN_SUBCOMMANDS:
            raise RuntimeError(f"admin subcommand {name} registered twice")
        ADMIN_SUBCOMMANDS[name] = fn
        return fn

    return register
