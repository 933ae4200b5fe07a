"""The marketplace inside Telegram: the real python-telegram-bot against a fake Bot API.

Each test starts the Telegram service on a fresh database, seeds the demo catalogue and gives
the first course a Stars price (as an admin would, from the console). A learner in a Telegram
client types, presses inline buttons and pays invoices; mentors may sit in the console.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.adapters.telegram.outgoing import rows, split_text
from bot.core.clock import FakeClock
from bot.core.i18n import _
from bot.core.replies import RenderedChoice
from bot.core.roles import make_mentor
from bot.core.users import Incoming, resolve_user
from bot.payments import Checkout
from storage.models import (
    Enrollment,
    Identity,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    User,
)
from tests.fakes.fake_telegram import STARS, BotUnderTest, FakeTelegram, StartBot, TelegramUser
from tests.support import snapshot


async def only_session_start(bot: BotUnderTest) -> Any:
    async with bot.app.new_uow() as uow:
        return (await uow.session.execute(select(MentorSession.start_at))).scalar_one()


async def test_commands_are_registered_in_english_and_chinese(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """setMyCommands: a default menu and a Chinese one; admins from config get /admin too."""
    await start_bot(bot={"admins": ["console:admin", "telegram:4242"]})
    menus = fake.calls_of("setMyCommands")
    default = next(c for c in menus if "language_code" not in c.params and "scope" not in c.params)
    chinese = next(
        c for c in menus if c.params.get("language_code") == "zh" and "scope" not in c.params
    )
    names = [c["command"] for c in default.params["commands"]]
    for name in (
        "start",
        "courses",
        "mycourses",
        "mentor",
        "sessions",
        "language",
        "timezone",
        "help",
        "cancel",
        "requests",
        "availability",
        "profile",
    ):
        assert name in names
    assert "admin" not in names
    english = {c["command"]: c["description"] for c in default.params["commands"]}
    zh = {c["command"]: c["description"] for c in chinese.params["commands"]}
    assert english["courses"] == "Browse the course catalogue"
    assert zh["courses"] != english["courses"]
    admin_menus = [c for c in menus if c.params.get("scope") == {"type": "chat", "chat_id": 4242}]
    assert len(admin_menus) == 2
    assert all("admin" in [c["command"] for c in m.params["commands"]] for m in admin_menus)
    assert fake.calls_of("deleteWebhook")  # polling by default: no webhook, then getUpdates
    await fake.wait_for(lambda: fake.calls_of("getUpdates"))


async def test_learner_journey_buy_with_stars_to_rating(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """Stars purchase → request → a console mentor accepts → booking → reminder → rating."""
    bot, h = await start_bot()
    alice = bot.user("Alice")
    out = await alice.send("/start")
    assert "Welcome to mentorbot, Alice!" in out
    out = await alice.press("Browse courses")
    assert "Courses on offer" in out
    out = await alice.press("Python from zero")
    assert "Price: $49.00" in out
    out = await alice.press("Buy")
    assert "Order #1: Python from zero" in out
    out = await alice.press(f"Pay {STARS} ⭐")
    assert f"invoice for order #1: {STARS} ⭐" in out
    invoice = alice.received()[-1]
    assert invoice.method == "sendInvoice"
    assert invoice.params["currency"] == "XTR" and invoice.params["provider_token"] == ""
    assert invoice.params["prices"] == [{"label": "Python from zero", "amount": STARS}]
    assert invoice.params["title"] == "Python from zero"

    assert await alice.pay(invoice, charge_id="stars-charge-1")
    assert fake.calls_of("answerPreCheckoutQuery")[-1].params["ok"] is True
    assert (
        f"Paid with {STARS} ⭐. Python from zero is yours, with 4 mentor sessions."
        in alice.texts()[-1]
    )

    out = await alice.press("Find a mentor")
    assert "What do you want to achieve?" in out
    await alice.send("I want to automate my spreadsheets")
    await alice.press("beginner")
    out = await alice.press("evenings")
    assert "Request #1 is out to" in out

    out = await h.send("ada", "/requests")
    assert "I want to automate my spreadsheets" in out
    await h.send("ada", "1")  # Accept, in the console
    assert "ada accepted your request #1" in alice.texts()[-1]

    out = await alice.press("Book a session")
    assert "Free times on Monday 2 March (your timezone, UTC):" in out
    slot = alice.last_with_buttons().buttons[2]["text"]
    out = await alice.press(slot)
    assert "Booked: session #1 with ada" in out

    start = await only_session_start(bot)
    clock.set(start - timedelta(minutes=59))
    before = len(alice.received())
    await bot.app.run_due()
    reminders = [t for t in alice.texts()[before:] if "Reminder: session #1" in t]
    assert len(reminders) == 1

    clock.set(start + timedelta(minutes=61))
    out = await h.tick()
    assert "Did it take place?" in out
    await h.send("ada", "1")  # Yes, completed
    assert "Rate it from 1 to 5" in alice.texts()[-1]
    stars = alice.last_with_buttons().buttons
    assert [b["text"] for b in stars] == ["★", "★★", "★★★", "★★★★", "★★★★★"]
    out = await alice.press("★★★★★")
    assert "You rated session #1 5★" in out
    out = await alice.send("Ada explained loops so clearly!")
    assert "Your comment is saved" in out

    async with bot.app.new_uow() as uow:
        rating = (await uow.session.execute(select(Rating.stars, Rating.comment))).one()
    assert tuple(rating) == (5, "Ada explained loops so clearly!")
    answered = [c.params["callback_query_id"] for c in fake.calls_of("answerCallbackQuery")]
    assert sorted(answered) == sorted(fake.button_presses) and len(answered) >= 9


async def telegram_mentor(bot: BotUnderTest, name: str = "Grace") -> TelegramUser:
    """A Telegram user made a mentor of Python with evening hours."""
    mentor = bot.user(name)
    await mentor.send("/start")
    async with bot.app.new_uow() as uow:
        user, _roles = await resolve_user(
            uow,
            bot.app.config,
            Incoming("telegram", str(mentor.id), name, ""),
            bot.app.clock.now(),
        )
        await make_mentor(uow, user.id, "en", bot.app.clock.now())
        await uow.commit()
    out = await mentor.send("/profile topics python:advanced")
    assert "python (advanced)" in out
    await mentor.send("/availability add mon 18:00-21:00")
    return mentor


async def ask_for_mentor(learner: TelegramUser, goals: str) -> None:
    """Buy the Stars course and ask for a mentor with these goals."""
    await learner.send("/buy python-basics")
    await learner.press(f"Pay {STARS} ⭐")
    assert await learner.pay(learner.received()[-1], charge_id=f"c-{learner.id}")
    await learner.send("/mentor python-basics")
    await learner.send(goals)
    await learner.press("beginner")
    await learner.press("any time")


async def test_mentor_on_telegram_accepts_by_button(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """An offer reaches a Telegram mentor as a notice; its Accept button takes the request."""
    bot, _h = await start_bot(matching={"offer_size": 5})
    grace = await telegram_mentor(bot)
    alice = bot.user("Alice")
    await ask_for_mentor(alice, "Write tested code")
    offer = grace.last_with_buttons()
    assert "Write tested code" in offer.params["text"]
    out = await grace.press("Accept", message=offer)
    assert "You are now mentoring Alice" in out
    assert "Grace accepted your request #1" in alice.texts()[-1]


async def test_markup_a_learner_writes_reaches_the_mentor_as_plain_text(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """A learner's name and goals in HTML or Markdown reach the mentor as the literal text:
    no message is sent with a parse mode, so Telegram formats nothing."""
    bot, _h = await start_bot(matching={"offer_size": 5})
    grace = await telegram_mentor(bot)
    goals = '<b>x</b> **bold** _it_ [link](http://x) =HYPERLINK("http://x") @everyone'
    await ask_for_mentor(bot.user("<i>Eve</i>"), goals)
    offer = grace.last_with_buttons()
    assert goals in offer.params["text"] and "<i>Eve</i>" in offer.params["text"]
    sent = fake.calls_of("sendMessage")
    assert sent and not [c for c in sent if "parse_mode" in c.params or "entities" in c.params]


async def test_deep_link_opens_the_course(start_bot: StartBot) -> None:
    """`/start course_<slug>` (a t.me deep link) welcomes and shows that course."""
    bot, _h = await start_bot()
    out = await bot.user("Bob").send("/start course_git-teamwork")
    assert "Welcome to mentorbot, Bob!" in out
    assert "Git for teams" in out and "Price: $29.00" in out


async def test_chinese_user_gets_chinese_throughout(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """language_code zh on first contact: replies, buttons and the invoice are in Chinese."""
    bot, _h = await start_bot()
    mei = bot.user("美", language_code="zh-hans")
    out = await mei.send("/start")
    assert "欢迎" in out
    out = await mei.press(mei.last_with_buttons().buttons[0]["text"])  # browse courses
    assert "在售课程" in out
    assert any("零基础学 Python" in b["text"] for b in mei.last_with_buttons().buttons)
    await mei.press("《零基础学 Python》")
    buy = mei.last_with_buttons().buttons[0]
    await mei.press(buy["text"])
    pay = mei.last_with_buttons().buttons[0]
    assert "⭐" in pay["text"] and "Pay" not in pay["text"]
    await mei.press(pay["text"])
    invoice = mei.received()[-1]
    assert invoice.params["title"] == "零基础学 Python"
    assert await mei.pay(invoice, charge_id="zh-1")
    assert "零基础学 Python" in mei.texts()[-1] and "Paid" not in mei.texts()[-1]
    async with bot.app.new_uow() as uow:
        language = (
            await uow.session.execute(
                select(User.language).join(Identity).where(Identity.external_id == str(mei.id))
            )
        ).scalar_one()
    assert language == "zh"


async def test_forged_foreign_and_stale_buttons_change_nothing(
    start_bot: StartBot, fake: FakeTelegram, clock: FakeClock
) -> None:
    """Tampered, someone else's, garbage and expired button data: a polite "expired" answer,
    no message, no change."""
    bot, h = await start_bot()
    alice, mallory = bot.user("Alice"), bot.user("Mallory")
    await alice.send("/buy python-basics")
    cancel = next(b for b in alice.last_with_buttons().buttons if b["text"] == "Cancel order")
    data = cancel["callback_data"]
    assert len(data.encode()) <= 64 and data.endswith("/cancelorder 1")
    before = await snapshot(h)

    forged = [
        data[:-1] + "2",  # another order, same MAC
        data.replace(
            data[data.index(".") + 1], "A" if data[data.index(".") + 1] != "A" else "B", 1
        ),
        "/cancelorder 1",
        "t" + "x" * 16,
        "",
    ]
    for payload in forged:
        out = await alice.press_data(payload)
        assert out == ""
        answer = alice.last_answer()
        assert answer.params["text"].startswith("This button has expired")
    out = await mallory.press_data(data)  # a real button, shown to someone else
    assert out == "" and alice.last_answer().params["text"].startswith("This button has expired")

    clock.advance(timedelta(days=31))
    out = await alice.press_data(data)
    assert out == "" and alice.last_answer().params["text"].startswith("This button has expired")
    assert await snapshot(h) == before
    async with bot.app.new_uow() as uow:
        status = (await uow.session.execute(select(Order.status))).scalar_one()
    assert status == "pending"


async def test_an_answer_button_from_an_earlier_step_has_expired(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """Level and time buttons answer one question; pressed after it, they change nothing."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/buy python-basics")
    await alice.press("Pay")
    assert await alice.pay(alice.received()[-1], charge_id="c-1")
    await alice.send("/mentor")
    await alice.send("Learn to test")
    levels = alice.last_with_buttons()
    out = await alice.press("beginner", message=levels)
    assert "When do you prefer to meet?" in out
    times = alice.last_with_buttons()

    out = await alice.press("advanced", message=levels)  # the level question is over
    assert out == "" and alice.last_answer().params["text"].startswith("This button has expired")
    await alice.send("/cancel")
    await alice.send("/rate 1 5")  # no such session: nothing opens a new question
    out = await alice.press("evenings", message=times)
    assert out == "" and alice.last_answer().params["text"].startswith("This button has expired")
    async with bot.app.new_uow() as uow:
        assert (
            await uow.session.execute(select(func.count(MentorshipRequest.id)))
        ).scalar_one() == 0


