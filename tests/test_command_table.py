"""The core's command table is what every platform offers: Discord's slash commands and
Telegram's menus are built from it, so a command registered in the core appears on both.

Discord runs against the loopback fake (`tests/fakes/fake_discord.py`), which keeps the
commands the bot synced; Telegram against its fake, which records setMyCommands.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import bot.handlers  # noqa: F401  (registers every command)
from bot.context import Ctx
from bot.core.i18n import Lines, Msg, _
from bot.handlers.registry import COMMANDS, Arg, Command, Sub, choice, command, number
from tests.fakes.fake_discord import DiscordBot, FakeDiscord, discord_config
from tests.fakes.fake_telegram import FakeTelegram, StartBot
from tests.support import AppFactory

DISCORD_NAME = re.compile(r"[-_a-z0-9]{1,32}")
TELEGRAM_NAME = re.compile(r"[_a-z0-9]{1,32}")
OPTION_TYPES = {"text": 3, "choice": 3, "int": 4}  # Discord's string and integer options
ZH = "zh-CN"


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def discord_bot(make_app: AppFactory, discord_fake: FakeDiscord) -> AsyncIterator[DiscordBot]:
    app = await make_app(discord_config(discord_fake))
    bot = await DiscordBot(discord_fake, app).start()
    yield bot
    await bot.stop()


@pytest.fixture
def streak() -> Iterator[Command]:
    """A command added to the core the way every handler module adds one, and nothing else."""

    @command(
        "streak",
        _("Your progress: lessons and sessions done and left, goals and notes"),
        section="learning",
        args=(
            number("days", _("The session number"), high=30),
            choice("detail", _("Leave out for the summary"), "weekly", "daily"),
        ),
    )
    async def show_streak(ctx: Ctx, args: list[str]) -> None:
        ctx.say(Lines(["streak", *args], " ").as_msg())

    yield COMMANDS["streak"]
    del COMMANDS["streak"]


def on_discord() -> list[Command]:
    return [c for c in COMMANDS.values() if c.on("discord")]


def assert_described(synced: dict[str, Any], msg: Msg) -> None:
    """English is the table's message; Chinese its translation, not the English again."""
    assert synced["description"] == msg.msgid
    assert synced["description_localizations"][ZH] == msg.render("zh")[:100]
    assert synced["description_localizations"][ZH] != msg.msgid


def assert_options(synced: list[dict[str, Any]], args: tuple[Arg, ...]) -> None:
    """Each argument is an option of its type, required or not, with its bounds and choices."""
    assert sorted(o["name"] for o in synced) == sorted(a.name for a in args)
    by_name = {o["name"]: o for o in synced}
    for arg in args:
        option = by_name[arg.name]
        assert option["type"] == OPTION_TYPES[arg.kind], arg.name
        assert option.get("required", False) == arg.required, arg.name
        assert_described(option, arg.hint)
        assert [c["value"] for c in option.get("choices", [])] == [v for v, _l in arg.choices]
        if arg.kind == "int":
            assert option["min_value"] == arg.low
            assert option.get("max_value") == arg.high
    required = [o.get("required", False) for o in synced]
    assert required == sorted(required, reverse=True)  # Discord: required before optional


def assert_subs(synced: list[dict[str, Any]], subs: tuple[Sub, ...]) -> None:
    """Sub-commands are Discord groups (type 2) of sub-commands (type 1) with their options."""
    assert [o["name"] for o in synced] == [s.name for s in subs]
    for option, sub in zip(synced, subs, strict=True):
        assert_described(option, sub.help)
        if sub.subs:
            assert option["type"] == 2
            assert_subs(option["options"], sub.subs)
        else:
            assert option["type"] == 1
            assert_options(option.get("options", []), sub.args)


