"""`/recommend`: the courses, plans and workshops suggested for you, what you want to learn,
"not interested";
and `/admin stats recommendations`, how suggestions did against the popularity baseline.

The same suggestions close `/start` for a returning learner, `/courses` and the end of a
course (see `suggestion_block`); the rule is `bot.recommending.suggest.suggest`.
"""

from __future__ import annotations

from datetime import timedelta

from bot.context import Ctx
from bot.core.errors import NotFound
from bot.core.i18n import Lines, Msg, _
from bot.core.replies import Choice
from bot.core.words import LEVELS
from bot.handlers.args import clip, need, need_int, within
from bot.handlers.registry import command, text
from bot.learning.courses import course_by_slug, course_title
from bot.recommending.log import (
    SLOTS,
    Item,
    Outcomes,
    Tally,
    dismiss,
    log_shown,
    outcomes,
    state_interest,
)
from bot.recommending.mentors import mentors_for_new_requests
from bot.recommending.signals import Versions, learner_state
from bot.recommending.suggest import Suggested, suggest
from bot.sessions.workshops import series_key, workshop_by_id, workshop_title
from bot.subscriptions.plans import plan_by_slug, plan_name
from storage.models import MentorProfile, User

HIDE = ("hide", "no", "not-interested")
HIDE_KINDS = ("plan", "workshop", "mentor")  # `/recommend hide plan SLUG`, `hide workshop ID`…
HIDE_USAGE = "/recommend hide SLUG | hide plan SLUG | hide workshop ID | hide mentor ID"
# Discord shows 25 buttons at most (five rows of five): what a suggestion offers comes first,
# the Not interested buttons after, so those are the ones left out (the command stays).
BUTTONS = 25


@command(
    "recommend",
    _("Courses suggested for you: /recommend [WHAT YOU WANT TO LEARN]"),
    args=(text("goals", _("What you want to learn, and your level"), required=False, words=True),),
    section="courses",
)
async def recommend(ctx: Ctx, args: list[str]) -> None:
    """Suggestions with their reasons; `/recommend GOALS` first says what you want to learn;
    `/recommend hide SLUG`, `hide plan SLUG`, `hide workshop ID` (the Not interested buttons)
    leave a course, a plan or a workshop series out for good (`_hide`)."""
    if args and args[0].lower() in HIDE:
        await _hide(ctx, args[1:])
        return
    if args:
        goals = within(" ".join(args).strip(), "goals", _("Your goals"))
        levels = [LEVELS[w.lower()] for w in goals.split() if w.lower() in LEVELS]
        await state_interest(
            ctx.uow, ctx.actor.id, goals, levels[-1] if levels else None, ctx.now()
        )
    found = await suggest(ctx.uow, ctx.config, ctx.actor.id, "recommend", ctx.now())
    lines = found.lines()
    state = await learner_state(ctx.uow, ctx.actor.id)
    mentors = await mentors_for_new_requests(
        ctx.uow, ctx.config, ctx.actor.user, state.learner.level, ctx.now()
    )
    if mentors:
        await log_shown(
            ctx.uow,
            ctx.actor.id,
            [Item("mentor", m.mentor_id, m.course.id) for m in mentors],
            "recommend",
            found.arm,
            ctx.now(),
        )
    mentor_lines = (
        _("Mentors for your courses:\n{list}", list=Lines(m.line() for m in mentors))
        if mentors
        else None
    )
    mentor_choices = [
        Choice(
            _("Find a mentor for {title}", title=course_title(m.course)), f"/mentor {m.course.slug}"
        )
        for m in mentors
    ]
    if lines is None and mentor_lines is not None:
        ctx.say(mentor_lines, mentor_choices)
        return
    if lines is None:
        ctx.say(
            _("Nothing to suggest right now: you have every course on offer or passed on it."),
            [Choice(_("Browse courses"), "/courses")],
        )
        return
    hint = (
        _(
            "Suggested for your goal: {goals}. Send /recommend with other words to change it.",
            goals=clip(" ".join(args)),
        )
        if args
        else _(
            "Tell me what you want to learn and I will suggest better: /recommend data "
            "analysis, beginner"
        )
    )
    choices = [
        *found.choices(),
        *mentor_choices,
        *(
            Choice(
                _("Not interested: {title}", title=course_title(s.course)),
                f"/recommend hide {s.course.slug}",
            )
            for s in found.items
        ),
        *(e.hide for e in found.extras),
        *(
            Choice(
                _("Not interested: {mentor}", mentor=m.mentor_name),
                f"/recommend hide mentor {m.mentor_id}",
            )
            for m in mentors
        ),
    ]
    ctx.say(
        Lines([lines, *([mentor_lines] if mentor_lines else []), hint]).as_msg(),
        choices[:BUTTONS],
    )


