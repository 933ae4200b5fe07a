"""Community access follows payment: a course's Telegram group and Discord role are granted
when an enrollment becomes active and revoked on refund and /deleteme; the sweep repairs drift
and, across processes, makes each grant once; /admin spaces shows and repairs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.adapters.telegram.spaces import TelegramSpaces
from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.users import Incoming
from bot.subscriptions.lifecycle import lock_subscription, record_failure, start
from storage.models import AccessGrant, AccessLog, Identity, Order, Plan
from tests.fakes.fake_discord import DiscordBot, FakeDiscord, FakeUser, discord_config
from tests.fakes.fake_telegram import FakeTelegram, StartBot, TelegramUser, telegram_config
from tests.support import AppFactory, harness_for

GROUP = -1001234567
TG_SPACE = f"python-basics=telegram:{GROUP}"


def telegram_sections(**more: Any) -> dict[str, Any]:
    return {"payments": {"demo": True}, "community": {"spaces": [TG_SPACE]}, **more}


async def buy_on_telegram(user: TelegramUser) -> None:
    await user.send("/buy python-basics")
    assert "is yours" in await user.press("Pay (demo")


async def order_of(app: Marketplace) -> int:
    async with app.new_uow() as uow:
        found = await uow.session.execute(select(Order.id).order_by(Order.id))
        return int(found.scalars().first() or 0)


async def log_actions(app: Marketplace) -> list[tuple[str, str, str]]:
    async with app.new_uow() as uow:
        rows = await uow.session.execute(
            select(AccessLog.action, AccessLog.desired, AccessLog.reason).order_by(AccessLog.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_telegram_group_invite_on_payment_and_removal_on_refund(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Paying sends a single-use, expiring invite link to the group; a refund revokes the link
    and removes the member with a ban and an unban, so they may come back after buying again."""
    fake.add_group(GROUP)
    bot, h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    await buy_on_telegram(alice)
    await bot.app.run_due()
    [made] = fake.calls_of("createChatInviteLink")
    assert made.params["chat_id"] == GROUP and made.params["member_limit"] == 1
    assert made.params["expire_date"] > 0
    invite = next(c for c in alice.received() if "community group is open" in c.params["text"])
    [button] = invite.buttons
    assert button["text"] == "Join the group" and button["url"] == made.result["invite_link"]
    assert fake.use_link(alice.user, button["url"])
    assert not fake.use_link(bot.user("Mallory").user, button["url"])  # single use
    await bot.app.run_due()
    assert len(fake.calls_of("createChatInviteLink")) == 1  # granted once

    out = await h.send("admin", f"/admin refund {await order_of(bot.app)}")
    assert "refunded" in out
    await bot.app.run_due()
    assert fake.calls_of("revokeChatInviteLink", invite_link=button["url"])
    assert fake.calls_of("banChatMember", chat_id=GROUP, user_id=alice.id)
    [unban] = fake.calls_of("unbanChatMember", chat_id=GROUP, user_id=alice.id)
    assert unban.params["only_if_banned"] is True
    assert alice.id not in fake.groups[GROUP].members
    assert alice.id not in fake.groups[GROUP].banned
    assert [a for a, _d, _r in await log_actions(bot.app)] == ["grant", "done", "revoke", "done"]


