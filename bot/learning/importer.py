"""Importing lessons from TOML or Markdown files: `mentorbot lessons import FILE… [--course SLUG]`.

TOML (`course` and `drip_days` at the top are defaults for the file; paths are relative to it):

    course = "python-basics"
    drip_days = 3                      # optional: sets the course's drip (0: on demand only)

    [[lessons]]
    title = "Variables"
    body = '''Names for values…'''
    links = ["https://docs.python.org/3/tutorial/introduction.html"]
    files = ["handouts/variables.pdf"]
    # course = "other-course"; position = 1   (both optional)

Markdown (one file per course, `--course` names it): each `# Heading` starts a lesson whose body
is the text below it; a line that is only a link (`[text](https://…)` or `<https://…>`) becomes a
link button, and `![name](relative/path)` attaches that file.

An import is one transaction, checked in full before anything is written. It is repeatable: a
lesson whose course already has one with the same title is updated (body, links, files,
position) rather than added twice. A progress bar shows on stderr for large files.
"""

from __future__ import annotations

import mimetypes
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import delete, func, select

from bot.handlers.args import LIMITS
from bot.learning.lessons import rearm_course
from storage.models import Course, Lesson, LessonFile
from storage.uow import UnitOfWork

MD_LINK_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\((https?://[^)\s]+)\)|<(https?://[^>\s]+)>)\s*$")
MD_FILE_LINE = re.compile(r"^\s*!\[[^\]]*\]\(([^)]+)\)\s*$")


class LessonImportError(Exception):
    """A problem in an import file, naming the file and the lesson."""


@dataclass(frozen=True)
class FileSpec:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class LessonSpec:
    course: str
    title: str
    body: str = ""
    links: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    position: int | None = None


@dataclass(frozen=True)
class ImportPlan:
    lessons: list[LessonSpec]
    drip_days: dict[str, int]


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int


def read_files(paths: list[Path], course: str | None, max_file_kb: int) -> ImportPlan:
    """Parse and check every file; raises `LessonImportError` before anything is written."""
    lessons: list[LessonSpec] = []
    drip: dict[str, int] = {}
    for path in paths:
        if not path.is_file():
            raise LessonImportError(f"{path}: no such file")
        if path.suffix.lower() == ".toml":
            found, file_drip = _from_toml(path, course, max_file_kb)
            drip.update(file_drip)
        elif path.suffix.lower() in (".md", ".markdown"):
            if course is None:
                raise LessonImportError(f"{path}: Markdown needs --course SLUG")
            found = _from_markdown(path, course, max_file_kb)
        else:
            raise LessonImportError(f"{path}: expected a .toml or .md file")
        lessons.extend(found)
    return ImportPlan(lessons, drip)


def _load_file(base: Path, name: str, where: str, max_file_kb: int) -> FileSpec:
    path = (base / name).resolve()
    if not path.is_file():
        raise LessonImportError(f"{where}: file {name!r} not found (relative to {base})")
    data = path.read_bytes()
    if len(data) > max_file_kb * 1024:
        raise LessonImportError(
            f"{where}: file {name!r} is {len(data) // 1024} KB; [lessons] max_file_kb is "
            f"{max_file_kb}"
        )
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileSpec(path.name, kind, data)


def _check_links(links: list[Any], where: str) -> tuple[str, ...]:
    for link in links:
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise LessonImportError(f"{where}: a link must be an http(s) URL, got {link!r}")
    return tuple(links)


def _from_toml(
    path: Path, course: str | None, max_file_kb: int
) -> tuple[list[LessonSpec], dict[str, int]]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LessonImportError(f"{path}: not valid TOML: {exc}") from exc
    default_course = raw.get("course", course)
    entries = raw.get("lessons", [])
    if not isinstance(entries, list) or not entries:
        raise LessonImportError(f"{path}: no [[lessons]] found")
    drip: dict[str, int] = {}
    if "drip_days" in raw:
        days = raw["drip_days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 90:
            raise LessonImportError(f"{path}: drip_days must be a whole number from 0 to 90")
        if not isinstance(default_course, str):
            raise LessonImportError(f"{path}: drip_days needs a top-level course")
        drip[default_course.lower()] = days
    lessons = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path} lesson {i}"
        if not isinstance(entry, dict):
            raise LessonImportError(f"{where}: must be a table")
        unknown = set(entry) - {"title", "body", "links", "files", "course", "position"}
        if unknown:
            raise LessonImportError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        slug = entry.get("course", default_course)
        title = entry.get("title")
        if not isinstance(slug, str) or not slug:
            raise LessonImportError(f"{where}: no course (set course, or pass --course)")
        if not isinstance(title, str) or not title.strip():
            raise LessonImportError(f"{where}: a lesson needs a title")
        body = entry.get("body", "")
        position = entry.get("position")
        if not isinstance(body, str):
            raise LessonImportError(f"{where}: body must be text")
        if position is not None and (not isinstance(position, int) or position < 0):
            raise LessonImportError(f"{where}: position must be a whole number")
        files = entry.get("files", [])
        links = entry.get("links", [])
        if not isinstance(files, list) or not isinstance(links, list):
            raise LessonImportError(f"{where}: links and files must be lists")
        lessons.append(
            LessonSpec(
                course=slug.lower(),
                title=_title(title, where),
                body=body.strip(),
                links=_check_links(links, where),
                files=tuple(
                    _load_file(path.parent, str(name), where, max_file_kb) for name in files
                ),
                position=position,
            )
        )
    return lessons, drip


def _title(title: str, where: str) -> str:
    """A lesson's title as the chat's `/admin lesson` takes it: refused, not cut, when longer
    than `LIMITS["title"]`, so the import stops before anything is written."""
    title = title.strip()
    if len(title) > LIMITS["title"]:
        raise LessonImportError(
            f"{where}: a title can be at most {LIMITS['title']} characters; this one has "
            f"{len(title)}"
        )
    return title


def _from_markdown(path: Path, course: str, max_file_kb: int) -> list[LessonSpec]:
    lessons: list[LessonSpec] = []
    title: str | None = None
    body: list[str] = []
    links: list[str] = []
    files: list[FileSpec] = []

    def close() -> None:
        if title is not None:
            lessons.append(
                LessonSpec(
                    course.lower(), title, "\n".join(body).strip(), tuple(links), tuple(files)
                )
            )

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# "):
            close()
            title, body, links, files = line[2:].strip(), [], [], []
            if not title:
                raise LessonImportError(f"{path}:{lineno}: a lesson needs a title")
            title = _title(title, f"{path}:{lineno}")
            continue
        if title is None:
            if line.strip():
                raise LessonImportError(f"{path}:{lineno}: text before the first '# Title'")
            continue
        link = MD_LINK_LINE.match(line)
        attached = MD_FILE_LINE.match(line)
        if link:
            links.append(link.group(1) or link.group(2))
        elif attached and not attached.group(1).startswith(("http://", "https://")):
            files.append(
                _load_file(path.parent, attached.group(1), f"{path}:{lineno}", max_file_kb)
            )
        else:
            body.append(line)
    close()
    if not lessons:
        raise LessonImportError(f"{path}: no lessons ('# Title' lines) found")
    return lessons


async def apply_plan(
    uow: UnitOfWork, plan: ImportPlan, now: datetime, step: Callable[[], None] = lambda: None
) -> ImportReport:
    """Write the plan's lessons (adding new titles, updating known ones); `step` after each."""
    slugs = {spec.course for spec in plan.lessons} | set(plan.drip_days)
    courses = {
        c.slug: c
        for c in (await uow.session.execute(select(Course).where(Course.slug.in_(slugs)))).scalars()
    }
    missing = sorted(slugs - set(courses))
    if missing:
        raise LessonImportError(f"no course called {', '.join(missing)}; add it first")
    existing: dict[tuple[int, str], Lesson] = {}
    last: dict[int, int] = {}
    for course in courses.values():
        for lesson in (
            await uow.session.execute(select(Lesson).where(Lesson.course_id == course.id))
        ).scalars():
            existing[(course.id, lesson.title)] = lesson
        top = await uow.session.execute(
            select(func.max(Lesson.position)).where(Lesson.course_id == course.id)
        )
        last[course.id] = top.scalar_one() or 0
    added = updated = 0
    for spec in plan.lessons:
        course = courses[spec.course]
        known = existing.get((course.id, spec.title))
        if known is None:
            position = spec.position if spec.position is not None else last[course.id] + 1
            lesson = Lesson(
                course_id=course.id,
                position=position,
                title=spec.title,
                body=spec.body,
                links=list(spec.links),
                status="active",
                created_at=now,
            )
            uow.add(lesson)
            await uow.flush()
            existing[(course.id, spec.title)] = lesson
            added += 1
        else:
            lesson = known
            lesson.body, lesson.links = spec.body, list(spec.links)
            if spec.position is not None:
                lesson.position = spec.position
            await uow.session.execute(delete(LessonFile).where(LessonFile.lesson_id == lesson.id))
            updated += 1
        last[course.id] = max(last[course.id], lesson.position)
        for file in spec.files:
            uow.add(
                LessonFile(
                    lesson_id=lesson.id,
                    filename=file.filename,
                    content_type=file.content_type,
                    data=file.data,
                )
            )
        step()
    for slug, days in plan.drip_days.items():
        courses[slug].lesson_drip_days = days
    for course in courses.values():
        await rearm_course(uow, course.id, now)
    await uow.flush()
    return ImportReport(added, updated)


class ProgressBar:
    """`label [#####-----] 50/100` on one line of `stream`, redrawn when the percent moves."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30):
        self.total, self.label, self.width = max(total, 1), label, width
        self.stream = stream or sys.stderr
        self.done = 0
        self._shown = -1

    def step(self) -> None:
        self.done += 1
        percent = self.done * 100 // self.total
        if percent != self._shown:
            self._shown = percent
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
