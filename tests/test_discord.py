"""The marketplace inside Discord: the real discord.py client against a loopback gateway + REST.

Users run slash commands, press buttons, fill in text boxes and write DMs through the fake
(`tests/fakes/fake_discord.py`); the bot answers over REST as it would to Discord.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import discord
import pytest
from sqlalchemy import select

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.users import Incoming, resolve_user
from bot.handlers.registry import COMMANDS, Command
from bot.runtime.bootstrap import configured_services
from storage.models import MentorProfile, MentorSession, MentorshipRequest, Rating, User
from tests.fakes.fake_discord import (
    EPHEMERAL,
    DiscordBot,
    FakeDiscord,
    FakeUser,
    buttons,
    custom_ids,
    discord_config,
    discord_settings,
)
from tests.fakes.fake_telegram import BotUnderTest, FakeTelegram, telegram_config
from tests.support import (
    AppFactory,
    catalogue,
    channel_post,
    harness_for,
    learner_asks,
    make_config,
    mentor_on_discord,
    press,
    snapshot,
    telegram_learner_requests,
    typed,
)

StartBot = Callable[..., Awaitable[DiscordBot]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def start_bot(make_app: AppFactory, fake: FakeDiscord) -> AsyncIterator[StartBot]:
    """Start the Discord service on a fresh marketplace (demo payments, no catalogue)."""
    running: list[DiscordBot] = []

    async def start(**sections: Any) -> DiscordBot:
        app = await make_app(discord_config(fake, **sections))
        bot = await DiscordBot(fake, app).start()
        running.append(bot)
        return bot

    yield start
    for bot in reversed(running):
        await bot.stop()


# ── what users do in Discord ──────────────────────────────────────────────────────────


async def run(fake: FakeDiscord, user: FakeUser, command: str, expect: str, **options: Any) -> Any:
    """Run a slash command and wait for the follow-up containing `expect`."""
    interaction = await fake.slash(user, command, **options)
    return await fake.reply(interaction, expect)


async def first_mentor(fake: FakeDiscord, admin: FakeUser, name: str = "ada") -> FakeUser:
    """A Discord user who applies, is approved by the admin's DM button and sets a profile."""
    mentor = fake.user(name)
    await run(fake, mentor, "becomementor", "Thanks for applying")
    notice = await fake.latest_dm(admin, f"{name} applied to mentor")
    await press(fake, admin, notice, "is approved", label="Approve")
    await fake.latest_dm(mentor, "Your mentor profile is approved")
    await run(fake, mentor, "profile", "python (advanced)", field="topics", value="python:advanced")
    await run(
        fake,
        mentor,
        "availability",
        "Added Tue 09:00–12:00",
        action="add",
        day="tue",
        hours="09:00-12:00",
    )
    return mentor


async def add_course(fake: FakeDiscord, admin: FakeUser) -> None:
    await run(
        fake,
        admin,
        "admin course add",
        "Course 'python-basics' added",
        slug="python-basics",
        title="Python from zero",
        price="49.00",
        sessions=4,
        topics="python",
    )


async def buy_and_ask(fake: FakeDiscord, learner: FakeUser) -> dict[str, Any]:
    """Buy the course (demo), then ask for a mentor by buttons and the Answer text box."""
    order = await run(fake, learner, "buy", "Order #", slug="python-basics")
    paid = await press(fake, learner, order, "is yours", label="Pay (demo — no money moved)")
    question = await press(
        fake, learner, paid, "What do you want to achieve?", label="Find a mentor"
    )
    opened = await fake.press(learner, question, label="Answer")
    await fake.wait_for(lambda: opened.callbacks)
    assert opened.callbacks[0]["type"] == 9  # a text box (modal), as the first response
    submitted = await fake.submit(learner, opened, "Learn to write tested code")
    level = await fake.reply(submitted, "What is your level")
    times = await press(fake, learner, level, "When do you prefer", label="beginner")
    expired = await fake.press(learner, level, label="beginner")  # pressed again, too late
    await fake.reply(expired, "This button has expired")
    return await press(fake, learner, times, "is out to", label="any time")


