"""The admin report as files: a PNG chart and CSV, for `/admin stats` and `mentorbot report`.

The chart is drawn with matplotlib's object API on the Agg canvas (no display, no global pyplot
state, safe in a worker thread); its labels are English because they are data labels and the
default font has no Chinese glyphs. CSV amounts are in each currency's major unit (49.00 USD).

Every CSV the bot writes goes through `csv_file`, because names and titles people typed end
up in cells that a spreadsheet opens: a cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return would run as a formula (`=HYPERLINK(…)`), so such a cell is written with a `'`
in front (OWASP's advice against CSV injection). Numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.config import Config
from bot.core.money import to_major
from bot.reporting.model import Report, build
from bot.reporting.records import gather
from bot.reporting.satisfaction import Satisfaction
from storage.uow import UnitOfWork

CHART_SIZE = (1200, 900)  # pixels
_DPI = 100


async def build_report(uow: UnitOfWork, config: Config, now: datetime) -> Report:
    return build(await gather(uow, config, now), config)


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


SCORE_COLUMNS = ["satisfaction", "resources", "mentors", "support", "speed", "reliability"]


def weekly_csv(report: Report) -> bytes:
    cur = report.currencies
    header = [
        "week_start",
        *(f"revenue_{c}" for c in cur),
        *(f"revenue_growth_pct_{c}" for c in cur),
        "learners",
        "sessions_completed",
        "no_shows",
        "lessons_delivered",
        "lessons_done",
        "requests",
        "learning_efficiency",
        *SCORE_COLUMNS,
    ]
    return csv_file(
        header,
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


def courses_csv(report: Report) -> bytes:
    cur = report.currencies
    header = [
        "course_id",
        "slug",
        "title",
        "learners",
        *(f"revenue_{c}" for c in cur),
        "lessons",
        "lessons_done",
        "lesson_ratings",
        "session_ratings",
        "sessions_completed",
        "no_shows",
        *SCORE_COLUMNS,
    ]
    return csv_file(
        header,
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


def mentors_csv(report: Report) -> bytes:
    header = [
        "mentor_id",
        "name",
        "status",
        "sessions_completed",
        "no_shows",
        "ratings",
        "average_stars",
        "requests_accepted",
        "median_hours_to_accept",
        *SCORE_COLUMNS,
    ]
    return csv_file(
        header,
        (
            [
                b.id,
                b.name,
                b.label,
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


def csv_files(report: Report) -> dict[str, bytes]:
    return {
        "weekly.csv": weekly_csv(report),
        "courses.csv": courses_csv(report),
        "mentors.csv": mentors_csv(report),
    }


def chart_png(report: Report) -> bytes:
    """Revenue, sessions and satisfaction per week, as a PNG of `CHART_SIZE` pixels."""
    # Imported on use: matplotlib takes a while to load, and only admins' reports need it.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    weeks = report.weeks
    labels = [w.start.strftime("%m-%d") for w in weeks]
    x = list(range(len(weeks)))
    fig = Figure(figsize=(CHART_SIZE[0] / _DPI, CHART_SIZE[1] / _DPI), dpi=_DPI)
    revenue_ax, sessions_ax, score_ax = fig.subplots(3, 1, sharex=True)
    fig.suptitle(f"Last {len(weeks)} weeks (UTC, weeks start Monday)")
    for currency in report.currencies:
        revenue_ax.plot(
            x,
            [float(major(w.revenue.get(currency, 0), currency)) for w in weeks],
            marker="o",
            label=currency,
        )
    if report.currencies:
        revenue_ax.legend(loc="upper left")
    revenue_ax.set_ylabel("Revenue")
    sessions_ax.bar(x, [w.sessions_completed for w in weeks], label="completed")
    sessions_ax.bar(
        x,
        [w.no_shows for w in weeks],
        bottom=[w.sessions_completed for w in weeks],
        label="no-shows",
    )
    sessions_ax.set_ylabel("Sessions")
    sessions_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    sessions_ax.legend(loc="upper left")
    nan = float("nan")
    for name, style in (
        ("index", "-"),
        ("resources", ":"),
        ("mentors", ":"),
        ("support", ":"),
    ):
        values: list[float | None] = [getattr(w.score, name) for w in weeks]
        score_ax.plot(
            x,
            [nan if v is None else v for v in values],
            linestyle=style,
            marker="o",
            label="satisfaction" if name == "index" else name,
        )
    score_ax.set_ylim(0, 100)
    score_ax.set_ylabel("Satisfaction (0-100)")
    score_ax.legend(loc="lower left", ncols=4)
    score_ax.set_xticks(x, labels)
    for ax in (revenue_ax, sessions_ax, score_ax):
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()
