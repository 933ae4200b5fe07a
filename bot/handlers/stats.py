"""`/admin stats` beyond the counts: the satisfaction model, weekly trends as a chart, per-course
and per-mentor breakdowns and a CSV export (numbers from `bot/reporting/files.py`).

`/admin stats` adds a summary and the 12-week PNG chart; `/admin stats courses|mentors` shows a
breakdown; `/admin stats csv` sends weekly.csv, courses.csv and mentors.csv; `/admin stats
recommendations` how suggestions did against the popularity baseline (bot/handlers/recommend.py).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.context import Ctx
from bot.core.errors import STATUS_NAMES
from bot.core.i18n import Lines, Localized, Money, Msg, When, _
from bot.core.replies import Attachment, Choice
from bot.handlers.recommend import recommendation_stats
from bot.learning.courses import course_title
from bot.reporting.design import gather as design_weeks
from bot.reporting.design import rescaled_note, week_msg
from bot.reporting.files import build_report, chart_png, csv_files
from bot.reporting.model import Breakdown, Report
from bot.reporting.workshops import workshop_stats, workshops_csv
from storage.models import Course

DETAILS = ("courses", "mentors", "csv", "workshops", "recommendations")


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def stars_text(stars: list[int] | tuple[int, ...]) -> Msg | str:
    if not stars:
        return "—"
    return _("{stars}★ ({n})", stars=f"{sum(stars) / len(stars):.1f}", n=len(stars))


def revenue_text(revenue: dict[str, int]) -> Lines | str:
    shown = [Money(amount, cur) for cur, amount in sorted(revenue.items()) if amount]
    return Lines(shown, ", ") if shown else "—"


def _growth(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0f}%"


async def stats_summary(ctx: Ctx) -> None:
    """The satisfaction index, last week's revenue (ledger sums, demo left out) and learning,
    and the chart."""
    report = await build_report(ctx.uow, ctx.config, ctx.now(), breakdowns=False)
    png = await asyncio.to_thread(chart_png, report, ctx.actor.user.language)
    last = report.weeks[-2]
    overall = report.overall
    revenue: list[Msg] = [
        _(
            "{amount} ({growth} on the week before)",
            amount=Money(amount, cur),
            growth=_growth(last.growth.get(cur)),
        )
        for cur, amount in sorted(last.revenue.items())
    ]
    design = await design_weeks(
        ctx.uow, report, ctx.config.models, ctx.config.satisfaction.accept_target_hours, last=2
    )
    summary = _(
        "Last {weeks} weeks\nSatisfaction: {index} of 100 (resources {resources} · mentors "
        "{mentors} · support {support})\nWeek from {week}: revenue {revenue}; learning "
        "efficiency {efficiency} sessions and lessons per learner ({learners} learners)",
        weeks=len(report.weeks),
        index=score(overall.index),
        resources=score(overall.resources),
        mentors=score(overall.mentors),
        support=score(overall.support),
        week=When(last.start),
        revenue=Lines(revenue, ", ") if revenue else "—",
        efficiency=f"{last.efficiency:.2f}",
        learners=last.learners,
    )
    models = _(
        "The design's models, week from {week}:\n{models}\n{note}",
        week=When(last.start),
        models=week_msg(design[-2]),
        note=rescaled_note(),
    )
    ctx.say(
        Lines([summary, models]).as_msg(),
        [
            Choice(_("By course"), "/admin stats courses"),
            Choice(_("By mentor"), "/admin stats mentors"),
            Choice(_("CSV export"), "/admin stats csv"),
        ],
        attachments=(Attachment("stats.png", "image/png", png),),
    )


async def stats_detail(ctx: Ctx, args: list[str]) -> None:
    """`/admin stats courses|mentors|csv`."""
    what = args[0]  # one of DETAILS: the front door refuses any other word
    if what == "workshops":
        await _workshop_lines(ctx)
        return
    if what == "recommendations":
        await recommendation_stats(ctx)
        return
    report = await build_report(ctx.uow, ctx.config, ctx.now())
    if what == "csv":
        files = {
            **csv_files(report, ctx.actor.user.language),
            "workshops.csv": workshops_csv(await workshop_stats(ctx.uow), ctx.actor.user.language),
        }
        ctx.say(
            _(
                "The last {weeks} weeks as CSV: {files}.",
                weeks=len(report.weeks),
                files=Lines(files, ", "),
            ),
            attachments=tuple(Attachment(n, "text/csv", data) for n, data in files.items()),
        )
    elif what == "courses":
        courses = (await ctx.uow.session.execute(select(Course))).scalars()
        ctx.say(_course_lines(report, {c.id: course_title(c) for c in courses}))
    else:
        ctx.say(_mentor_lines(report))


def _course_lines(report: Report, titles: dict[int, Localized]) -> Msg:
    """Each course's numbers, its title in the reader's language."""

    def line(b: Breakdown) -> Msg:
        return _(
            "{slug} — {title}: learners {learners} · revenue {revenue} · lessons {lessons} "
            "(done {done}, {lesson_stars}) · sessions {sessions} ({session_stars}) · "
            "satisfaction {index}",
            slug=b.label,
            title=titles.get(b.id, Localized(b.name)),
            learners=b.learners,
            revenue=revenue_text(b.revenue),
            lessons=b.lessons,
            done=b.lessons_done,
            lesson_stars=stars_text(list(b.inputs.lesson_stars)),
            sessions=b.inputs.sessions_completed,
            session_stars=stars_text(list(b.inputs.session_stars)),
            index=score(b.score.index),
        )

    return _(
        "By course, last {weeks} weeks:\n{list}",
        weeks=len(report.weeks),
        list=Lines(line(b) for b in report.courses) if report.courses else "—",
    )


def _mentor_lines(report: Report) -> Msg:
    def line(b: Breakdown) -> Msg:
        return _(
            "#{id} {name} ({status}): sessions {sessions} · no-shows {noshows} · {stars} · "
            "accepted {accepted}, median wait {hours} h · score {index}",
            id=b.id,
            name=b.name,
            status=STATUS_NAMES.get(b.label, Msg(b.label)),
            sessions=b.inputs.sessions_completed,
            noshows=b.inputs.sessions_no_show,
            stars=stars_text(list(b.inputs.session_stars)),
            accepted=b.accepted,
            hours="—" if b.median_accept_hours is None else f"{b.median_accept_hours:.1f}",
            index=score(b.score.index),
        )

    return _(
        "By mentor, last {weeks} weeks:\n{list}",
        weeks=len(report.weeks),
        list=Lines(line(b) for b in report.mentors) if report.mentors else "—",
    )


async def _workshop_lines(ctx: Ctx) -> None:
    """`/admin stats workshops`: each workshop's attendance and what its seats brought in."""
    stats = await workshop_stats(ctx.uow, limit=50)
    lines = [
        _(
            "#{id} {title} ({when}, {host}, {status}): {seated} of {seats} seated, {came} came, "
            "{absent} absent · {credits} credits · revenue {revenue}",
            id=s.id,
            title=s.title,
            when=When(s.start),
            host=s.host,
            status=STATUS_NAMES.get(s.status, Msg(s.status)),
            seated=s.seated,
            seats=s.seats,
            came=s.attended,
            absent=s.absent,
            credits=s.credits,
            revenue=revenue_text(s.revenue),
        )
        for s in stats
    ]
    ctx.say(_("Workshops, latest first:\n{list}", list=Lines(lines) if lines else "—"))
