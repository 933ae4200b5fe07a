"""Counts read right in both languages: gettext plural forms, never "1 sessions"."""

from __future__ import annotations

from babel.messages.pofile import read_po

from bot.core.i18n import ngettext
from tests.support import Harness
from tests.test_translations import ZH_PO_PATH


def test_english_picks_the_form_by_count_and_chinese_has_one() -> None:
    """1 → singular, 0 and 2 → plural in English; Chinese has one form for every count."""
    one, two = (ngettext("{n} session left", "{n} sessions left", n) for n in (1, 2))
    assert one.render("en") == "1 session left"
    assert two.render("en") == "2 sessions left"
    assert ngettext("{n} session left", "{n} sessions left", 0).render("en") == "0 sessions left"


def test_every_plural_entry_is_translated_once_for_chinese() -> None:
    """Chinese has nplurals=1: each plural message has exactly one, non-empty form, with {n}."""
    with ZH_PO_PATH.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans_CN")
    plurals = [m for m in catalog if m.id and isinstance(m.id, tuple)]
    assert plurals
    for message in plurals:
        assert len(message.string) == 1 and message.string[0], message.id
        assert "{n}" in message.id[0] and "{n}" in message.id[1] and "{n}" in message.string[0]


async def test_a_one_session_course_reads_in_the_singular(market: Harness) -> None:
    """A course of one session says so in English and Chinese, in the catalogue, the course
    page, the purchase and /mycourses."""
    await market.send(
        "admin", "/admin course add solo title=Solo price=10 sessions=1 topics=python"
    )
    out = await market.send("alice", "/courses")
    assert "Solo — $10.00, 1 session" in out and "1 sessions" not in out
    assert "1 mentor session ·" in await market.send("alice", "/course solo")
    out = await market.send("alice", "/buy solo")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    assert "with 1 mentor session." in await market.send("alice", f"/pay {order_id}")
    assert "Solo: 1 session left" in await market.send("alice", "/mycourses")
    await market.send("alice", "/language zh")
    assert "剩余 1 次辅导" in await market.send("alice", "/mycourses")
