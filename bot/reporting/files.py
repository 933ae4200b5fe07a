"""The admin report as files: a PNG chart and CSV, for `/admin stats` and `mentorbot report`.

The chart is drawn with matplotlib's object API on the Agg canvas (no display, no global pyplot
state, safe in a worker thread), labelled in the admin's language with Noto Sans CJK, a font
shipped by a PyPI package (nothing is downloaded at run time). CSV amounts are in each
currency's major unit (49.00 USD). CSV headers are in the reader's language too: in English
they are the column names programs read (`week_start`, `revenue_USD`), in Chinese their
translations (`周起始日`, `收入（USD）`); a mentor's status is named in words.

Every CSV the bot writes goes through `csv_file`, because names and titles people typed end
up in cells that a spreadsheet opens: a cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return would run as a formula (`=HYPERLINK(…)`), so such a cell is written with a `'`
in front (OWASP's advice against CSV injection). Numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.config import Config
from bot.core.errors import STATUS_NAMES
from bot.core.i18n import Msg, _
from bot.core.money import to_major
from bot.reporting.model import Report, build
from bot.reporting.records import gather
from bot.reporting.satisfaction import Satisfaction
from storage.uow import UnitOfWork

CHART_SIZE = (1200, 900)  # pixels
_DPI = 100


async def build_report(
    uow: UnitOfWork, config: Config, now: datetime, *, breakdowns: bool = True
) -> Report:
    """The 12-week report; without `breakdowns`, only the weekly series and the overall
    score (what `/admin stats` and its chart show), which reads far less at scale."""
    return build(await gather(uow, config, now, breakdowns=breakdowns), config)


def major(amount_minor: int, currency: str) -> Decimal:
    """Minor units as a decimal amount in the currency's major unit (4900 USD → 49.00)."""
    return to_major(amount_minor, currency)


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def cell(value: Any) -> Any:
    """A value as a CSV cell no spreadsheet runs as a formula."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    return value if _NUMBER.fullmatch(value) else f"'{value}"


def csv_file(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A UTF-8 CSV file of these rows, every cell made safe to open (`cell`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([cell(value) for value in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def _score_cells(s: Satisfaction) -> list[str]:
    return [
        _num(s.index),
        _num(s.resources),
        _num(s.mentors),
        _num(s.support),
        _num(s.speed),
        _num(s.reliability),
    ]


# Column names: in English the msgid itself (what programs read), in Chinese its translation.
SCORE_COLUMNS = (
    _("satisfaction"),
    _("resources"),
    _("mentors"),
    _("support"),
    _("speed"),
    _("reliability"),
)


def csv_header(columns: Iterable[Msg], lang: str) -> list[str]:
    """A CSV's column names in `lang`: every CSV the bot writes is headed through this."""
    return [column.render(lang) for column in columns]


def weekly_csv(report: Report, lang: str = "en") -> bytes:
    cur = report.currencies
    header = [
        _("week_start"),
        *(_("revenue_{currency}", currency=c) for c in cur),
        *(_("revenue_growth_pct_{currency}", currency=c) for c in cur),
        _("learners"),
        _("sessions_completed"),
        _("no_shows"),
        _("lessons_delivered"),
        _("lessons_done"),
        _("requests"),
        _("learning_efficiency"),
        *SCORE_COLUMNS,
    ]
    return csv_file(
        csv_header(header, lang),
        (
            [
                w.start.date().isoformat(),
                *(str(major(w.revenue.get(c, 0), c)) for c in cur),
                *(_num(w.growth.get(c)) for c in cur),
                w.learners,
                w.sessions_completed,
                w.no_shows,
                w.lessons_delivered,
                w.lessons_done,
                w.requests,
                _num(w.efficiency, 2),
                *_score_cells(w.score),
            ]
            for w in report.weeks
        ),
    )


def courses_csv(report: Report, lang: str = "en") -> bytes:
    cur = report.currencies
    header = [
        _("course_id"),
        _("slug"),
        _("title"),
        _("learners"),
        *(_("revenue_{currency}", currency=c) for c in cur),
        _("lessons"),
        _("lessons_done"),
        _("lesson_ratings"),
        _("session_ratings"),
        _("sessions_completed"),
        _("no_shows"),
        *SCORE_COLUMNS,
    ]
    return csv_file(
        csv_header(header, lang),
        (
            [
                b.id,
                b.label,
                b.name,
                b.learners,
                *(str(major(b.revenue.get(c, 0), c)) for c in cur),
                b.lessons,
                b.lessons_done,
                len(b.inputs.lesson_stars),
                len(b.inputs.session_stars),
                b.inputs.sessions_completed,
                b.inputs.sessions_no_show,
                *_score_cells(b.score),
            ]
            for b in report.courses
        ),
    )


def mentors_csv(report: Report, lang: str = "en") -> bytes:
    header = [
        _("mentor_id"),
        _("name"),
        _("status"),
        _("sessions_completed"),
        _("no_shows"),
        _("ratings"),
        _("average_stars"),
        _("requests_accepted"),
        _("median_hours_to_accept"),
        *SCORE_COLUMNS,
    ]
    return csv_file(
        csv_header(header, lang),
        (
            [
                b.id,
                b.name,
                STATUS_NAMES[b.label].render(lang) if b.label in STATUS_NAMES else b.label,
                b.inputs.sessions_completed,
                b.inputs.sessions_no_show,
                len(b.inputs.session_stars),
                _num(sum(b.inputs.session_stars) / len(b.inputs.session_stars), 2)
                if b.inputs.session_stars
                else "",
                b.accepted,
                _num(b.median_accept_hours),
                *_score_cells(b.score),
            ]
            for b in report.mentors
        ),
    )


