"""Bad input gets a clear message naming what was wrong, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.clock import FakeClock
from bot.core.users import Incoming
from tests.support import Harness, buy, matched_pair, refused, request_mentor


async def test_unknown_command_names_it(market: Harness) -> None:
    """An unknown command is named back with a pointer to /help."""
    out = await refused(market, "alice", "/fly away")
    assert "Unknown command /fly. See /help." in out


async def test_free_text_outside_a_conversation_is_explained(market: Harness) -> None:
    """Chatting without a command explains how to talk to the bot."""
    assert "Commands start with /" in await refused(market, "alice", "hello there")


async def test_unknown_course_is_named(market: Harness) -> None:
    """Buying a course that does not exist names the slug and changes nothing."""
    out = await refused(market, "alice", "/buy rocket-science")
    assert "There is no course called 'rocket-science'" in out


async def test_an_unknown_course_lists_the_short_names_that_work(market: Harness) -> None:
    """The catalogue's buttons never show a course's short name, so a refusal of an unknown
    one lists those on offer (an archived course only where archived ones are accepted), in
    the reader's language."""
    out = await refused(market, "admin", "/admin course add data-101 title=Data price=10.00")
    assert "Course 'data-101' added" in await market.send(
        "admin", "/admin course add data-101 title=Data price=10.00 sessions=1"
    )
    await market.send("admin", "/admin course archive data-101")
    out = await refused(market, "alice", "/buy pyhton-basics")
    assert "Their short names: python-basics, data-analysis, git-teamwork." in out, out
    assert "data-101" not in out
    out = await refused(market, "admin", "/admin course restore nope")
    assert "data-101" in out
    await market.send("alice", "/language zh")
    out = await refused(market, "alice", "/course nope")
    assert "课程简称：python-basics、data-analysis、git-teamwork。" in out, out


async def test_missing_and_malformed_arguments_show_usage(market: Harness) -> None:
    """A missing or non-numeric argument shows the usage."""
    assert "Usage: /buy SLUG" in await refused(market, "alice", "/buy")
    assert "'abc' is not a number. Usage: /accept REQUEST" in await refused(
        market, "ada", "/accept abc"
    )


@pytest.mark.parametrize("stars", ["0", "6", "9", "five", "-1"])
async def test_rating_out_of_range_is_refused(
    market: Harness, clock: FakeClock, stars: str
) -> None:
    """A rating outside 1–5 names the value sent, and nothing is stored."""
    request_id = await matched_pair(market)
    out = await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    clock.advance(timedelta(days=1))
    await market.send("ada", "/complete 1")
    out = await refused(market, "alice", f"/rate 1 {stars}")
    assert f"A rating is a whole number from 1 to 5; you sent '{stars}'." in out


async def test_rating_a_session_that_did_not_happen_is_refused(market: Harness) -> None:
    """Only completed sessions can be rated."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    assert "Only completed sessions can be rated." in await refused(market, "alice", "/rate 1 5")


async def test_rating_changes_within_a_day_then_is_locked(
    market: Harness, clock: FakeClock
) -> None:
    """One rating per person per session: changing it within 24 h replaces it (the mentor's
    average moves accordingly); later a change is refused."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    clock.advance(timedelta(days=1))
    await market.send("ada", "/complete 1")
    await market.send("alice", "/rate 1 5 great")
    out = await market.send("alice", "/rate 1 2")
    assert "Your rating of session #1 is now 2★." in out
    assert "Low rating: alice gave session #1 2★. great" in out  # the admin is alerted
    stats = await market.send("admin", "/admin mentors")
    assert "2.0 ★ from 1 rating" in stats
    clock.advance(timedelta(hours=25))
    out = await refused(market, "alice", "/rate 1 4")
    assert "it can no longer be changed" in out


async def _alice_booked_bob_matched(market: Harness) -> tuple[str, int]:
    """alice booked ada's first free time; bob has ada as mentor too. Returns the time alice
    took and bob's request."""
    first = await matched_pair(market, "alice", "ada")
    await market.send("alice", f"/book {first}")
    await market.send("alice", "1")
    return await _booked_token(market), await matched_pair(market, "bob", "ada")


