"""Asking for a mentor (a three-step conversation) and mentors answering requests."""

from __future__ import annotations

from sqlalchemy import select

from bot.community.relay import open_thread
from bot.context import Ctx
from bot.core import conversations, words
from bot.core.errors import STATUS_NAMES, BadInput, NotAllowed, NotFound
from bot.core.i18n import Lines, Localized, _, ngettext
from bot.core.replies import Choice
from bot.core.states import advance
from bot.core.users import mentor_profile_of
from bot.handlers.args import clip, need_int, within
from bot.handlers.registry import command, flow, number, text
from bot.learning.courses import course_by_slug, course_title
from bot.matching import LEVELS, explanation_from_code
from bot.mentoring.offers import (
    LEVEL_NAMES,
    TIME_NAMES,
    active_mentees,
    close_round,
    offer_next_round,
    open_offers,
    request_topic,
    times_text,
)
from bot.sessions.booking import mentorship_for
from bot.subscriptions.coverage import sessions_for
from bot.subscriptions.plans import courses_named, plan_courses, plan_on
from storage.models import (
    Conversation,
    Course,
    Enrollment,
    MentorProfile,
    MentorshipRequest,
    RequestOffer,
    User,
)

REQUEST = number("request", _("The mentorship request number"))


@command(
    "mentor",
    _("Ask for a mentor for one of your courses: /mentor [SLUG]"),
    args=(text("course", _("The course's short name; leave out to choose"), required=False),),
    section="mentoring",
)
async def ask_for_mentor(ctx: Ctx, args: list[str]) -> None:
    stmt = (
        select(Enrollment, Course)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.user_id == ctx.actor.id)
        .where(Enrollment.status == "active")
        .where(Enrollment.credits_remaining > 0)
        .order_by(Enrollment.id)
    )
    asked = None
    if args:
        asked = await course_by_slug(ctx.uow, args[0], active_only=False)
        stmt = stmt.where(Course.id == asked.id)
    rows = [(e, c) for e, c in (await ctx.uow.session.execute(stmt)).all()]
    covered = None
    if not rows and asked is not None:  # a course a plan covers: the plan's sessions
        covered = await sessions_for(ctx.uow, ctx.actor.id, asked.id)
    if covered is not None:
        primary = await ctx.uow.get(Course, covered.course_id)
        assert primary is not None
        rows = [(covered, primary)]
    if not rows:
        raise await _nothing_to_mentor(ctx, asked)
    if len(rows) > 1:
        ctx.say(
            _("Which course do you want a mentor for?"),
            [Choice(course_title(c), f"/mentor {c.slug}") for _e, c in rows],
        )
        return
    enrollment, course = rows[0]
    title = await _mentored_in(ctx, enrollment, course)
    existing = await mentorship_for(ctx.uow, enrollment)
    if existing is not None:
        _say_existing(ctx, existing, title)
        return
    # The course asked for (a covered one names the request, its sessions the primary's).
    data = {"enrollment_id": enrollment.id, "course_id": (asked or course).id}
    await conversations.begin(ctx.uow, ctx.actor.id, "request", "goals", data, ctx.now())
    ctx.say(
        _(
            "Let's find you a mentor for {title}. What do you want to achieve? Reply in one "
            "message (or /cancel).",
            title=title,
        )
    )


async def _nothing_to_mentor(ctx: Ctx, asked: Course | None) -> BadInput:
    """Why `/mentor` has no course with sessions to ask on, in the learner's terms: every
    session of a course they hold is used (buy it again), the course they named is not theirs
    (buy it), or they have none yet. The first used to be told to buy a course first, as if
    they had none."""
    used_up = select(Course).join(Enrollment, Enrollment.course_id == Course.id)
    used_up = used_up.where(Enrollment.user_id == ctx.actor.id)
    used_up = used_up.where(Enrollment.status == "active").where(Enrollment.credits_remaining <= 0)
    if asked is not None:
        used_up = used_up.where(Course.id == asked.id)
    spent = list(dict.fromkeys((await ctx.uow.session.execute(used_up)).scalars()))
    if spent:
        return BadInput(
            _(
                "You have used every session of {titles}. To meet a mentor again, buy a "
                "course again or see /plans.",
                titles=Lines((course_title(c) for c in spent), ", "),
            ),
            [
                Choice(_("Buy {title} again", title=course_title(c)), f"/buy {c.slug}")
                for c in spent
            ],
        )
    if asked is not None:
        return BadInput(
            _(
                "{title} is not one of your courses yet. A mentor comes with it: buy it, "
                "then try /mentor again.",
                title=course_title(asked),
            ),
            [Choice(_("See {title}", title=course_title(asked)), f"/course {asked.slug}")],
        )
    return BadInput(
        _("A mentor comes with a course. Buy one first with /courses, then try /mentor.")
    )


