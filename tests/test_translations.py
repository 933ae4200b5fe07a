"""The Chinese catalog covers every marked string in the source, and keeps each one usable.

Messages (`_()` and `N_()`, Babel's default keywords) are extracted in-process with the method
map from `babel.cfg`, exactly as the CLI does. When a test here fails because strings were
added or changed, update the catalog:

    pybabel extract -F babel.cfg --no-location --sort-output -o bot/locale/mentorbot.pot bot
    pybabel update -i bot/locale/mentorbot.pot -d bot/locale -D mentorbot -l zh

then translate every new or empty (or `#, fuzzy`) entry in
`bot/locale/zh/LC_MESSAGES/mentorbot.po` and drop its fuzzy flag.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.core.i18n import _, translations

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "bot"
BABEL_CFG = ROOT / "babel.cfg"
POT_PATH = ROOT / "bot" / "locale" / "mentorbot.pot"
ZH_PO_PATH = ROOT / "bot" / "locale" / "zh" / "LC_MESSAGES" / "mentorbot.po"
UPDATE_HINT = (
    "update the catalog: pybabel extract -F babel.cfg --no-location --sort-output "
    "-o bot/locale/mentorbot.pot bot && pybabel update -i bot/locale/mentorbot.pot "
    "-d bot/locale -D mentorbot -l zh, then translate the new entries"
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _msgid(message: str | tuple[str, ...]) -> str:
    """The singular msgid of an extracted or catalogued message."""
    return message[0] if isinstance(message, (tuple, list)) else message


@functools.cache
def extracted() -> dict[str, list[str]]:
    """Every msgid marked in `bot/`, with the `file:line` places it is used."""
    with BABEL_CFG.open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(BABEL_CFG))
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        SOURCE_DIR, method_map, options_map
    ):
        msgid = _msgid(message)
        if msgid:
            found.setdefault(msgid, []).append(f"bot/{filename}:{lineno}")
    return found


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


@functools.cache
def zh_catalog() -> Catalog:
    return _read(ZH_PO_PATH, locale="zh_Hans_CN")


def _entries(catalog: Catalog) -> Iterable:
    return (m for m in catalog if m.id)


def _fields(text: str) -> set[str]:
    """Names of the `{placeholders}` in a str.format template."""
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def _listing(items: Iterable[str]) -> str:
    return "\n".join(f"  {item}" for item in items)


def test_source_has_messages_to_translate() -> None:
    """Extraction with babel.cfg finds the project's `_()` strings (guards a broken config)."""
    found = extracted()
    assert len(found) > 100
    assert "Unknown command /{name}. See /help." in found


def test_every_extracted_msgid_has_a_chinese_translation() -> None:
    """Every msgid extracted from bot/ has a non-empty, non-fuzzy msgstr in the zh catalog."""
    catalog = zh_catalog()
    missing = []
    for msgid, places in sorted(extracted().items()):
        entry = catalog.get(msgid)
        msgstr = _msgid(entry.string) if entry is not None else ""
        if not msgstr or entry.fuzzy:
            missing.append(f"{msgid!r}  ({places[0]})")
    assert not missing, (
        f"{len(missing)} msgid(s) lack a Chinese translation; {UPDATE_HINT}:\n" + _listing(missing)
    )


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    """Each msgstr uses exactly the same set of {placeholders} as its msgid and parses cleanly."""
    problems = []
    for entry in _entries(zh_catalog()):
        msgid, msgstr = _msgid(entry.id), _msgid(entry.string)
        if not msgstr:
            continue
        try:
            got = _fields(msgstr)
        except ValueError as exc:
            problems.append(f"{msgid!r}: msgstr is not a valid format string ({exc})")
            continue
        want = _fields(msgid)
        if got != want:
            problems.append(
                f"{msgid!r}: missing {sorted(want - got)}, unexpected {sorted(got - want)}"
            )
    assert not problems, "placeholder mismatch:\n" + _listing(problems)