async def test_every_table_command_on_discord_is_synced_with_its_options_in_both_languages(
    discord_bot: DiscordBot, discord_fake: FakeDiscord
) -> None:
    """Names, options, sub-commands and zh-CN texts on Discord are the table's, and no more."""
    synced = {c["name"]: c for c in discord_fake.commands[discord_fake.guild_id]}
    table = on_discord()
    assert set(synced) == {c.name for c in table}
    assert "paystars" not in synced  # Telegram's alone
    for cmd in table:
        assert_described(synced[cmd.name], cmd.help)
        if cmd.subs:
            assert_subs(synced[cmd.name]["options"], tuple(cmd.subs.values()))
        else:
            assert_options(synced[cmd.name].get("options", []), cmd.args)
        hidden = synced[cmd.name].get("default_member_permissions")
        assert (hidden is not None and int(hidden) == 1 << 5) == cmd.for_admins  # Manage Server
    admin_subs = {o["name"] for o in synced["admin"]["options"]}
    assert {"course", "lesson", "earnings", "match-cohort"} <= admin_subs
    # A mentor on Discord can set time off too: the actions and a date (not a weekday choice).
    availability = {o["name"]: o for o in synced["availability"]["options"]}
    actions = {c["value"] for c in availability["action"]["choices"]}
    assert {"add", "remove", "clear", "block", "off", "unblock"} == actions
    assert availability["day"]["type"] == 3 and "choices" not in availability["day"]


def test_every_table_command_fits_discord_and_telegram_limits() -> None:
    """Names, descriptions (both languages) and option counts within what the platforms take."""

    def check(name: str, help: Msg, args: tuple[Arg, ...], subs: tuple[Sub, ...]) -> None:
        assert DISCORD_NAME.fullmatch(name), name
        for lang in ("en", "zh"):
            assert 1 <= len(help.render(lang)) <= 100, (name, lang)
        assert len(args) <= 25 and len(subs) <= 25, name
        for arg in args:
            assert DISCORD_NAME.fullmatch(arg.name), (name, arg.name)
            assert all(1 <= len(arg.hint.render(lang)) <= 100 for lang in ("en", "zh")), arg
            assert len(arg.choices) <= 25, arg
        for sub in subs:
            check(sub.name, sub.help, sub.args, sub.subs)

    table = on_discord()
    assert len(table) <= 100
    for cmd in table:
        check(cmd.name, cmd.help, cmd.args, tuple(cmd.subs.values()))
        assert not (cmd.args and cmd.subs), cmd.name  # a Discord group takes no options
    assert all(TELEGRAM_NAME.fullmatch(c.name) for c in COMMANDS.values() if c.on("telegram"))


async def test_a_command_registered_in_the_core_appears_on_discord_and_in_telegram_menus(
    streak: Command,
    make_app: AppFactory,
    discord_fake: FakeDiscord,
    start_bot: StartBot,
    fake: FakeTelegram,
) -> None:
    """No adapter names /streak, yet Discord syncs and runs it and Telegram's menus list it."""
    app = await make_app(discord_config(discord_fake))
    bot = await DiscordBot(discord_fake, app).start()
    try:
        synced = {c["name"]: c for c in discord_fake.commands[discord_fake.guild_id]}
        assert_described(synced["streak"], streak.help)
        assert_options(synced["streak"]["options"], streak.args)
        ran = await discord_fake.slash(discord_fake.user("alice"), "streak", days=7, detail="daily")
        assert (await discord_fake.reply(ran, "streak"))["content"] == "streak 7 daily"
    finally:
        await bot.stop()

    await start_bot(bot={"admins": ["telegram:4242"]})
    menus = fake.calls_of("setMyCommands")
    assert len(menus) == 4  # everyone and the admin's chat, each in English and Chinese
    for menu in menus:
        described = {c["command"]: c["description"] for c in menu.params["commands"]}
        lang = "zh" if menu.params.get("language_code") == "zh" else "en"
        assert described["streak"] == streak.help.render(lang)
        assert ("admin" in described) == ("scope" in menu.params)


