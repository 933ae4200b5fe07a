"""The command table: one entry per chat command, and one per multi-step conversation flow.

Each entry carries what a platform needs to offer the command without knowing it: a one-line
description, its arguments (name, kind, hint) and its sub-commands, whether it is for admins
and which platforms have it. Discord's slash commands and Telegram's menus are built from this
table, so a command registered here appears everywhere with no adapter change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.context import Ctx
from bot.core import words
from bot.core.errors import BadInput
from bot.core.i18n import Lines, Localized, Msg, _, clip
from bot.core.replies import Choice
from storage.models import Conversation

Handler = Callable[[Ctx, list[str]], Awaitable[None]]
StepHandler = Callable[[Ctx, Conversation, str], Awaitable[None]]
Kind = Literal["text", "int", "choice"]
Section = Literal[
    "start", "courses", "plans", "learning", "mentoring", "together", "account", "mentors", "admin"
]
SECTIONS: tuple[tuple[Section, Msg, tuple[str, ...]], ...] = (
    ("start", _("Getting started"), ("start", "help")),
    ("courses", _("Courses and payments"), ("courses", "course")),
    ("plans", _("Monthly plans"), ()),
    ("learning", _("Lessons and progress"), ()),
    ("mentoring", _("Your mentor and sessions"), ("mentor",)),
    ("together", _("Workshops and community"), ("workshops",)),
    ("account", _("Your account and support"), ()),
    ("mentors", _("For mentors"), ("becomementor",)),
    ("admin", _("For admins"), ()),
)
"""The parts of /help and of Telegram's command menu, in the order a newcomer meets them
(start, buy, learn, meet), each with its heading and the commands it leads with, so the first
commands offered are /start and /help rather than whichever module registered first."""


@dataclass(frozen=True)
class Arg:
    """One argument as typed after the command, in order.

    `keyed` arguments are typed `name=value` (`/admin course add SLUG title=…`); `words` take
    several words in one (a comment, `key=value` pairs). `low`/`high` bound an int; `choices`
    are the accepted values of a choice, each with the label shown for it, and `also` the
    other words its handler reads as one of them (`no show` for `noshow`, `english` for `en`).
    """

    name: str
    hint: Msg
    kind: Kind = "text"
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()
    low: int | None = None
    high: int | None = None
    keyed: bool = False
    words: bool = False
    also: frozenset[str] = frozenset()


def text(
    name: str, hint: Msg, *, required: bool = True, keyed: bool = False, words: bool = False
) -> Arg:
    return Arg(name, hint, "text", required, keyed=keyed, words=words)


def number(
    name: str,
    hint: Msg,
    *,
    required: bool = True,
    low: int = 1,
    high: int | None = None,
    keyed: bool = False,
) -> Arg:
    return Arg(name, hint, "int", required, low=low, high=high, keyed=keyed)


def choice(
    name: str,
    hint: Msg,
    *values: str | tuple[str, str],
    required: bool = False,
    words: bool = False,
    also: Iterable[str] = (),
) -> Arg:
    """A choice among `values` (each a value, or a value and its label). `also`: the keys of
    the table of answers its handler looks the word up in (`words.OUTCOMES`), when that table
    takes more than the values and their Chinese words; with `words`, the rest of the line is
    that one answer (`no show`)."""
    pairs = tuple(v if isinstance(v, tuple) else (v, v) for v in values)
    return Arg(name, hint, "choice", required, pairs, words=words, also=frozenset(also))


@dataclass(frozen=True)
class Sub:
    """A sub-command (`/admin course add`): platforms with command groups show it as one."""

    name: str
    help: Msg
    args: tuple[Arg, ...] = ()
    subs: tuple[Sub, ...] = ()


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: Msg
    role: str | None = None  # None: anyone; "mentor"/"admin": shown only to them in /help
    args: tuple[Arg, ...] = ()
    subs: Mapping[str, Sub] = field(default_factory=dict)
    platforms: frozenset[str] | None = None  # None: every platform
    section: Section = "start"

    @property
    def for_admins(self) -> bool:
        return self.role == "admin"

    def on(self, platform: str) -> bool:
        """Whether `platform` offers this command (`/paystars` is Telegram's alone)."""
        return self.platforms is None or platform in self.platforms


def usage(name: str, args: tuple[Arg, ...], subs: tuple[Sub, ...] = ()) -> str:
    """How a command is typed, from its table entry: `refund ORDER [force]`,
    `course add|edit|archive|restore …`, `title=…`; optional parts in brackets."""
    if subs:
        return f"{name} {'|'.join(s.name for s in subs)} …"
    parts = [name]
    for arg in args:
        if arg.choices:
            token = "|".join(value for value, _label in arg.choices)
        elif arg.keyed:
            token = f"{arg.name}=…"
        else:
            token = arg.name.upper().replace("-", "_") + ("…" if arg.words else "")
        parts.append(token if arg.required else f"[{token}]")
    return " ".join(parts)


def spelt_out(
    args: list[str], declared: tuple[Arg, ...], subs: Iterable[Sub], path: str
) -> list[str]:
    """`args` of the command `path` (`admin stats`) with each word the table declares there (a
    sub-command, a choice) in its English form, typed in English or Chinese
    (`words.SUBCOMMAND_WORDS`): `/availability 添加 周一 18:00-20:00` reaches its handler as
    `add 周一 18:00-20:00`, `/admin 统计 按课程` as `stats courses`. Other words (free text,
    numbers) are left as typed.

    A word where a choice is declared that is none of its values (nor `Arg.also`) is refused
    here, before any handler runs: `/admin earnings bogus` is not `/admin earnings`."""
    named = tuple(subs)
    if named:
        name = words.subcommand(args[0], [s.name for s in named]) if args else None
        sub = next((s for s in named if s.name == name), None)
        if sub is None:
            return args
        return [sub.name, *spelt_out(args[1:], sub.args, sub.subs, f"{path} {sub.name}")]
    out = list(args)
    positional = [a for a in declared if not a.keyed]
    keyed = {f"{a.name}=" for a in declared if a.keyed}
    # Keyed words (`period=3`) may stand anywhere; the positional ones are the rest, in order.
    slots = [i for i, word in enumerate(out) if not word.lower().startswith(tuple(keyed))]
    for i, arg in zip(slots, positional, strict=False):
        if not arg.choices:
            continue
        typed = " ".join(out[i:]) if arg.words else out[i]
        value = words.subcommand(typed, [value for value, _label in arg.choices])
        if value is not None:
            out[i:] = [value] if arg.words else [value, *out[i + 1 :]]
        elif words.normal(typed) not in arg.also:
            raise unknown_choice(typed, arg, path, declared)
    return out


def unknown_choice(typed: str, arg: Arg, path: str, declared: tuple[Arg, ...]) -> BadInput:
    """The refusal of a word that is not one of `arg`'s choices: the word, the choices (with
    their Chinese words for a Chinese reader) and the usage. Where the choice is all the
    command takes (`/admin orders STATUS`), each choice is also a button that runs it."""
    values = [value for value, _label in arg.choices]
    listed = Lines((_chinese_spelling(value) for value in values), ", ")
    said = {"command": path, "value": clip(typed), "usage": f"/{usage(path, declared)}"}
    if len(values) == 1:
        refusal = _(
            "/{command} does not take '{value}'; it takes only {choice}. Usage: {usage}",
            choice=listed,
            **said,
        )
    else:
        refusal = _(
            "/{command} does not take '{value}'. Choose one of: {choices}. Usage: {usage}",
            choices=listed,
            **said,
        )
    buttons: list[Choice] = []
    if len(values) > 1 and [a for a in declared if not a.keyed] == [arg]:
        buttons = [
            Choice(label if label != value else _chinese_word(value), f"/{path} {value}")
            for value, label in arg.choices
        ]
    return BadInput(refusal, buttons)


def _chinese_word(value: str) -> Localized:
    """A table word as a Chinese reader types it (the first of `words.SUBCOMMAND_WORDS`)."""
    return Localized(value, words.SUBCOMMAND_WORDS.get(value, ("",))[0])


def _chinese_spelling(value: str) -> Localized:
    """A table word as a list shows it: `csv`, and to a Chinese reader `表格（csv）`."""
    chinese = words.SUBCOMMAND_WORDS.get(value)
    return Localized(value, f"{chinese[0]}（{value}）" if chinese else "")


def chinese_words(command: Command) -> list[tuple[str, str]]:
    """The words of a command's table (its sub-commands and choices, all the way down) that
    may be typed in Chinese, each as (the Chinese word /help shows, the English word)."""
    return spelt_in_chinese(command.args, command.subs.values())


def spelt_in_chinese(args: tuple[Arg, ...], subs: Iterable[Sub]) -> list[tuple[str, str]]:
    """`chinese_words` of a part of the table: an `/admin` sub-command's own words."""

    def walk(args: tuple[Arg, ...], subs: Iterable[Sub]) -> Iterator[str]:
        for sub in subs:
            yield sub.name
            yield from walk(sub.args, sub.subs)
        for arg in args:
            yield from (value for value, _label in arg.choices)

    english = dict.fromkeys(walk(args, subs))
    return [(words.SUBCOMMAND_WORDS[w][0], w) for w in english if w in words.SUBCOMMAND_WORDS]


def help_line(name: str, help: Msg, spelt: list[tuple[str, str]]) -> Msg:
    """One line of /help or of the `/admin` usage: the command as typed and what it does; for
    a Chinese reader (`spelt` given), the Chinese words it may be typed with (`统计（stats）`)."""
    line = _("/{name} — {help}", name=name, help=help)
    if not spelt:
        return line
    return _(
        "{line}\n    also typed as: {words}",
        line=line,
        words=Lines((f"{zh}（{en}）" for zh, en in spelt), "、"),
    )


def sub_line(command: str, sub: Sub, chinese: bool) -> Msg:
    """How `/COMMAND NAME …` is typed and what it does (`help_line`), its Chinese words for a
    Chinese reader."""
    spelt = spelt_in_chinese((), (sub,)) if chinese else []
    return help_line(f"{command} {usage(sub.name, sub.args, sub.subs)}", sub.help, spelt)


def admin_line(sub: Sub, chinese: bool) -> Msg:
    """`sub_line` of an `/admin` sub-command."""
    return sub_line("admin", sub, chinese)


def sub_menu(command: str, subs: Iterable[Sub], chinese: bool) -> Lines:
    """Each sub-command of `/COMMAND`, one `sub_line` a line."""
    return Lines(sub_line(command, sub, chinese) for sub in subs)


def no_sub_chosen(
    command: str, subs: Sequence[Sub], args: list[str], chinese: bool, asking: Msg
) -> Msg | None:
    """What `/COMMAND` answers when `args` name none of its `subs`: alone, `asking` and every
    sub-command with how it is typed and what it does (`sub_menu`), not just `new|move|… …`;
    with a word that is none of them, a refusal naming it with the same list. None when the
    first word is one of them, for the caller to go on with."""
    if args and args[0].lower() in {sub.name for sub in subs}:
        return None
    menu = sub_menu(command, subs, chinese)
    if not args:
        return _("{asking}\n{usage}", asking=asking, usage=menu)
    raise BadInput(_("Unknown action '{value}'. Usage:\n{usage}", value=clip(args[0]), usage=menu))


COMMANDS: dict[str, Command] = {}
FLOWS: dict[str, StepHandler] = {}
SKIPPABLE: set[str] = set()  # the flows whose question /skip may leave unanswered
ADMIN_SUBCOMMANDS: dict[str, Handler] = {}
ADMIN_SUBS: dict[str, Sub] = {}  # how each of ADMIN_SUBCOMMANDS is described, in order


def command(
    name: str,
    help: Msg,
    role: str | None = None,
    *,
    section: Section,
    args: tuple[Arg, ...] = (),
    subs: Mapping[str, Sub] | None = None,
    platforms: tuple[str, ...] | None = None,
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if name in COMMANDS:
            raise RuntimeError(f"command /{name} registered twice")
        only = frozenset(platforms) if platforms is not None else None
        subs_ = {} if subs is None else subs
        COMMANDS[name] = Command(name, fn, help, role, args, subs_, only, section)
        return fn

    return register


def in_menu_order(commands: Iterable[Command]) -> list[Command]:
    """`commands` section by section (`SECTIONS`): each section's leading commands, then the
    rest of it in registration order."""
    rank = {section: i for i, (section, _heading, _lead) in enumerate(SECTIONS)}
    lead = {name: i for _s, _h, names in SECTIONS for i, name in enumerate(names)}
    return sorted(commands, key=lambda c: (rank[c.section], lead.get(c.name, len(lead))))


def flow(name: str, *, optional: bool = False) -> Callable[[StepHandler], StepHandler]:
    """Register the conversation flow `name`; `optional`: its question may be left unanswered
    with /skip (a comment after a rating), which every other flow's question may not."""

    def register(fn: StepHandler) -> StepHandler:
        FLOWS[name] = fn
        if optional:
            SKIPPABLE.add(name)
        return fn

    return register


def admin_subcommand(
    name: str, help: Msg, *, args: tuple[Arg, ...] = (), subs: tuple[Sub, ...] = ()
) -> Callable[[Handler], Handler]:
    """Register `/admin NAME …`; the admin role is checked before any of these runs.

    `subs` are its own sub-commands (`/admin course add|edit|…`); give either them or `args`.
    """

    def register(fn: Handler) -> Handler:
        if name in ADMIN_SUBCOMMANDS:
            raise RuntimeError(f"admin subcommand {name} registered twice")
        ADMIN_SUBCOMMANDS[name] = fn
        ADMIN_SUBS[name] = Sub(name, help, args, subs)
        return fn

    return register
