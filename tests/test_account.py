"""One account across platforms (/link, /unlink) and data rights (/mydata, /deleteme)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.accounts.data_rights import DELETED_NAME, EXPORTED
from bot.accounts.linking import user_columns
from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.users import Incoming
from bot.sessions.scheduling import slot_token
from storage.models import (
    Base,
    Conversation,
    Identity,
    LessonRating,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    OutboxMessage,
    Rating,
    User,
    UserRole,
)
from tests.support import Harness, buy, matched_pair, snapshot


async def on(app: Marketplace, platform: str, who: str, text: str) -> str:
    """Type `text` as `who` on `platform`; returns the replies' text."""
    replies = await app.handle(Incoming(platform, who, who, text))
    return "\n".join(r.text for r in replies)


async def buy_on(app: Marketplace, platform: str, who: str) -> None:
    out = await on(app, platform, who, "/buy python-basics")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    assert "is yours" in await on(app, platform, who, f"/pay {order_id}")


async def link_code(app: Marketplace, platform: str, who: str) -> str:
    out = await on(app, platform, who, "/link")
    found = re.search(r"/link ([0-9A-Z]{4}-[0-9A-Z]{4})", out)
    assert found, out
    return found.group(1)


async def state(h: Harness) -> tuple[Any, ...]:
    """The business rows plus who owns which identity."""
    async with h.app.new_uow() as uow:
        identities = (
            await uow.session.execute(
                select(Identity.platform, Identity.external_id, Identity.user_id).order_by(
                    Identity.id
                )
            )
        ).all()
        users = (await uow.session.execute(select(func.count(User.id)))).scalar_one()
    return await snapshot(h), [tuple(i) for i in identities], users


async def test_after_linking_a_purchase_on_telegram_is_visible_on_discord(market: Harness) -> None:
    """A course bought on Telegram shows on Discord once the code from one is entered on the
    other, and both platforms are then one account."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    assert "no courses yet" in await on(app, "discord", "tom#1", "/mycourses")
    code = await link_code(app, "telegram", "tom")
    out = await on(app, "discord", "tom#1", f"/link {code}")
    assert "This code belongs to tom on telegram" in out
    assert "no courses yet" in await on(app, "discord", "tom#1", "/mycourses")
    out = await on(app, "discord", "tom#1", f"/link {code} yes")
    assert "Linked: your account on telegram is now part of this one" in out
    assert "Python from zero: 4 sessions left" in await on(app, "discord", "tom#1", "/mycourses")
    assert "Python from zero: 4 sessions left" in await on(app, "telegram", "tom", "/mycourses")
    async with app.new_uow() as uow:
        owners = (await uow.session.execute(select(Identity.user_id).distinct())).scalars().all()
        orders = (await uow.session.execute(select(Order.user_id))).scalars().all()
    assert len(set(orders)) == 1 and set(orders) <= set(owners)
    out = await on(app, "discord", "tom#1", "/unlink")
    assert "telegram tom" in out and "discord tom#1" in out


async def test_sessions_and_ratings_follow_the_person(market: Harness, clock: FakeClock) -> None:
    """A learner with a mentor and a rated session in the console links a new platform and
    finds them there."""
    request_id = await matched_pair(market)
    token = slot_token((clock.now() + timedelta(days=2)).replace(hour=9, minute=0))
    await market.send("alice", f"/book {request_id} {token}")
    code = await link_code(market.app, "console", "alice")
    assert "Linked" in await on(market.app, "telegram", "al", f"/link {code} yes")
    out = await on(market.app, "telegram", "al", "/sessions")
    assert "#1" in out and "ada" in out
    assert "Learn to write tested code" in await on(market.app, "telegram", "al", "/progress")


async def test_wrong_expired_reused_or_guessed_codes_fail_and_change_nothing(
    market: Harness, clock: FakeClock
) -> None:
    """A wrong, expired or used code links nothing; five failures lock /link for the window,
    even for a right code."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await on(app, "discord", "eve", "/start")
    before = await state(market)
    assert "not valid" in await on(app, "discord", "eve", "/link ABCD-EFGH")
    expired = await link_code(app, "telegram", "tom")
    clock.advance(timedelta(minutes=11))
    assert "expired" in await on(app, "discord", "eve", f"/link {expired}")
    assert await state(market) == before

    used = await link_code(app, "telegram", "tom")
    assert "Linked" in await on(app, "console", "tom-laptop", f"/link {used} yes")
    before = await state(market)
    assert "used already" in await on(app, "discord", "eve", f"/link {used}")
    assert "not valid" in await on(app, "discord", "eve", "/link 2222-2222")
    assert "not valid" in await on(app, "discord", "eve", "/link 3333-3333")
    fresh = await link_code(app, "telegram", "tom")
    before = await state(market)
    out = await on(app, "discord", "eve", f"/link {fresh}")
    assert "Too many wrong codes. Try again after" in out
    assert await state(market) == before
    clock.advance(timedelta(minutes=61))
    fresh = await link_code(app, "telegram", "tom")
    assert "Linked" in await on(app, "discord", "eve", f"/link {fresh} yes")