async def test_help_lists_only_what_the_readers_platform_offers(make_app: AppFactory) -> None:
    """`/paystars` is Telegram's alone: Discord's /help does not offer it, Telegram's does."""
    from bot.core.users import Incoming

    app = await make_app()
    on_discord = await app.handle(Incoming("discord", "ana#1", "Ana", "/help"))
    on_telegram = await app.handle(Incoming("telegram", "42", "Ana", "/help"))
    assert "/paystars" not in on_discord[0].text and "/courses" in on_discord[0].text
    assert "/paystars" in on_telegram[0].text


async def test_help_and_the_telegram_menu_lead_with_start_in_sections(
    make_app: AppFactory, start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A newcomer's /help opens with /start and /help under "Getting started", then courses,
    plans, lessons, sessions, workshops and the account, each under its heading (a mentor's
    commands last); Telegram's "/" menu offers the commands in that same order."""
    from bot.core.users import Incoming

    app = await make_app()
    text = (await app.handle(Incoming("telegram", "42", "Ana", "/help")))[0].text
    headings = [line for line in text.splitlines() if line.endswith(":")]
    assert headings == [
        "Commands:",
        "Getting started:",
        "Courses and payments:",
        "Monthly plans:",
        "Lessons and progress:",
        "Your mentor and sessions:",
        "Workshops and community:",
        "Your account and support:",
        "For mentors:",
    ]
    first = [line.split(" — ")[0] for line in text.splitlines() if line.startswith("/")]
    assert first[:2] == ["/start", "/help"]
    assert first.index("/courses") < first.index("/mentor") < first.index("/becomementor")
    assert "/admin" not in first  # not an admin
    await app.handle(Incoming("telegram", "42", "Ana", "/language zh"))
    text_zh = (await app.handle(Incoming("telegram", "42", "Ana", "/help")))[0].text
    assert "入门：\n/start — " in text_zh and "导师专用：" in text_zh

    await start_bot(bot={"admins": ["telegram:4242"]})
    for menu in fake.calls_of("setMyCommands"):
        names = [c["command"] for c in menu.params["commands"]]
        assert names[:2] == ["start", "help"]
        assert names.index("courses") < names.index("mentor") < names.index("becomementor")
        if "scope" in menu.params:  # the admin's own menu: /admin comes last
            assert names[-1] == "admin"


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_admin_usage_is_the_table_of_admin_subcommands(harness: Any, lang: str) -> None:
    """`/admin` with nothing after it lists every registered sub-command with its arguments and
    its help in the admin's language, so a new one (disputes, settle) is never missing."""
    from bot.handlers.registry import ADMIN_SUBS

    await harness.send("admin", f"/language {lang}")
    shown = await harness.send("admin", "/admin")
    for name, sub in ADMIN_SUBS.items():
        assert f"/admin {name}" in shown
        assert sub.help.render(lang, "UTC") in shown
    assert "/admin refund [ORDER] [force] [period=…] [sub=…]" in shown  # an order or sub=ID


async def test_an_admin_command_with_actions_alone_or_mistyped_lists_them(harness: Any) -> None:
    """`/admin plan` alone, `/admin course fly`: every action of that sub-command with how it
    is typed and what it does, instead of "Missing argument" and `add|edit|… …`; the promo
    code's usage names every field it takes (currency= and course= were missing)."""
    out = await harness.send("admin", "/admin plan")
    assert out.startswith("What would you like to do?\n/admin plan add SLUG course=… name=…")
    assert "/admin plan archive SLUG — Take a plan off offer" in out
    out = await harness.send("admin", "/admin course fly")
    assert out.startswith("Unknown action 'fly'. Usage:\n/admin course add SLUG title=…"), out
    assert "/admin course restore SLUG — Put an archived course on sale again" in out
    out = await harness.send("admin", "/admin promo")
    assert "[currency=…]" in out and "[course=…]" in out
    assert "Only marketplace admins" in await harness.send("alice", "/admin plan")
