"""The admin's command-line tools: `mentorbot report --out DIR` and `mentorbot lessons import`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.config import Config
from bot.core.i18n import LANGUAGES
from bot.learning.importer import LessonImportError, ProgressBar, apply_plan, read_files
from bot.reporting.design import gather as design_weeks
from bot.reporting.design import models_csv, weeks_msg
from bot.reporting.files import build_report, chart_png, csv_files
from bot.reporting.workshops import workshop_stats, workshops_csv

# Imports this many lessons or more show a progress bar.
PROGRESS_FROM = 20


async def write_report(config: Config, out: Path, lang: str = "en") -> int:
    """Write stats.png, weekly.csv, courses.csv, mentors.csv, workshops.csv and the design's
    models (models.csv, models.txt) into `out` (created if need be), the chart labelled and
    every CSV headed in `lang`; models.txt holds both languages."""
    from bot.runtime.bootstrap import build_marketplace

    app = await build_marketplace(config)
    try:
        async with app.new_uow() as uow:
            report = await build_report(uow, config, app.clock.now())
            workshops = workshops_csv(await workshop_stats(uow), lang)
            design = await design_weeks(
                uow, report, config.models, config.satisfaction.accept_target_hours
            )
    finally:
        await app.engine.dispose()
    text = "\n\n".join(weeks_msg(design).render(language) for language in LANGUAGES)
    files = {
        "stats.png": chart_png(report, lang),
        **csv_files(report, lang),
        "workshops.csv": workshops,
        "models.csv": models_csv(design),  # learning efficiency and revenue growth
        "models.txt": (text + "\n").encode("utf-8"),  # the same, in English and Chinese
    }
    try:
        written = await asyncio.to_thread(_write, out, files)
    except OSError as exc:
        print(f"mentorbot: cannot write the report into {out}: {exc.strerror}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _write(out: Path, files: dict[str, bytes]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return [out / name for name in files]


async def import_lessons(config: Config, paths: list[Path], course: str | None) -> int:
    """Check every file, then add or update their lessons in one transaction."""
    from bot.runtime.bootstrap import build_marketplace

    try:
        plan = read_files(paths, course, config.lessons.max_file_kb)
    except LessonImportError as exc:
        print(f"mentorbot: {exc}", file=sys.stderr)
        return 2
    app = await build_marketplace(config)
    bar = ProgressBar(len(plan.lessons), "Importing lessons")
    try:
        async with app.new_uow() as uow:
            step = bar.step if len(plan.lessons) >= PROGRESS_FROM else (lambda: None)
            result = await apply_plan(uow, plan, app.clock.now(), step)
            await uow.commit()
    except LessonImportError as exc:
        print(f"mentorbot: {exc}; nothing was imported", file=sys.stderr)
        return 2
    finally:
        if len(plan.lessons) >= PROGRESS_FROM:
            bar.close()
        await app.engine.dispose()
    print(f"lessons imported: {result.added} added, {result.updated} updated")
    return 0
