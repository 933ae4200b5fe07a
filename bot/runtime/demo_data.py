"""A small sample marketplace, so a new user has something to buy and someone to meet.

Mentors and the admin are console users (`/as ada`, `/as admin`). Seeding is skipped when any
course exists, so it never overwrites a real catalogue. With `history` (what `mentorbot shell
--demo` loads) the sample also has lessons and a few weeks of past use, played through the
same commands a person would type on a clock set back `HISTORY_WEEKS` weeks: learners who
bought courses with demo payments (marked demo, so the stats leave their revenue out), met
their mentors, completed sessions (one missed), rated both ways and read lessons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.i18n import Lines, _
from bot.core.roles import make_admin, make_mentor
from bot.core.users import Incoming, mentor_profile_of, resolve_user
from bot.runtime.bootstrap import payment_providers
from storage.models import (
    AvailabilityWindow,
    Course,
    Identity,
    LessonDelivery,
    MentorSession,
    MentorshipRequest,
    MentorTopic,
    Order,
    OutboxMessage,
)
from storage.uow import UnitOfWork

HISTORY_WEEKS = 4
LESSONS = {
    "python-basics": [
        ("Variables and types", "Names, numbers and strings; try each in the REPL."),
        ("Functions", "def, arguments and return values; write three small ones."),
        ("Testing with pytest", "One assert per behaviour; run pytest -q."),
    ],
    "data-analysis": [
        ("Loading a CSV", "pandas.read_csv, dtypes and the first look with head()."),
        ("Grouping", "groupby, agg and a pivot table of your own data."),
    ],
    "git-teamwork": [("Branches", "Create, switch and merge; draw the graph first.")],
}


@dataclass(frozen=True)
class Learner:
    """A sample learner of the history: who, in which language, which course, which mentor,
    the week they bought it, and how each week's session went (completed with the two
    ratings, or a no-show)."""

    name: str
    language: str
    course: str
    mentor: str
    weeks: tuple[tuple[int, int] | None, ...]  # (learner's stars, mentor's stars); None: missed
    joins: int = 0  # the history's week in which they buy


LEARNERS = (
    Learner("sam", "en", "python-basics", "ada", ((5, 5), (4, 5), None, (5, 4))),
    Learner("lin", "zh", "data-analysis", "mei", ((5, 4), (5, 5), (4, 4), (5, 5))),
    Learner("ravi", "en", "git-teamwork", "linus", ((3, 4), (4, 4)), joins=1),
    Learner("yu", "zh", "python-basics", "ada", ((5, 5), (4, 5)), joins=2),
)

COURSES = [
    dict(
        slug="python-basics",
        title_en="Python from zero",
        title_zh="零基础学 Python",
        description_en="Write real programs in four guided sessions.",
        description_zh="四次辅导课，写出真正的程序。",
        price_minor=4900,
        currency="USD",
        sessions_included=4,
        topics=["python"],
    ),
    dict(
        slug="data-analysis",
        title_en="Data analysis with pandas",
        title_zh="用 pandas 做数据分析",
        description_en="From a CSV to answers, with a mentor who does it daily.",
        description_zh="从一个 CSV 到结论，导师每天都在做这件事。",
        price_minor=9900,
        currency="USD",
        sessions_included=6,
        topics=["data", "python"],
    ),
    dict(
        slug="git-teamwork",
        title_en="Git for teams",
        title_zh="团队协作中的 Git",
        description_en="Branches, reviews and untangling merges.",
        description_zh="分支、代码评审和解决合并冲突。",
        price_minor=2900,
        currency="USD",
        sessions_included=2,
        topics=["git"],
    ),
]

MENTORS = [
    ("ada", "Europe/London", ["en", "zh"], {"python": 3, "testing": 3}),
    ("linus", "Europe/Helsinki", ["en"], {"python": 2, "git": 3}),
    ("mei", "Asia/Shanghai", ["zh", "en"], {"data": 3, "python": 3}),
]
WINDOWS = [(day, 9 * 60, 12 * 60) for day in range(7)] + [
    (day, 18 * 60, 21 * 60) for day in range(7)
]


async def seed_demo(app: Marketplace, history: bool = False) -> bool:
    """Create the sample catalogue, mentors and admin (and, with `history`, lessons and a few
    weeks of past use); False if a catalogue already exists."""
    if not history:
        return await _catalogue(app)
    now = app.clock.now()
    start = (now - timedelta(weeks=HISTORY_WEEKS)).replace(hour=7, minute=0, second=0)
    clock = FakeClock(start - timedelta(days=start.weekday()))
    config = dataclasses.replace(
        app.config, payments=dataclasses.replace(app.config.payments, demo=True)
    )
    past = Marketplace(config, app.engine, clock, payment_providers(config, clock))
    if not await _catalogue(past):
        return False
    await _play_history(past, clock, now)
    async with app.new_uow() as uow:  # the past's notices are history, not news
        await uow.session.execute(
            update(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).values(sent_at=now)
        )
        await uow.commit()
    return True


async def _catalogue(app: Marketplace) -> bool:
    now = app.clock.now()
    async with app.new_uow() as uow:
        if (await uow.session.execute(select(func.count(Course.id)))).scalar_one():
            return False
        for data in COURSES:
            uow.add(Course(status="active", created_at=now, **data))
        for name, tz, languages, topics in MENTORS:
            await _mentor(app, uow, name, tz, languages, topics)
        admin, _roles = await resolve_user(
            uow, app.config, Incoming("console", "admin", "admin", ""), now
        )
        await make_admin(uow, admin.id, "console", "admin")
        await uow.commit()
    return True


async def _mentor(
    app: Marketplace,
    uow: UnitOfWork,
    name: str,
    tz: str,
    languages: list[str],
    topics: dict[str, int],
) -> None:
    now = app.clock.now()
    user, _roles = await resolve_user(uow, app.config, Incoming("console", name, name, ""), now)
    user.timezone = tz
    await make_mentor(uow, user.id, languages[0], now)
    profile = await mentor_profile_of(uow, user.id)
    assert profile is not None
    profile.languages = languages
    profile.bio = f"{name} mentors {', '.join(topics)}."
    for topic, level in topics.items():
        uow.add(MentorTopic(mentor_id=profile.id, topic=topic, level=level))
    for day, start, end in WINDOWS:
        uow.add(
            AvailabilityWindow(
                mentor_id=profile.id, weekday=day, start_minute=start, end_minute=end
            )
        )
    await uow.flush()


class _Player:
    """Types commands as the sample users, on the past marketplace's clock."""

    def __init__(self, app: Marketplace) -> None:
        self.app = app

    async def say(self, who: str, text: str, language: str = "en") -> list[str]:
        """`text` as console user `who`; the payloads of the reply's buttons."""
        replies = await self.app.handle(Incoming("console", who, who, text, language))
        return [c.payload for r in replies for c in r.choices]

    async def latest(
        self, who: str, model: type[Order | MentorshipRequest | MentorSession | LessonDelivery]
    ) -> int:
        """The id of `who`'s newest row of `model` (a lesson delivery: its lesson's)."""
        async with self.app.new_uow() as uow:
            user_id = (
                await uow.session.execute(
                    select(Identity.user_id)
                    .where(Identity.platform == "console")
                    .where(Identity.external_id == who)
                )
            ).scalar_one()
            if model is LessonDelivery:
                stmt = select(func.max(LessonDelivery.lesson_id)).where(
                    LessonDelivery.user_id == user_id
                )
            elif model is Order:
                stmt = select(func.max(Order.id)).where(Order.user_id == user_id)
            elif model is MentorshipRequest:
                stmt = select(func.max(MentorshipRequest.id)).where(
                    MentorshipRequest.learner_id == user_id
                )
            else:
                stmt = select(func.max(MentorSession.id)).where(MentorSession.learner_id == user_id)
            found = (await uow.session.execute(stmt)).scalar_one()
        if found is None:
            raise RuntimeError(f"demo history: {who} has no {model.__name__}")
        return int(found)