async def test_own_code_and_two_copies_of_a_course_are_refused(market: Harness) -> None:
    """Entering your own code, or joining two accounts that both hold a course with sessions
    left, is refused and changes nothing; the code still works afterwards."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await buy_on(app, "discord", "tom#1")
    code = await link_code(app, "telegram", "tom")
    assert "belongs to this account" in await on(app, "telegram", "tom", f"/link {code}")
    before = await state(market)
    out = await on(app, "discord", "tom#1", f"/link {code}")
    assert "Both accounts have Python from zero with sessions left" in out
    assert await state(market) == before
    assert "Linked" in await on(app, "console", "tom", f"/link {code} yes")


async def test_unlinking_leaves_the_data_with_the_account(market: Harness) -> None:
    """An unlinked platform starts afresh; the courses stay with the account."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await on(app, "discord", "tom#1", f"/link {await link_code(app, 'telegram', 'tom')} yes")
    async with app.new_uow() as uow:
        discord_id = (
            await uow.session.execute(select(Identity.id).where(Identity.platform == "discord"))
        ).scalar_one()
    out = await on(app, "telegram", "tom", f"/unlink {discord_id}")
    assert "discord and telegram are separate accounts again" in out
    assert "no courses yet" in await on(app, "discord", "tom#1", "/mycourses")
    assert "4 sessions left" in await on(app, "telegram", "tom", "/mycourses")
    assert "nothing to unlink" in await on(app, "telegram", "tom", "/unlink")


async def export_of(app: Marketplace, who: str) -> dict[str, Any]:
    replies = await app.handle(Incoming("console", who, who, "/mydata"))
    (attachment,) = replies[0].attachments
    assert attachment.filename == "mydata.json"
    data: dict[str, Any] = json.loads(attachment.data)
    return data


async def test_export_contains_the_users_data_and_nobody_elses(
    market: Harness, clock: FakeClock
) -> None:
    """/mydata holds the learner's identities, orders, goals and ratings, and nothing of the
    other learner nor the mentor's name."""
    request_id = await matched_pair(market)
    await buy(market, "bob")
    await market.send("bob", "/mentor python-basics")
    await market.send("bob", "Bob wants secret things")
    token = slot_token((clock.now() + timedelta(days=2)).replace(hour=9, minute=0))
    await market.send("alice", f"/book {request_id} {token}")
    data = await export_of(market.app, "alice")
    text = json.dumps(data)
    assert data["identities"][0]["external_id"] == "alice"
    assert data["account"]["display_name"] == "alice"
    assert data["orders"][0]["status"] == "paid"
    assert data["mentorship_requests"][0]["goals"] == "Learn to write tested code"
    assert len(data["sessions_as_learner"]) == 1 and data["mentor_profile"] is None
    assert "bob" not in text.lower() and "secret" not in text and "ada" not in text
    mentor = await export_of(market.app, "ada")
    assert mentor["mentor_profile"]["topics"] and mentor["mentor_profile"]["sessions_as_mentor"]
    assert "alice" not in json.dumps(mentor)