async def _hide(ctx: Ctx, args: list[str]) -> None:
    """Not interested in a course (`SLUG`), a plan (`plan SLUG`) or a workshop (`workshop ID`):
    a workshop's whole series is left out, every week of it (`bot.recommending.log.dismiss`).
    `plan` and `workshop` are read as kinds only when a name follows (a course may be called
    so). Something unknown is refused, naming it, and nothing is stored."""
    kind = args[0].lower() if len(args) > 1 and args[0].lower() in HIDE_KINDS else "course"
    now = ctx.now()
    if kind == "plan":
        plan = await plan_by_slug(ctx.uow, args[1])
        await dismiss(ctx.uow, ctx.actor.id, "plan", plan.id, now)
        said = _("Noted: plan {name} will not be suggested to you again.", name=plan_name(plan))
    elif kind == "workshop":
        workshop = await workshop_by_id(ctx.uow, need_int(args, 1, HIDE_USAGE))
        await dismiss(ctx.uow, ctx.actor.id, "workshop", series_key(workshop), now)
        title = workshop_title(workshop)
        said = (
            _(
                "Noted: workshop {title} will not be suggested to you again, nor any other "
                "week of it.",
                title=title,
            )
            if workshop.series_id is not None
            else _("Noted: workshop {title} will not be suggested to you again.", title=title)
        )
    elif kind == "mentor":
        mentor_id = need_int(args, 1, HIDE_USAGE)
        profile = await ctx.uow.get(MentorProfile, mentor_id)
        if profile is None or profile.status != "approved":
            raise NotFound(_("There is no mentor #{id}.", id=mentor_id))
        await dismiss(ctx.uow, ctx.actor.id, "mentor", profile.id, now)
        mentor = await ctx.uow.get(User, profile.user_id)
        assert mentor is not None
        said = _(
            "Noted: {mentor} will not be suggested to you again, nor offered your mentor requests.",
            mentor=mentor.display_name,
        )
    else:
        course = await course_by_slug(ctx.uow, need(args, 0, HIDE_USAGE))
        await dismiss(ctx.uow, ctx.actor.id, "course", course.id, now)
        said = _("Noted: {title} will not be suggested to you again.", title=course_title(course))
    ctx.say(said, [Choice(_("More suggestions"), "/recommend")])


