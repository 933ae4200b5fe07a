"""Mentors to suggest for a course the learner has not asked a mentor for yet: the best of
`bot/matching.py`'s ranking (topics and level, rating, load, a previous mentor), with its
explanation as the reason. Nothing is offered: the learner asks with `/mentor SLUG`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.config import Config
from bot.core.i18n import Msg, _
from bot.learning.courses import course_title
from bot.matching import RequestNeeds, rank_mentors
from bot.mentoring.offers import load_candidates, rating_history
from storage.models import Course, Enrollment, MentorProfile, MentorshipRequest, User
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class MentorSuggestion:
    course: Course
    mentor_id: int
    mentor_name: str
    why: Msg

    def line(self) -> Msg:
        return _(
            "For {title}: {mentor} — {why}",
            title=course_title(self.course),
            mentor=self.mentor_name,
            why=self.why,
        )


async def mentors_for_new_requests(
    uow: UnitOfWork, config: Config, user: User, level: int | None, now: datetime
) -> list[MentorSuggestion]:
    """For each course the learner has sessions left on and has not asked a mentor for, the
    mentor matching would rank first."""
    asked = select(MentorshipRequest.enrollment_id).where(MentorshipRequest.learner_id == user.id)
    rows = (
        await uow.session.execute(
            select(Enrollment, Course)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.user_id == user.id)
            .where(Enrollment.status == "active")
            .where(Enrollment.credits_remaining > 0)
            .where(Enrollment.id.not_in(asked))
            .order_by(Enrollment.id)
        )
    ).all()
    if not rows:
        return []
    candidates = await load_candidates(uow, now)
    preferred, blocked = await rating_history(uow, user.id)
    own = (
        await uow.session.execute(select(MentorProfile.id).where(MentorProfile.user_id == user.id))
    ).scalar_one_or_none()
    found = []
    for _enrollment, course in rows:
        needs = RequestNeeds(
            topics=tuple(course.topics),
            level=level or 1,
            language=user.language,
            exclude=frozenset({own} if own else ()),
            preferred=preferred,
            blocked=blocked,
        )
        best = rank_mentors(needs, candidates, config.matching, limit=1)
        if not best:
            continue
        name = (
            await uow.session.execute(
                select(User.display_name)
                .join(MentorProfile, MentorProfile.user_id == User.id)
                .where(MentorProfile.id == best[0].mentor_id)
            )
        ).scalar_one()
        found.append(MentorSuggestion(course, best[0].mentor_id, name, best[0].explanation()))
    return found