async def test_a_long_command_rides_on_a_stored_token(start_bot: StartBot) -> None:
    """A payload over the 64-byte limit is stored; the button carries a token for its user."""
    bot, h = await start_bot()
    slug = "a-very-long-course-slug-that-does-not-fit-in-callback-data"
    await h.send("admin", f"/admin course add {slug} title=Long price=10.00 sessions=1")
    alice = bot.user("Alice")
    await alice.send("/courses")
    button = next(b for b in alice.last_with_buttons().buttons if b["text"].startswith("Long"))
    assert button["callback_data"].startswith("t") and len(button["callback_data"]) <= 64
    out = await alice.press("Long")
    assert "Long" in out and "Price: $10.00" in out
    out = await bot.user("Eve").press_data(button["callback_data"])
    assert out == ""
    assert alice.last_answer().params["text"].startswith("This button has expired")


async def test_enrollment_is_visible_after_payment(start_bot: StartBot) -> None:
    """/mycourses after a Stars payment lists the course with its sessions."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    await alice.send("/buy python-basics")
    await alice.press(f"Pay {STARS} ⭐")
    assert await alice.pay(alice.received()[-1], charge_id="c-9")
    out = await alice.send("/mycourses")
    assert "Python from zero: 4 sessions left" in out
    async with bot.app.new_uow() as uow:
        order = (
            await uow.session.execute(
                select(
                    Order.status,
                    Order.provider,
                    Order.provider_ref,
                    Order.amount_minor,
                    Order.currency,
                )
            )
        ).one()
        credits = (await uow.session.execute(select(Enrollment.credits_remaining))).scalar_one()
    assert tuple(order) == ("paid", "stars", "c-9", STARS, "XTR")
    assert credits == 4


class CardStub:
    """A card provider that pays on a web page (as Stripe Checkout does)."""

    name = "card"

    def available_on(self, platform: str) -> bool:
        return True

    async def start_checkout(self, order: Order, course: Any) -> Checkout:
        return Checkout(label=_("Pay by card"), url=f"https://pay.example.com/o/{order.id}")

    async def refund(self, order: Order) -> None:
        return None


async def test_a_card_checkout_link_is_a_url_button_beside_stars(start_bot: StartBot) -> None:
    """Where a card provider is configured, its checkout link is a URL button next to Stars."""
    bot, _h = await start_bot()
    bot.app.payments = (*bot.app.payments, CardStub())
    alice = bot.user("Alice")
    await alice.send("/buy python-basics")
    buttons = alice.last_with_buttons().buttons
    assert buttons[0]["text"].startswith(f"Pay {STARS} ⭐") and "callback_data" in buttons[0]
    card = next(b for b in buttons if b.get("url"))
    assert card == {"text": "Pay by card", "url": "https://pay.example.com/o/1"}


async def test_timezone_by_city_name_and_times_shown_in_it(start_bot: StartBot) -> None:
    """/timezone takes a city ("Shanghai") or an IANA zone; order times are shown in it."""
    bot, _h = await start_bot()
    alice = bot.user("Alice")
    out = await alice.send("/timezone Shanghai")
    assert "Timezone set to Asia/Shanghai" in out
    out = await alice.send("/buy python-basics")
    assert "Mon 2 Mar 2026, 17:00 (Asia/Shanghai)" in out  # 09:00 UTC
    out = await alice.send("/timezone new york")
    assert "Timezone set to America/New_York" in out


def test_long_text_is_split_at_line_breaks_within_telegrams_limit() -> None:
    """Texts over 4096 characters go as several messages, cut between lines."""
    text = "\n".join(f"line {i:05d} " + "x" * 50 for i in range(200))
    parts = split_text(text)
    assert len(parts) > 1 and all(0 < len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
    assert split_text("y" * 5000) == ["y" * 4096, "y" * 904]


def test_short_labels_share_a_keyboard_row() -> None:
    """Rating stars and Accept/Decline sit in one row; long labels get a row each."""
    stars = tuple(RenderedChoice("★" * n, f"/rate 1 {n}") for n in range(1, 6))
    assert [len(r) for r in rows(stars)] == [5]
    pair = (RenderedChoice("Accept", "/accept 1"), RenderedChoice("Decline", "/decline 1"))
    assert [len(r) for r in rows(pair)] == [2]
    long = tuple(RenderedChoice(f"Course number {i} — $49.00, 4 sessions", "/x") for i in range(3))
    assert [len(r) for r in rows(long)] == [1, 1, 1]
