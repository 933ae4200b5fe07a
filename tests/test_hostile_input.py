"""Every command in the command table, fuzzed with hostile text by every role that can run it:
every input gets an answer, never an apology, and a refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.adapters.telegram.callback_data import CallbackCodec
from bot.core.clock import FakeClock
from bot.core.money import PRICE_EXAMPLES, parse_amount, typed_amount
from storage.models import LessonRating, MentorshipRequest, Rating
from tests.support import (
    HOSTILE_CHARS,
    HOSTILE_TOKENS,
    Harness,
    add_lessons,
    apologies_in,
    attempt,
    buy,
    command_paths,
    hostile_line,
    judged,
)

# How every fuzz over a marketplace runs: the same examples each run (no example database,
# no shrinking of a marketplace-sized case), with a fixture that is fine to share.
HOSTILE_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Who plays each role in the `booked` marketplace.
PLAYERS = {"learner": "alice", "mentor": "ada", "admin": "admin"}
# Each example sends one hostile line to every command the role can run.
EXAMPLES = 4
# Hostile text typed where a conversation waits for words rather than a command.
FREE_TEXT = st.one_of(
    st.sampled_from(HOSTILE_TOKENS), st.text(HOSTILE_CHARS, min_size=1, max_size=60)
)


def runnable_by(role: str) -> list[tuple[tuple[str, ...], tuple[object, ...]]]:
    """The commands `role` may run: everyone's, and those of the role itself."""
    return [(words, args) for words, args, needs in command_paths() if needs in (None, role)]


def test_the_fuzzed_commands_are_the_command_table() -> None:
    """A command registered in the table is fuzzed with no change here."""
    from bot.handlers.registry import COMMANDS

    fuzzed = {words[0] for words, _args, _role in command_paths()}
    assert fuzzed == set(COMMANDS)
    assert ("admin", "course", "add") in {w for w, _a, _r in command_paths()}


@pytest.mark.parametrize("role", list(PLAYERS))
@settings(HOSTILE_SETTINGS, max_examples=EXAMPLES)
@given(data=st.data())
async def test_hostile_input_is_answered_politely_and_refusals_change_nothing(
    booked: Harness, role: str, data: st.DataObject
) -> None:
    """No reply apologises, shows a traceback or a raw status, or is empty; a 10,000-character
    token is never echoed whole; a refused command leaves every table as it was."""
    who = PLAYERS[role]
    lines = [hostile_line(data.draw, words, args) for words, args in runnable_by(role)]
    failures: list[str] = []
    rows = None
    for line in lines:
        sent = await attempt(booked, who, line, rows)
        rows = sent.rows
        failures += [f"{who} {line[:120]!r}: {why}" for why in judged(sent)]
    assert not failures, "\n".join(failures)


async def refused(h: Harness, who: str, line: str) -> str:
    """Send `line`, which must be refused leaving every table as it was; returns the reply."""
    sent = await attempt(h, who, line)
    assert sent.outcome == "refused", (line[:80], sent.output)
    assert sent.unchanged, f"{line[:80]!r} changed the database"
    assert not apologies_in(sent.output), sent.output
    return sent.output


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Your message contains an invisible control character (U+0000)"),
        ("zh", "你的消息含有不可见的控制字符（U+0000），无法保存。"),
    ],
)
async def test_a_nul_byte_is_refused_by_name(booked: Harness, lang: str, expected: str) -> None:
    """NUL (which PostgreSQL cannot store) and other control characters are refused, named,
    before any command sees them: here a rating comment, which is not stored."""
    await booked.send("alice", f"/language {lang}")
    out = await refused(booked, "alice", "/rate 1 5 great\x00session")
    assert expected in out
    out = await refused(booked, "ada", "/profile bio \x1b[2Jhello")
    assert "U+001B" in out