async def suggestion_block(
    ctx: Ctx, slot: str, *, returning_only: bool = False, known: Versions | None = None
) -> Suggested:
    """The suggestions a slot (start, courses, course_end) appends to its reply; `known`: the
    versions the slot read already, in this transaction and before writing anything."""
    return await suggest(
        ctx.uow,
        ctx.config,
        ctx.actor.id,
        slot,
        ctx.now(),
        returning_only=returning_only,
        known=known,
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _tally(t: Tally | None) -> Msg:
    if t is None or not t.shown:
        return _("nothing shown")
    return _(
        "{shown} shown · opened {ctr} · bought {conversion} · completed {completed} · "
        "rated {rated}",
        shown=t.shown,
        ctr=_percent(t.rate(t.opened)),
        conversion=_percent(t.rate(t.bought)),
        completed=_percent(t.rate(t.completed)),
        rated=_percent(t.rate(t.rated)),
    )


SLOT_NAMES = {
    "start": _("after /start"),
    "courses": _("in /courses"),
    "recommend": _("in /recommend"),
    "course_end": _("at the end of a course"),
}
# In the order `/admin stats recommendations` lists them. A plan's or workshop's reason is its
# kind and strongest signal (bot.recommending.extras); "plan" and "workshop" alone are rows
# logged before they were ranked.
REASON_NAMES = {
    "goal": _("matches a goal"),
    "topic": _("topic of their courses"),
    "next": _("taken next by others"),
    "also": _("also taken by others"),
    "popular": _("popular"),
    "new": _("new course"),
    "plan-course": _("plan: for their course"),
    "plan-picked": _("plan: for a course suggested with it"),
    "plan-related": _("plan: for a related course"),
    "plan-goal": _("plan: matches a goal"),
    "plan-topic": _("plan: on a topic they follow"),
    "plan-peers": _("plan: taken by learners like them"),
    "plan-popular": _("plan: popular"),
    "workshop-course": _("workshop: for their course"),
    "workshop-picked": _("workshop: for a course suggested with it"),
    "workshop-related": _("workshop: for a related course"),
    "workshop-goal": _("workshop: matches a goal"),
    "workshop-topic": _("workshop: on a topic they follow"),
    "workshop-peers": _("workshop: joined by learners like them"),
    "workshop-soon": _("workshop: starts soon, few seats"),
    "workshop-popular": _("workshop: popular"),
    "plan": _("a plan for their course"),
    "workshop": _("a workshop for them"),
    "mentor": _("a mentor for a new request"),
}


def outcome_lines(found: Outcomes, weeks: int) -> Msg:
    """Click-through (opened) and conversion (bought) by slot — everything shown, then the
    courses and the plans and workshops apart, each in the slots they were shown in — and by
    reason (only those something was shown for), the hybrid against the baseline."""

    def pair(hybrid: Tally | None, baseline: Tally | None) -> Msg:
        return _(
            "hybrid: {hybrid}\n    baseline: {baseline}",
            hybrid=_tally(hybrid),
            baseline=_tally(baseline),
        )

    def keyed(key: str, table: dict[tuple[str, str], Tally]) -> Msg:
        return pair(table.get(("hybrid", key)), table.get(("baseline", key)))

    def group(name: str) -> Msg:
        table = found.by_group
        rows = [
            _(
                "{name} — {figures}",
                name=SLOT_NAMES[s],
                figures=pair(table.get(("hybrid", s, name)), table.get(("baseline", s, name))),
            )
            for s in SLOTS
            if ("hybrid", s, name) in table or ("baseline", s, name) in table
        ]
        return Lines(rows).as_msg() if rows else _("nothing shown")

    slots = Lines(
        _("{name} — {figures}", name=SLOT_NAMES[s], figures=keyed(s, found.by_slot)) for s in SLOTS
    )
    shown = {reason for _arm, reason in found.by_reason}
    reasons = Lines(
        _("{name} — {figures}", name=REASON_NAMES[r], figures=keyed(r, found.by_reason))
        for r in REASON_NAMES
        if r in shown
    )
    return _(
        "Suggestions, last {weeks} weeks (outcomes within 30 days of being shown; opened: "
        "the suggestion's button pressed within 7 days)\n"
        "All — hybrid: {hybrid}\n    baseline (popularity): {baseline}\n"
        "By slot:\n{slots}\nCourses by slot:\n{courses}\n"
        "Plans and workshops by slot:\n{extras}\nBy reason:\n{reasons}",
        weeks=weeks,
        hybrid=_tally(found.arms.get("hybrid")),
        baseline=_tally(found.arms.get("baseline")),
        slots=slots,
        courses=group("courses"),
        extras=group("extras"),
        reasons=reasons,
    )


async def recommendation_stats(ctx: Ctx) -> None:
    """`/admin stats recommendations`."""
    weeks = ctx.config.satisfaction.report_weeks
    found = await outcomes(ctx.uow, ctx.now() - timedelta(weeks=weeks))
    ctx.say(outcome_lines(found, weeks))
