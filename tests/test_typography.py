"""Chinese text follows Chinese typography: full-width punctuation, 《》 around titles, a space
where Chinese meets Latin letters or digits."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from bot.core.i18n import Localized, _
from tests.support import Harness
from tests.test_translations import ZH_PO_PATH

CJK = r"[\u3400-\u9fff]"


def test_a_latin_value_in_chinese_text_is_set_off_by_spaces() -> None:
    """ "与 Ada 的辅导", not "与Ada的辅导"; nothing changes in English or next to punctuation."""
    msg = _("与{mentor}的辅导 #{id}，{when}。", mentor="Ada", id=3, when="2026-03-02")
    assert msg.render("zh") == "与 Ada 的辅导 #3，2026-03-02。"
    assert _("{name}申请成为导师", name="王芳").render("zh") == "王芳申请成为导师"


def test_a_course_title_in_a_chinese_sentence_is_in_book_title_marks() -> None:
    """A title inside Chinese text is 《》-quoted; standing alone or in English it is plain."""
    title = Localized("Python from zero", "零基础学 Python", title=True)
    assert _("{title}已归你所有", title=title).render("zh") == "《零基础学 Python》已归你所有"
    assert _("{title} is yours", title=title).render("en") == "Python from zero is yours"
    assert title.pick("zh") == "零基础学 Python"


def test_no_chinese_message_uses_ascii_punctuation_beside_chinese() -> None:
    """Commas, colons, brackets and question marks next to Chinese are the full-width ones."""
    with ZH_PO_PATH.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans_CN")
    wrong = []
    for message in catalog:
        for text in message.string if isinstance(message.string, tuple) else (message.string,):
            if text and re.search(rf"{CJK}[,;:?!()]|[,;:?!()]{CJK}", text):
                wrong.append(text)
    assert wrong == []


async def test_a_chinese_reader_sees_the_title_marked_and_names_spaced(market: Harness) -> None:
    """In a full reply: the purchase names the course in 《》."""
    await market.send("alice", "/language zh")
    out = await market.send("alice", "/buy python-basics")
    order_id = out.split("#", 1)[1].split("：", 1)[0].split(" ", 1)[0]
    paid = await market.send("alice", f"/pay {order_id}")
    assert "《" in paid and "》" in paid


def test_no_message_speaks_in_state_machine_terms() -> None:
    """No reply says "cannot become" (a refused transition reads as the action refused)."""
    with ZH_PO_PATH.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans_CN")
    ids = [m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id]
    machine = re.compile(r"is \{current\} and cannot become|\bNone\b")
    assert [i for i in ids if machine.search(i)] == []


async def test_a_refused_move_reads_as_the_action_refused(market: Harness) -> None:
    """Cancelling a paid order, or approving an approved mentor, says what is so in words."""
    out = await market.send("alice", "/buy python-basics")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    await market.send("alice", f"/pay {order_id}")
    out = await market.send("alice", f"/cancelorder {order_id}")
    assert f"Order #{order_id} is paid, so it can no longer be cancelled." in out
    assert "is already approved." in await market.send("admin", "/admin mentor approve 1")
