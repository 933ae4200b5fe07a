"""A small sample marketplace, so a new user has something to buy and someone to meet.

Mentors and the admin are console users (`/as ada`, `/as admin`). Seeding is skipped when any
course exists, so it never overwrites a real catalogue.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.app import Marketplace
from bot.core.roles import make_admin, make_mentor
from bot.core.users import Incoming, mentor_profile_of, resolve_user
from storage.models import AvailabilityWindow, Course, MentorTopic
from storage.uow import UnitOfWork

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


async def seed_demo(app: Marketplace) -> bool:
    """Create the sample catalogue, mentors and admin; False if a catalogue already exists."""
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
        await make_admin(uow, admin.id)
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