async def _mentored_in(ctx: Ctx, enrollment: Enrollment, course: Course) -> Localized | Lines:
    """What a mentorship on this enrollment is for: its course, or every course of the plan
    whose sessions it holds (one mentorship serves them all, bot/subscriptions/coverage.py)."""
    plan = await plan_on(ctx.uow, enrollment.id)
    if plan is None:
        return course_title(course)
    courses = await plan_courses(ctx.uow, plan)
    return course_title(course) if len(courses) == 1 else courses_named(courses)


def _say_existing(ctx: Ctx, existing: MentorshipRequest, title: Localized | Lines) -> None:
    """What `/mentor` says instead of asking anew (`mentorship_for` found one)."""
    if existing.status == "accepted":
        ctx.say(
            _("You already have a mentor for {title}. Book a session:", title=title),
            [Choice(_("Book a session"), f"/book {existing.id}")],
        )
        return
    ctx.say(
        _(
            "Your request #{id} for {title} is {status}. You will hear as soon as a "
            "mentor accepts.",
            id=existing.id,
            title=title,
            status=STATUS_NAMES[existing.status],
        )
    )


def _two_hanzi(text: str) -> bool:
    """Two Chinese characters say as much as a short English word ("测试": testing)."""
    return len(text) == 2 and all("\u4e00" <= ch <= "\u9fff" for ch in text)


@flow("request")
async def request_step(ctx: Ctx, conv: Conversation, text: str) -> None:
    now = ctx.now()
    if conv.step == "goals":
        goals = text.strip()
        if len(goals) < 3 and not _two_hanzi(goals):
            raise BadInput(_("Please describe your goals in a few words."))
        within(goals, "goals", _("Your goals"))
        await conversations.move(ctx.uow, conv, "level", now, goals=goals)
        ctx.say(
            _("What is your level in this subject?"),
            # The buttons answer in English; anything in `words.LEVELS` is understood typed.
            [Choice(LEVEL_NAMES[n], word) for n, word in LEVELS.items()],
        )
        return
    if conv.step == "level":
        level = words.lookup(words.LEVELS, text)
        if level is None:
            raise BadInput(
                _(
                    "I don't know the level '{value}'. Answer beginner, intermediate or advanced.",
                    value=clip(text.strip()),
                )
            )
        await conversations.move(ctx.uow, conv, "times", now, level=level)
        ctx.say(
            _(
                "When do you prefer to meet? Pick one, or type several separated by commas: "
                "morning, afternoon, evening, weekend or any."
            ),
            [Choice(label, key) for key, label in TIME_NAMES.items()],
        )
        return
    typed = words.items(text)
    unknown = [t for t in typed if t not in words.PREFERRED_TIMES]
    if not typed or unknown:
        raise BadInput(
            _(
                "I don't know the time '{value}'. Use morning, afternoon, evening, weekend or any.",
                value=clip(", ".join(unknown) or text.strip()),
            )
        )
    times = list(dict.fromkeys(words.PREFERRED_TIMES[t] for t in typed))
    enrollment = await ctx.uow.get(Enrollment, conv.data["enrollment_id"])
    if enrollment is None or enrollment.status != "active" or enrollment.credits_remaining <= 0:
        await conversations.end(ctx.uow, ctx.actor.id)
        raise BadInput(_("That course is no longer active for you, so the request was dropped."))
    course = await ctx.uow.get(Course, enrollment.course_id)
    assert course is not None
    asked = await ctx.uow.get(Course, conv.data.get("course_id", course.id))
    existing = await mentorship_for(ctx.uow, enrollment)  # one came while this was asked
    if existing is not None:
        await conversations.end(ctx.uow, ctx.actor.id)
        _say_existing(ctx, existing, await _mentored_in(ctx, enrollment, course))
        return
    request = MentorshipRequest(
        learner_id=ctx.actor.id,
        enrollment_id=enrollment.id,
        topic=request_topic(asked or course),
        goals=conv.data["goals"],
        level=conv.data["level"],
        preferred_times=times,
        status="open",
        offer_round=0,
        created_at=now,
    )
    ctx.uow.add(request)
    await ctx.uow.flush()
    await conversations.end(ctx.uow, ctx.actor.id)
    offered = await offer_next_round(ctx.uow, ctx.config, request, now)
    if offered:
        ctx.say(
            ngettext(
                "Request #{id} is out to {n} mentor. You will hear as soon as they accept.",
                "Request #{id} is out to {n} mentors. You will hear as soon as one accepts.",
                offered,
                id=request.id,
            )
        )


