"""Offering a mentorship request to mentors, round after round, then the waitlist.

A request is offered to the top `matching.offer_size` candidates at once; the first to accept
wins. When all of a round decline, or nobody answers within `matching.offer_timeout_minutes`, the
next candidates get it. When nobody is left the request is waitlisted, admins are told, and the
learner is told honestly; approving a new mentor offers waitlisted requests again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, select

from bot.config import Config
from bot.core.i18n import Lines, When, _
from bot.core.outbox import enqueue, tell_admins
from bot.core.replies import Choice, Say
from bot.core.states import OfferStatus, advance
from bot.learning.courses import course_title
from bot.matching import (
    MentorCandidate,
    Ranked,
    RequestNeeds,
    mentor_week,
    preferred_week,
    rank_mentors,
)
from bot.subscriptions.plans import plan_courses, plan_on
from storage.models import (
    AvailabilityWindow,
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    Rating,
    RecommendationDismissal,
    RequestOffer,
    User,
)
from storage.uow import UnitOfWork

LEVEL_NAMES = {1: _("beginner"), 2: _("intermediate"), 3: _("advanced")}
TIME_NAMES = {
    "morning": _("mornings"),
    "afternoon": _("afternoons"),
    "evening": _("evenings"),
    "weekend": _("weekends"),
    "any": _("any time"),
}


async def active_mentees(uow: UnitOfWork, mentor_ids: list[int] | None = None) -> dict[int, int]:
    """Learners each mentor is still working with (credits left or a session booked)."""
    booked = exists().where(
        MentorSession.request_id == MentorshipRequest.id, MentorSession.status == "scheduled"
    )
    stmt = (
        select(MentorshipRequest.mentor_id, MentorshipRequest.learner_id)
        .join(Enrollment, Enrollment.id == MentorshipRequest.enrollment_id)
        .where(MentorshipRequest.status == "accepted")
        .where(Enrollment.status == "active")
        .where((Enrollment.credits_remaining > 0) | booked)
    )
    if mentor_ids is not None:
        stmt = stmt.where(MentorshipRequest.mentor_id.in_(mentor_ids))
    learners: dict[int, set[int]] = defaultdict(set)
    for mentor_id, learner_id in (await uow.session.execute(stmt)).all():
        if mentor_id is not None:
            learners[mentor_id].add(learner_id)
    return {m: len(ls) for m, ls in learners.items()}


def _zone(name: str) -> str:
    """A stored timezone name, or UTC if it is not one zoneinfo knows (never fails a round)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


async def load_candidates(uow: UnitOfWork, now: datetime) -> list[MentorCandidate]:
    """Approved mentors as plain data for ranking.

    Availability windows are converted from each mentor's timezone to UTC for the week of
    `now`, so daylight-saving time is applied as it is that week.
    """
    rows = (
        await uow.session.execute(
            select(MentorProfile, User.timezone)
            .join(User, User.id == MentorProfile.user_id)
            .where(MentorProfile.status == "approved")
            .order_by(MentorProfile.id)
        )
    ).all()
    # Plain rows, not ORM objects: every matching and every sweep reads all of them.
    topics: dict[int, dict[str, int]] = defaultdict(dict)
    topic_rows = await uow.session.execute(
        select(MentorTopic.mentor_id, MentorTopic.topic, MentorTopic.level)
    )
    for mentor_id, topic, level in topic_rows:
        topics[mentor_id][topic] = level
    windows: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    window_rows = await uow.session.execute(
        select(
            AvailabilityWindow.mentor_id,
            AvailabilityWindow.weekday,
            AvailabilityWindow.start_minute,
            AvailabilityWindow.end_minute,
        )
    )
    for mentor_id, weekday, start, end in window_rows:
        windows[mentor_id].append((weekday, start, end))
    load = await active_mentees(uow)
    return [
        MentorCandidate(
            mentor_id=p.id,
            topics=topics[p.id],
            languages=frozenset(p.languages),
            rating_sum=p.rating_sum,
            rating_count=p.rating_count,
            active_mentees=load.get(p.id, 0),
            capacity=p.capacity,
            availability=mentor_week(windows[p.id], _zone(tz), now),
        )
        for p, tz in rows
    ]


