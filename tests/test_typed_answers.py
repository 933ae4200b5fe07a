"""Answers typed in Chinese (and full-width) are understood wherever English words are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core import words
from bot.core.clock import FakeClock
from bot.matching import preferred_week
from bot.mentoring.offers import LEVEL_NAMES, TIME_NAMES
from bot.sessions.availability import WEEKDAY_NAMES
from bot.sessions.scheduling import parse_weekday, slot_token
from storage.models import Enrollment, MentorSession, MentorshipRequest, User
from tests.support import Harness, buy, matched_pair, snapshot


async def requests(h: Harness) -> list[tuple[int, list[str], str]]:
    """Each request's level, preferred times and goals."""
    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(
                MentorshipRequest.level, MentorshipRequest.preferred_times, MentorshipRequest.goals
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("level", "times", "want_level", "want_times"),
    [
        ("初级", "上午，晚上、周末", 1, ["morning", "evening", "weekend"]),
        ("高级", "下午；任意时间", 3, ["afternoon", "any"]),
        ("Intermediate", "Morning; weekends", 2, ["morning", "weekend"]),
        ("３", "ＥＶＥＮＩＮＧ", 3, ["evening"]),
    ],
)
async def test_request_steps_read_chinese_english_and_full_width(
    market: Harness, level: str, times: str, want_level: int, want_times: list[str]
) -> None:
    """The level and preferred-times steps accept either language and any list separator."""
    await buy(market, "alice")
    await market.send("alice", "/language zh")
    await market.send("alice", "/mentor python-basics")
    await market.send("alice", "学会写测试，提高代码质量")
    out = await market.send("alice", level)
    assert "你希望在什么时间见面" in out, out
    await market.send("alice", times)
    # The goals are kept as typed, Chinese comma and all.
    assert await requests(market) == [(want_level, want_times, "学会写测试，提高代码质量")]


async def test_unknown_answers_are_refused_by_name_in_chinese(market: Harness) -> None:
    """An answer that is no level or time is named in a Chinese refusal; nothing is created."""
    await buy(market, "alice")
    await market.send("alice", "/language zh")
    await market.send("alice", "/mentor python-basics")
    assert "请用几句话描述" in await market.send("alice", "测")
    assert "水平如何" in await market.send("alice", "测试")  # two characters are a goal
    assert "无法识别水平“大师”" in await market.send("alice", "大师")
    await market.send("alice", "中级")
    out = await market.send("alice", "上午、半夜")
    assert "无法识别时间“半夜”" in out and "周末" in out, out
    assert await requests(market) == []


async def test_weekend_is_saturday_and_sunday_for_matching() -> None:
    """A learner who prefers weekends is available all of Saturday and Sunday, local time."""
    week = preferred_week(["weekend"], "UTC", datetime(2026, 3, 2, tzinfo=UTC))
    assert week == ((5 * 1440, 7 * 1440),)
    shanghai = preferred_week(["weekend"], "Asia/Shanghai", datetime(2026, 3, 2, tzinfo=UTC))
    assert shanghai == ((5 * 1440 - 8 * 60, 7 * 1440 - 8 * 60),)


def test_weekdays_in_both_languages() -> None:
    """周一, 星期日, 礼拜三, Monday and mon name the same days; nonsense names none."""
    assert [parse_weekday(d) for d in ("周一", "星期日", "礼拜三", "Monday", "MON", "周天")] == [
        0,
        6,
        2,
        0,
        0,
        6,
    ]
    assert parse_weekday("周八") is None


def test_every_answer_table_speaks_both_languages() -> None:
    """Each meaning in each vocabulary table can be typed in English and in Chinese."""
    tables = [
        words.YES_NO,
        words.LEVELS,
        words.PREFERRED_TIMES,
        words.WEEKDAYS,
        words.OUTCOMES,
        words.LANGUAGE_WORDS,
        words.KEEP_HOURS,
    ]
    for table in tables:
        for meaning in set(table.values()):
            spelled = [w for w, m in table.items() if m == meaning]
            assert any(w.isascii() for w in spelled), (meaning, spelled)
            assert any(not w.isascii() for w in spelled), (meaning, spelled)