@command(
    "requests", _("Requests offered to you (mentors) or your own requests"), section="mentoring"
)
async def list_requests(ctx: Ctx, args: list[str]) -> None:
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    if profile is not None and profile.status == "approved":
        rows = (
            await ctx.uow.session.execute(
                select(MentorshipRequest, User)
                .join(RequestOffer, RequestOffer.request_id == MentorshipRequest.id)
                .join(User, User.id == MentorshipRequest.learner_id)
                .where(RequestOffer.mentor_id == profile.id)
                .where(RequestOffer.status == "offered")
                .where(MentorshipRequest.status == "offered")
                .order_by(MentorshipRequest.id)
            )
        ).all()
        if not rows:
            ctx.say(_("No requests are waiting for you right now."))
        for request, learner in rows:
            ctx.say(
                _(
                    "Request #{id} from {learner}: {goals} ({level}, prefers {times})",
                    id=request.id,
                    learner=learner.display_name,
                    goals=request.goals,
                    level=LEVEL_NAMES[request.level],
                    times=times_text(request.preferred_times),
                ),
                [
                    Choice(_("Accept"), f"/accept {request.id}"),
                    Choice(_("Decline"), f"/decline {request.id}"),
                ],
            )
        return
    mine = (
        await ctx.uow.session.execute(
            select(MentorshipRequest)
            .where(MentorshipRequest.learner_id == ctx.actor.id)
            .order_by(MentorshipRequest.id)
        )
    ).scalars()
    lines = [
        _(
            "#{id}: {goals} — {status}",
            id=r.id,
            goals=r.goals,
            status=STATUS_NAMES[r.status],
        )
        for r in mine
    ]
    if not lines:
        ctx.say(_("You have no mentorship requests. Ask for a mentor with /mentor."))
        return
    ctx.say(_("Your requests:\n{list}", list=Lines(lines)))


async def _my_offer(ctx: Ctx, request_id: int) -> tuple[MentorProfile, RequestOffer]:
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    if profile is None or profile.status != "approved":
        raise NotAllowed(_("Only approved mentors can answer requests."))
    offer = await ctx.uow.get(RequestOffer, (request_id, profile.id))
    if offer is None:
        raise NotAllowed(_("Request #{id} was not offered to you.", id=request_id))
    return profile, offer


@command(
    "accept",
    _("Accept a mentorship request: /accept REQUEST"),
    role="mentor",
    args=(REQUEST,),
    section="mentors",
)
async def accept(ctx: Ctx, args: list[str]) -> None:
    request_id = need_int(args, 0, "/accept REQUEST")
    request = await ctx.uow.lock(MentorshipRequest, request_id)
    if request is None:
        raise NotFound(_("There is no request #{id}.", id=request_id))
    profile, offer = await _my_offer(ctx, request_id)
    if request.status == "accepted":
        if request.mentor_id == profile.id:
            raise BadInput(_("You already accepted request #{id}.", id=request_id))
        raise BadInput(_("Request #{id} was already taken by another mentor.", id=request_id))
    if offer.status != "offered" or request.status != "offered":
        raise BadInput(_("Request #{id} is no longer open to you.", id=request_id))
    load = (await active_mentees(ctx.uow, [profile.id])).get(profile.id, 0)
    if load >= profile.capacity:
        raise BadInput(
            ngettext(
                "You are at your capacity of {n} mentee. Raise it with /profile capacity N, "
                "or decline.",
                "You are at your capacity of {n} mentees. Raise it with /profile capacity N, "
                "or decline.",
                profile.capacity,
            )
        )
    advance("request", request, "accepted")
    request.mentor_id = profile.id
    request.accepted_at = ctx.now()
    request.offer_expires_at = None
    await close_round(ctx.uow, request, "taken")
    offer.status = "won"
    await open_thread(ctx.uow, request, ctx.now())  # their conversation (/ask, /answer)
    learner = await ctx.uow.get(User, request.learner_id)
    assert learner is not None
    why = explanation_from_code(offer.explanation)
    await ctx.tell(
        learner.id,
        _(
            "Good news: {mentor} accepted your request #{id} ({why}). Pick a time for your "
            "first session:",
            mentor=ctx.actor.user.display_name,
            id=request.id,
            why=why if why is not None else "—",
        ),
        [
            Choice(_("Book a session"), f"/book {request.id}"),
            Choice(_("Write to your mentor"), f"/ask {request.id}"),  # bot.community.relay
        ],
    )
    ctx.say(
        _(
            "You are now mentoring {learner} (request #{id}). Goals: {goals}. They will book a "
            "time from your availability; see /sessions.",
            learner=learner.display_name,
            id=request.id,
            goals=request.goals,
        )
    )


@command(
    "decline",
    _("Decline a mentorship request: /decline REQUEST"),
    role="mentor",
    args=(REQUEST,),
    section="mentors",
)
async def decline(ctx: Ctx, args: list[str]) -> None:
    request_id = need_int(args, 0, "/decline REQUEST")
    request = await ctx.uow.lock(MentorshipRequest, request_id)
    if request is None:
        raise NotFound(_("There is no request #{id}.", id=request_id))
    _profile, offer = await _my_offer(ctx, request_id)
    if offer.status != "offered":
        raise BadInput(_("Request #{id} is no longer open to you.", id=request_id))
    offer.status = "declined"
    await ctx.uow.flush()
    ctx.say(_("You declined request #{id}.", id=request_id))
    if request.status != "offered":
        return
    if not await open_offers(ctx.uow, request.id):
        await offer_next_round(ctx.uow, ctx.config, request, ctx.now())
