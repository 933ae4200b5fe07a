"""Courses sharing one Telegram forum supergroup, each with its own topic: the supergroup's
membership follows "entitled to ANY of its courses" (one invite, no removal while another
course entitles, one removal after the last), the bot makes each named topic once, links the
learner to it and welcomes them in it when they join."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.adapters.telegram.spaces import TelegramSpaces
from bot.app import Marketplace
from bot.community import topics
from bot.community.topics import TopicBusy
from bot.config import ConfigError, config_from_mapping
from bot.core.clock import FakeClock
from bot.core.users import Incoming
from bot.runtime.demo_data import seed_demo
from storage.models import AccessLog, ForumTopic, Order
from tests.fakes.fake_telegram import (
    BotUnderTest,
    FakeTelegram,
    StartBot,
    TelegramUser,
    telegram_config,
)
from tests.support import AppFactory, Harness

FORUM = -1009876543210
PYTHON, DATA = "Python from zero", "Data analysis"
TOPIC_LINKS = "https://t.me/c/9876543210"  # the supergroup's id without its -100
SPACES = [f"python-basics=telegram:{FORUM}/{PYTHON}", f"data-analysis=telegram:{FORUM}/{DATA}"]


def sections(spaces: list[str] = SPACES) -> dict[str, Any]:
    return {"payments": {"demo": True}, "community": {"spaces": spaces}}


async def buy(user: TelegramUser, slug: str) -> int:
    """Buy the course with demo payments (/pay, in any language); the order's id."""
    out = await user.send(f"/buy {slug}")
    order = int(re.findall(r"#(\d+)", out)[0])
    before = len(user.received())
    await user.send(f"/pay {order}")
    assert len(user.received()) > before
    return order


async def orders_of(app: Marketplace) -> list[int]:
    async with app.new_uow() as uow:
        return list((await uow.session.execute(select(Order.id).order_by(Order.id))).scalars())


async def actions(app: Marketplace) -> list[str]:
    async with app.new_uow() as uow:
        rows = await uow.session.execute(select(AccessLog.action).order_by(AccessLog.id))
        return list(rows.scalars())


def thread(fake: FakeTelegram, name: str) -> int:
    [found] = fake.groups[FORUM].topic_named(name)
    return found


def invites_to(user: TelegramUser) -> list[Any]:
    return [c for c in user.received() if "community group is open" in c.params["text"]]


async def welcomed(fake: FakeTelegram, name: str, who: str) -> None:
    """Wait until the welcome naming `who` is posted into the topic `name`."""
    posts = fake.groups[FORUM].posts
    await fake.wait_for(lambda: any(who in p for p in posts.get(thread(fake, name), [])))


async def learner_of_both(start_bot: StartBot, fake: FakeTelegram) -> tuple[BotUnderTest, Harness]:
    fake.add_group(FORUM, forum=True)
    return await start_bot(**sections())


async def in_group_through_python(
    bot: BotUnderTest, fake: FakeTelegram, name: str, welcomed_as: str = ""
) -> TelegramUser:
    """`name` buys Python from zero, joins the forum with its invite and is welcomed into its
    topic (a post naming `welcomed_as`, by default the name): a member of the group, as a
    learner who then buys or subscribes to more is."""
    who = bot.user(name)
    await buy(who, "python-basics")
    await bot.app.run_due()
    assert fake.use_link(who.user, fake.calls_of("createChatInviteLink")[0].result["invite_link"])
    await welcomed(fake, PYTHON, welcomed_as or name)
    return who