# ── set-up through the core, as Discord identities, where the gateway adds nothing ───────


# ── the scenarios ───────────────────────────────────────────────────────────────────────


async def test_journey_buy_request_accept_in_channel_book_remind_rate(
    start_bot: StartBot, fake: FakeDiscord, clock: FakeClock
) -> None:
    """Demo purchase → /mentor → the mentors channel → Accept → booking → DM reminder → rating."""
    bot = await start_bot()
    admin = fake.user("boss", admin=True)
    await add_course(fake, admin)
    ada = await first_mentor(fake, admin)
    alice = fake.user("alice")

    sent = await buy_and_ask(fake, alice)
    assert "Request #1 is out to 1 mentor." in sent["content"]
    assert sent["flags"] & EPHEMERAL  # replies in the guild are for the user alone

    post = await channel_post(fake)
    assert "Mentorship request #1 from alice" in post["content"]
    assert "Learn to write tested code" in post["content"] and "<t:" in post["content"]
    assert custom_ids(post) == ["/accept 1", "/decline 1"]
    assert "New mentorship request #1" in (await fake.latest_dm(ada, "#1"))["content"]

    await press(fake, ada, post, "You are now mentoring alice", label="Accept")
    await fake.wait_for(lambda: "taken by ada" in post["content"])
    assert buttons(post) == []

    good_news = await fake.latest_dm(alice, "ada accepted your request #1")
    slots = await press(fake, alice, good_news, "Free times on", label="Book a session")
    booked = await press(
        fake, alice, slots, "Booked: session #1 with ada", custom_id=custom_ids(slots)[0]
    )
    async with bot.app.new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()
    unix = int(start.timestamp())
    assert f"<t:{unix}:F> (<t:{unix}:R>)" in booked["content"]  # each viewer's own time

    clock.set(start - timedelta(minutes=59))
    await bot.app.run_due()
    for user in (alice, ada):
        reminder = await fake.latest_dm(user, "Reminder: session #1")
        assert f"<t:{unix}:F>" in reminder["content"]

    clock.set(start + timedelta(minutes=61))
    await bot.app.run_due()
    asked = await fake.latest_dm(ada, "Did it take place?")
    await press(fake, ada, asked, "completed", custom_id=custom_ids(asked)[0])  # it took place
    rate = await fake.latest_dm(alice, "Rate it from 1 to 5")
    assert [b["label"] for b in buttons(rate)] == ["★", "★★", "★★★", "★★★★", "★★★★★"]
    await press(fake, alice, rate, "You rated session #1 5★", label="★★★★★")
    async with bot.app.new_uow() as uow:
        stars = (await uow.session.execute(select(Rating.stars))).scalar_one()
    assert stars == 5