def test_translations_keep_the_line_structure_of_their_msgid() -> None:
    """A translated multi-line message has the same number of lines as its msgid."""
    problems = [
        f"{entry.id!r}: {entry.id.count(chr(10)) + 1} line(s) in msgid, "
        f"{entry.string.count(chr(10)) + 1} in msgstr"
        for entry in _entries(zh_catalog())
        if isinstance(entry.id, str)
        and entry.string
        and entry.id.count("\n") != entry.string.count("\n")
    ]
    assert not problems, "line structure differs:\n" + _listing(problems)


def test_catalog_has_no_fuzzy_entries() -> None:
    """No entry is marked fuzzy, since fuzzy translations are silently skipped when compiled."""
    fuzzy = [repr(entry.id) for entry in _entries(zh_catalog()) if entry.fuzzy]
    assert not fuzzy, "review these fuzzy entries and remove the flag:\n" + _listing(fuzzy)


def test_no_obsolete_entry_is_still_used_in_the_source() -> None:
    """No msgid used in the source survives only as an obsolete (#~), uncompiled entry."""
    used = extracted()
    revived = sorted(repr(msgid) for msgid in zh_catalog().obsolete if _msgid(msgid) in used)
    assert not revived, f"obsolete entries still in use; {UPDATE_HINT}:\n" + _listing(revived)


def test_catalog_has_no_entries_missing_from_the_source() -> None:
    """Every active msgid in the zh catalog is still extracted from the source."""
    used = extracted()
    stale = sorted(
        repr(entry.id) for entry in _entries(zh_catalog()) if _msgid(entry.id) not in used
    )
    assert not stale, f"catalog entries no longer in the source; {UPDATE_HINT}:\n" + _listing(stale)


def test_committed_template_matches_the_source() -> None:
    """bot/locale/mentorbot.pot lists exactly the msgids extracted from the source."""
    template = {_msgid(entry.id) for entry in _entries(_read(POT_PATH))}
    used = set(extracted())
    assert template == used, (
        f"mentorbot.pot is out of date; {UPDATE_HINT}\n"
        f"not in template:\n{_listing(sorted(used - template))}\n"
        f"not in source:\n{_listing(sorted(template - used))}"
    )


def test_catalog_header_declares_simplified_chinese_utf8() -> None:
    """The zh catalog header declares Language zh_Hans_CN and UTF-8."""
    catalog = zh_catalog()
    headers = dict(catalog.mime_headers)
    assert headers["Language"] == "zh_Hans_CN"
    assert "charset=utf-8" in headers["Content-Type"].lower()
    assert not catalog.fuzzy


def test_every_translation_compiles_and_formats() -> None:
    """Every compiled zh translation formats with its msgid's parameters without error."""
    zh = translations("zh")
    for msgid in extracted():
        text = zh.gettext(msgid)
        text.format(**{name: "x" for name in _fields(msgid)})


def test_render_in_chinese_translates_and_fills_placeholders() -> None:
    """`Msg.render("zh")` returns the Chinese translation with its parameters filled in."""
    msg = _("Unknown command /{name}. See /help.", name="x")
    text = msg.render("zh")
    assert "/x" in text
    assert "/help" in text
    assert CJK.search(text)
    assert text == zh_catalog().get("Unknown command /{name}. See /help.").string.format(name="x")


def test_render_in_chinese_translates_nested_messages() -> None:
    """Nested `Msg` parameters (statuses, entity names) are translated too."""
    text = _(
        "{entity} #{id} is {current}, so it can no longer be cancelled.",
        entity=_("Order"),
        id=7,
        current=_("paid"),
    ).render("zh")
    assert "#7" in text
    assert "Order" not in text
    assert "paid" not in text
    assert CJK.search(text)


def test_render_in_english_returns_the_msgid() -> None:
    """`Msg.render("en")` returns the English msgid with its parameters filled in."""
    msg = _("Unknown command /{name}. See /help.", name="x")
    assert msg.render("en") == "Unknown command /x. See /help."
