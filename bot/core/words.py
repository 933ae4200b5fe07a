"""The words people type as answers, in every language the bot speaks, written down once.

Each table maps what a reader may type, in English or Chinese, to the one value the code
works with; a parser looks answers up here and nowhere else, so a new synonym is one line.
Typed text is compared after `normal()`: full-width letters, digits and punctuation (`１８：００`,
`ＹＥＳ`, `，`) in their NFKC (ASCII) forms, case folded, trimmed. A list of answers
may be separated by commas, semicolons or the Chinese enumeration comma (`,` `，` `;` `；` `、`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar

T = TypeVar("T")


# The full-width forms (U+FF01–U+FF5E) and the ideographic space, with their NFKC forms. Only
# these are folded: NFKC at large would also read `²` or `①` as a digit, and a price of `²` is
# a mistake to refuse, not the number 2.
_FULL_WIDTH = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF01, 0xFF5F)}
_FULL_WIDTH[0x3000] = " "


def fold(text: str) -> str:
    """`text` with full-width letters, digits and punctuation (and the ideographic space) in
    their ASCII forms, as every parser reads it: `／ｂｏｏｋ　１` → `/book 1`, `１８：００` →
    `18:00`, `，` → `,`."""
    return text.translate(_FULL_WIDTH)


def normal(text: str) -> str:
    """`text` as answers are compared: folded, case folded, trimmed, spaces collapsed."""
    return " ".join(fold(text).casefold().split())


# Folding already turns `，` and `；` into `,` and `;`; `、` has no compatibility form.
_LIST_SEPARATORS = re.compile(r"[,;、]")


def items(text: str) -> list[str]:
    """The answers in a typed list, each `normal()`: `上午，晚上、周末` → three."""
    return [part for part in (normal(p) for p in _LIST_SEPARATORS.split(fold(text))) if part]


def lookup(table: Mapping[str, T], text: str) -> T | None:
    """What `text` means in `table`, or None."""
    return table.get(normal(text))


# --- yes and no -------------------------------------------------------------------------------

YesNo = Literal["yes", "no"]
YES_NO: dict[str, YesNo] = {
    **dict.fromkeys(
        ("yes", "y", "ok", "confirm", "是", "是的", "好", "好的", "确认", "确定"), "yes"
    ),
    **dict.fromkeys(("no", "n", "cancel", "否", "不", "不是", "不要", "取消"), "no"),
}
# The word that confirms erasing one's data, at the second question of /deleteme.
DELETE_WORDS = frozenset({"delete", "删除"})


def is_yes(text: str) -> bool:
    return lookup(YES_NO, text) == "yes"


# --- levels -----------------------------------------------------------------------------------

LEVELS: dict[str, int] = {
    **dict.fromkeys(("beginner", "初级", "入门", "1"), 1),
    **dict.fromkeys(("intermediate", "中级", "2"), 2),
    **dict.fromkeys(("advanced", "expert", "高级", "专家", "3"), 3),
}

# --- parts of the day and the week a learner prefers ------------------------------------------

PREFERRED_TIMES: dict[str, str] = {
    **dict.fromkeys(("morning", "mornings", "上午", "早上", "早晨"), "morning"),
    **dict.fromkeys(("afternoon", "afternoons", "下午", "中午"), "afternoon"),
    **dict.fromkeys(("evening", "evenings", "晚上", "傍晚", "晚间"), "evening"),
    **dict.fromkeys(("weekend", "weekends", "周末"), "weekend"),
    **dict.fromkeys(
        ("any", "any time", "anytime", "任意", "任意时间", "任何时间", "随时", "都可以", "都行"),
        "any",
    ),
}

# --- weekdays (Monday is 0) -------------------------------------------------------------------

WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENGLISH_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHINESE_DAYS = ("一", "二", "三", "四", "五", "六", "日")
WEEKDAYS: dict[str, int] = {
    **{code: n for n, code in enumerate(WEEKDAY_CODES)},
    **{name: n for n, name in enumerate(_ENGLISH_DAYS)},
    **{f"{p}{d}": n for n, d in enumerate(_CHINESE_DAYS) for p in ("周", "星期", "礼拜")},
    "星期天": 6,
    "礼拜天": 6,
    "周天": 6,
}

# --- what happened at a session ---------------------------------------------------------------

Outcome = Literal["completed", "no_show"]
OUTCOMES: dict[str, Outcome] = {
    **dict.fromkeys(("completed", "complete", "done", "完成", "已完成", "上了"), "completed"),
    **dict.fromkeys(("noshow", "no-show", "no show", "缺席", "没来", "未出席"), "no_show"),
}

# An admin's decision on a disputed session (`/admin settle`).
Verdict = Literal["completed", "noshow", "refund-credit"]
VERDICTS: dict[str, Verdict] = {
    **dict.fromkeys(("completed", "完成", "已完成"), "completed"),
    **dict.fromkeys(("noshow", "no-show", "缺席"), "noshow"),
    **dict.fromkeys(("refund-credit", "refund", "退回课时", "退还课时"), "refund-credit"),
}

# --- languages --------------------------------------------------------------------------------

LANGUAGE_WORDS: dict[str, str] = {
    **dict.fromkeys(("en", "english", "英文", "英语"), "en"),
    **dict.fromkeys(("zh", "chinese", "中文", "汉语", "简体中文", "普通话"), "zh"),
}

# --- what a mentor's weekly hours do when their timezone changes ------------------------------

KeepHours = Literal["local", "instants"]
KEEP_HOURS: dict[str, KeepHours] = {
    **dict.fromkeys(("local", "本地时间", "当地时间"), "local"),
    **dict.fromkeys(("instants", "同一时刻", "原时刻"), "instants"),
}

# --- sub-command words ------------------------------------------------------------------------
# Commands keep their English names (`/availability`), but the words after them that the
# command table declares (its sub-commands and choices: `add`, `clear`, `/admin stats
# courses`) may be typed in Chinese too. Each English word is listed with its Chinese ones,
# the first being the one /help shows; a Chinese word may stand for different English words in
# different places (`课程` is `/admin course` and `/admin stats courses`), but never for two
# at the same place (tests/test_subcommand_words.py holds the table to that).


def _chinese(table: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Each value of a table of answers with its Chinese (non-ASCII) words."""
    found: dict[str, tuple[str, ...]] = {}
    for word, value in table.items():
        if not word.isascii():
            found[value] = (*found.get(value, ()), word)
    return found


