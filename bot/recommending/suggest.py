"""Suggesting the next courses to one learner: the rule every slot calls, and how a suggestion
reads (a one-line reason from its strongest signal, in the reader's language).

`suggest` reads the model (rebuilt only when its inputs changed) and the learner, ranks with
the learner's arm (the held-out `baseline_share` sees the most popular courses), logs what it
shows and returns it; the slots (`/recommend`, `/start`, `/courses`, the end of a course) only
place the lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.config import Config
from bot.core.i18n import Lines, Msg, _, clip
from bot.core.replies import Choice
from bot.learning.courses import course_title
from bot.recommending.log import log_shown
from bot.recommending.ranker import Arm, Suggestion, arm_for, rank
from bot.recommending.signals import MODELS, learner_state
from storage.models import Course
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Shown:
    course: Course
    pick: Suggestion
    because: Course | None = None


@dataclass(frozen=True)
class Suggested:
    arm: Arm
    items: list[Shown]

    def lines(self) -> Msg | None:
        """ "Suggested for you:" and one line per course with its reason; None if nothing."""
        if not self.items:
            return None
        return _("Suggested for you:\n{list}", list=Lines(line(s) for s in self.items))

    def choices(self) -> list[Choice]:
        return [Choice(course_title(s.course), f"/course {s.course.slug}") for s in self.items]


def line(shown: Shown) -> Msg:
    """One suggestion: its title and its reason."""
    return _("• {title} — {reason}", title=course_title(shown.course), reason=reason_msg(shown))


def _words(words: tuple[str, ...]) -> str:
    return clip(", ".join(words), 60)


def reason_msg(shown: Shown) -> Msg:
    """The one-line reason of a suggestion, from its strongest signal."""
    pick = shown.pick
    if pick.reason == "goal" and pick.words:
        if pick.level_fit:
            return _("matches your goal: {words} · your level", words=_words(pick.words))
        return _("matches your goal: {words}", words=_words(pick.words))
    if pick.reason == "topic" and pick.words:
        return _("on a topic of your courses: {topics}", topics=_words(pick.words))
    if pick.reason == "next" and shown.because is not None:
        return _("learners who took {title} took this next", title=course_title(shown.because))
    if pick.reason == "also" and shown.because is not None:
        return _("learners who took {title} also took this", title=course_title(shown.because))
    if pick.reason == "new":
        return _("new on the marketplace")
    if pick.reason in ("goal", "topic"):
        return _("matches what you are learning")
    return _("popular with learners")


async def suggest(
    uow: UnitOfWork,
    config: Config,
    user_id: int,
    slot: str,
    now: datetime,
    k: int | None = None,
    *,
    returning_only: bool = False,
) -> Suggested:
    """The learner's next courses for `slot`, logged as shown. With `returning_only` (the
    welcome), nothing for someone who has not been here to learn before (no course bought, no
    goal said), and no model is built for them."""
    section = config.recommend
    state = await learner_state(uow, user_id)
    arm = arm_for(user_id, section.seed, section.baseline_share)
    if returning_only and not (state.learner.history or state.learner.goals):
        return Suggested(arm, [])
    model = await MODELS.model(uow, config, now)
    picks = rank(
        model,
        state.learner,
        k or section.size,
        seed=section.seed,
        arm=arm,
        day=now.date().isoformat(),
    )
    if not picks:
        return Suggested(arm, [])
    wanted = {p.course_id for p in picks} | {p.because for p in picks if p.because}
    rows = {
        c.id: c
        for c in (await uow.session.execute(select(Course).where(Course.id.in_(wanted)))).scalars()
    }
    await log_shown(uow, user_id, picks, slot, arm, now)
    return Suggested(
        arm,
        [
            Shown(rows[p.course_id], p, rows.get(p.because) if p.because else None)
            for p in picks
            if p.course_id in rows
        ],
    )