def test_every_table_that_mentions_a_user_is_exported() -> None:
    """Each table with a column pointing at a user has a section in the export, so a new one
    cannot hold personal data that /mydata and /deleteme overlook."""
    assert {table.name for table, _column in user_columns()} <= set(EXPORTED)


async def totals(h: Harness) -> tuple[Any, ...]:
    """What the books and the mentors' averages rely on."""
    async with h.app.new_uow() as uow:
        run = uow.session.execute
        paid = (
            await run(select(func.sum(Order.amount_minor)).where(Order.status == "paid"))
        ).scalar_one()
        ratings = (await run(select(func.count(Rating.id), func.sum(Rating.stars)))).one()
        lessons = (
            await run(select(func.count(LessonRating.id), func.sum(LessonRating.stars)))
        ).one()
        mentors = (
            await run(
                select(MentorProfile.id, MentorProfile.rating_sum, MentorProfile.rating_count)
            )
        ).all()
    return paid, tuple(ratings), tuple(lessons), sorted(tuple(m) for m in mentors)


async def test_delete_is_confirmed_twice_erases_personal_fields_and_keeps_totals(
    market: Harness, clock: FakeClock
) -> None:
    """/deleteme asks twice; then no personal field of the learner is left, their upcoming
    session is cancelled (the mentor is told), and paid totals and rating stars stay."""
    h = market
    request_id = await matched_pair(h)
    start = (clock.now() + timedelta(days=1)).replace(hour=9, minute=0)
    await h.send("alice", f"/book {request_id} {slot_token(start)}")
    await h.send("alice", f"/book {request_id} {slot_token(start + timedelta(days=3))}")
    clock.set(start + timedelta(minutes=65))
    await h.send("ada", "/complete 1")
    await h.send("alice", "/rate 1 5 wonderful")
    await h.send("ada", "/rate 1 4 well prepared")
    await h.send("admin", '/admin lesson add python-basics title="Intro" body="Hi"')
    await h.send("alice", "/nextlesson")
    await h.send("alice", "/ratelesson 1 3 too short")
    before = await totals(h)
    async with h.app.new_uow() as uow:
        alice = (
            await uow.session.execute(
                select(Identity.user_id).where(Identity.external_id == "alice")
            )
        ).scalar_one()

    assert "Continue?" in await h.send("alice", "/deleteme")
    assert "Nothing was deleted." in await h.send("alice", "no")
    await h.send("alice", "/deleteme")
    assert "Last check" in await h.send("alice", "1")  # Yes, continue
    out = await h.send("alice", "delete")
    assert "Your personal data is erased" in out
    assert "message for ada" in out and "the learner closed their account" in out

    assert await totals(h) == before
    async with h.app.new_uow() as uow:
        run = uow.session.execute
        user = (await run(select(User).where(User.id == alice))).scalar_one()
        assert (user.display_name, user.timezone) == (DELETED_NAME, "UTC")
        assert user.deleted_at is not None
        for model in (Identity, UserRole, Conversation, OutboxMessage):
            rows = await run(select(model).where(model.user_id == user.id))  # type: ignore[attr-defined]
            assert rows.first() is None, model
        request = await uow.get(MentorshipRequest, request_id)
        assert request is not None and request.goals == "" and request.preferred_times == []
        comments = (await run(select(Rating.comment))).scalars().all()
        assert comments == ["", ""]
        assert (await run(select(LessonRating.comment))).scalar_one() == ""
        statuses = (
            (await run(select(MentorSession.status).order_by(MentorSession.id))).scalars().all()
        )
        assert statuses == ["completed", "cancelled"]
    assert "no courses yet" in await h.send("alice", "/mycourses")


async def test_a_mentor_leaving_returns_the_learners_credit(
    market: Harness, clock: FakeClock
) -> None:
    """A mentor's erasure cancels their upcoming sessions with the credit back, tells the
    learner, and takes them out of matching."""
    request_id = await matched_pair(market)
    start = (clock.now() + timedelta(days=2)).replace(hour=9, minute=0)
    await market.send("alice", f"/book {request_id} {slot_token(start)}")
    await market.send("ada", "/deleteme")
    await market.send("ada", "yes")
    out = await market.send("ada", "delete")
    assert "your mentor closed their account. The session credit is back." in out
    assert "has left the marketplace" in out
    assert "4 sessions left" in await market.send("alice", "/mycourses")
    async with market.app.new_uow() as uow:
        profile = await uow.get(MentorProfile, 1)
        assert profile is not None and profile.status == "suspended" and profile.bio == ""