async def test_commands_are_synced_to_the_guild_in_english_and_chinese(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """Slash commands go to the configured guild; /admin is hidden unless Manage Server."""
    await start_bot()
    synced = {c["name"]: c for c in fake.commands[fake.guild_id]}
    assert {"courses", "buy", "mycourses", "mentor", "sessions", "rate", "language"} <= set(synced)
    assert {"timezone", "profile", "availability", "requests", "admin"} <= set(synced)
    assert synced["buy"]["description"] == "Buy a course: /buy SLUG [PROMO]"
    assert synced["buy"]["description_localizations"]["zh-CN"] == "购买课程：/buy SLUG [优惠码]"
    slug = synced["buy"]["options"][0]
    assert (
        slug["name"] == "slug" and slug["required"] and "zh-CN" in slug["description_localizations"]
    )
    admin = synced["admin"]
    assert int(admin["default_member_permissions"]) == 1 << 5  # Manage Server
    assert {o["name"] for o in admin["options"]} >= {"course", "mentor", "orders", "refund"}
    assert None not in fake.commands  # nothing synced globally


async def test_slash_command_round_trip_with_buttons(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """`/buy slug:…` is the core's `/buy …`: acknowledged, then an ephemeral reply with buttons."""
    bot = await start_bot()
    await catalogue(bot.app)
    alice = fake.user("alice", locale="zh-CN")
    interaction = await fake.slash(alice, "buy", slug="python-basics")
    order = await fake.reply(interaction, "订单 #1")  # a new user's language from the client
    assert interaction.callbacks == [{"type": 5, "data": {"flags": EPHEMERAL}}]
    assert order["flags"] & EPHEMERAL
    assert custom_ids(order) == ["/pay 1", "/cancelorder 1"]
    assert "<t:" in order["content"]  # the order's expiry, in each viewer's own time
    callback = fake.calls_to("POST", f"/interactions/{interaction.id}/")[0]
    followup = fake.calls_to("POST", f"/webhooks/{fake.app_id}/{interaction.token}")[0]
    assert fake.calls.index(callback) < fake.calls.index(followup)
    paid = await press(fake, alice, order, "演示", custom_id="/pay 1")
    assert paid["flags"] & EPHEMERAL and custom_ids(paid) == ["/mentor python-basics"]


async def test_slow_core_is_acknowledged_first_then_followed_up(
    start_bot: StartBot, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the core is still working, Discord already has its deferred response."""
    await start_bot()
    gate = asyncio.Event()
    courses = COMMANDS["courses"]

    async def slow(ctx: Any, args: list[str]) -> None:
        await gate.wait()
        await courses.handler(ctx, args)

    monkeypatch.setitem(COMMANDS, "courses", Command("courses", slow, courses.help, courses.role))
    interaction = await fake.slash(fake.user("alice"), "courses")
    await fake.wait_for(lambda: interaction.callbacks)
    assert interaction.callbacks[0]["type"] == 5  # deferred: "mentorbot is thinking…"
    assert interaction.messages == []
    gate.set()
    await fake.reply(interaction, "No courses are on offer yet")


async def test_five_mentors_press_accept_at_once_one_wins(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """Five offered mentors press Accept together: one wins, the post names them, four are told."""
    bot = await start_bot(matching={"offer_size": 5})
    await catalogue(bot.app)
    mentors = [fake.user(f"mentor{i}") for i in range(5)]
    for mentor in mentors:
        await mentor_on_discord(bot.app, mentor)
    await learner_asks(bot.app, fake.user("alice"))
    post = await channel_post(fake)
    assert custom_ids(post) == ["/accept 1", "/decline 1"]
    for mentor in mentors:  # and each offered mentor had a DM with the same buttons
        assert custom_ids(await fake.latest_dm(mentor, "#1")) == ["/accept 1", "/decline 1"]

    presses = await asyncio.gather(*(fake.press(m, post, "/accept 1") for m in mentors))
    for interaction in presses:
        await fake.wait_for(lambda i=interaction: i.messages)
    won = [i for i in presses if "You are now mentoring alice" in i.text()]
    told = [i for i in presses if "was already taken by another mentor" in i.text()]
    assert len(won) == 1 and len(told) == 4
    assert all(m["flags"] & EPHEMERAL for i in presses for m in i.messages)

    winner = won[0].user.name
    await fake.wait_for(lambda: f"was taken by {winner}" in post["content"])
    assert buttons(post) == []
    async with bot.app.new_uow() as uow:
        request = await uow.get(MentorshipRequest, 1)
        assert request is not None and request.status == "accepted"
        profile = await uow.get(MentorProfile, request.mentor_id)
        assert profile is not None
        taker = await uow.get(User, profile.user_id)
        assert taker is not None and taker.display_name == winner


async def test_buttons_on_old_messages_work_after_a_restart(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """A new client (nothing in memory) still answers the Accept button of an earlier post."""
    bot = await start_bot()
    await catalogue(bot.app)
    ada, alice = fake.user("ada"), fake.user("alice")
    await mentor_on_discord(bot.app, ada)
    await learner_asks(bot.app, alice)
    post = await channel_post(fake)

    await bot.restart()
    assert fake.identified == 2
    await press(fake, ada, post, "You are now mentoring alice", custom_id="/accept 1")
    await fake.wait_for(lambda: "was taken by ada" in post["content"])
    assert "/book 1" in custom_ids(await fake.latest_dm(alice, "ada accepted your request #1"))


async def test_non_admin_is_refused_and_nothing_changes(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """Without the admin role /admin is refused (ephemeral), as is a forged admin button."""
    bot = await start_bot()
    await catalogue(bot.app)
    h = harness_for(bot.app)
    before = await snapshot(h)
    mallory = fake.user("mallory")
    refused = await run(
        fake,
        mallory,
        "admin course add",
        "Only marketplace admins can do that.",
        slug="hack",
        title="Hack",
        price="1.00",
        sessions=1,
    )
    assert refused["flags"] & EPHEMERAL

    listing = await run(fake, mallory, "courses", "Courses on offer")
    forged = "/admin course archive python-basics"  # a custom_id edited by a modified client
    await press(fake, mallory, listing, "Only marketplace admins can do that.", custom_id=forged)
    assert await snapshot(h) == before

    boss = fake.user("boss", admin=True)
    await run(fake, boss, "admin stats", "Marketplace stats")
    demoted = FakeUser(boss.id, boss.name)  # the same member after the role was taken away
    await run(
        fake, demoted, "admin course archive", "Only marketplace admins", slug="python-basics"
    )
    assert await snapshot(h) == before


async def test_reminder_reaches_discord_users_by_dm(
    start_bot: StartBot, fake: FakeDiscord, clock: FakeClock
) -> None:
    """Moving the clock to an hour before a session DMs both sides, with a Discord timestamp."""
    bot = await start_bot()
    await catalogue(bot.app)
    ada, alice = fake.user("ada"), fake.user("alice")
    await mentor_on_discord(bot.app, ada)
    await learner_asks(bot.app, alice)
    assert "You are now mentoring" in await typed(bot.app, ada, "/accept 1")
    slots = await bot.app.handle(Incoming("discord", str(alice.id), "alice", "/book 1"))
    assert "Booked" in await typed(bot.app, alice, slots[-1].choices[0].payload)
    async with bot.app.new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()

    await bot.app.run_due()
    assert not [m for u in (ada, alice) for m in fake.dms_to(u) if "Reminder" in m["content"]]
    clock.set(start - timedelta(minutes=59))
    await bot.app.run_due()
    unix = int(start.timestamp())
    for user in (alice, ada):
        reminder = await fake.latest_dm(user, "Reminder: session #1")
        assert f"<t:{unix}:F> (<t:{unix}:R>)" in reminder["content"]
        assert not reminder["flags"] & EPHEMERAL


async def test_dm_text_is_typed_input(start_bot: StartBot, fake: FakeDiscord) -> None:
    """Writing in a DM works like typing elsewhere; its buttons answer in the DM."""
    bot = await start_bot()
    await catalogue(bot.app)
    alice = fake.user("alice")
    await fake.send_dm(alice, "/courses")
    listing = await fake.latest_dm(alice, "Courses on offer")
    interaction = await fake.press(alice, listing, label=buttons(listing)[0]["label"])
    details = await fake.reply(interaction, "Price: $49.00")
    assert not details["flags"] & EPHEMERAL  # a DM is private already
    assert interaction.callbacks == [{"type": 5}]  # deferred, not ephemeral


async def test_a_payment_page_links_a_discord_user_back_to_their_dm(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """The landing page after paying links back to the chat (bot.core.chat_links): for a
    Discord user the bot has sent a notice to, that DM channel; for one it has not, the DM
    list, where the bot's notice lands on top."""
    bot = await start_bot()
    await catalogue(bot.app)
    ada, alice, bob = fake.user("ada"), fake.user("alice"), fake.user("bob")
    await mentor_on_discord(bot.app, ada)
    await learner_asks(bot.app, alice)
    await typed(bot.app, ada, "/accept 1")
    await fake.latest_dm(alice, "ada")  # the notice that the request was accepted
    [link] = bot.app.chat_links.for_identities([("discord", str(alice.id))])
    assert link.url == f"https://discord.com/channels/@me/{fake.dm_channels[alice.id]}"
    [other] = bot.app.chat_links.for_identities([("discord", str(bob.id))])
    assert other.url == "https://discord.com/channels/@me"


async def test_learner_on_telegram_mentor_on_discord(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """One marketplace, two platforms: a Telegram learner's request is taken in Discord."""
    telegram = FakeTelegram()
    await telegram.start()
    app = await make_app(
        telegram_config(telegram, payments={"demo": True}, discord=discord_settings(fake))
    )
    await catalogue(app)
    tg_bot = await BotUnderTest.start(telegram, app)
    discord_bot = await DiscordBot(fake, app).start()
    try:
        ada = fake.user("ada")
        await mentor_on_discord(app, ada)
        alice, asked = await telegram_learner_requests(tg_bot)
        assert "Request #1 is out to" in asked

        post = await channel_post(fake)
        await press(fake, ada, post, "You are now mentoring Alice", label="Accept")
        await telegram.wait_for(lambda: any("ada accepted" in t for t in alice.texts()))
        await alice.press("Book a session")
        out = await alice.press(alice.last_with_buttons().buttons[0]["text"])
        assert "Booked: session #1 with ada" in out
        booked = await fake.latest_dm(ada, "Alice booked session #1")
        assert "<t:" in booked["content"]  # the same notice, in Discord's idiom
    finally:
        await discord_bot.stop()
        await tg_bot.stop()
        await telegram.stop()


async def test_accept_from_a_dm_updates_the_one_channel_post(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """Three offered mentors make one channel post; Accept in a DM updates that post too."""
    bot = await start_bot()
    await catalogue(bot.app)
    mentors = [fake.user(name) for name in ("ada", "linus", "mei")]
    for mentor in mentors:
        await mentor_on_discord(bot.app, mentor)
    await learner_asks(bot.app, fake.user("alice"))
    post = await channel_post(fake)
    offers = [await fake.latest_dm(m, "New mentorship request #1") for m in mentors]
    assert fake.calls_to("PATCH", f"/channels/{fake.mentors_channel}/") == []

    await press(fake, mentors[1], offers[1], "You are now mentoring alice", label="Accept")
    await fake.wait_for(lambda: "was taken by linus" in post["content"])
    late = await fake.press(mentors[0], post, "/accept 1")
    await fake.reply(late, "was already taken by another mentor")


async def test_guild_roles_decide_admin_in_the_core(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """A configured admin role grants admin; losing it revokes it; a DM (no roles) keeps it."""
    app = await make_app(discord_config(fake))
    role = frozenset({str(fake.admin_role)})

    async def roles(platform_roles: frozenset[str] | None, who: str = "7") -> frozenset[str]:
        msg = Incoming("discord", who, "kim", "", None, platform_roles)
        async with app.new_uow() as uow:
            _user, found = await resolve_user(uow, app.config, msg, app.clock.now())
            await uow.commit()
        return found

    assert "admin" not in await roles(frozenset({"1"}))
    assert "admin" in await roles(role)
    assert "admin" in await roles(None)  # a DM says nothing about roles
    assert "admin" not in await roles(frozenset())
    listed = discord_config(fake, bot={"admins": ["discord:8"]})
    app.config = listed
    assert "admin" in await roles(frozenset(), who="8")  # [bot] admins always are


async def test_a_restart_with_other_admin_roles_or_admins_settles_everyone(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """Roles are what config says now: after a restart whose config no longer lists a role id
    (or an admin), their holders are admins no more, even writing from a DM, where no roles
    come; a role id newly listed makes its holders admins at once."""
    role = str(fake.admin_role)
    app = await make_app(discord_config(fake, bot={"admins": ["discord:8"]}))

    async def roles(
        app: Marketplace, platform_roles: frozenset[str] | None, who: str
    ) -> frozenset[str]:
        msg = Incoming("discord", who, f"user{who}", "", None, platform_roles)
        async with app.new_uow() as uow:
            _user, found = await resolve_user(uow, app.config, msg, app.clock.now())
            await uow.commit()
        return found

    assert "admin" in await roles(app, frozenset({role}), "7")
    assert "admin" not in await roles(app, frozenset({"55"}), "9")
    assert "admin" in await roles(app, None, "8")
    later = await make_app(discord_config(fake, discord={"admin_role_ids": [55]}))
    await later.settle_admins()
    assert "admin" not in await roles(later, None, "7")  # its role is no longer an admin role
    assert "admin" not in await roles(later, None, "8")  # no longer listed
    assert "admin" in await roles(later, None, "9")  # holds the role listed now


async def test_run_starts_discord_when_a_token_is_set(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """`mentorbot run` gets the Discord service exactly when `[discord] token` is set."""
    app = await make_app(discord_config(fake))
    assert "discord" in [s.name for s in configured_services(app.config, app)]
    app.config = make_config()
    assert "discord" not in [s.name for s in configured_services(app.config, app)]


async def test_a_refused_token_stops_start_up_cleanly(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """A token Discord refuses fails `start()` with discord.py's LoginFailure, leaving nothing
    connected or registered."""
    app = await make_app(discord_config(fake, discord={"token": "not-the-token"}))
    bot = DiscordBot(fake, app)
    with pytest.raises(discord.LoginFailure):
        await bot.start()
    assert bot.service is not None and bot.service.client is not None
    assert bot.service.client.is_closed() and fake.identified == 0


async def test_a_former_admin_is_no_admin_in_dms_either(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """Defect 6: a member whose admin role was taken away kept admin powers in DMs, because the
    refused /admin in the guild rolled back the role removal and a DM carries no guild roles.
    Now the refusal keeps what the guild said, and a DM looks the member's roles up."""
    bot = await start_bot()
    await catalogue(bot.app)
    boss = fake.user("boss", admin=True)
    await run(fake, boss, "admin stats", "Marketplace stats")
    await fake.send_dm(boss, "/admin stats")
    await fake.latest_dm(boss, "Marketplace stats")

    demoted = FakeUser(boss.id, boss.name)  # the same member after the role was taken away
    await run(fake, demoted, "admin stats", "Only marketplace admins can do that.")
    fake.set_member(demoted)
    await fake.send_dm(demoted, "/admin stats")
    await fake.latest_dm(demoted, "Only marketplace admins can do that.")

    quiet = fake.user("quiet", admin=True)  # demoted without ever writing in the guild again
    await run(fake, quiet, "admin stats", "Marketplace stats")
    fake.set_member(FakeUser(quiet.id, quiet.name))
    await fake.send_dm(quiet, "/admin stats")
    await fake.latest_dm(quiet, "Only marketplace admins can do that.")


HOSTILE = '=HYPERLINK("http://x") @everyone @here <@42> <@&7> **bold** <b>x</b>'


async def test_what_a_learner_writes_reaches_mentors_inert(
    start_bot: StartBot, fake: FakeDiscord
) -> None:
    """A learner's name and goals pinging everyone or in markdown reach the mentors channel
    and the mentor's DM as literal text, and no message the bot sends may ping anyone."""
    bot = await start_bot()
    await catalogue(bot.app)
    ada = fake.user("ada")
    await mentor_on_discord(bot.app, ada)
    learner = fake.user("@everyone **boss**")
    await run(fake, learner, "courses", "Courses on offer")  # a follow-up, through a webhook
    await learner_asks(bot.app, learner, HOSTILE)

    post = await channel_post(fake)
    offer = await fake.latest_dm(ada, "New mentorship request #1")
    for message in (post, offer):
        text = message["content"]
        assert "@\u200beveryone \\*\\*boss\\*\\*" in text  # the name, shown as typed
        assert "@\u200beveryone @\u200bhere <\u200b@42> <\u200b@&7> \\*\\*bold\\*\\*" in text
        assert "<b>x</b>" in text and '=HYPERLINK("http://x")' in text
        assert "**" not in text.replace("\\*\\*", "")
    message = re.compile(r"/(channels/\d+/messages|webhooks/\d+/[^/]+)(/messages/\d+)?$")
    sent = [c for c in fake.calls if c.method in ("POST", "PATCH") and message.search(c.path)]
    assert {c.path.split("/")[3] for c in sent} == {"channels", "webhooks"}
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in sent), sent