@pytest.mark.parametrize("raw", ["2147483648", "99999999999999999999", "202603100300"])
async def test_ids_no_row_can_have_are_refused_politely(booked: Harness, raw: str) -> None:
    """Ids past the 32-bit INTEGER columns (PostgreSQL's) are named as invalid, not sent to
    the database."""
    out = await refused(booked, "alice", f"/cancelorder {raw}")
    assert f"'{raw}' is not a valid number. Usage: /cancelorder ORDER" in out


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Your goals can be at most 1000 characters; yours has 1001. Nothing was saved"),
        ("zh", "你的目标最多 1000 个字符，你的有 1001 个。未保存任何内容"),
    ],
)
async def test_goals_over_the_limit_are_refused_with_it(
    market: Harness, lang: str, expected: str
) -> None:
    """Goals of 1,001 characters are refused naming the limit, not cut: the step waits for
    shorter goals and nothing is stored."""
    await buy(market, "alice")
    await market.send("alice", f"/language {lang}")
    await market.send("alice", "/mentor python-basics")
    out = await refused(market, "alice", "g" * 1001)
    assert expected in out
    assert "g" * 41 not in out
    await market.send("alice", "g" * 1000)  # the same step takes goals that fit
    await market.send("alice", "beginner")
    await market.send("alice", "any")
    async with market.app.new_uow() as uow:
        goals = (await uow.session.execute(select(MentorshipRequest.goals))).scalar_one()
    assert goals == "g" * 1000


@pytest.mark.parametrize(
    ("line", "who", "limit"),
    [
        ("/admin course add rust title={long} price=10 sessions=2", "admin", 200),
        ("/admin course edit python-basics title_zh={long}", "admin", 200),
        ("/admin course edit python-basics description={long}", "admin", 2000),
        ("/admin course add {long} title=Rust price=10 sessions=2", "admin", 64),
        ("/admin course add rust title=Rust price=10 sessions=2 topics=a,{long}", "admin", 64),
        ("/profile bio {long}", "ada", 1000),
        ("/profile topics {long}:beginner", "ada", 64),
        ("/rate 1 5 {long}", "alice", 1000),
    ],
)
async def test_long_names_titles_and_notes_are_refused_with_their_limit(
    booked: Harness, line: str, who: str, limit: int
) -> None:
    """A title, slug, topic, bio or comment longer than its field is refused naming the limit
    and the length sent, instead of being cut or failing in the database."""
    out = await refused(booked, who, line.format(long="z" * (limit + 1)))
    assert f"at most {limit} characters; yours has {limit + 1}." in out
    assert "z" * 41 not in out


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "A comment can be at most 1000 characters; yours has 1001. Nothing was saved"),
        ("zh", "评语最多 1000 个字符，你的有 1001 个。未保存任何内容"),
    ],
)
async def test_rating_comments_over_the_limit_are_refused_not_cut(
    booked: Harness, clock: FakeClock, lang: str, expected: str
) -> None:
    """A comment of 1,001 characters on `/rate` or `/ratelesson`, typed on the line or into the
    comment step after the stars, is refused naming the limit and changes nothing; the step
    still waits, and a comment of 1,000 characters is kept whole."""
    await add_lessons(booked, 1)
    await booked.send("alice", "/nextlesson")
    clock.advance(timedelta(days=2))
    await booked.send("ada", "/complete 1")
    await booked.send("alice", f"/language {lang}")
    too_long, fits = "c" * 1001, "c" * 1000
    for line in ("/rate 1 5 " + too_long, "/ratelesson 1 4 " + too_long):
        out = await refused(booked, "alice", line)
        assert expected in out and "c" * 41 not in out
    for rating in ("/rate 1 5", "/ratelesson 1 4"):
        await booked.send("alice", rating)
        out = await refused(booked, "alice", too_long)
        assert expected in out and "c" * 41 not in out
        await booked.send("alice", fits)
    async with booked.app.new_uow() as uow:
        session = (await uow.session.execute(select(Rating.comment))).scalar_one()
        lesson = (await uow.session.execute(select(LessonRating.comment))).scalar_one()
    assert session == lesson == fits


async def test_a_note_over_its_limit_is_refused_in_chinese_too(
    booked: Harness, clock: FakeClock
) -> None:
    """A mentor's note of 501 characters is refused with the limit, in the mentor's language."""
    clock.advance(timedelta(days=2))
    await booked.send("ada", "/complete 1")
    await booked.send("ada", "/language zh")
    out = await refused(booked, "ada", "/note 1 " + "n" * 501)
    assert "备注最多 500 个字符，你的有 501 个。" in out


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "There is no course called '{cut}…'. See /courses."),
        ("zh", "没有名为“{cut}…”的课程。请查看 /courses。"),
    ],
)
async def test_a_10000_character_slug_is_never_echoed_whole(
    market: Harness, lang: str, expected: str
) -> None:
    """Echoed input is cut to 40 characters with an ellipsis, in either language."""
    await market.send("alice", f"/language {lang}")
    out = await refused(market, "alice", "/course " + "s" * 10_000)
    assert expected.format(cut="s" * 39) in out
    assert "s" * 41 not in out
    out = await refused(market, "admin", "/admin stats " + "s" * 10_000)
    assert "s" * 41 not in out and "…" in out


