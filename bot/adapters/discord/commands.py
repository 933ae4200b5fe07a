"""The slash commands: each is a core command, its options the command's arguments.

`/buy slug:python-basics` sends the core `/buy python-basics`, exactly what a learner would type
elsewhere, so every rule stays in the core. A command is described by the core's own help text;
option descriptions are marked with `N_` for the catalog. The `/admin` group is hidden from
members without Manage Server (`default_permissions`); the core still checks the admin role on
every admin command, since guild owners can show the commands to anyone.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Range, locale_str

from bot.handlers.registry import COMMANDS

Run = Callable[[discord.Interaction[Any], str], Awaitable[None]]
AppCommand = app_commands.Command[Any, ..., Any] | app_commands.Group

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ORDER_STATUSES = ("pending", "paid", "refunded", "expired", "cancelled")


def N_(text: str) -> locale_str:  # the gettext name Babel extracts
    """A translatable description: extracted into the catalog, translated at sync."""
    return locale_str(text)


def help_of(name: str) -> locale_str:
    """The core command's help line, which the catalog already translates (≤ 100 chars)."""
    return locale_str(COMMANDS[name].help.msgid[:100])


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


def _choices(*values: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=v, value=v) for v in values]


def slash_commands(run: Run) -> list[AppCommand]:
    """Every slash command whose core command exists, each running `run(interaction, text)`."""

    @app_commands.command(name="help", description=help_of("help"))
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("help"))

    @app_commands.command(name="courses", description=help_of("courses"))
    async def courses(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("courses"))

    @app_commands.command(name="course", description=help_of("course"))
    @app_commands.describe(slug=N_("The course's short name, e.g. python-basics"))
    async def course(interaction: discord.Interaction[Any], slug: str) -> None:
        await run(interaction, core_text("course", slug))

    @app_commands.command(name="buy", description=help_of("buy"))
    @app_commands.describe(slug=N_("The course's short name, e.g. python-basics"))
    async def buy(interaction: discord.Interaction[Any], slug: str) -> None:
        await run(interaction, core_text("buy", slug))

    @app_commands.command(name="mycourses", description=help_of("mycourses"))
    async def mycourses(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("mycourses"))

    @app_commands.command(name="mentor", description=help_of("mentor"))
    @app_commands.describe(course=N_("The course's short name; leave out to choose"))
    async def mentor(interaction: discord.Interaction[Any], course: str | None = None) -> None:
        await run(interaction, core_text("mentor", course))

    @app_commands.command(name="requests", description=help_of("requests"))
    async def requests(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("requests"))

    @app_commands.command(name="book", description=help_of("book"))
    @app_commands.describe(request=N_("The mentorship request number; leave out to choose"))
    async def book(
        interaction: discord.Interaction[Any], request: Range[int, 1] | None = None
    ) -> None:
        await run(interaction, core_text("book", request))

    @app_commands.command(name="sessions", description=help_of("sessions"))
    async def sessions(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("sessions"))

    @app_commands.command(name="cancelsession", description=help_of("cancelsession"))
    @app_commands.describe(session=N_("The session number"))
    async def cancelsession(interaction: discord.Interaction[Any], session: Range[int, 1]) -> None:
        await run(interaction, core_text("cancelsession", session))

    @app_commands.command(name="progress", description=help_of("progress"))
    async def progress(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("progress"))

    @app_commands.command(name="rate", description=help_of("rate"))
    @app_commands.describe(
        session=N_("The session number"),
        stars=N_("From 1 (poor) to 5 (excellent)"),
        comment=N_("Optional words for the other side"),
    )
    async def rate(
        interaction: discord.Interaction[Any],
        session: Range[int, 1],
        stars: Range[int, 1, 5],
        comment: str | None = None,
    ) -> None:
        await run(interaction, core_text("rate", session, stars, *split_words(comment or "")))

    @app_commands.command(name="language", description=help_of("language"))
    @app_commands.describe(language=N_("Leave out to choose"))
    @app_commands.choices(
        language=[
            app_commands.Choice(name="English", value="en"),
            app_commands.Choice(name="简体中文", value="zh"),
        ]
    )
    async def language(interaction: discord.Interaction[Any], language: str | None = None) -> None:
        await run(interaction, core_text("language", language))

    @app_commands.command(name="timezone", description=help_of("timezone"))
    @app_commands.describe(timezone=N_("A name like Europe/Berlin or Asia/Shanghai"))
    async def timezone(interaction: discord.Interaction[Any], timezone: str | None = None) -> None:
        await run(interaction, core_text("timezone", timezone))

    @app_commands.command(name="becomementor", description=help_of("becomementor"))
    async def becomementor(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("becomementor"))

    @app_commands.command(name="profile", description=help_of("profile"))
    @app_commands.describe(
        field=N_("What to change; leave out to see your profile"),
        value=N_("e.g. python:advanced,sql:beginner · en,zh · 3 · Asia/Shanghai"),
    )
    @app_commands.choices(field=_choices("topics", "languages", "capacity", "bio", "timezone"))
    async def profile(
        interaction: discord.Interaction[Any], field: str | None = None, value: str | None = None
    ) -> None:
        if field == "timezone":
            await run(interaction, core_text("timezone", value))
        elif field:
            await run(interaction, core_text("profile", field, *split_words(value or "")))
        else:
            await run(interaction, core_text("profile"))

    @app_commands.command(name="availability", description=help_of("availability"))
    @app_commands.describe(
        action=N_("Leave out to see your weekly windows"),
        day=N_("For add: the weekday"),
        hours=N_("For add: e.g. 18:00-20:00, in your timezone"),
        window=N_("For remove: the window number"),
    )
    @app_commands.choices(action=_choices("add", "remove", "clear"), day=_choices(*WEEKDAYS))
    async def availability(
        interaction: discord.Interaction[Any],
        action: str | None = None,
        day: str | None = None,
        hours: str | None = None,
        window: Range[int, 1] | None = None,
    ) -> None:
        if action == "add":
            await run(interaction, core_text("availability", "add", day, hours))
        elif action == "remove":
            await run(interaction, core_text("availability", "remove", window))
        else:
            await run(interaction, core_text("availability", action))

    @app_commands.command(name="cancel", description=help_of("cancel"))
    async def cancel(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("cancel"))

    commands: list[AppCommand] = [
        help_,
        courses,
        course,
        buy,
        mycourses,
        mentor,
        requests,
        book,
        sessions,
        cancelsession,
        progress,
        rate,
        language,
        timezone,
        becomementor,
        profile,
        availability,
        cancel,
    ]
    available = [c for c in commands if c.name in COMMANDS]
    if "admin" in COMMANDS:
        available.append(admin_group(run))
    return available


