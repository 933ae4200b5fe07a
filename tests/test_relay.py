"""A mentorship's conversation relayed through the bot: /ask, /answer, the Reply button and
Telegram replies, across platforms; inert text; forged reply targets; retention and erasure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.clock import FakeClock
from storage.models import RelayDelivery, RelayMessage
from tests.fakes.fake_discord import (
    DiscordBot,
    FakeDiscord,
    buttons,
    discord_config,
    discord_settings,
)
from tests.fakes.fake_telegram import BotUnderTest, FakeTelegram, telegram_config
from tests.support import (
    AppFactory,
    Harness,
    buy,
    catalogue,
    channel_post,
    learner_asks,
    matched_pair,
    mentor_on_discord,
    press,
    request_mentor,
    telegram_learner_requests,
    typed,
)


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


async def relayed(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        return int((await uow.session.execute(select(func.count(RelayMessage.id)))).scalar_one())


async def test_learner_and_mentor_write_to_each_other_by_command_and_button(
    market: Harness,
) -> None:
    """/ask reaches the mentor with a Reply button; /answer (or the button) reaches the learner."""
    h = market
    request_id = await matched_pair(h)
    out = await h.send("alice", "/ask How do I start with tests?")
    assert "Sent to ada" in out
    assert f"Your mentee alice writes (request #{request_id})" in out
    assert "How do I start with tests?" in out
    assert "[1] Reply" in out
    out = await h.send("ada", "1")  # the mentor presses Reply
    assert "Your message to alice?" in out
    out = await h.send("ada", "Write one test first.")
    assert "Sent to alice" in out
    assert "Your mentor ada writes" in out and "Write one test first." in out
    assert await relayed(h) == 2


async def test_someone_outside_the_mentorship_cannot_write_in_it(market: Harness) -> None:
    """Another learner (or mentor) naming the request is refused, and nothing is relayed."""
    h = market
    request_id = await matched_pair(h)
    out = await h.send("bob", f"/ask {request_id} hello")
    assert f"Request #{request_id} is not a mentorship of yours" in out
    await buy(h, "bob")
    await request_mentor(h, "bob")
    out = await h.send("bob", f"/answer {request_id} hello")
    assert f"Request #{request_id} is not a mentorship of yours" in out
    out = await h.send("bob", "/ask hello")
    assert "no mentor to write to yet" in out
    assert await relayed(h) == 0


async def test_a_long_or_empty_message_is_refused_with_the_limit(market: Harness) -> None:
    """Over 1,000 characters is refused naming the limit; nothing is stored."""
    h = market
    request_id = await matched_pair(h)
    out = await h.send("alice", f"/ask {request_id} {'x' * 1001}")
    assert "at most 1000 characters; yours has 1001" in out
    assert await relayed(h) == 0


async def test_relayed_messages_are_pruned_after_keep_days(
    market: Harness, clock: FakeClock
) -> None:
    """A message older than [discussion] keep_days is erased by the sweep."""
    h = market
    await matched_pair(h)
    await h.send("alice", "/ask Are you there?")
    clock.advance(timedelta(days=179))
    await h.tick()
    assert await relayed(h) == 1
    clock.advance(timedelta(days=2))
    await h.tick()
    assert await relayed(h) == 0


async def test_deleteme_erases_the_conversation(market: Harness) -> None:
    """/deleteme erases the relayed messages of the user's conversations, both sides'."""
    h = market
    request_id = await matched_pair(h)
    await h.send("alice", "/ask My secret plan")
    await h.send("ada", f"/answer {request_id} Noted")
    assert await relayed(h) == 2
    await h.send("alice", "/deleteme")
    assert "Last check" in await h.send("alice", "1")
    assert "Your personal data is erased" in await h.send("alice", "delete")
    assert await relayed(h) == 0
    out = await h.send("ada", f"/answer {request_id} Still there?")
    assert "not a mentorship of yours" in out  # nobody left to write to


def _texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["content"] for m in messages)


async def test_telegram_learner_and_discord_mentor_talk_and_a_forged_reply_is_refused(
    make_app: AppFactory, discord_fake: FakeDiscord
) -> None:
    """A Telegram learner and a Discord mentor talk through the bot (neither sees the other's
    handle, markup and mentions arrive inert); a reply to a message relayed to someone else is
    refused and reaches nobody."""
    fake = discord_fake
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
        alice, _asked = await telegram_learner_requests(tg_bot)
        post = await channel_post(fake)
        await press(fake, ada, post, "You are now mentoring Alice", label="Accept")

        await telegram.wait_for(lambda: any("ada accepted" in t for t in alice.texts()))
        assert "Your message to ada?" in await alice.press("Write to your mentor")
        await alice.send("/cancel")
        out = await alice.send("/ask Hi @everyone <@123> **bold** — where do I start?")
        assert "Sent to ada" in out
        dm = await fake.latest_dm(ada, "Your mentee Alice writes")
        assert "@\u200beveryone" in dm["content"]  # no mass ping
        assert "\\*\\*bold\\*\\*" in dm["content"]  # markdown shown, not applied
        assert str(alice.id) not in dm["content"]  # no Telegram handle or id
        # The Reply button asks for the answer, typed in the DM.
        await press(fake, ada, dm, "Your message to Alice?", label="Reply")
        await fake.send_dm(ada, "Start with one failing test.")
        await telegram.wait_for(lambda: any("Start with one failing" in t for t in alice.texts()))
        relayed_call = next(
            c for c in alice.received() if "Start with one failing" in c.params["text"]
        )
        assert str(ada.id) not in relayed_call.params["text"]
        assert "parse_mode" not in relayed_call.params  # plain text: nothing is markup

        # Alice replies to the relayed message itself: it goes to her mentor (once the bot
        # has recorded where it landed, right after sending it).
        for _ in range(100):
            async with app.new_uow() as uow:
                landed = select(func.count(RelayDelivery.id)).where(
                    RelayDelivery.platform_message_id == str(relayed_call.result["message_id"])
                )
                if (await uow.session.execute(landed)).scalar_one():
                    break
            await asyncio.sleep(0.02)
        out = await alice.reply(relayed_call, "Thanks, doing it now")
        assert "Sent to ada" in out
        answer = await fake.latest_dm(ada, "Thanks, doing it now")
        assert [b["label"] for b in buttons(answer)] == ["Reply"]

        # Bob, on Telegram with no mentorship, replies to Alice's message (a forged target).
        bob = tg_bot.user("Bob")
        forged = dict(relayed_call.result)
        out = await bob.reply(forged, "Let me in on this")
        assert "was not sent to you" in out
        before = len(fake.dms_to(ada))
        assert "Let me in on this" not in _texts(fake.dms_to(ada))
        # A reply to one of the bot's own messages that is not relayed is typed text.
        plain = next(c for c in alice.received() if "Sent to ada" in c.params["text"])
        out = await alice.reply(plain, "hello?")
        assert "I did not understand that" in out
        assert len(fake.dms_to(ada)) == before
        # ada replies on Discord to Alice's relayed DM itself: it reaches Alice on Telegram.
        await fake.send_dm(ada, "Good, then make it pass.", reply_to=answer)
        await telegram.wait_for(lambda: any("make it pass" in t for t in alice.texts()))
        # Grace "replies" to a DM the bot sent ada: in her own DM no relayed message has that
        # id, so it is plain typed text and reaches nobody.
        grace = fake.user("grace")
        await fake.send_dm(grace, "Me too", reply_to=answer)
        await fake.latest_dm(grace, "I did not understand that")
        assert not any("Me too" in t for t in alice.texts())
        async with app.new_uow() as uow:
            platforms = (await uow.session.execute(select(RelayDelivery.platform))).scalars()
            assert set(platforms) == {"telegram", "discord"}
    finally:
        await discord_bot.stop()
        await tg_bot.stop()
        await telegram.stop()


async def test_two_discord_users_get_a_private_channel_only_they_can_see(
    make_app: AppFactory, discord_fake: FakeDiscord
) -> None:
    """With a category configured, a mentorship whose two sides are on Discord gets a channel
    there that only they (and the bot) can see; /deleteme deletes it."""
    fake = discord_fake
    app = await make_app(
        discord_config(
            fake,
            payments={"demo": True},
            discussion={"discord_category_id": fake.category},
        )
    )
    await catalogue(app)
    bot = await DiscordBot(fake, app).start()
    try:
        ada, lin, eve = fake.user("ada"), fake.user("lin"), fake.user("eve")
        for member in (ada, lin, eve):
            fake.set_member(member)
        await mentor_on_discord(app, ada)
        await learner_asks(app, lin)
        assert "You are now mentoring lin" in await typed(app, ada, "/accept 1")
        await app.run_due()
        [(channel_id, channel)] = fake.created_channels.items()
        assert channel["parent_id"] == str(fake.category)
        assert fake.can_view(channel_id, ada) and fake.can_view(channel_id, lin)
        assert not fake.can_view(channel_id, eve)
        await fake.latest_dm(lin, "private channel on the server, #mentorship-1")
        await app.run_due()
        assert len(fake.calls_to("POST", f"/guilds/{fake.guild_id}/channels")) == 1  # once

        await typed(app, lin, "/deleteme")
        await typed(app, lin, "yes")
        assert "erased" in await typed(app, lin, "delete")
        await app.run_due()
        assert fake.created_channels == {}
    finally:
        await bot.stop()


async def test_with_two_mentors_the_learner_chooses_who_by_button(market: Harness) -> None:
    """A learner with two mentorships is asked who a message is for; the button picks one."""
    h = market
    first = await matched_pair(h, "alice", "ada")
    await buy(h, "alice", "git-teamwork")
    out = await request_mentor(h, "alice", "git-teamwork")
    second = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    mentor = ""
    for name in ("linus", "mei", "ada"):
        if "You are now mentoring" in await h.send(name, f"/accept {second}"):
            mentor = name
            break
    out = await h.send("alice", "/ask Which branch?")
    assert "Who is it for?" in out
    assert f"#{first} ada" in out and f"#{second} {mentor}" in out
    assert await relayed(h) == 0
    out = await h.send("alice", "2")  # the second mentorship's button
    assert f"Your message to {mentor}?" in out
    out = await h.send("alice", "Which branch?")
    assert f"Sent to {mentor}" in out and f"── message for {mentor} ──" in out
    out = await h.send("alice", f"/ask {first} And for Python?")
    assert "Sent to ada" in out
