"""A course as the catalogue shows it: its title in the reader's language, its price, found by slug.

Every module that names or prices a course uses these, so a course reads the same in a
confirmation, a reminder, a receipt and an admin view.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select

from bot.core.errors import NotFound
from bot.core.i18n import Localized, Money, _, clip
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


def course_price(course: Course) -> Money:
    """The course's current price, for new orders; an order keeps the price it was sold at."""
    return Money(course.price_minor, course.currency)


async def course_by_slug(uow: UnitOfWork, slug: str, *, active_only: bool = True) -> Course:
    """The course called `slug` (case-insensitive); archived ones only when asked for."""
    course = (
        await uow.session.execute(select(Course).where(Course.slug == slug.lower()))
    ).scalar_one_or_none()
    if course is None or (active_only and course.status != "active"):
        raise NotFound(_("There is no course called '{slug}'. See /courses.", slug=clip(slug)))
    return course
