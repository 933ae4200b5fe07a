"""The slash commands, generated from the core's command table (`bot/handlers/registry.py`).

Each table command Discord offers becomes a slash command, its arguments the options and its
sub-commands a group (`/admin course add`); nothing here names a command, so one registered in
the core appears on Discord at the next sync. `/buy slug:python-basics` sends the core
`/buy python-basics`, exactly what a learner would type elsewhere, so every rule stays in the
core. Descriptions are the table's messages, translated for zh-CN by the client's translator.
Admin commands are hidden from members without Manage Server (`default_permissions`); the core
still checks the admin role, since guild owners can show the commands to anyone.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Range, locale_str

from bot.core.i18n import Msg
from bot.handlers.registry import COMMANDS, Arg, Command, Sub

Run = Callable[[discord.Interaction[Any], str], Awaitable[None]]
AppCommand = app_commands.Command[Any, ..., Any] | app_commands.Group
Callback = Callable[..., Coroutine[Any, Any, None]]

PLATFORM = "discord"  # the client's PLATFORM; importing it from there would be a cycle


def slash_commands(run: Run) -> list[AppCommand]:
    """Every table command Discord offers, each running `run(interaction, text)`."""
    return [slash_command(c, run) for c in COMMANDS.values() if c.on(PLATFORM)]


def slash_command(command: Command, run: Run) -> AppCommand:
    """One table command: a group when it has sub-commands, else a command with options."""
    hidden = discord.Permissions(manage_guild=True) if command.for_admins else None
    if command.subs:
        group = app_commands.Group(
            name=command.name,
            description=described(command.help),
            default_permissions=hidden,
            guild_only=command.for_admins,
        )
        for sub in command.subs.values():
            add_sub(group, sub, (command.name,), run)
        return group
    callback = options_callback((command.name,), command.args, run)
    if hidden is not None:
        callback = app_commands.guild_only()(app_commands.default_permissions(hidden)(callback))
    return app_commands.Command(
        name=command.name, description=described(command.help), callback=callback
    )


def add_sub(parent: app_commands.Group, sub: Sub, path: tuple[str, ...], run: Run) -> None:
    """`sub` under `parent`: a nested group (`course`) or a leaf command (`course add`)."""
    path = (*path, sub.name)
    if sub.subs:
        group = app_commands.Group(name=sub.name, description=described(sub.help), parent=parent)
        for child in sub.subs:
            add_sub(group, child, path, run)
        return
    parent.add_command(
        app_commands.Command(
            name=sub.name,
            description=described(sub.help),
            callback=options_callback(path, sub.args, run),
            parent=parent,
        )
    )


def described(msg: Msg) -> locale_str:
    """A table message as Discord text: the msgid, which the translator looks up for zh-CN."""
    return locale_str(msg.msgid)


def options_callback(path: tuple[str, ...], args: Sequence[Arg], run: Run) -> Callback:
    """A callback whose signature declares `args` as options, for discord.py to read.

    discord.py takes options from the callback's parameters; here they come from the table,
    so the signature is built rather than written.
    """

    async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
        await run(interaction, typed(path, args, values))

    interaction = inspect.Parameter(
        "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
    )
    options = [
        inspect.Parameter(
            a.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=annotation(a) if a.required else annotation(a) | None,
            default=inspect.Parameter.empty if a.required else None,
        )
        for a in args
    ]
    callback.__signature__ = inspect.Signature([interaction, *options])  # type: ignore[attr-defined]
    if args:
        hints = {a.name: described(a.hint) for a in args}
        callback = app_commands.describe(**hints)(callback)
    choices = {
        a.name: [app_commands.Choice(name=label, value=value) for value, label in a.choices]
        for a in args
        if a.choices
    }
    if choices:
        callback = app_commands.choices(**choices)(callback)
    return callback


def annotation(arg: Arg) -> Any:
    """The Python type discord.py turns into the option's type (an int's bounds included)."""
    if arg.kind != "int":
        return str
    if arg.high is None:
        return Range[int, arg.low]
    return Range[int, arg.low, arg.high]


def typed(path: Sequence[str], args: Sequence[Arg], values: Mapping[str, Any]) -> str:
    """What a user would type for these option values: `/admin course add py title=…`."""
    words: list[str] = []
    for arg in args:
        value = values.get(arg.name)
        if value is None or value == "":
            continue
        if arg.words:
            words.extend(split_words(str(value)))
        else:
            words.append(f"{arg.name}={value}" if arg.keyed else str(value))
    return core_text(*path, *words)


def core_text(name: str, *args: object) -> str:
    """`/name arg…`, each argument quoted so the core reads it back as one."""
    words = [f"/{name}", *(shlex.quote(str(a)) for a in args if a is not None and a != "")]
    return " ".join(words)


def split_words(text: str) -> list[str]:
    """Arguments typed into one option (`title="New title" price=59`), as the core splits them."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