def csv_files(report: Report, lang: str = "en") -> dict[str, bytes]:
    """weekly.csv, courses.csv and mentors.csv, headed in `lang`."""
    return {
        "weekly.csv": weekly_csv(report, lang),
        "courses.csv": courses_csv(report, lang),
        "mentors.csv": mentors_csv(report, lang),
    }


@functools.cache
def cjk_font() -> str:
    """The family name of the CJK font shipped by the `cvttf-NotoSansCJK-Regular` package
    (Noto Sans CJK, SIL OFL), registered with matplotlib on first use; it covers Latin too."""
    from cvttf_NotoSansCJK_Regular import get_TTF_path
    from matplotlib import font_manager

    path = get_TTF_path()
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


def chart_png(report: Report, lang: str = "en") -> bytes:
    """Revenue, sessions and satisfaction per week, as a PNG of `CHART_SIZE` pixels, labelled
    in `lang`."""
    with chart_fonts():
        buf = io.BytesIO()
        chart_figure(report, lang).savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


@contextlib.contextmanager
def chart_fonts() -> Iterator[None]:
    """Draw and save the chart inside this: its font is the one that has the glyphs."""
    from matplotlib import rc_context

    with rc_context({"font.family": [cjk_font()], "axes.unicode_minus": False}):
        yield


def chart_figure(report: Report, lang: str = "en") -> Any:
    """The chart as a matplotlib Figure (draw it inside `chart_fonts()`). Empty
    axes start at 0 with whole-number ticks and say there is no data yet."""
    # Imported on use: matplotlib takes a while to load, and only admins' reports need it.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    def t(msg: Msg) -> str:
        return msg.render(lang)

    with chart_fonts():
        weeks = report.weeks
        labels = [w.start.strftime("%m-%d") for w in weeks]
        x = list(range(len(weeks)))
        fig = Figure(figsize=(CHART_SIZE[0] / _DPI, CHART_SIZE[1] / _DPI), dpi=_DPI)
        revenue_ax, sessions_ax, score_ax = fig.subplots(3, 1, sharex=True)
        fig.suptitle(t(_("Last {n} weeks (UTC, weeks start on Monday)", n=len(weeks))))
        currencies = report.currencies
        revenue = {c: [float(major(w.revenue.get(c, 0), c)) for w in weeks] for c in currencies}
        demo_currencies = sorted({c for w in weeks for c in w.demo_revenue})
        demo = {
            c: [float(major(w.demo_revenue.get(c, 0), c)) for w in weeks] for c in demo_currencies
        }
        for currency, values in revenue.items():
            revenue_ax.plot(x, values, marker="o", label=currency)
        for currency, values in demo.items():
            revenue_ax.plot(
                x,
                values,
                linestyle="--",
                marker=".",
                color="grey",
                label=t(_("{currency}, demo payments (not counted)", currency=currency)),
            )
        shown = sorted(set(currencies) | set(demo_currencies))
        if shown:
            revenue_ax.legend(loc="upper left")
        revenue_ax.set_ylabel(
            t(_("Revenue ({currencies})", currencies=", ".join(shown)))
            if shown
            else t(_("Revenue"))
        )
        amounts = [v for vs in revenue.values() for v in vs]
        drawn = amounts + [v for vs in demo.values() for v in vs]
        if any(drawn):
            revenue_ax.set_ylim(bottom=min(0.0, *drawn))  # from 0 unless refunds outweigh
        if not any(amounts):
            note = _("no revenue yet (demo payments are not counted)")
            if any(drawn):
                _no_data_note(revenue_ax, t, note, y=0.85)
            else:
                _empty_axis(revenue_ax, True, t, note)
        completed = [w.sessions_completed for w in weeks]
        no_shows = [w.no_shows for w in weeks]
        sessions_ax.bar(x, completed, label=t(_("completed")))
        sessions_ax.bar(x, no_shows, bottom=completed, label=t(_("no-shows")))
        sessions_ax.set_ylabel(t(_("Sessions")))
        sessions_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        sessions_ax.legend(loc="upper left")
        _empty_axis(sessions_ax, not any(completed) and not any(no_shows), t)
        nan = float("nan")
        names = {
            "index": _("satisfaction"),
            "resources": _("resources"),
            "mentors": _("mentors"),
            "support": _("support"),
        }
        scored = False
        for name, style in (("index", "-"), ("resources", ":"), ("mentors", ":"), ("support", ":")):
            scores: list[float | None] = [getattr(w.score, name) for w in weeks]
            scored = scored or any(v is not None for v in scores)
            score_ax.plot(
                x,
                [nan if v is None else v for v in scores],
                linestyle=style,
                marker="o",
                label=t(names[name]),
            )
        score_ax.set_ylim(0, 100)
        score_ax.set_ylabel(t(_("Satisfaction (0 to 100)")))
        score_ax.legend(loc="lower left", ncols=4)
        if not scored:
            _no_data_note(score_ax, t)
        score_ax.set_xticks(x, labels)
        score_ax.set_xlabel(t(_("Week starting (month-day)")))
        for ax in (revenue_ax, sessions_ax, score_ax):
            ax.grid(alpha=0.3)
    return fig


def _empty_axis(ax: Any, empty: bool, t: Callable[[Msg], str], note: Msg | None = None) -> None:
    """An axis with nothing to show runs from 0 to 5 in whole numbers (not matplotlib's
    −0.045..0.045 around a flat zero line) and says there is no data yet."""
    if not empty:
        return
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(0, 5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _no_data_note(ax, t, note)


def _no_data_note(
    ax: Any, t: Callable[[Msg], str], note: Msg | None = None, y: float = 0.5
) -> None:
    ax.text(
        0.5,
        y,
        t(note or _("no data yet")),
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="grey",
    )