SUBCOMMAND_WORDS: dict[str, tuple[str, ...]] = {
    # /availability
    "add": ("添加", "增加", "新增"),
    "remove": ("删除", "移除"),
    "clear": ("清空", "全部清除"),
    "block": ("屏蔽", "屏蔽时段"),
    "off": ("请假", "休息"),
    "unblock": ("解除屏蔽", "取消屏蔽"),
    # /profile
    "topics": ("主题", "话题"),
    "languages": ("语言",),
    "capacity": ("名额", "容量"),
    "bio": ("简介", "自我介绍"),
    # /admin and its parts
    "mentors": ("导师列表", "导师"),
    "applications": ("导师申请", "申请"),
    "mentor": ("导师审核", "审核导师"),
    "approve": ("批准", "通过"),
    "suspend": ("暂停", "停用"),
    "reject": ("拒绝", "驳回"),
    "course": ("课程", "管理课程"),
    "edit": ("编辑", "修改"),
    "archive": ("归档", "下架"),
    "restore": ("恢复", "上架"),
    "orders": ("订单",),
    "pending": ("待支付", "待付款", "待处理"),
    "paid": ("已支付", "已付款"),
    "refunded": ("已退款",),
    "expired": ("已过期",),
    "cancelled": ("已取消",),
    "refund": ("退款",),
    "force": ("强制",),
    "stats": ("统计", "数据"),
    "courses": ("按课程", "课程"),
    "csv": ("表格", "导出"),
    "waitlist": ("候补名单", "候补"),
    "match-cohort": ("批量匹配",),
    "apply": ("执行", "应用"),
    "disputes": ("争议",),
    "settle": ("裁决",),
    "earnings": ("收入", "收益"),
    "lessons": ("课时列表",),
    "lesson": ("课时", "管理课时"),
    "drip": ("定时发送", "按时发送"),
    "reply": ("回复",),
    "plan": ("套餐", "管理套餐"),
    "plans": ("套餐列表",),
    "promo": ("优惠码", "管理优惠码"),
    "promos": ("优惠码列表",),
    "subscriptions": ("订阅列表", "订阅"),
    "unsubscribe": ("退订", "取消订阅"),
    "workshops": ("研讨会列表", "研讨会", "工作坊列表", "工作坊"),
    "spaces": ("社区空间", "空间"),
    "repair": ("修复",),
    "recommendations": ("推荐",),
    # subscription statuses (/admin subscriptions STATUS)
    "incomplete": ("未完成",),
    "trialing": ("试用中",),
    "active": ("有效", "进行中"),
    "overdue": ("逾期",),
    "cancelling": ("即将结束",),
    "lapsed": ("已失效",),
    # /subscription
    "pay": ("支付", "付款"),
    "cancel": ("取消",),
    "resume": ("恢复订阅", "继续"),
    "billing": ("账单", "管理账单"),
    # /workshop
    "new": ("新建", "创建"),
    "move": ("改期", "调整时间"),
    "attendance": ("出勤", "签到"),
    "rate": ("评分",),
    # /outcome and /admin settle (their own tables), /language
    **_chinese(VERDICTS),
    **_chinese(LANGUAGE_WORDS),
}


def subcommand(text: str, allowed: Iterable[str]) -> str | None:
    """The English word among `allowed` that `text` is, typed in English or in Chinese."""
    typed = normal(text)
    for word in allowed:
        if typed == word or typed in SUBCOMMAND_WORDS.get(word, ()):
            return word
    return None
