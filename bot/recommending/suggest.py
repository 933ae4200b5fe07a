"""Suggesting the next courses to one learner: the rule every slot calls, and how a suggestion
reads (a one-line reason from its strongest signal, in the reader's language).

`suggest` reads the model (rebuilt only when its inputs changed) and the learner, ranks with
the learner's arm (the held-out `baseline_share` sees the most popular courses), logs what it
shows and returns it; the slots (`/recommend`, `/start`, `/courses`, the end of a course) only
place the lines.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Config
from bot.core.i18n import Lines, Msg, _, clip
from bot.core.replies import Choice
from bot.learning.courses import course_title
from bot.recommending.extras import Extra, extras
from bot.recommending.log import (
    FROM_SUGGESTION,
    IMPRESSION_WINDOW,
    Impression,
    Item,
    impression,
    log_shown,
)
from bot.recommending.ranker import Arm, CourseDoc, Model, Suggestion, arm_for, rank
from bot.recommending.signals import MODELS, LearnerState, Versions, learner_state, versions
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Shown:
    course: CourseDoc
    pick: Suggestion
    because: CourseDoc | None = None


@dataclass(frozen=True)
class Suggested:
    arm: Arm
    items: list[Shown]
    extras: list[Extra] = field(default_factory=list)  # plans, then workshops

    def lines(self) -> Msg | None:
        """ "Suggested for you:" and one line per course, then plans and workshops, each with its
        reason; None if nothing."""
        if not self.items and not self.extras:
            return None
        return _(
            "Suggested for you:\n{list}",
            list=Lines([*(line(s) for s in self.items), *(e.line for e in self.extras)]),
        )

    def choices(self) -> list[Choice]:
        return [
            *(
                Choice(course_title(s.course), f"/course {s.course.slug} {FROM_SUGGESTION}")
                for s in self.items
            ),
            *(e.choice for e in self.extras),
        ]


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


# Slots where plans and workshops join the courses (bot.recommending.extras): where a learner
# asks or comes back, not the catalogue every press of "Browse courses" opens.
WITH_EXTRAS = frozenset({"start", "recommend", "course_end"})


@dataclass
class Picked:
    key: str  # the `Versions.learner` the picks were computed for
    returning: bool  # the learner has bought or said something (the welcome shows them picks)
    items: tuple[Shown, ...]
    state: LearnerState  # what the plans and workshops beside the picks are ranked against
    # slot → what was last logged as shown there (courses and extras) and until when showing
    # it again logs nothing (`log_shown`'s answer plus the window)
    logged: dict[str, tuple[tuple[Impression, ...], datetime]] = field(default_factory=dict)


@dataclass
class PickCache:
    """Each learner's last suggestions per database, with the `Versions.learner` key they were
    computed for: an unchanged key means ranking afresh would give the same, so `/courses`
    and `/start` cost one read instead of a dozen. Least recently used first out.

    It also remembers what was last logged per slot and until when: the database keeps each
    item shown to a learner in a slot once within `IMPRESSION_WINDOW` (`log_shown`, in every
    process), so showing this process's same items again before then would log nothing, and
    is not even asked (every press of "Browse courses" costs no write and no read for it)."""

    size: int = 10_000
    picks: OrderedDict[tuple[int, int, int], Picked] = field(default_factory=OrderedDict)

    def get(self, where: int, user_id: int, k: int, key: str) -> Picked | None:
        found = self.picks.get((where, user_id, k))
        if found is None or found.key != key:
            return None
        self.picks.move_to_end((where, user_id, k))
        return found

    def put(self, where: int, user_id: int, k: int, picked: Picked) -> None:
        self.picks[(where, user_id, k)] = picked
        self.picks.move_to_end((where, user_id, k))
        while len(self.picks) > self.size:
            self.picks.popitem(last=False)


PICKS = PickCache()


async def suggest(
    uow: UnitOfWork,
    config: Config,
    user_id: int,
    slot: str,
    now: datetime,
    k: int | None = None,
    *,
    returning_only: bool = False,
    known: Versions | None = None,
) -> Suggested:
    """The learner's next courses for `slot`, logged as shown. With `returning_only` (the
    welcome), nothing for someone who has not been here to learn before (no course bought, no
    goal said), and no model is built for them."""
    section = config.recommend
    size = k or section.size
    arm = arm_for(user_id, section.seed, section.baseline_share)
    if known is None:
        known = await versions(uow, user_id, now)
    if returning_only and known.newcomer:
        return Suggested(arm, [])
    where = id(uow.session.bind)
    picked = PICKS.get(where, user_id, size, known.learner)
    model: Model | None = None
    if picked is None:
        model, current = await MODELS.model(uow, config, now, known.model)
        state = await learner_state(uow, user_id, model if current else None)
        picks = rank(
            model, state.learner, size, seed=section.seed, arm=arm, day=now.date().isoformat()
        )
        picked = Picked(
            known.learner,
            bool(state.learner.history or state.learner.goals),
            tuple(
                Shown(model.doc(p.course_id), p, model.doc(p.because) if p.because else None)
                for p in picks
            ),
            state,
        )
        if current:  # picks from a model being rebuilt are not kept past this reply
            PICKS.put(where, user_id, size, picked)
    if returning_only and not picked.returning:
        return Suggested(arm, [])
    more: list[Extra] = []
    per_kind = section.extras_recommend if slot == "recommend" else section.extras
    if slot in WITH_EXTRAS and per_kind:
        if model is None:  # the picks were kept: so is the model they were ranked with
            model, _current = await MODELS.model(uow, config, now, known.model)
        suggested = [s.pick.course_id for s in picked.items]
        more = await extras(uow, config, model, picked.state, suggested, arm, now, per_kind)
    if not picked.items and not more:
        return Suggested(arm, [])
    shown: list[Suggestion | Item] = [*(s.pick for s in picked.items), *(e.item for e in more)]
    what = tuple(impression(pick) for pick in shown)
    last = picked.logged.get(slot)
    if last is None or last[0] != what or now >= last[1]:
        oldest = await log_shown(uow, user_id, shown, slot, arm, now)
        picked.logged[slot] = (what, oldest + IMPRESSION_WINDOW)
    return Suggested(arm, list(picked.items), more)
