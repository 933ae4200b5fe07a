"""`/admin match-cohort [apply]`: place every unassigned request at once, optimally.

Offering requests one by one is first come, first served; when an admin has a whole cohort to
place, solving the assignment at once (`bot.mentoring.cohort`) serves more learners better. The plan
moves requests between mentors, so the command first shows it, with its gain over
first-come-first-served, and notifies nobody. `apply` computes the plan again (the same data
gives the same plan) and offers each request to its assigned mentor as a round of one. Mentors
still accept or decline: the plan decides who is asked, not who must teach; a decline or a
timeout falls back to the ordinary rounds.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.context import Ctx
from bot.core.errors import BadInput
from bot.core.i18n import Lines, Msg, _, ngettext
from bot.handlers.args import clip
from bot.handlers.registry import admin_subcommand, choice
from bot.matching import Ranked, RequestNeeds
from bot.mentoring.cohort import CohortComparison, compare_cohort
from bot.mentoring.offers import load_candidates, offer_to, request_needs
from storage.models import Course, MentorProfile, MentorshipRequest, RequestOffer, User

USAGE = "/admin match-cohort [apply]"
COHORT_STATES = ("open", "offered", "waitlisted")
SHOWN = 20  # plan lines in one chat message; the rest are counted


@admin_subcommand(
    "match-cohort",
    _("Plan offers for every open request at once"),
    args=(choice("apply", _("apply: send the planned offers"), "apply"),),
)
async def match_cohort(ctx: Ctx, args: list[str]) -> None:
    """Show the optimal plan for all open requests against greedy; `apply` offers it."""
    ctx.require_admin()
    apply = bool(args)
    if args and (len(args) > 1 or args[0].lower() != "apply"):
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(" ".join(args)), usage=USAGE)
        )
    now = ctx.now()
    stmt = (
        select(MentorshipRequest)
        .where(MentorshipRequest.status.in_(COHORT_STATES))
        .order_by(MentorshipRequest.created_at, MentorshipRequest.id)
    )
    if apply:
        stmt = stmt.with_for_update(skip_locked=True)
    requests = list((await ctx.uow.session.execute(stmt)).scalars())
    if not requests:
        ctx.say(_("There are no open requests to match."))
        return
    learners: dict[int, User] = {}
    courses: dict[int, Course] = {}
    needs: list[RequestNeeds] = []
    for request in requests:
        learner, course, request_need = await request_needs(
            ctx.uow, request, now, reconsider_current=True
        )
        learners[request.id] = learner
        courses[request.id] = course
        needs.append(request_need)
    candidates = await load_candidates(ctx.uow, now)
    result = compare_cohort(needs, candidates, ctx.config.matching)
    places = sum(max(c.capacity - c.active_mentees, 0) for c in candidates)
    ctx.say(_summary(result, len(requests), len(candidates), places))
    names = dict(
        (
            await ctx.uow.session.execute(
                select(MentorProfile.id, User.display_name).join(
                    User, User.id == MentorProfile.user_id
                )
            )
        ).all()
    )
    lines: list[Msg | str] = [
        _(
            "#{request} {learner} → {mentor} (#{mentor_id}): {why}",
            request=a.request_id,
            learner=learners[a.request_id].display_name,
            mentor=names.get(a.mentor_id, "?"),
            mentor_id=a.mentor_id,
            why=a.ranked.explanation(),
        )
        for a in result.optimal.assignments[:SHOWN]
    ]
    hidden = len(result.optimal.assignments) - SHOWN
    if hidden > 0:
        lines.append(_("…and {n} more.", n=hidden))
    if lines:
        ctx.say(_("The optimal plan:\n{list}", list=Lines(lines)))
    if result.optimal.unassigned:
        ctx.say(
            _(
                "Not assigned (no mentor fits or has room): {list}",
                list=Lines((f"#{i}" for i in result.optimal.unassigned), ", "),
            )
        )
    if not apply:
        if result.optimal.assignments:
            ctx.say(
                _(
                    "Nothing is sent yet. /admin match-cohort apply offers each request to its "
                    "assigned mentor."
                )
            )
        return
    by_id = {r.id: r for r in requests}
    for a in result.optimal.assignments:
        await _offer_assigned(
            ctx, by_id[a.request_id], a.ranked, learners[a.request_id], courses[a.request_id]
        )
    ctx.say(
        ngettext(
            "Offered {n} request to its assigned mentor; they still accept or decline.",
            "Offered {n} requests to their assigned mentors; they still accept or decline.",
            len(result.optimal.assignments),
        )
    )


def _summary(result: CohortComparison, requests: int, mentors: int, places: int) -> Msg:
    ratio = "—" if result.greedy.total == 0 else f"{result.ratio:.3f}"
    return _(
        "Cohort: {requests} open requests, {mentors} mentors with {places} free places.\n"
        "Optimal: {assigned} assigned, total score {total}.\n"
        "First come, first served: {greedy_assigned} assigned, total score {greedy_total}.\n"
        "Optimal / first come, first served: {ratio}.",
        requests=requests,
        mentors=mentors,
        places=places,
        assigned=len(result.optimal.assignments),
        total=f"{result.optimal.total:.1f}",
        greedy_assigned=len(result.greedy.assignments),
        greedy_total=f"{result.greedy.total:.1f}",
        ratio=ratio,
    )


async def _offer_assigned(
    ctx: Ctx, request: MentorshipRequest, ranked: Ranked, learner: User, course: Course
) -> None:
    """Make the assigned mentor the only one the request is open to.

    If they already hold an offer of the open round, it stays as it is; every other open offer
    is withdrawn (and its mentor told), then a round of one goes to the assigned mentor.
    """
    current = list(
        (
            await ctx.uow.session.execute(
                select(RequestOffer)
                .where(RequestOffer.request_id == request.id)
                .where(RequestOffer.status == "offered")
            )
        ).scalars()
    )
    keeps = any(o.mentor_id == ranked.mentor_id for o in current)
    for offer in current:
        if offer.mentor_id == ranked.mentor_id:
            continue
        offer.status = "withdrawn"
        mentor = await ctx.uow.get(MentorProfile, offer.mentor_id)
        if mentor is not None:
            await ctx.tell(
                mentor.user_id,
                _(
                    "Request #{id} is no longer open to you: an admin matched it with another "
                    "mentor.",
                    id=request.id,
                ),
            )
    if not keeps:
        await offer_to(
            ctx.uow, ctx.config, request, [ranked], ctx.now(), learner=learner, course=course
        )