async def rating_history(uow: UnitOfWork, learner_id: int) -> tuple[frozenset[int], frozenset[int]]:
    """(preferred, blocked) mentor profiles from the ratings of this learner's past sessions
    and what they said of mentors.

    Blocked: either side rated the other 2★ or less in any session, which no later good rating
    undoes, or the learner said they are not interested in the mentor (`/recommend hide
    mentor ID`, a row of `recommendation_dismissals`). Preferred: the learner rated the mentor
    4★ or more, and the pair is not blocked.
    """
    rows = (
        await uow.session.execute(
            select(Rating.rater_id, Rating.stars, MentorSession.mentor_id)
            .join(MentorSession, MentorSession.id == Rating.session_id)
            .where(MentorSession.learner_id == learner_id)
        )
    ).all()
    blocked = {mentor for _rater, stars, mentor in rows if stars <= 2}
    said_no = await uow.session.execute(
        select(RecommendationDismissal.item_id)
        .where(RecommendationDismissal.user_id == learner_id)
        .where(RecommendationDismissal.kind == "mentor")
    )
    blocked |= {mentor for mentor in said_no.scalars() if mentor is not None}
    liked = {mentor for rater, stars, mentor in rows if rater == learner_id and stars >= 4}
    return frozenset(liked - blocked), frozenset(blocked)


def request_topic(course: Course) -> str:
    """The topic a request for `course` is stored with (`MentorshipRequest.topic`): its first,
    or its slug when it has none."""
    return (course.topics or [course.slug])[0]


def asked_course(request: MentorshipRequest, covered: list[Course], primary: Course) -> Course:
    """The course the learner asked for, among those the plan on the request's enrollment
    covers (primary first): the first whose `request_topic` is the request's. A request on a
    plan's sessions sits on the primary enrollment (bot/subscriptions/coverage.py), so its
    topic is what still names the course it was asked for, as the mentors' offer shows it."""
    return next((c for c in covered if request_topic(c) == request.topic), primary)


async def request_needs(
    uow: UnitOfWork,
    request: MentorshipRequest,
    now: datetime,
    *,
    reconsider_current: bool = False,
) -> tuple[User, Course, RequestNeeds]:
    """What the request asks of a mentor; mentors offered it before, and oneself, are out.
    With them, its learner and the course it is for (the one asked for, `asked_course`).

    `reconsider_current` keeps the mentors of the round still open in the running (cohort
    mode may hand the request to one of them).
    """
    learner = await uow.get(User, request.learner_id)
    enrollment = await uow.get(Enrollment, request.enrollment_id)
    assert learner is not None and enrollment is not None
    course = await uow.get(Course, enrollment.course_id)
    assert course is not None
    offered = select(RequestOffer.mentor_id).where(RequestOffer.request_id == request.id)
    if reconsider_current:
        offered = offered.where(RequestOffer.status != "offered")
    already = set((await uow.session.execute(offered)).scalars())
    own_profile = (
        await uow.session.execute(
            select(MentorProfile.id).where(MentorProfile.user_id == learner.id)
        )
    ).scalar_one_or_none()
    if own_profile is not None:
        already.add(own_profile)
    preferred, blocked = await rating_history(uow, learner.id)
    # The newest subscription on this enrollment: its plan may name the mentor, and a plan
    # covering several courses has one mentorship for them all (bot.subscriptions.coverage),
    # so a mentor of any of them may take it.
    plan = await plan_on(uow, enrollment.id)
    topics = list(course.topics)
    if plan is not None:
        covered = await plan_courses(uow, plan)
        topics += [t for c in covered for t in c.topics]
        course = asked_course(request, covered, course)
    needs = RequestNeeds(
        topics=tuple(dict.fromkeys(topics)) or (request.topic,),
        level=request.level,
        language=learner.language,
        exclude=frozenset(already),
        request_id=request.id,
        preferred_windows=preferred_week(request.preferred_times, _zone(learner.timezone), now),
        preferred=preferred,
        blocked=blocked,
        only=None if plan is None else plan.mentor_id,
    )
    return learner, course, needs


