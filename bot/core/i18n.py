"""Translation: every user-facing string is a `Msg`, rendered late in the reader's language.

Messages are written in English with `{named}` placeholders and marked with `_()`, which Babel
extracts (`pybabel extract -F babel.cfg`). A message is not translated where it is written but
where it is shown, because the same notice goes to a learner reading Chinese in Shanghai and a
mentor reading English in Berlin: dates, money and course titles among its parameters are
rendered for each reader too. Catalogs are `.po` files compiled in memory on first use, so no
build step stands between a checkout and a running bot.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from bot.core.money import STARS, to_major

LOCALE_DIR = Path(__file__).parent.parent / "locale"
DOMAIN = "mentorbot"
LANGUAGES = ("en", "zh")
# Each language by its own name, as a language picker shows it (not translated).
LANGUAGE_NAMES = {"en": "English", "zh": "简体中文"}
_BABEL_LOCALE = {"en": "en", "zh": "zh_Hans_CN"}
_DATE_PATTERN = {"en": "EEE d MMM y, HH:mm", "zh": "y年M月d日 EEE HH:mm"}
# A calendar day as a heading ("Monday 7 December", "12月7日星期一") or on a button.
_DAY_PATTERN = {"en": "EEEE d MMMM", "zh": "M月d日EEEE"}
_SHORT_DAY_PATTERN = {"en": "EEE d MMM", "zh": "M月d日 EEE"}


@dataclass(frozen=True)
class Msg:
    """A message id with its parameters, waiting to learn who will read it."""

    msgid: str
    params: tuple[tuple[str, Any], ...] = ()
    # A message with plural forms (`ngettext`): the English plural and the count that picks
    # the form, by the reader's language's plural rule (English two forms, Chinese one).
    plural: str | None = None
    count: int = 0

    def render(self, lang: str, tz: str = "UTC") -> str:
        if self.plural is None:
            text = translations(lang).gettext(self.msgid)
        else:
            text = translations(lang).ngettext(self.msgid, self.plural, self.count)
        if not self.params:
            return text
        values = {
            k: v.in_sentence(lang) if isinstance(v, Localized) else render_value(v, lang, tz)
            for k, v in self.params
        }
        if lang != "zh":
            return text.format(**values)
        marked = text.format(**{k: f"{_OPEN}{v}{_CLOSE}" for k, v in values.items()})
        return _spaced(marked)


# Chinese typography: a space between Chinese and Latin letters or digits where a value meets
# the sentence ("与 Ada 的辅导", "共 4 次"), never inside either. Values are marked while the
# message is assembled so that only those seams are touched.
_OPEN, _CLOSE = "\x02", "\x03"
_CJK = "\u3400-\u9fff\uf900-\ufaff"
_LATIN = "A-Za-z0-9$€£¥#@"
_SEAMS = (
    (re.compile(f"([{_CJK}]){_OPEN}(?=[{_LATIN}])"), f"\\1 {_OPEN}"),
    (re.compile(f"(?<=[{_LATIN}]){_CLOSE}([{_CJK}])"), f"{_CLOSE} \\1"),
    (re.compile(f"([{_LATIN}]){_OPEN}(?=[{_CJK}])"), f"\\1 {_OPEN}"),
    (re.compile(f"(?<=[{_CJK}]){_CLOSE}([{_LATIN}])"), f"{_CLOSE} \\1"),
)


def _spaced(marked: str) -> str:
    for pattern, replacement in _SEAMS:
        marked = pattern.sub(replacement, marked)
    return marked.replace(_OPEN, "").replace(_CLOSE, "")


# How much of a user's own input a reply repeats back to them.
ECHO_LIMIT = 40


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as a reply may repeat it: at most `limit` characters, control and invisible
    characters removed, an ellipsis where it was cut. Every reply that quotes what a user
    typed quotes it through this, so a 10,000-character slug is never echoed whole."""
    shown = "".join(ch for ch in text if ch.isprintable())
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _(msgid: str, /, **params: Any) -> Msg:
    """Mark a message for extraction and bind its parameters."""
    return Msg(msgid, tuple(sorted(params.items())))


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> Msg:
    """A message whose wording depends on a count ("1 session", "4 sessions"); the count is
    also its `{n}` parameter. Babel extracts it with both forms."""
    return Msg(singular, tuple(sorted({"n": n, **params}.items())), plural, n)


