"""The /admin stats chart speaks the admin's language with a font that has its glyphs, and an
empty chart has sensible axes instead of matplotlib's −0.045..0.045."""

from __future__ import annotations

import warnings

from bot.core.clock import FakeClock
from bot.reporting.files import build_report, chart_figure, chart_fonts, chart_png
from bot.reporting.model import Report
from tests.support import Harness, buy


async def _report(h: Harness, clock: FakeClock) -> Report:
    async with h.app.new_uow() as uow:
        return await build_report(uow, h.app.config, clock.now())


def _render_warnings(report: Report, lang: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = chart_png(report, lang)
    assert png.startswith(b"\x89PNG")
    return [str(w.message) for w in caught]


async def test_a_chinese_chart_has_every_glyph(market: Harness, clock: FakeClock) -> None:
    """Rendering the zh chart warns of no glyph missing from the font (matplotlib's
    "Glyph … missing from font" for DejaVu Sans and Chinese text)."""
    await buy(market, "alice")
    report = await _report(market, clock)
    assert [w for w in _render_warnings(report, "zh") if "missing from font" in w] == []
    with chart_fonts():
        fig = chart_figure(report, "zh")
        texts = [fig.get_suptitle(), *(ax.get_ylabel() for ax in fig.axes)]
    assert "最近 12 周" in texts[0] and "辅导次数" in texts and "收入" in texts[1]


async def test_an_empty_chart_starts_at_zero_with_whole_ticks_and_says_so(
    harness: Harness, clock: FakeClock
) -> None:
    """No data: each count axis runs from 0 in whole numbers and shows "no data yet"."""
    report = await _report(harness, clock)
    with chart_fonts():
        fig = chart_figure(report, "en")
        fig.canvas.draw()
        revenue_ax, sessions_ax, score_ax = fig.axes
        for ax in (revenue_ax, sessions_ax):
            low, _high = ax.get_ylim()
            assert low == 0
            ticks = [t for t in ax.get_yticks() if low <= t <= ax.get_ylim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert "no revenue yet (demo payments are not counted)" in [
            t.get_text() for t in revenue_ax.texts
        ]
        assert "no data yet" in [t.get_text() for t in sessions_ax.texts]
        assert "no data yet" in [t.get_text() for t in score_ax.texts]


async def test_demo_payments_show_as_a_line_marked_not_counted(
    market: Harness, clock: FakeClock
) -> None:
    """A demo-paid order draws a dashed line labelled as not counted, and the note says
    there is no revenue yet: the demo's chart has something to show and says what it is."""
    await buy(market, "alice")
    report = await _report(market, clock)
    assert all(not w.revenue for w in report.weeks)
    with chart_fonts():
        revenue_ax = chart_figure(report, "en").axes[0]
    legend = [t.get_text() for t in revenue_ax.get_legend().get_texts()]
    assert legend == ["USD, demo payments (not counted)"]
    assert max(max(line.get_ydata()) for line in revenue_ax.get_lines()) == 49.0
    assert "no revenue yet (demo payments are not counted)" in [
        t.get_text() for t in revenue_ax.texts
    ]
