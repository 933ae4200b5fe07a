"""A course as the catalogue shows it: its title in the reader's language, its price, found by slug.

Every module that names or prices a course uses these, so a course reads the same in a
confirmation, a reminder, a receipt and an admin view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select

from bot.core.errors import NotFound
from bot.core.i18n import Lines, Localized, Money, Msg, _, clip
from storage.models import Course
from storage.uow import UnitOfWork


class Titled(Protocol):
    """A course row or a copy of its titles (the recommender's `CourseDoc`)."""

    @property
    def title_en(self) -> str: ...
    @property
    def title_zh(self) -> str: ...


def course_title(course: Titled) -> Localized:
    """The title in the reader's language (English where no Chinese title was given), in 《》
    in Chinese text."""
    return Localized(course.title_en, course.title_zh, title=True)


class Priced(Protocol):
    @property
    def price_minor(self) -> int: ...
    @property
    def currency(self) -> str: ...


def course_price(course: Priced) -> Money:
    """The course's current price, for new orders; an order keeps the price it was sold at."""
    return Money(course.price_minor, course.currency)


async def course_by_slug(uow: UnitOfWork, slug: str, *, active_only: bool = True) -> Course:
    """The course called `slug` (case-insensitive); archived ones only when asked for."""
    course = (
        await uow.session.execute(select(Course).where(Course.slug == slug.lower()))
    ).scalar_one_or_none()
    if course is None or (active_only and course.status != "active"):
        raise NotFound(await _no_such_course(uow, slug, active_only))
    return course


SLUGS_NAMED = 12  # short names a refusal lists; a larger catalogue is browsed with /courses


async def _no_such_course(uow: UnitOfWork, slug: str, active_only: bool) -> Msg:
    """The refusal of an unknown slug, with the short names that would have worked: the
    catalogue's buttons never show them, and an admin typing `course=` needs them."""
    query = select(Course.slug).order_by(Course.id).limit(SLUGS_NAMED + 1)
    if active_only:
        query = query.where(Course.status == "active")
    slugs = list((await uow.session.execute(query)).scalars())
    refusal = _("There is no course called '{slug}'. See /courses.", slug=clip(slug))
    if not slugs:
        return refusal
    named = Lines([*slugs[:SLUGS_NAMED], *(["…"] if len(slugs) > SLUGS_NAMED else [])], ", ")
    return _("{refusal} Their short names: {slugs}.", refusal=refusal, slugs=named)


@dataclass(frozen=True)
class Listed:
    """One active course as the catalogue lists it: a copy, safe to keep across transactions."""

    id: int
    slug: str
    title_en: str
    title_zh: str
    price_minor: int
    currency: str
    sessions_included: int


@dataclass
class Catalogue:
    """The active courses per database, kept with the key of the recommender's inputs
    (`bot.recommending.signals.Versions.model`) they were read under. Every edit of a course
    writes a `model_changes` row in its own transaction (storage/changes.py), so an unchanged key
    means the courses table reads the same, in this process or any other: `/courses` and the
    "Browse courses" button, most of what learners press, then load no course rows."""

    kept: dict[int, tuple[str, tuple[Listed, ...]]] = field(default_factory=dict)

    async def active(self, uow: UnitOfWork, key: str) -> tuple[Listed, ...]:
        where = id(uow.session.bind)
        found = self.kept.get(where)
        if found is not None and found[0] == key:
            return found[1]
        rows = await uow.session.execute(
            select(
                Course.id,
                Course.slug,
                Course.title_en,
                Course.title_zh,
                Course.price_minor,
                Course.currency,
                Course.sessions_included,
            )
            .where(Course.status == "active")
            .order_by(Course.id)
        )
        courses = tuple(Listed(*row) for row in rows)
        self.kept[where] = (key, courses)
        return courses


CATALOGUE = Catalogue()