def admin_group(run: Run) -> app_commands.Group:
    """`/admin …`: shown to Manage Server holders; the core checks the admin role."""
    admin = app_commands.Group(
        name="admin",
        description=help_of("admin"),
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    course = app_commands.Group(
        name="course", description=N_("Add, edit, archive or restore a course"), parent=admin
    )
    mentor = app_commands.Group(
        name="mentor", description=N_("Approve or suspend a mentor"), parent=admin
    )

    @course.command(name="add", description=N_("Add a course to the catalogue"))
    @app_commands.describe(
        slug=N_("Short name: letters, digits and dashes"),
        title=N_("The title in English"),
        price=N_("e.g. 49.00"),
        sessions=N_("Mentor sessions included"),
        currency=N_("3-letter code, e.g. USD"),
        topics=N_("Comma-separated, e.g. python,testing"),
        title_zh=N_("The title in Chinese"),
    )
    async def course_add(
        interaction: discord.Interaction[Any],
        slug: str,
        title: str,
        price: str,
        sessions: Range[int, 1, 100],
        currency: str = "USD",
        topics: str | None = None,
        title_zh: str | None = None,
    ) -> None:
        fields = {
            "title": title,
            "price": price,
            "sessions": sessions,
            "currency": currency,
            "topics": topics,
            "title_zh": title_zh,
        }
        pairs = [f"{k}={v}" for k, v in fields.items() if v is not None]
        await run(interaction, core_text("admin", "course", "add", slug, *pairs))

    @course.command(name="edit", description=N_("Change a course"))
    @app_commands.describe(
        slug=N_("The course's short name"),
        changes=N_('key=value pairs, e.g. price=59.00 title="New title"'),
    )
    async def course_edit(interaction: discord.Interaction[Any], slug: str, changes: str) -> None:
        await run(interaction, core_text("admin", "course", "edit", slug, *split_words(changes)))

    @course.command(name="archive", description=N_("Take a course off sale"))
    @app_commands.describe(slug=N_("The course's short name"))
    async def course_archive(interaction: discord.Interaction[Any], slug: str) -> None:
        await run(interaction, core_text("admin", "course", "archive", slug))

    @course.command(name="restore", description=N_("Put an archived course on sale again"))
    @app_commands.describe(slug=N_("The course's short name"))
    async def course_restore(interaction: discord.Interaction[Any], slug: str) -> None:
        await run(interaction, core_text("admin", "course", "restore", slug))

    @mentor.command(name="approve", description=N_("Approve a mentor profile"))
    @app_commands.describe(profile=N_("The mentor profile number"))
    async def mentor_approve(interaction: discord.Interaction[Any], profile: Range[int, 1]) -> None:
        await run(interaction, core_text("admin", "mentor", "approve", profile))

    @mentor.command(name="suspend", description=N_("Suspend a mentor profile"))
    @app_commands.describe(profile=N_("The mentor profile number"))
    async def mentor_suspend(interaction: discord.Interaction[Any], profile: Range[int, 1]) -> None:
        await run(interaction, core_text("admin", "mentor", "suspend", profile))

    @admin.command(name="mentors", description=N_("List mentor profiles"))
    async def mentors(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("admin", "mentors"))

    @admin.command(name="orders", description=N_("The latest orders"))
    @app_commands.describe(status=N_("Only orders in this state"))
    @app_commands.choices(status=_choices(*ORDER_STATUSES))
    async def orders(interaction: discord.Interaction[Any], status: str | None = None) -> None:
        await run(interaction, core_text("admin", "orders", status))

    @admin.command(name="refund", description=N_("Refund an order and cancel its sessions"))
    @app_commands.describe(order=N_("The order number"))
    async def refund(interaction: discord.Interaction[Any], order: Range[int, 1]) -> None:
        await run(interaction, core_text("admin", "refund", order))

    @admin.command(name="stats", description=N_("Marketplace numbers"))
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("admin", "stats"))

    @admin.command(name="waitlist", description=N_("Requests no mentor could take yet"))
    async def waitlist(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, core_text("admin", "waitlist"))

    return admin