async def offer_next_round(
    uow: UnitOfWork,
    config: Config,
    request: MentorshipRequest,
    now: datetime,
    candidates: list[MentorCandidate] | None = None,
) -> int:
    """Offer `request` to the next candidates; returns how many mentors were offered it.

    `candidates`: the mentors as `load_candidates` gave them in this transaction, for sweeps
    that offer many requests (offers change no mentor's load, so one load serves them all).
    """
    learner, course, needs = await request_needs(uow, request, now)
    if candidates is None:
        candidates = await load_candidates(uow, now)
    ranked = rank_mentors(needs, candidates, config.matching, config.matching.offer_size)
    course_name = course_title(course)
    if not ranked:
        advance("request", request, "waitlisted")
        request.offer_expires_at = None
        await enqueue(
            uow,
            learner.id,
            Say(
                _(
                    "No mentor is free for {course} right now. Your request #{id} is on the "
                    "waitlist, and it goes out as soon as a mentor is available.",
                    course=course_name,
                    id=request.id,
                )
            ),
            now,
        )
        await tell_admins(
            uow,
            _(
                "Request #{id} ({course}) is waitlisted: no mentor can take it.",
                id=request.id,
                course=course_name,
            ),
            now,
        )
        return 0
    await offer_to(uow, config, request, ranked, now, learner=learner, course=course)
    return len(ranked)


async def offer_to(
    uow: UnitOfWork,
    config: Config,
    request: MentorshipRequest,
    ranked: Sequence[Ranked],
    now: datetime,
    *,
    learner: User | None = None,
    course: Course | None = None,
) -> None:
    """Open a new round of `request` for these mentors (none offered it before) and tell them.

    Each offer stores the facts of its explanation (`Ranked.code()`), so the learner and
    admins can be shown why later, in their own language (`explanation_from_code`).
    """
    if learner is None or course is None:
        learner, course, _needs = await request_needs(uow, request, now)
    course_name = course_title(course)
    advance("request", request, "offered")
    request.offer_round += 1
    request.offer_expires_at = now + timedelta(minutes=config.matching.offer_timeout_minutes)
    mentors = {
        p.id: p
        for p in (
            await uow.session.execute(
                select(MentorProfile).where(MentorProfile.id.in_([r.mentor_id for r in ranked]))
            )
        ).scalars()
    }
    for r in ranked:
        uow.add(
            RequestOffer(
                request_id=request.id,
                mentor_id=r.mentor_id,
                offer_round=request.offer_round,
                status="offered",
                explanation=r.code(),
                created_at=now,
            )
        )
        await enqueue(
            uow,
            mentors[r.mentor_id].user_id,
            Say(
                _(
                    "New mentorship request #{id} from {learner} for {course}.\n"
                    "Goals: {goals}\nLevel: {level} · prefers {times}\nWhy you: {why}\n"
                    "Open until {until}.",
                    id=request.id,
                    learner=learner.display_name,
                    course=course_name,
                    goals=request.goals,
                    level=LEVEL_NAMES[request.level],
                    times=times_text(request.preferred_times),
                    why=r.explanation(),
                    until=When(request.offer_expires_at),
                ),
                (
                    Choice(_("Accept"), f"/accept {request.id}"),
                    Choice(_("Decline"), f"/decline {request.id}"),
                ),
            ),
            now,
        )
    await uow.flush()


def times_text(times: list[str]) -> Lines:
    return Lines([TIME_NAMES[t] for t in times if t in TIME_NAMES] or [TIME_NAMES["any"]], ", ")