async def test_a_code_entered_twice_at_once_links_once(market: Harness) -> None:
    """Two people entering the same code at the same moment: one links, the other is told
    it was used."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await on(app, "discord", "tom#1", "/start")
    await on(app, "console", "tom-laptop", "/start")
    code = await link_code(app, "telegram", "tom")
    outs = await asyncio.gather(
        on(app, "discord", "tom#1", f"/link {code} yes"),
        on(app, "console", "tom-laptop", f"/link {code} yes"),
    )
    assert sum("Linked" in out for out in outs) == 1
    assert sum("used already" in out for out in outs) == 1, outs


async def identity_id(app: Marketplace, platform: str, who: str) -> int:
    async with app.new_uow() as uow:
        found = await uow.session.execute(
            select(Identity.id).where(Identity.platform == platform, Identity.external_id == who)
        )
        return int(found.scalar_one())


async def test_entering_a_code_names_the_account_and_changes_nothing_until_confirmed(
    market: Harness,
) -> None:
    """Whoever enters a code is told whose account they would join; nothing is joined and the
    code still works until they press Join."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await on(app, "discord", "tom#1", "/start")
    code = await link_code(app, "telegram", "tom")
    before = await state(market)
    replies = await app.handle(Incoming("discord", "tom#1", "tom#1", f"/link {code}"))
    assert "This code belongs to tom on telegram" in replies[0].text
    assert [c.payload for c in replies[0].choices] == [f"/link {code} yes"]
    assert await state(market) == before
    assert "Linked" in await on(app, "discord", "tom#1", f"/link {code} yes")


async def test_a_victim_who_enters_an_attackers_code_keeps_their_course(market: Harness) -> None:
    """Account takeover through linking (defect 2): a victim tricked into joining an
    attacker's code loses nothing when the attacker then unlinks the victim's identity: the
    victim's course stays with the victim, and the attacker is left with what they brought."""
    app = market.app
    await buy_on(app, "discord", "vic")
    await on(app, "telegram", "mallory", "/start")
    code = await link_code(app, "telegram", "mallory")
    assert "Linked" in await on(app, "discord", "vic", f"/link {code} yes")
    victim = await identity_id(app, "discord", "vic")
    out = await on(app, "telegram", "mallory", f"/unlink {victim}")
    assert "separate accounts again" in out
    assert "4 sessions left" in await on(app, "discord", "vic", "/mycourses")
    assert "no courses yet" in await on(app, "telegram", "mallory", "/mycourses")


async def test_a_leaked_code_used_by_an_attacker_is_undone_by_the_victim(market: Harness) -> None:
    """The other way round: an attacker who enters a victim's leaked code joins the victim's
    account onto theirs, but the victim unlinking themself leaves with their course, and the
    attacker keeps nothing they did not bring."""
    app = market.app
    await buy_on(app, "telegram", "tom")
    await on(app, "discord", "mallory", "/start")
    code = await link_code(app, "telegram", "tom")
    assert "Linked" in await on(app, "discord", "mallory", f"/link {code} yes")
    assert "4 sessions left" in await on(app, "discord", "mallory", "/mycourses")
    out = await on(app, "telegram", "tom", f"/unlink {await identity_id(app, 'telegram', 'tom')}")
    assert "telegram has the courses, sessions and messages it brought" in out
    assert "4 sessions left" in await on(app, "telegram", "tom", "/mycourses")
    assert "no courses yet" in await on(app, "discord", "mallory", "/mycourses")