async def test_a_learner_of_two_courses_in_one_forum_gets_one_invite_naming_both_topics(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Buying both courses makes each course's topic, then one single-use invite to the
    supergroup whose message names both topics and links to each; joining posts a welcome
    into both topics."""
    bot, _h = await learner_of_both(start_bot, fake)
    alice = bot.user("Alice")
    await buy(alice, "python-basics")
    await buy(alice, "data-analysis")
    await bot.app.run_due()
    made = fake.calls_of("createForumTopic", chat_id=FORUM)
    assert sorted(c.params["name"] for c in made) == sorted([PYTHON, DATA])
    [link] = fake.calls_of("createChatInviteLink", chat_id=FORUM)
    assert link.params["member_limit"] == 1
    [invite] = invites_to(alice)
    assert PYTHON in invite.params["text"] and DATA in invite.params["text"]
    buttons = {b["text"]: b["url"] for b in invite.buttons}
    assert buttons["Join the group"] == link.result["invite_link"]
    assert (
        buttons[f"Open the topic “{PYTHON}”"] == f"https://t.me/c/9876543210/{thread(fake, PYTHON)}"
    )
    assert buttons[f"Open the topic “{DATA}”"] == f"{TOPIC_LINKS}/{thread(fake, DATA)}"

    assert fake.use_link(alice.user, link.result["invite_link"])
    await welcomed(fake, PYTHON, "Alice")
    await welcomed(fake, DATA, "Alice")
    assert fake.groups[FORUM].members == {alice.id}


async def test_refunding_one_course_keeps_the_member_refunding_the_last_removes_them(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A refund of one course leaves its learner in the supergroup while the other course
    still entitles them (no ban); the refund of the other removes them with a ban and an
    unban, and revokes their invite link."""
    bot, h = await learner_of_both(start_bot, fake)
    alice = bot.user("Alice")
    await buy(alice, "python-basics")
    await buy(alice, "data-analysis")
    await bot.app.run_due()
    link = fake.calls_of("createChatInviteLink")[0].result["invite_link"]
    assert fake.use_link(alice.user, link)
    first, second = await orders_of(bot.app)

    assert "refunded" in await h.send("admin", f"/admin refund {first}")
    await bot.app.run_due()
    await bot.app.community.sweep(check=True)  # and the check agrees
    assert alice.id in fake.groups[FORUM].members
    assert not fake.calls_of("banChatMember") and not fake.calls_of("revokeChatInviteLink")
    assert "shared" in await actions(bot.app)

    assert "refunded" in await h.send("admin", f"/admin refund {second}")
    await bot.app.run_due()
    assert alice.id not in fake.groups[FORUM].members
    assert alice.id not in fake.groups[FORUM].banned
    assert len(fake.calls_of("banChatMember", chat_id=FORUM, user_id=alice.id)) == 1
    assert len(fake.calls_of("unbanChatMember", chat_id=FORUM, user_id=alice.id)) == 1
    assert fake.calls_of("revokeChatInviteLink", chat_id=FORUM, invite_link=link)


def posts_into(fake: FakeTelegram, name: str) -> list[Any]:
    """The bot's messages into the topic `name`, as Telegram answered them."""
    return [
        c
        for c in fake.calls_of("sendMessage", chat_id=FORUM)
        if c.params.get("message_thread_id") == thread(fake, name)
    ]


async def test_a_member_buying_a_second_course_gets_its_topic_and_no_second_invite(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Already in the supergroup through one course, a learner who buys another is told the
    new course's topic with its link, and welcomed by name in that topic (a member asked
    Telegram about, since no join will come); no new invite link is made, and the first
    topic is not welcomed into again."""
    bot, _h = await learner_of_both(start_bot, fake)
    alice = await in_group_through_python(bot, fake, "Alice")
    await buy(alice, "data-analysis")
    await bot.app.run_due()
    assert len(fake.calls_of("createChatInviteLink")) == 1
    assert len(invites_to(alice)) == 1
    told = next(c for c in alice.received() if "no new invite" in c.params["text"])
    assert DATA in told.params["text"]
    [button] = told.buttons
    assert button["url"] == f"{TOPIC_LINKS}/{thread(fake, DATA)}"
    [post] = posts_into(fake, DATA)
    assert post.params["text"].startswith("Welcome, Alice! You are here as a learner of Data")
    assert len(posts_into(fake, PYTHON)) == 1
    await bot.app.run_due()
    assert len(posts_into(fake, DATA)) == 1  # once


async def test_a_member_subscribing_to_a_plan_of_another_course_is_welcomed_there(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """In the supergroup through a bought course, a learner whose new plan covers the other
    course is told its topic and welcomed in it, with no second invite."""
    bot, h = await learner_of_both(start_bot, fake)
    out = await h.send(
        "admin",
        '/admin plan add data course=data-analysis name="Data monthly" price=19.00 sessions=1',
    )
    assert "data" in out, out
    alice = await in_group_through_python(bot, fake, "Alice")
    out = await alice.send("/subscribe data")
    sub = int(out.split("Subscription #", 1)[1].split(":", 1)[0])
    assert "has started" in await alice.send(f"/subscription pay {sub}")
    await bot.app.run_due()
    assert len(fake.calls_of("createChatInviteLink")) == 1
    assert any("no new invite" in c.params["text"] for c in alice.received())
    [post] = posts_into(fake, DATA)
    assert "Welcome, Alice!" in post.params["text"]


async def test_a_welcome_names_the_learner_inert(start_bot: StartBot, fake: FakeTelegram) -> None:
    """A learner whose Telegram name is "@ada_mentor *Bob*" is welcomed into the new
    course's topic with the name as they wrote it, but Telegram finds no mention in it (so
    nobody named ada_mentor is pinged), no markup is parsed and no link preview is shown."""
    bot, _h = await learner_of_both(start_bot, fake)
    bob = await in_group_through_python(bot, fake, "@ada_mentor *Bob*", welcomed_as="Bob")
    await buy(bob, "data-analysis")
    await bot.app.run_due()
    for post in [*posts_into(fake, PYTHON), *posts_into(fake, DATA)]:
        text = post.params["text"]
        assert "ada_mentor *Bob*" in text and "@" in text, text
        assert post.result["entities"] == [], post.result
        assert "parse_mode" not in post.params
        assert post.params["link_preview_options"] == {"is_disabled": True}
    assert len(posts_into(fake, DATA)) == 1


async def test_an_invited_learner_buying_a_second_course_is_welcomed_once_on_joining(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Invited but not yet in, a learner who buys a second course is told its topic but not
    welcomed there yet (Telegram says they are not a member); joining then welcomes them into
    both topics, once each."""
    bot, _h = await learner_of_both(start_bot, fake)
    alice = bot.user("Alice")
    await buy(alice, "python-basics")
    await bot.app.run_due()
    await buy(alice, "data-analysis")
    await bot.app.run_due()
    assert any("no new invite" in c.params["text"] for c in alice.received())
    assert fake.calls_of("getChatMember", user_id=alice.id)
    assert not fake.groups[FORUM].posts
    assert fake.use_link(alice.user, fake.calls_of("createChatInviteLink")[0].result["invite_link"])
    await welcomed(fake, PYTHON, "Alice")
    await welcomed(fake, DATA, "Alice")
    await bot.app.run_due()
    assert (len(posts_into(fake, PYTHON)), len(posts_into(fake, DATA))) == (1, 1)


