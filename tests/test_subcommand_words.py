"""Sub-command words (`/availability add`, `/admin stats courses`) may be typed in Chinese,
through the one table of typed answers (bot/core/words.py); the Chinese /help shows them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import bot.handlers  # noqa: F401  (registers the command table)
from bot.core import words
from bot.handlers.registry import ADMIN_SUBS, COMMANDS, Arg, Sub, chinese_words
from tests.support import NOT_PROSE, Harness, buy


def _places(args: tuple[Arg, ...], subs: tuple[Sub, ...]) -> Iterator[list[str]]:
    """Each place in the table where one of several words is typed."""
    if subs:
        yield [s.name for s in subs]
        for sub in subs:
            yield from _places(sub.args, sub.subs)
    for arg in args:
        if arg.choices:
            yield [value for value, _label in arg.choices]


def test_no_chinese_word_stands_for_two_words_at_one_place() -> None:
    """At every place of the command table, each Chinese word names one English word, and
    every declared sub-command and choice has a Chinese word."""
    for command in COMMANDS.values():
        for allowed in _places(command.args, tuple(command.subs.values())):
            seen: dict[str, str] = {}
            for english in allowed:
                assert english in words.SUBCOMMAND_WORDS, (command.name, english)
                for chinese in words.SUBCOMMAND_WORDS[english]:
                    assert seen.setdefault(chinese, english) == english, (command.name, chinese)


async def test_availability_in_chinese_words(market: Harness) -> None:
    """添加, 清空 (confirmed with 确认), 请假, 屏蔽 and 解除屏蔽 work as add, clear, off, block
    and unblock; an unknown word is still refused by name."""
    await market.send("ada", "/language zh")
    out = await market.send("ada", "/availability 添加 周二 14:00-16:00")
    assert "已添加" in out, out
    out = await market.send("ada", "/availability 屏蔽 2026-03-10 14:00-18:00")
    assert "不接受新的预约" in out, out
    out = await market.send("ada", "/availability 解除屏蔽 1")
    assert "暂不接受预约" not in out
    out = await market.send("ada", "/availability 请假 3月12日")
    assert "不接受新的预约" in out
    out = await market.send("ada", "/availability 清空")
    assert market.chat.last_choices["ada"][0].payload == "/availability clear confirm"
    await market.send("ada", "/availability 清空 确认")
    assert "你还没有设置可用时间" in await market.send("ada", "/availability")
    assert "/availability 不接受“跳舞”。可选：添加（add）、删除（remove）" in await market.send(
        "ada", "/availability 跳舞"
    )


async def test_admin_and_other_commands_take_chinese_sub_commands(market: Harness) -> None:
    """`/admin 统计 按课程`, `/admin 订单 已支付`, `/admin 课程 编辑 …` and `/profile 简介 …`
    read as their English words."""
    await buy(market, "alice")
    await market.send("admin", "/language zh")
    by_course = await market.send("admin", "/admin stats courses")
    assert await market.send("admin", "/admin 统计 按课程") == by_course
    paid = await market.send("admin", "/admin orders paid")
    assert "#1" in paid and await market.send("admin", "/admin 订单 已支付") == paid
    edited = await market.send("admin", "/admin 课程 编辑 python-basics sessions=5")
    assert edited == await market.send("admin", "/admin course edit python-basics sessions=5")
    assert "python-basics" in edited, edited
    await market.send("ada", "/profile 简介 Ten years of Python")
    assert "Ten years of Python" in await market.send("ada", "/profile")


async def test_chinese_help_shows_the_chinese_words(market: Harness) -> None:
    """A Chinese reader's /help lists, under /availability, 添加（add） and 清空（clear）;
    an English reader's help has no Chinese words."""
    english = await market.send("ada", "/help")
    assert "添加" not in english
    await market.send("ada", "/language zh")
    chinese = await market.send("ada", "/help")
    line = next(part for part in chinese.split("\n/") if part.startswith("availability"))
    assert "也可输入中文：添加（add）、删除（remove）、清空（clear）、屏蔽（block）" in line
    admin_help = await market.send("admin", "/help")
    assert "统计（stats）" not in admin_help  # the admin reads English
    assert ("统计", "stats") in chinese_words(COMMANDS["admin"])
    assert len(ADMIN_SUBS) > 10


async def test_a_chinese_admin_reads_the_admin_usage_all_in_chinese(market: Harness) -> None:
    """`/admin`, an unknown `/admin` word and the refusals that list a sub-command's words
    read, for a Chinese admin, in Chinese with the Chinese words each part may be typed as;
    what stays Latin is the command words themselves (`stats`, `refund-credit`) and
    placeholders (`ORDER`). An English admin's usage has no Chinese."""
    literal = {w for sub in ADMIN_SUBS.values() for place in _places((), (sub,)) for w in place}
    literal.add("bogus")  # what the admin typed, echoed
    lines = ("/admin", "/admin bogus", "/admin stats bogus", "/admin subscriptions bogus")
    english = await market.send("admin", "/admin")
    assert "也可输入中文" not in english and "/admin stats [courses|" in english
    await market.send("admin", "/language zh")
    shown = "\n".join([await market.send("admin", line) for line in lines])
    assert "/admin stats [courses|mentors|csv|workshops|recommendations] — 平台数据" in shown
    assert "也可输入中文：统计（stats）、按课程（courses）" in shown
    assert "可选：未完成（incomplete）、试用中（trialing）、有效（active）" in shown
    left = []
    for line in shown.splitlines():
        prose = NOT_PROSE.sub("", line)
        left += [(w, line) for w in re.findall(r"[A-Za-z][A-Za-z-]+", prose) if w not in literal]
    assert left == []
    assert "未知操作“bogus”。用法：\n/admin mentor approve PROFILE — 批准导师资料" in (
        await market.send("admin", "/admin mentor bogus")
    )