async def _join(play: _Player, learner: Learner) -> int:
    """`learner` buys their course with a demo payment and their mentor takes the request."""
    who, lang = learner.name, learner.language
    await play.say(who, f"/language {learner.language}", lang)
    await play.say(who, f"/buy {learner.course}", lang)
    await play.say(who, f"/pay {await play.latest(who, Order)}", lang)
    await play.say(who, f"/mentor {learner.course}", lang)
    for answer in ("Get confident with the basics", "beginner", "any"):
        await play.say(who, answer, lang)
    request = await play.latest(who, MentorshipRequest)
    await play.say(learner.mentor, f"/accept {request}")
    return request


async def _play_history(app: Marketplace, clock: FakeClock, until: datetime) -> None:
    play = _Player(app)
    for slug, lessons in LESSONS.items():
        for title, body in lessons:
            await play.say("admin", f'/admin lesson add {slug} title="{title}" body="{body}"')
    requests: dict[str, int] = {}
    for week in range(HISTORY_WEEKS):
        for learner in LEARNERS:
            if learner.joins == week:
                requests[learner.name] = await _join(play, learner)
        for learner in LEARNERS:
            who, lang = learner.name, learner.language
            n = week - learner.joins
            if not 0 <= n < len(learner.weeks):
                continue
            booking = await play.say(who, f"/book {requests[who]}", lang)
            slots = [p for p in booking if p.startswith(f"/book {requests[who]} ")]
            if not slots:
                continue
            await play.say(who, slots[0], lang)
            session_id = await play.latest(who, MentorSession)
            async with app.new_uow() as uow:
                session = await uow.get(MentorSession, session_id)
                assert session is not None
                ends = session.start_at + timedelta(minutes=session.duration_minutes)
            if ends + timedelta(hours=2) > until:
                continue  # stays booked: a session still to come
            clock.advance(max(timedelta(0), ends + timedelta(hours=1) - clock.now()))
            await app.run_due()
            outcome = learner.weeks[n]
            if outcome is None:
                await play.say(learner.mentor, f"/noshow {session_id}")
                continue
            await play.say(learner.mentor, f"/complete {session_id}")
            await play.say(who, f"/rate {session_id} {outcome[0]} Clear and patient", lang)
            await play.say(learner.mentor, f"/rate {session_id} {outcome[1]} Came prepared")
            if n < len(LESSONS[learner.course]):
                await play.say(who, f"/nextlesson {learner.course}", lang)
                lesson = await play.latest(who, LessonDelivery)
                await play.say(who, f"/ratelesson {lesson} {outcome[0]} Useful", lang)
        step = clock.now() + timedelta(days=7) - timedelta(days=clock.now().weekday())
        if step.replace(hour=7, minute=0) >= until:
            break
        clock.advance(step.replace(hour=7, minute=0) - clock.now())
        await app.run_due()