async def expire_offers(uow: UnitOfWork, config: Config, now: datetime) -> int:
    """Rounds nobody answered in time go to the next candidates."""
    due = (
        await uow.session.execute(
            select(MentorshipRequest)
            .where(MentorshipRequest.status == "offered")
            .where(MentorshipRequest.offer_expires_at <= now)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    count = 0
    candidates: list[MentorCandidate] | None = None
    for request in list(due):
        await close_round(uow, request, "expired")
        if candidates is None:
            candidates = await load_candidates(uow, now)
        await offer_next_round(uow, config, request, now, candidates)
        count += 1
    return count


async def pass_on_from_full_mentors(uow: UnitOfWork, config: Config, now: datetime) -> int:
    """Withdraw open offers from mentors who have filled up since they were offered (they
    accepted others, or lowered their capacity); a request left with no open offer goes to its
    next round at once. A full mentor can only decline, so without this the learner waits out
    the whole offer timeout for an answer that cannot be yes. Returns the offers withdrawn.

    Requests another process holds are skipped (`SKIP LOCKED`) and taken at the next sweep.
    """
    offered_to = await uow.session.execute(
        select(MentorProfile.id, MentorProfile.capacity)
        .join(RequestOffer, RequestOffer.mentor_id == MentorProfile.id)
        .where(RequestOffer.status == "offered")
        .distinct()
    )
    capacity = {mentor: cap for mentor, cap in offered_to}
    if not capacity:
        return 0
    load = await active_mentees(uow, list(capacity))
    full = {mentor for mentor, cap in capacity.items() if load.get(mentor, 0) >= cap}
    if not full:
        return 0
    requests = (
        await uow.session.execute(
            select(MentorshipRequest)
            .where(MentorshipRequest.status == "offered")
            .where(
                MentorshipRequest.id.in_(
                    select(RequestOffer.request_id)
                    .where(RequestOffer.status == "offered")
                    .where(RequestOffer.mentor_id.in_(full))
                )
            )
            .order_by(MentorshipRequest.id)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    withdrawn = 0
    candidates: list[MentorCandidate] | None = None
    for request in list(requests):
        still_open = 0
        for offer in await open_offers(uow, request.id):
            if offer.mentor_id in full:
                offer.status = "withdrawn"
                withdrawn += 1
            else:
                still_open += 1
        if not still_open:
            if candidates is None:
                candidates = await load_candidates(uow, now)
            await offer_next_round(uow, config, request, now, candidates)
    return withdrawn


async def open_offers(uow: UnitOfWork, request_id: int) -> list[RequestOffer]:
    """The request's offers nobody has answered yet."""
    rows = await uow.session.execute(
        select(RequestOffer)
        .where(RequestOffer.request_id == request_id)
        .where(RequestOffer.status == "offered")
    )
    return list(rows.scalars())


async def close_round(uow: UnitOfWork, request: MentorshipRequest, status: OfferStatus) -> None:
    for offer in await open_offers(uow, request.id):
        offer.status = status


async def reoffer_waitlist(uow: UnitOfWork, config: Config, now: datetime) -> int:
    waiting = (
        await uow.session.execute(
            select(MentorshipRequest)
            .where(MentorshipRequest.status == "waitlisted")
            .order_by(MentorshipRequest.created_at, MentorshipRequest.id)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    offered = 0
    candidates: list[MentorCandidate] | None = None
    for request in list(waiting):
        if candidates is None:
            candidates = await load_candidates(uow, now)
        if await _offer_if_possible(uow, config, request, now, candidates):
            offered += 1
    return offered


async def _offer_if_possible(
    uow: UnitOfWork,
    config: Config,
    request: MentorshipRequest,
    now: datetime,
    candidates: list[MentorCandidate],
) -> bool:
    """Offer a waitlisted request only when someone can take it (no repeated waitlist notices)."""
    _learner, _course, needs = await request_needs(uow, request, now)
    if not rank_mentors(needs, candidates, config.matching, 1):
        return False
    await offer_next_round(uow, config, request, now, candidates)
    return True