async def test_deleteme_confirmed_in_chinese(market: Harness) -> None:
    """是 then 删除 erases the account; 否 at the first question keeps everything."""
    await market.send("alice", "/language zh")
    await market.send("alice", "/help")
    before = await snapshot(market)
    await market.send("alice", "/deleteme")
    await market.send("alice", "否")
    assert await snapshot(market) == before
    await market.send("alice", "/deleteme")
    await market.send("alice", "是")
    await market.send("alice", "删除")
    async with market.app.new_uow() as uow:
        names = (await uow.session.execute(select(User.display_name))).scalars().all()
    assert "alice" not in names


async def test_cancel_and_outcome_words_in_chinese(market: Harness, clock: FakeClock) -> None:
    """确认 confirms a late cancellation; 完成 answers /outcome; full-width ids are read."""
    request_id = await matched_pair(market)
    first = (clock.now() + timedelta(days=3)).replace(hour=9, minute=0)
    await market.send("alice", f"/book {request_id} {slot_token(first)}")
    second = first + timedelta(days=1)
    await market.send("alice", f"/book {request_id} {slot_token(second)}")
    await market.send("ada", "/language zh")
    clock.set(first + timedelta(minutes=65))
    await market.send("ada", "/outcome １ 完成")
    clock.set(second - timedelta(hours=2))
    await market.send("alice", "/language zh")
    assert "仍要取消吗" in await market.send("alice", "/cancelsession 2")
    await market.send("alice", "/cancelsession 2 确认")
    async with market.app.new_uow() as uow:
        statuses = (
            await uow.session.execute(select(MentorSession.status).order_by(MentorSession.id))
        ).scalars()
        assert list(statuses) == ["completed", "cancelled"]


async def test_languages_and_topic_levels_in_chinese(market: Harness) -> None:
    """/language 中文, and /profile topics with 高级 and full-width colons and 、."""
    out = await market.send("alice", "/language 中文")
    assert "English" not in out and "语言" in out, out
    await market.send("ada", "/profile topics python：高级、sql：初级")
    out = await market.send("ada", "/profile languages 英文，中文")
    assert "python (advanced)" in out and "sql (beginner)" in out, out
    assert "Languages: en, zh" in out


def test_every_button_label_can_be_typed_instead() -> None:
    """What the level and time buttons read, in either language, typed back means the same."""
    for lang in ("en", "zh"):
        for key, label in TIME_NAMES.items():
            assert words.lookup(words.PREFERRED_TIMES, label.render(lang)) == key, (lang, key)
        for level, name in LEVEL_NAMES.items():
            assert words.lookup(words.LEVELS, name.render(lang)) == level, (lang, level)
        for day, name in enumerate(WEEKDAY_NAMES):
            assert parse_weekday(name.render(lang)) == day, (lang, day)


async def test_a_dispute_is_answered_and_settled_in_chinese(
    market: Harness, clock: FakeClock
) -> None:
    """缺席 and 完成 disagree into a dispute; an admin's 退回课时 gives the credit back."""
    request_id = await matched_pair(market)
    start = (clock.now() + timedelta(days=3)).replace(hour=9, minute=0)
    await market.send("alice", f"/book {request_id} {slot_token(start)}")
    clock.set(start + timedelta(minutes=65))
    await market.send("alice", "/outcome 1 缺席")
    await market.send("ada", "/outcome 1 完成")
    async with market.app.new_uow() as uow:
        assert (await uow.get(MentorSession, 1)).status == "disputed"  # type: ignore[union-attr]
    await market.send("admin", "/language zh")
    out = await market.send("admin", "/admin settle 1 退回课时")
    assert "#1" in out and "Unknown" not in out, out
    async with market.app.new_uow() as uow:
        left = (await uow.session.execute(select(Enrollment.credits_remaining))).scalar_one()
    assert left == 4  # the course's four sessions, the disputed one given back