async def test_after_unlinking_each_account_has_its_own_name_again(market: Harness) -> None:
    """After /link and /unlink neither account keeps the other identity's name."""
    app = market.app
    await on(app, "telegram", "Tom T", "/start")
    await on(app, "discord", "tom_d", "/start")
    code = await link_code(app, "telegram", "Tom T")
    await on(app, "discord", "tom_d", f"/link {code} yes")
    await on(app, "telegram", "Tom T", "/mycourses")  # the last name seen is Telegram's
    await on(app, "telegram", "Tom T", f"/unlink {await identity_id(app, 'telegram', 'Tom T')}")
    async with app.new_uow() as uow:
        names = sorted(
            (
                await uow.session.execute(
                    select(User.display_name)
                    .join(Identity, Identity.user_id == User.id)
                    .where(Identity.platform.in_(["telegram", "discord"]))
                )
            ).scalars()
        )
    assert names == ["Tom T", "tom_d"]


async def every_stored_text(h: Harness) -> list[tuple[str, str]]:
    """(table, value) for every column of every row in the database, as text."""
    found: list[tuple[str, str]] = []
    async with h.app.new_uow() as uow:
        for table in Base.metadata.sorted_tables:
            for row in (await uow.session.execute(select(table))).all():
                for value in row:
                    text = (
                        value
                        if isinstance(value, str)
                        else json.dumps(value, default=str, ensure_ascii=False)
                    )
                    found.append((table.name, text))
    return found


async def test_after_deleteme_no_row_anywhere_holds_the_learners_name_or_words(
    market: Harness, clock: FakeClock
) -> None:
    """The notices others were sent or have waiting (the offer quoting the goals, the admins'
    low-rating alert quoting the comment, the mentor's booking notice naming the learner) no
    longer hold the learner's name, goals or comment once the learner has erased their data."""
    h, who = market, "Zelda Quux"
    goals, comment = "tame unicorn wranglers 7731", "驯服独角兽 grumpy remark 5519"
    await buy(h, who)
    await h.send(who, "/mentor python-basics")
    await h.send(who, goals)
    await h.send(who, "beginner")
    await h.send(who, "any")
    assert "You are now mentoring Zelda Quux" in await h.send("ada", "/accept 1")
    start = (clock.now() + timedelta(days=1)).replace(hour=9, minute=0)
    await h.send(who, f"/book 1 {slot_token(start)}")
    await h.send(who, f"/book 1 {slot_token(start + timedelta(days=3))}")
    clock.set(start + timedelta(minutes=65))
    await h.send("ada", "/complete 1")
    assert "You rated session #1" in await h.send(who, f"/rate 1 1 {comment}")
    stored = await every_stored_text(h)
    for secret in (who, goals, comment):
        assert any(secret in text for _table, text in stored), secret

    await h.send(who, "/deleteme")
    await h.send(who, "yes")
    assert "Your personal data is erased" in await h.send(who, "delete")

    stored = await every_stored_text(h)
    leaks = [(t, v) for t, v in stored for s in (who, goals, comment) if s in v]
    assert leaks == []
    async with h.app.new_uow() as uow:
        bodies = (await uow.session.execute(select(OutboxMessage.body))).scalars().all()
    assert any(DELETED_NAME in body["text"] for body in bodies)  # the notices still read


async def test_two_linked_accounts_each_with_an_open_order_buy_the_course_once(
    market: Harness,
) -> None:
    """Each account opened an order for the same course, then they were linked: the next /buy
    reuses one order and cancels the other, instead of failing."""
    app = market.app
    first = await on(app, "telegram", "tom", "/buy python-basics")
    second = await on(app, "discord", "tom#1", "/buy python-basics")
    assert "Order #" in first and "Order #" in second
    code = await link_code(app, "telegram", "tom")
    assert "Linked" in await on(app, "discord", "tom#1", f"/link {code} yes")
    out = await on(app, "discord", "tom#1", "/buy python-basics")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    assert "is yours" in await on(app, "discord", "tom#1", f"/pay {order_id}")
    async with app.new_uow() as uow:
        statuses = sorted((await uow.session.execute(select(Order.status))).scalars())
    assert statuses == ["cancelled", "paid"]
    assert "Python from zero: 4 sessions left" in await on(app, "telegram", "tom", "/mycourses")