async def test_deleteme_removes_a_telegram_member_and_forgets_their_id(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """/deleteme revokes the group access; once done, the Telegram id is gone from the row."""
    fake.add_group(GROUP)
    bot, _h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    await buy_on_telegram(alice)
    await bot.app.run_due()
    link = fake.calls_of("createChatInviteLink")[0].result["invite_link"]
    assert fake.use_link(alice.user, link)
    await alice.send("/deleteme")
    await alice.press("Yes")
    await alice.send("delete")
    await bot.app.run_due()
    assert fake.calls_of("banChatMember", user_id=alice.id)
    assert alice.id not in fake.groups[GROUP].members
    async with bot.app.new_uow() as uow:
        ids = list((await uow.session.execute(select(AccessGrant.external_id))).scalars())
    assert ids and str(alice.id) not in ids


async def test_a_failed_revoke_is_retried_until_it_holds(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """Telegram down during a refund: the revoke fails, is logged, and the sweep after the
    pause removes the member."""
    fake.add_group(GROUP)
    bot, h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    await buy_on_telegram(alice)
    await bot.app.run_due()
    fake.use_link(alice.user, fake.calls_of("createChatInviteLink")[0].result["invite_link"])
    fake.fail("banChatMember", status=502, description="Bad Gateway", times=10)
    await h.send("admin", f"/admin refund {await order_of(bot.app)}")
    await bot.app.run_due()
    assert alice.id in fake.groups[GROUP].members
    assert "failed" in [a for a, _d, _r in await log_actions(bot.app)]
    fake._failures.clear()
    clock.advance(timedelta(minutes=2))
    await bot.app.run_due()
    assert alice.id not in fake.groups[GROUP].members


async def test_join_requests_are_approved_only_for_entitled_learners(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A join request from a paying learner is approved; one from anyone else is declined."""
    fake.add_group(GROUP)
    bot, _h = await start_bot(**telegram_sections())
    alice, eve = bot.user("Alice"), bot.user("Eve")
    await buy_on_telegram(alice)
    await eve.send("/start")
    await bot.app.run_due()
    await bot.deliver(fake.join_request_update(alice.user, GROUP))
    await bot.deliver(fake.join_request_update(eve.user, GROUP))
    assert fake.calls_of("approveChatJoinRequest", user_id=alice.id)
    assert fake.calls_of("declineChatJoinRequest", user_id=eve.id)
    assert fake.groups[GROUP].members == {alice.id}


async def test_someone_added_back_by_hand_is_removed_by_the_sweep(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Drift: a refunded learner an admin let back in is found by the check and removed."""
    fake.add_group(GROUP)
    bot, h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    await buy_on_telegram(alice)
    await bot.app.run_due()
    await h.send("admin", f"/admin refund {await order_of(bot.app)}")
    await bot.app.run_due()
    fake.groups[GROUP].members.add(alice.id)  # added by hand
    bans = len(fake.calls_of("banChatMember"))
    report = await bot.app.community.sweep(check=True)
    assert report.drift == 1 and report.done == 1
    assert alice.id not in fake.groups[GROUP].members
    assert len(fake.calls_of("banChatMember")) == bans + 1
    assert "drift" in [a for a, _d, _r in await log_actions(bot.app)]


async def test_two_processes_sweeping_make_each_grant_once(
    make_app: AppFactory, fake: FakeTelegram
) -> None:
    """Two bot processes sweep the same database at once: every learner gets one invite."""
    fake.add_group(GROUP)
    config = telegram_config(fake, **telegram_sections())
    apps = [await make_app(config), await make_app(config)]
    h = harness_for(apps[0])
    out = await h.send(
        "admin", "/admin course add python-basics title=Python price=49.00 sessions=4 topics=py"
    )
    assert "added" in out
    for n in range(12):
        await apps[0].handle(Incoming("telegram", str(7000 + n), f"L{n}", "/buy python-basics"))
    async with apps[0].new_uow() as uow:
        orders = list((await uow.session.execute(select(Order.id, Order.user_id))).all())
    for order_id, _user in orders:
        async with apps[0].new_uow() as uow:
            external = await uow.session.execute(select(Order.user_id).where(Order.id == order_id))
            del external
        who = str(7000 + order_id - orders[0][0])
        replies = await apps[0].handle(Incoming("telegram", who, who, f"/pay {order_id}"))
        assert "is yours" in replies[0].text
    bots = []
    for app in apps:
        tg = Bot(fake.token, base_url=f"{fake.url}/bot")
        await tg.initialize()
        bots.append(tg)
        app.community.register("telegram", TelegramSpaces(tg))
    try:
        reports = await asyncio.gather(*(app.community.sweep() for app in apps))
        await asyncio.gather(*(app.community.sweep() for app in apps))
    finally:
        for tg in bots:
            await tg.shutdown()
    made = fake.calls_of("createChatInviteLink")
    assert len(made) == 12
    assert len({c.params["name"] for c in made}) == 12
    assert sum(r.done for r in reports) == 12


# ── Discord: a role per course ─────────────────────────────────────────────────────────────


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


async def typed(app: Marketplace, user: FakeUser, text: str) -> str:
    replies = await app.handle(Incoming("discord", str(user.id), user.name, text))
    return "\n".join(r.text for r in replies)


async def test_discord_role_on_payment_removed_on_refund_and_deleteme(
    make_app: AppFactory, discord_fake: FakeDiscord
) -> None:
    """A Discord learner gets the course's role on payment; a refund takes it away, buying
    again gives it back, /deleteme takes it away for good; a role removed by hand while
    entitled is given back by the check."""
    fake = discord_fake
    space = f"python-basics=discord:{fake.community_role}"
    app = await make_app(discord_config(fake, community={"spaces": [space]}))
    h = harness_for(app)
    await h.send(
        "admin", "/admin course add python-basics title=Python price=49.00 sessions=4 topics=py"
    )
    bot = await DiscordBot(fake, app).start()
    try:
        lin = fake.user("lin")
        fake.set_member(lin)
        out = await typed(app, lin, "/buy python-basics")
        order = int(out.split("Order #", 1)[1].split(":", 1)[0])
        assert "is yours" in await typed(app, lin, f"/pay {order}")
        await app.run_due()
        assert fake.community_role in fake.member_roles(lin)

        await h.send("admin", f"/admin refund {order}")
        await app.run_due()
        assert fake.community_role not in fake.member_roles(lin)

        out = await typed(app, lin, "/buy python-basics")
        again = int(out.split("Order #", 1)[1].split(":", 1)[0])
        await typed(app, lin, f"/pay {again}")
        await app.run_due()
        assert fake.community_role in fake.member_roles(lin)
        fake.set_member(FakeUser(lin.id, lin.name, ()))  # an admin removed it by hand
        report = await app.community.sweep(check=True)
        assert report.drift == 1
        assert fake.community_role in fake.member_roles(lin)

        await typed(app, lin, "/deleteme")
        await typed(app, lin, "yes")
        assert "erased" in await typed(app, lin, "delete")
        await app.run_due()
        assert fake.community_role not in fake.member_roles(lin)
        puts = fake.calls_to("PUT", f"/roles/{fake.community_role}")
        deletes = fake.calls_to("DELETE", f"/roles/{fake.community_role}")
        assert (len(puts), len(deletes)) == (3, 2)
    finally:
        await bot.stop()


async def test_admin_spaces_shows_the_state_and_repairs(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """/admin spaces counts who is in, out and waiting per space and lists recent changes;
    /admin spaces repair runs the sweep now; non-admins are refused."""
    fake.add_group(GROUP)
    bot, h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    await buy_on_telegram(alice)
    out = await h.send("admin", "/admin spaces")
    assert f"python-basics@telegram:{GROUP}" in out
    out = await h.send("admin", "/admin spaces repair")
    assert "1 change made" in out
    out = await h.send("admin", "/admin spaces")
    assert "1 in" in out and "0 waiting" in out
    assert "Only marketplace admins" in await alice.send("/admin spaces")


async def test_community_sends_a_fresh_link_and_revokes_the_old_one(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """/community makes a new single-use link (the old one stops working); asking again at
    once is refused until a few minutes pass."""
    fake.add_group(GROUP)
    bot, _h = await start_bot(**telegram_sections())
    alice = bot.user("Alice")
    assert "no community spaces" in await alice.send("/community")
    await buy_on_telegram(alice)
    await bot.app.run_due()
    old = fake.calls_of("createChatInviteLink")[0].result["invite_link"]
    out = await alice.send("/community")
    assert "a link was sent just now" in out
    clock.advance(timedelta(hours=2))
    assert "a new invite link is on its way" in await alice.send("/community")
    await bot.app.run_due()
    assert fake.calls_of("revokeChatInviteLink", invite_link=old)
    new = fake.calls_of("createChatInviteLink")[-1].result["invite_link"]
    assert new != old
    assert not fake.use_link(alice.user, old, now=int(clock.now().timestamp()))
    assert fake.use_link(alice.user, new, now=int(clock.now().timestamp()))


PLAN_ADD = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 sessions=2'
)


async def discord_subscriber(
    make_app: AppFactory, fake: FakeDiscord, *, bought: bool = False
) -> tuple[Marketplace, DiscordBot, FakeUser]:
    """A marketplace whose python-basics course has a Discord role, a monthly plan on it, and
    lin on Discord subscribed (demo; having bought the course first when `bought`) and given
    the role by the sweep."""
    space = f"python-basics=discord:{fake.community_role}"
    app = await make_app(discord_config(fake, community={"spaces": [space]}))
    h = harness_for(app)
    await h.send(
        "admin", "/admin course add python-basics title=Python price=49.00 sessions=4 topics=py"
    )
    await h.send("admin", PLAN_ADD)
    bot = await DiscordBot(fake, app).start()
    lin = fake.user("lin")
    fake.set_member(lin)
    if bought:
        out = await typed(app, lin, "/buy python-basics")
        order = int(out.split("Order #", 1)[1].split(":", 1)[0])
        assert "is yours" in await typed(app, lin, f"/pay {order}")
    assert "Subscription #1" in await typed(app, lin, "/subscribe monthly")
    assert "has started" in await typed(app, lin, "/subscription pay 1")
    await app.run_due()
    assert fake.community_role in fake.member_roles(lin)
    return app, bot, lin


async def test_a_subscription_ending_takes_the_role_and_subscribing_again_gives_it_back(
    make_app: AppFactory, discord_fake: FakeDiscord, clock: FakeClock
) -> None:
    """A subscription cancelled at its period's end loses the course's Discord role in the
    very sweep that ends it (logged with the reason); subscribing again gives it back."""
    fake = discord_fake
    app, bot, lin = await discord_subscriber(make_app, fake)
    try:
        await typed(app, lin, "/subscription cancel 1")
        clock.advance(timedelta(days=31))
        await app.run_due()
        assert fake.community_role not in fake.member_roles(lin)
        assert ("revoke", "revoked", "cancelled") in await log_actions(app)
        assert "Subscription #2" in await typed(app, lin, "/subscribe monthly")
        await typed(app, lin, "/subscription pay 2")
        assert ("grant", "granted", "subscription") in await log_actions(app)
        await app.run_due()
        assert fake.community_role in fake.member_roles(lin)
        deletes = fake.calls_to("DELETE", f"/roles/{fake.community_role}")
        assert len(deletes) == 1
    finally:
        await bot.stop()


async def test_a_lapse_keeps_the_role_of_a_learner_who_also_bought_the_course(
    make_app: AppFactory, discord_fake: FakeDiscord, clock: FakeClock
) -> None:
    """A subscriber who also bought the course keeps its role when the subscription ends, and
    the sweep's enrollment rule agrees on later passes."""
    fake = discord_fake
    app, bot, lin = await discord_subscriber(make_app, fake, bought=True)
    try:
        await typed(app, lin, "/subscription cancel 1")
        clock.advance(timedelta(days=31))
        await app.run_due()
        await app.community.sweep(check=True)
        assert fake.community_role in fake.member_roles(lin)
        assert not fake.calls_to("DELETE", f"/roles/{fake.community_role}")
    finally:
        await bot.stop()


async def test_a_stars_subscription_lapse_removes_the_telegram_member(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """A subscription that lapses (here: grace over after a failed renewal) removes the
    learner from the course's Telegram group with a ban and an unban."""
    fake.add_group(GROUP)
    bot, h = await start_bot(**telegram_sections())
    await h.send("admin", PLAN_ADD)
    alice = bot.user("Alice")
    await alice.send("/start")
    async with bot.app.new_uow() as uow:  # a demo subscription: Telegram's /subscribe is Stars
        plan = (await uow.session.execute(select(Plan))).scalar_one()
        uid = (
            await uow.session.execute(
                select(Identity.user_id).where(Identity.external_id == str(alice.id))
            )
        ).scalar_one()
        sub, _new = await start(uow, uid, plan, "demo", clock.now())
        await uow.commit()
    await alice.send(f"/subscription pay {sub.id}")
    await bot.app.run_due()
    link = fake.calls_of("createChatInviteLink")[0].result["invite_link"]
    assert fake.use_link(alice.user, link)
    async with bot.app.new_uow() as uow:
        locked = await lock_subscription(uow, sub.id)
        await record_failure(uow, bot.app.config, locked, clock.now())
        await uow.commit()
    clock.advance(timedelta(days=8))
    await bot.app.run_due()
    assert fake.calls_of("banChatMember", chat_id=GROUP, user_id=alice.id)
    assert fake.calls_of("unbanChatMember", chat_id=GROUP, user_id=alice.id)
    assert alice.id not in fake.groups[GROUP].members
    assert ("revoke", "revoked", "lapsed") in await log_actions(bot.app)