async def has_demo_data(app: Marketplace) -> bool:
    """Whether this database holds the demo's catalogue (every one of its courses)."""
    slugs = [str(c["slug"]) for c in COURSES]
    async with app.new_uow() as uow:
        found = (
            await uow.session.execute(select(func.count(Course.id)).where(Course.slug.in_(slugs)))
        ).scalar_one()
    return int(found) == len(slugs)


def introduction(language: str, loaded: bool | None) -> str:
    """What `shell --demo` loaded and what to try, per role; `loaded` None: a plain `shell` on
    the demo's database (its demo payments are on), False: the catalogue was there already."""
    if loaded is None:
        head = _("This database holds the demo data, so demo payments are on: they move no money.")
    elif loaded:
        head = _(
            "Demo loaded: 3 courses with lessons; mentors ada, linus and mei; learners sam, lin, "
            "ravi and yu with {weeks} weeks of sessions, ratings and paid orders (demo payments: "
            "no money moved, and the stats leave them out); the admin is admin.",
            weeks=HISTORY_WEEKS,
        )
    else:
        head = _("A catalogue exists already, so no demo data was added; demo payments are on.")
    return (
        Lines(
            (
                head,
                _("Things to try (type /as NAME to become someone):"),
                _(
                    "As a learner: /courses, /buy python-basics, /mentor, /book, /sessions, "
                    "/progress"
                ),
                _("As a mentor (/as ada): /requests, /availability, /sessions, /complete SESSION"),
                _(
                    "As the admin (/as admin): /admin stats, /admin mentors, /admin applications, "
                    "/admin orders"
                ),
                _(
                    "To watch reminders and lesson drips happen in minutes, set speed under "
                    "[clock] in the config (e.g. 60: an hour per minute)."
                ),
            )
        )
        .as_msg()
        .render(language)
    )