async def test_booking_a_taken_slot_is_refused(market: Harness) -> None:
    """A slot another learner booked with the same mentor is neither offered nor bookable;
    the refusal shows the times still free, so one press books one of them."""
    taken, second = await _alice_booked_bob_matched(market)
    await market.send("bob", f"/book {second}")
    offered = [c.payload for c in market.chat.last_choices["bob"]]
    assert offered and not any(p.endswith(taken) for p in offered)
    out = await refused(market, "bob", f"/book {second} {taken}")
    assert "That time is not free" in out
    again = [c.payload for c in market.chat.last_choices["bob"]]
    assert again and all(p.startswith(f"/book {second} 2026") for p in again)
    assert not any(p.endswith(taken) for p in again)
    assert "Booked: session #2" in await market.send("bob", "1")


async def test_rescheduling_to_a_taken_slot_shows_the_free_times(market: Harness) -> None:
    """Moving a session onto another learner's slot is refused with the times still free."""
    taken, second = await _alice_booked_bob_matched(market)
    await market.send("bob", f"/book {second}")
    await market.send("bob", market.chat.last_choices["bob"][-2].payload)  # the next day
    await market.send("bob", "1")
    out = await refused(market, "bob", f"/reschedule 2 {taken}")
    assert "That time is not free. Pick one of the times from /reschedule 2." in out
    offered = [c.payload for c in market.chat.last_choices["bob"]]
    assert offered and all(p.startswith("/reschedule 2 ") for p in offered)
    assert not any(p.endswith(taken) for p in offered)
    assert "Session #2 moved to" in await market.send("bob", "1")


async def _booked_token(h: Harness) -> str:
    from sqlalchemy import select

    from bot.sessions.scheduling import slot_token
    from storage.models import MentorSession

    async with h.app.new_uow() as uow:
        start = (await uow.session.execute(select(MentorSession.start_at))).scalar_one()
    return slot_token(start)


async def test_forged_slot_payload_is_refused(market: Harness) -> None:
    """A slot outside the mentor's availability (a forged button) is refused."""
    request_id = await matched_pair(market)
    out = await refused(market, "alice", f"/book {request_id} 203001010300")
    assert "That time is not free" in out
    out = await refused(market, "alice", f"/book {request_id} not-a-time")
    assert "'not-a-time' is not a date and time I can read." in out
    assert f"Type it like /book {request_id} 2026-12-07 18:00 (your timezone, UTC)" in out


async def test_accepting_someone_elses_request_is_refused(market: Harness) -> None:
    """A mentor cannot accept a request that was not offered to them."""
    await buy(market, "alice")
    await request_mentor(market, "alice")
    await market.send("admin", "/as rogue")  # any user; make them an approved mentor
    await market.chat.become("rogue", "mentor")
    out = await refused(market, "rogue", "/accept 1")
    assert "Request #1 was not offered to you." in out
    out = await refused(market, "alice", "/accept 1")
    assert "Only approved mentors can answer requests." in out


async def test_non_admin_cannot_run_admin_commands(market: Harness) -> None:
    """Admin commands refuse everyone without the admin role."""
    for line in (
        "/admin stats",
        "/admin course archive python-basics",
        "/admin refund 1",
        "/admin mentor suspend 1",
    ):
        out = await refused(market, "alice", line)
        assert "Only marketplace admins can do that." in out


async def test_illegal_transition_is_refused_with_states(market: Harness) -> None:
    """Cancelling a session twice names its state; cancelling a paid order is refused."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    await market.send("alice", "/cancelsession 1 confirm")
    out = await refused(market, "alice", "/cancelsession 1")
    assert "Session #1 is already cancelled." in out
    out = await refused(market, "alice", "/cancelorder 1")
    assert "Order #1 is paid, so it can no longer be cancelled." in out


async def test_someone_elses_session_and_order_are_invisible(market: Harness) -> None:
    """Nobody sees or touches another learner's order or session."""
    request_id = await matched_pair(market)
    await market.send("alice", f"/book {request_id}")
    await market.send("alice", "1")
    assert "You have no order #1." in await refused(market, "mallory", "/pay 1")
    assert "There is no session #1." in await refused(market, "mallory", "/cancelsession 1")
    assert "There is no session #1." in await refused(market, "mallory", "/rate 1 5")
    out = await refused(market, "mallory", "/sessions")
    assert "ada" not in out and "alice" not in out