async def test_an_approved_join_request_welcomes_the_learner_in_their_language(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A join request from an entitled learner is approved; the join that follows posts the
    welcome into their course's topic, in their language; nothing is posted for the other
    course's topic."""
    bot, _h = await learner_of_both(start_bot, fake)
    li = bot.user("Li", language_code="zh")
    await buy(li, "python-basics")
    await bot.app.run_due()
    await bot.deliver(fake.join_request_update(li.user, FORUM))
    assert fake.calls_of("approveChatJoinRequest", user_id=li.id)
    await welcomed(fake, PYTHON, "Li")
    [post] = fake.groups[FORUM].posts[thread(fake, PYTHON)]
    assert "欢迎" in post and "零基础学 Python" in post
    assert not fake.calls_of("createForumTopic", name=DATA)  # made when someone needs it


async def test_drift_repair_removes_only_whom_no_course_entitles(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The check judges the supergroup by all its courses: a refunded learner an admin added
    back by hand is removed; a learner refunded for one course but entitled by the other is
    not drift and stays."""
    bot, h = await learner_of_both(start_bot, fake)
    bob, carol = bot.user("Bob"), bot.user("Carol")
    await buy(bob, "python-basics")
    await buy(carol, "python-basics")
    await buy(carol, "data-analysis")
    await bot.app.run_due()
    for user in (bob, carol):
        [invite] = invites_to(user)
        assert fake.use_link(user.user, invite.buttons[0]["url"])
    bob_order, carol_python, _carol_data = await orders_of(bot.app)
    await h.send("admin", f"/admin refund {bob_order}")
    await h.send("admin", f"/admin refund {carol_python}")
    await bot.app.run_due()
    assert fake.groups[FORUM].members == {carol.id}
    fake.groups[FORUM].members.add(bob.id)  # an admin let him back in by hand
    bans = len(fake.calls_of("banChatMember"))

    report = await bot.app.community.sweep(check=True)
    assert (report.drift, report.done) == (1, 1)
    assert fake.groups[FORUM].members == {carol.id}
    assert len(fake.calls_of("banChatMember")) == bans + 1
    assert not fake.calls_of("banChatMember", user_id=carol.id)


async def test_a_topic_given_by_id_is_used_as_it_is(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A topic named by its message_thread_id is not made again: the invite links to it and
    names it by the course."""
    group = fake.add_group(FORUM, forum=True)
    group.topics[42] = {"message_thread_id": 42, "name": "py", "icon_color": 7322096}
    bot, _h = await start_bot(**sections([f"python-basics=telegram:{FORUM}/42"]))
    alice = bot.user("Alice")
    await buy(alice, "python-basics")
    await bot.app.run_due()
    assert not fake.calls_of("createForumTopic")
    [invite] = invites_to(alice)
    assert [b["url"] for b in invite.buttons][1] == f"{TOPIC_LINKS}/42"
    assert "Python from zero" in invite.params["text"]


async def test_a_chat_that_is_no_forum_fails_the_grant_until_topics_are_on(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """createForumTopic refused (the supergroup has no topics): no invite goes out, the
    failure is logged with Telegram's words, and the grant succeeds once the admin turns
    topics on."""
    group = fake.add_group(FORUM)
    bot, _h = await start_bot(**sections())
    alice = bot.user("Alice")
    await buy(alice, "python-basics")
    await bot.app.run_due()
    assert fake.calls_of("createForumTopic")[0].status == 400
    assert not fake.calls_of("createChatInviteLink") and not invites_to(alice)
    async with bot.app.new_uow() as uow:
        details = (
            await uow.session.execute(select(AccessLog.detail).where(AccessLog.action == "failed"))
        ).scalars()
        assert any("not a forum" in d for d in details)
    group.is_forum = True
    clock.advance(timedelta(minutes=2))
    await bot.app.run_due()
    assert len(invites_to(alice)) == 1


async def test_the_topic_is_made_once_across_processes_and_restarts(
    make_app: AppFactory, fake: FakeTelegram
) -> None:
    """Two processes granting learners of the same named topic at once make it once: while
    Telegram is slow to answer createForumTopic the other watches the row and gets the same
    thread id within the same pass, so every learner's invite goes out without waiting for a
    lease to run out; a later process, with nothing in memory, finds it in the database."""
    fake.add_group(FORUM, forum=True)
    config = telegram_config(fake, **sections())
    apps = [await make_app(config), await make_app(config)]
    await seed_demo(apps[0])

    async def learner(app: Marketplace, n: int) -> None:
        who = str(7100 + n)
        out = await app.handle(Incoming("telegram", who, f"L{n}", "/buy python-basics"))
        order = int(out[0].text.split("Order #", 1)[1].split(":", 1)[0])
        paid = await app.handle(Incoming("telegram", who, f"L{n}", f"/pay {order}"))
        assert "is yours" in paid[0].text

    for n in range(6):
        await learner(apps[0], n)
    bots = []
    try:
        for app in apps:
            tg = Bot(fake.token, base_url=f"{fake.url}/bot")
            await tg.initialize()
            bots.append(tg)
            app.community.register("telegram", TelegramSpaces(tg))
            app.community.register_topics("telegram", TelegramSpaces(tg))
        slow = fake.hold("createForumTopic")
        making = [
            asyncio.create_task(
                app.community.topics("telegram").ensure(TelegramSpaces(tg), str(FORUM), PYTHON)
            )
            for app, tg in zip(apps, bots, strict=True)
        ]
        await fake.wait_for(lambda: fake.calls_of("createForumTopic"))
        await asyncio.sleep(0.5)  # the other process is watching the row by now
        slow.set()
        both = await asyncio.gather(*making)
        assert both == [thread(fake, PYTHON)] * 2
        await asyncio.gather(*(app.community.sweep() for app in apps))
        assert len(fake.calls_of("createChatInviteLink")) == 6
        later = await make_app(config)  # a restart: a new process, an empty cache
        later.community.register("telegram", TelegramSpaces(bots[0]))
        later.community.register_topics("telegram", TelegramSpaces(bots[0]))
        await learner(later, 6)
        await later.community.sweep()
        assert len(fake.calls_of("createChatInviteLink")) == 7
    finally:
        for tg in bots:
            await tg.shutdown()
    assert len(fake.calls_of("createForumTopic")) == 1
    assert len(fake.groups[FORUM].topics) == 1
    async with apps[0].new_uow() as uow:
        stored = (await uow.session.execute(select(ForumTopic.name, ForumTopic.thread_id))).all()
    assert [tuple(r) for r in stored] == [(PYTHON, thread(fake, PYTHON))]


async def test_a_process_watches_a_topic_being_made_a_bounded_time(
    make_app: AppFactory, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process's createForumTopic has not been answered for longer than the
    watch (`topics.WAIT`), the waiting process gives up with TopicBusy (its grant is retried
    later) instead of holding its sweep; the maker still records the one topic."""
    monkeypatch.setattr(topics, "WAIT", 0.3)
    fake.add_group(FORUM, forum=True)
    config = telegram_config(fake, **sections())
    apps = [await make_app(config), await make_app(config)]
    tg = Bot(fake.token, base_url=f"{fake.url}/bot")
    await tg.initialize()
    try:
        slow = fake.hold("createForumTopic")
        maker = asyncio.create_task(
            apps[0].community.topics("telegram").ensure(TelegramSpaces(tg), str(FORUM), PYTHON)
        )
        await fake.wait_for(lambda: fake.calls_of("createForumTopic"))
        with pytest.raises(TopicBusy):
            await (
                apps[1].community.topics("telegram").ensure(TelegramSpaces(tg), str(FORUM), PYTHON)
            )
        assert not maker.done()  # it gave up while the topic was still being made
        slow.set()
        assert await maker == thread(fake, PYTHON)
        again = apps[1].community.topics("telegram")
        assert await again.ensure(TelegramSpaces(tg), str(FORUM), PYTHON) == thread(fake, PYTHON)
    finally:
        await tg.shutdown()
    assert len(fake.calls_of("createForumTopic")) == 1


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("python-basics=discord:123/General", "Telegram forum topic"),
        (f"python-basics=telegram:{FORUM}/", "1-128 characters"),
        (f"python-basics=telegram:{FORUM}/{'x' * 129}", "1-128 characters"),
        (f"python-basics=telegram:{FORUM}/Python", "second space"),
    ],
)
def test_bad_topic_entries_are_refused_naming_the_entry(entry: str, words: str) -> None:
    """A topic on a Discord role, an empty or over-long topic name, or a course given two
    places in one chat stops start-up with a message naming what is wrong."""
    spaces = [entry] if "second" not in words else [f"python-basics=telegram:{FORUM}", entry]
    with pytest.raises(ConfigError, match=words):
        config_from_mapping({"community": {"spaces": spaces}}, env={})