@pytest.mark.parametrize(
    ("lang", "far"),
    [
        (
            "en",
            "An absence can be set from today (2026-03-02) to 2027-03-03; 9999-12-31 is outside",
        ),
        ("zh", "请假日期须在今天（2026-03-02）到 2027-03-03 之间，9999-12-31 不在此范围内。"),
    ],
)
async def test_absences_at_the_ends_of_the_calendar_are_refused(
    market: Harness, lang: str, far: str
) -> None:
    """Year 9999 and year 1 are outside the year ahead an absence may cover (a block over a DST
    gap: tests/test_availability.py); a block within the year is kept."""
    await market.send("ada", f"/language {lang}")
    assert far in await refused(market, "ada", "/availability block 9999-12-31 23:00-24:00")
    assert "0001-01-01" in await refused(market, "ada", "/availability off 0001-01-01")
    out = await market.send("ada", "/availability block 2026-03-08 01:00-03:30")
    assert "01:00" in out and "03:30" in out


async def test_the_price_hint_uses_each_currencys_own_digits(market: Harness) -> None:
    """Where a price is asked for, the hint writes it as each currency's minor digits do
    (USD 2, XOF 0, KWD 3), in English and Chinese; the amounts are what `typed_amount`
    gives and what `parse_amount` reads back."""
    from bot.handlers.admin import PRICE_HINT

    for code, minor in PRICE_EXAMPLES:
        typed = typed_amount(minor, code)
        assert f"price={typed} for {code}" in PRICE_HINT.render("en")
        assert f"{code} 写作 price={typed}" in PRICE_HINT.render("zh")
        assert parse_amount(typed, code) == minor
    out = await refused(market, "admin", "/admin course add rust title=Rust sessions=2")
    assert "e.g. price=49.00 for USD, price=5000 for XOF, price=12.500 for KWD." in out
    await market.send("admin", "/language zh")
    out = await refused(market, "admin", "/admin course add rust title=Rust sessions=2")
    assert "例如 USD 写作 price=49.00，XOF 写作 price=5000，KWD 写作 price=12.500" in out


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minute=st.one_of(
        st.integers(min_value=-(36**14), max_value=36**14).map(lambda n: format(n, "d")),
        st.text("0123456789abcdefghijklmnopqrstuvwxyz-_ ", min_size=1, max_size=16),
    ),
    rest=st.text(max_size=60),
)
async def test_forged_telegram_buttons_with_absurd_timestamps_are_refused(
    harness: Harness, minute: str, rest: str
) -> None:
    """Callback data with any minute (year 9999 and beyond, negative, not base 36) and any MAC
    decodes to nothing, never to an error: the press is answered as expired."""
    codec = CallbackCodec(harness.app, "123:TOKEN", timedelta(days=30))
    assert await codec.decode("42", f"s{minute}.{rest}") is None
    assert await codec.decode("42", f"t{rest}") is None


# How to reach each conversation step that reads free text, by who, from the `booked`
# marketplace (after the clock passed the session): the lines that open it.
STEPS = {
    "request:goals": ("bob", ["/mentor python-basics"]),
    "request:level": ("bob", ["/mentor python-basics", "Learn to write tested code"]),
    "deleteme": ("carol", ["/deleteme"]),
    "rate_comment": ("alice", ["/rate 1 4"]),
    "request:times": ("bob", ["/mentor python-basics", "Learn to write tested code", "beginner"]),
}


@settings(HOSTILE_SETTINGS, max_examples=3)
@given(data=st.data())
async def test_every_conversation_step_answers_hostile_text_politely(
    booked: Harness, clock: FakeClock, data: st.DataObject
) -> None:
    """Free text typed into a conversation step (goals, level, times, a rating comment, the
    deletion confirmation) is judged as commands are: answered, no apology, refusals change
    nothing."""
    if "bob" not in booked.chat.last_choices:  # once per marketplace, not per example
        clock.advance(timedelta(days=2))
        await booked.send("ada", "/complete 1")
        await buy(booked, "bob")
    failures: list[str] = []
    for step, (who, opening) in STEPS.items():
        for line in opening:
            await booked.send(who, line)
        typed = data.draw(FREE_TEXT, label=step)
        failures += [
            f"{step} {typed[:80]!r}: {why}" for why in judged(await attempt(booked, who, typed))
        ]
        await booked.send(who, "/cancel")
    assert not failures, "\n".join(failures)