async def test_bad_admin_course_fields_are_named(market: Harness) -> None:
    """A misspelt course field or bad price is named."""
    out = await refused(market, "admin", "/admin course add rust titel=Rust price=10 sessions=2")
    assert "Unknown course field 'titel'" in out
    out = await refused(market, "admin", "/admin course add rust title=Rust price=ten sessions=2")
    assert "price must be an amount in USD like 49.00, at most $999,999.99; got 'ten'." in out
    out = await refused(market, "admin", "/admin course add rust title=Rust price=10")
    assert "Missing course fields: sessions." in out


async def test_bad_settings_are_named(market: Harness) -> None:
    """Unknown language or timezone names the value."""
    assert "/language does not take 'fr'. Choose one of: en, zh." in await refused(
        market, "alice", "/language fr"
    )
    assert "'Mars/Olympus' is not a timezone" in await refused(
        market, "alice", "/timezone Mars/Olympus"
    )


async def test_a_course_currency_is_an_iso_4217_code(market: Harness) -> None:
    """currency=XYZ is refused and names the kind of code expected; nothing changes."""
    out = await refused(market, "admin", "/admin course edit python-basics currency=XYZ")
    assert "currency must be an ISO 4217 code like USD, EUR or CNY, got 'XYZ'." in out
    out = await refused(market, "admin", "/admin course edit python-basics currency=XTR")
    assert "ISO 4217" in out


async def test_changing_a_course_currency_needs_its_price_too(market: Harness) -> None:
    """Changing USD to JPY alone would turn $49.00 into ¥4,900: refused, with the way to do it;
    given with a price in the new currency's own digits, it is applied."""
    out = await refused(market, "admin", "/admin course edit python-basics currency=JPY")
    assert "give the price in JPY too, e.g. currency=JPY price=4900." in out
    assert "$49.00" in await market.send("alice", "/course python-basics")
    await market.send("admin", "/admin course edit python-basics currency=JPY price=7000")
    assert "¥7,000" in await market.send("alice", "/course python-basics")
    out = await refused(market, "admin", "/admin course edit python-basics price=70.5")
    assert "price must be an amount in JPY like 4900" in out


@pytest.mark.parametrize("price", ["NaN", "1e20", "100000000", "4,900", "²", "-5"])
async def test_absurd_prices_are_refused(market: Harness, price: str) -> None:
    """Prices that are not plain amounts, or above the ceiling, are refused with the bound."""
    out = await refused(market, "admin", f"/admin course edit python-basics price={price}")
    assert "price must be an amount in USD like 49.00, at most $999,999.99" in out


async def test_ids_beyond_64_bits_are_refused_politely(market: Harness) -> None:
    """An id no database row can have is named as invalid, not answered with an apology."""
    out = await refused(market, "alice", "/cancelorder 99999999999999999999999")
    assert "is not a valid number" in out
    assert "Sorry" not in out


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("asia/shanghai", "Asia/Shanghai"),
        ("new york", "America/New_York"),
        ("UTC+8", "Etc/GMT-8"),
        ("utc-5", "Etc/GMT+5"),
        ("GMT+0", "UTC"),
    ],
)
async def test_timezones_are_understood_as_people_type_them(
    market: Harness, typed: str, zone: str
) -> None:
    """Case does not matter, cities work, and whole-hour UTC offsets become fixed zones."""
    out = await market.send("alice", f"/timezone {typed}")
    assert f"Timezone set to {zone}." in out