@dataclass(frozen=True)
class Localized:
    """Content stored per language (course titles); falls back to English. A `title` is set
    in 《》 in Chinese text, as Chinese typography wants a work's title."""

    en: str
    zh: str = ""
    title: bool = False

    def pick(self, lang: str) -> str:
        return (self.zh if lang == "zh" else "") or self.en

    def in_sentence(self, lang: str) -> str:
        """As a sentence names it: a title inside Chinese text in 《》; elsewhere (a button, an
        invoice's title) it stands alone and `pick` gives it plain."""
        text = self.pick(lang)
        return f"《{text}》" if self.title and lang == "zh" and text else text


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str

    def format(self, lang: str) -> str:
        return _format_money(self.amount_minor, self.currency.upper(), lang)


@functools.lru_cache(maxsize=4096)
def _format_money(amount_minor: int, currency: str, lang: str) -> str:
    """Babel's formatting costs more than the rest of a catalogue page; prices repeat.
    Telegram Stars are no ISO currency (Babel would write "XTR500.00"): "500 ⭐", as Telegram
    shows them."""
    if currency == STARS:
        return f"{format_decimal(amount_minor, locale=_BABEL_LOCALE[lang])} ⭐"
    amount = to_major(amount_minor, currency)
    return format_currency(amount, currency, locale=_BABEL_LOCALE[lang])


@dataclass(frozen=True)
class When:
    """An instant shown in the reader's timezone; `time_only` shows just its clock time
    ("18:00"), where the day is said around it (a day's free times as buttons)."""

    instant: datetime
    time_only: bool = False


@dataclass(frozen=True)
class Day:
    """A calendar day (already in the reader's timezone), its weekday named in their
    language; `short` for a button."""

    day: date
    short: bool = False


# How the items of a list (`Lines(items, ", ")`) are separated in each language.
LIST_SEP = {"en": ", ", "zh": "、"}


@dataclass(frozen=True)
class Lines:
    """Several values shown one per line (or joined by `sep`)."""

    items: tuple[Any, ...]
    sep: str = "\n"

    def __init__(self, items: Any, sep: str = "\n") -> None:
        object.__setattr__(self, "items", tuple(items))
        object.__setattr__(self, "sep", sep)

    def as_msg(self) -> Msg:
        """These lines as one message (nothing to translate in the joining itself)."""
        return Msg("{lines}", (("lines", self),))


def render_value(value: Any, lang: str, tz: str) -> str:
    if isinstance(value, Lines):
        # A list in a Chinese sentence is enumerated with 、, not an ASCII comma, and each
        # title in it is set in 《》 as a title named alone in the sentence is.
        if value.sep != ", ":
            return value.sep.join(render_value(v, lang, tz) for v in value.items)
        return LIST_SEP[lang].join(
            v.in_sentence(lang) if isinstance(v, Localized) else render_value(v, lang, tz)
            for v in value.items
        )
    if isinstance(value, Msg):
        return value.render(lang, tz)
    if isinstance(value, Localized):
        return value.pick(lang)
    if isinstance(value, Money):
        return value.format(lang)
    if isinstance(value, When):
        if value.time_only:
            return value.instant.astimezone(ZoneInfo(tz)).strftime("%H:%M")
        return format_when(value.instant, lang, tz)
    if isinstance(value, Day):
        pattern = (_SHORT_DAY_PATTERN if value.short else _DAY_PATTERN)[lang]
        return format_date(value.day, pattern, locale=_BABEL_LOCALE[lang])
    return str(value)


def shown_instants(msg: Msg, lang: str, tz: str) -> tuple[tuple[str, int], ...]:
    """Each `When` in a message as this reader sees it rendered, with its Unix time.

    Platforms that show an instant in each viewer's own timezone (Discord's `<t:UNIX:F>`) swap
    the rendered text for their markup; other adapters ignore this.
    """
    found: dict[str, int] = {}

    def walk(value: Any) -> None:
        if isinstance(value, When) and not value.time_only:
            found.setdefault(format_when(value.instant, lang, tz), int(value.instant.timestamp()))
        elif isinstance(value, Msg):
            for _key, param in value.params:
                walk(param)
        elif isinstance(value, Lines):
            for item in value.items:
                walk(item)

    walk(msg)
    return tuple(found.items())


def format_when(instant: datetime, lang: str, tz: str) -> str:
    local = instant.astimezone(ZoneInfo(tz))
    text = format_datetime(local, _DATE_PATTERN[lang], locale=_BABEL_LOCALE[lang])
    return f"{text} ({tz})"


def normalize_language(code: str | None, default: str = "en") -> str:
    """Map a platform language code (`zh-hans`, `zh_CN`, `en-GB`) to a catalog we have."""
    if not code:
        return default
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else default


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=_BABEL_LOCALE[lang])
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)