async def test_a_misspelt_timezone_gets_a_suggestion_to_press(market: Harness) -> None:
    """A near miss is refused with the closest zone as a button; pressing it sets it."""
    replies = await market.app.handle(
        Incoming("console", "alice", "alice", "/timezone Asia/Shangai")
    )
    assert "Did you mean Asia/Shanghai?" in replies[0].text
    assert [c.payload for c in replies[0].choices] == ["/timezone Asia/Shanghai"]


async def test_a_300_character_timezone_is_refused_and_not_echoed_whole(market: Harness) -> None:
    """Long input is cut in the echo; the refusal is polite and changes nothing."""
    out = await refused(market, "alice", "/timezone " + "x" * 300)
    assert "is not a timezone I know" in out and "x" * 41 not in out
    assert "Sorry" not in out


async def test_an_unknown_order_status_lists_the_valid_ones_as_buttons(market: Harness) -> None:
    """/admin orders bogus names the statuses there are, each a button that lists them."""
    replies = await market.app.handle(Incoming("console", "admin", "admin", "/admin orders bogus"))
    assert "Choose one of: pending, paid, refunded, expired, cancelled." in replies[0].text
    assert "/admin orders paid" in [c.payload for c in replies[0].choices]


async def test_an_order_not_paid_yet_says_so_instead_of_none(market: Harness) -> None:
    """An unpaid order's line names no provider as 'None'; a demo payment is named in words."""
    out = await market.send("alice", "/buy python-basics")
    assert "None" not in await market.send("admin", "/admin orders")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    await market.send("alice", f"/pay {order_id}")
    assert "(demo payment)" in await market.send("admin", "/admin orders paid")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "/admin earnings does not take 'bogus'; it takes only csv. Usage: /admin earnings"),
        ("zh", "/admin earnings 不接受“bogus”，只能是 表格（csv）。用法：/admin earnings [csv]"),
    ],
)
async def test_a_word_that_is_no_choice_is_refused_before_the_command_runs(
    market: Harness, lang: str, expected: str
) -> None:
    """`/admin earnings bogus` is not `/admin earnings` with the word ignored: it is refused
    naming the word and the one choice there, in the admin's language, with no file."""
    await buy(market, "alice")
    await market.send("admin", f"/language {lang}")
    out = await refused(market, "admin", "/admin earnings bogus")
    assert expected in out, out
    assert "earnings.csv" not in out


async def test_a_refund_with_a_mistyped_force_refunds_nothing(market: Harness) -> None:
    """`/admin refund 1 froce` used to refund as if `force` were left out; now it is refused
    naming the word and the choice, the order stays paid, and `force` itself still works."""
    await buy(market, "alice")
    out = await refused(market, "admin", "/admin refund 1 froce")
    assert "/admin refund does not take 'froce'; it takes only force." in out, out
    assert "Usage: /admin refund [ORDER] [force] [period=…] [sub=…]" in out
    assert "refunded" in await market.send("admin", "/admin refund 1 force")


async def test_a_choice_lists_every_value_and_offers_each_when_it_is_all_there_is(
    market: Harness,
) -> None:
    """Where a choice is all a command takes, a wrong word lists the choices (a Chinese admin
    reads each with its Chinese word) and offers each as a button; a non-admin typing the same
    is told the command is for admins, not what it takes."""
    out = await refused(market, "admin", "/admin orders bogus")
    assert "/admin orders does not take 'bogus'. Choose one of: pending, paid, refunded" in out
    assert "[2] paid" in out
    await market.send("admin", "/language zh")
    out = await refused(market, "admin", "/admin orders bogus")
    assert "可选：待支付（pending）、已支付（paid）、已退款（refunded）" in out, out
    assert "[2] 已支付" in out
    out = await refused(market, "alice", "/admin orders bogus")
    assert "Only marketplace admins can do that." in out and "pending" not in out


async def test_the_words_a_handler_reads_beyond_its_choices_still_reach_it(
    market: Harness,
) -> None:
    """A choice whose handler reads more words than the choices (`/language English`, `中文`)
    takes them all; only a word no table knows is refused."""
    assert "Language set to English." in await market.send("alice", "/language English")
    assert "语言已设置为中文。" in await market.send("alice", "/language 中文")
    assert "Language set to English." in await market.send("alice", "/language en")
