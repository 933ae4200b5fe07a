"""Plans covering several courses (`course=a,b`): a live subscription opens every covered
course's lessons and community spaces and books on the plan's one pool of sessions; ending it
takes them all back, except what the learner bought on their own; an admin's edit of the
courses reaches running subscriptions at once; an unknown course is refused by name."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.runtime.demo_data import seed_demo
from bot.subscriptions.lifecycle import lock_subscription, record_failure
from storage.models import (
    AccessGrant,
    Enrollment,
    Identity,
    MentorshipRequest,
    Plan,
    PlanCourse,
    Subscription,
    User,
)
from tests.support import AppFactory, Harness, buy, harness_for, make_config

PY, GIT = "python-basics@telegram:-1001", "git-teamwork@telegram:-1002"
SPACES = ["python-basics=telegram:-1001", "git-teamwork=telegram:-1002"]
DUO = (
    "/admin plan add duo course=python-basics,git-teamwork "
    'name="Python and Git" price=39.00 sessions=2'
)
LESSONS = {"python-basics": "Variables", "git-teamwork": "Branches"}


async def covering_market(make_app: AppFactory, **sections: dict[str, object]) -> Harness:
    """The demo marketplace with a Telegram group per course (python-basics, git-teamwork)
    and one lesson in each."""
    app = await make_app(make_config(community={"spaces": SPACES}, **sections))
    h = harness_for(app)
    await seed_demo(app)
    for slug, title in LESSONS.items():
        out = await h.send("admin", f'/admin lesson add {slug} title="{title}" body="Read on."')
        assert "added" in out, out
    return h


async def on_telegram(h: Harness, name: str, external_id: str) -> None:
    """Console user `name` also uses the bot on Telegram (so group access applies to them)."""
    await h.send(name, "/start")
    async with h.app.new_uow() as uow:
        uid = (
            await uow.session.execute(select(User.id).where(User.display_name == name))
        ).scalar_one()
        now = h.app.clock.now()
        uow.add(
            Identity(
                user_id=uid,
                platform="telegram",
                external_id=external_id,
                created_at=now,
                last_seen_at=now,
            )
        )
        await uow.commit()


async def subscribed(h: Harness, name: str, plan: str) -> int:
    """`name` subscribes to `plan` and pays the first (demo) period; the subscription's id."""
    out = await h.send(name, f"/subscribe {plan}")
    sub_id = int(out.split("Subscription #", 1)[1].split(":", 1)[0])
    assert "has started" in await h.send(name, f"/subscription pay {sub_id}")
    return sub_id


async def spaces(h: Harness, name: str) -> dict[str, str]:
    """What the community rule wants for `name` in each space, after a sweep."""
    await h.app.community.sweep()
    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(AccessGrant.space, AccessGrant.desired)
            .join(User, User.id == AccessGrant.user_id)
            .where(User.display_name == name)
        )
        return {str(space): str(desired) for space, desired in rows.all()}


async def lapse(h: Harness, clock: FakeClock, *sub_ids: int) -> None:
    """The renewals of these subscriptions fail and their grace runs out."""
    async with h.app.new_uow() as uow:
        for sub_id in sub_ids:
            sub = await lock_subscription(uow, sub_id)
            assert await record_failure(uow, h.app.config, sub, clock.now())
        await uow.commit()
    clock.advance(timedelta(days=8))
    assert "no renewal payment came through" in await h.tick()


async def test_a_plan_covering_two_courses_opens_both_and_a_lapse_closes_what_it_gave(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Subscribed, alice gets the lessons and groups of both courses, and /plans and
    /subscription name both; when the subscription lapses both close for her, while bob, who
    had bought the Git course on its own, keeps it and only loses Python."""
    h = await covering_market(make_app)
    assert "Plan 'duo' added" in await h.send("admin", DUO)
    await on_telegram(h, "alice", "7001")
    await on_telegram(h, "bob", "7002")
    await buy(h, "bob", "git-teamwork")
    out = await h.send("alice", "/plans")
    assert "Python and Git" in out and "(Python from zero, Git for teams)" in out, out
    subs = [await subscribed(h, "alice", "duo"), await subscribed(h, "bob", "duo")]
    out = await h.send("alice", "/subscription")
    assert "Python and Git (Python from zero, Git for teams) — active" in out, out
    assert "2 sessions left this period" in out, out
    for slug, title in LESSONS.items():
        assert title in await h.send("alice", f"/nextlesson {slug}")
    assert await spaces(h, "alice") == {PY: "granted", GIT: "granted"}
    assert await spaces(h, "bob") == {PY: "granted", GIT: "granted"}

    await lapse(h, clock, *subs)
    for slug in LESSONS:
        out = await h.send("alice", f"/nextlesson {slug}")
        assert "Lessons come with a course" in out, out
    assert await spaces(h, "alice") == {PY: "revoked", GIT: "revoked"}
    assert "Branches" in await h.send("bob", "/nextlesson git-teamwork")
    assert "Lessons come with a course" in await h.send("bob", "/nextlesson python-basics")
    assert await spaces(h, "bob") == {PY: "revoked", GIT: "granted"}
    assert "Git for teams: 2 sessions left" in await h.send("bob", "/mycourses")


async def test_a_mentor_for_a_covered_course_books_on_the_plans_sessions(
    make_app: AppFactory,
) -> None:
    """`/mentor` for the course the plan covers besides its primary one asks on the plan's
    sessions, and the request reaches mentors of either course: mei teaches data, not git,
    yet is offered it, accepts, and alice books with a plan session."""
    h = await covering_market(make_app)
    out = await h.send(
        "admin",
        "/admin plan add gitdata course=git-teamwork,data-analysis "
        'name="Git and data" price=39.00 sessions=2',
    )
    assert "Plan 'gitdata' added" in out, out
    await subscribed(h, "alice", "gitdata")
    out = await h.send("alice", "/mentor data-analysis")
    assert "mentor for Git for teams, Data analysis with pandas" in out, out
    await h.send("alice", "Clean up a messy CSV")
    await h.send("alice", "beginner")
    out = await h.send("alice", "any")
    assert "Request #1 is out to 3 mentors" in out, out
    assert "Request #1 from alice" in await h.send("mei", "/requests")
    assert "You are now mentoring" in await h.send("mei", "/accept 1")
    out = await h.send("alice", "/mentor data-analysis")
    assert "You already have a mentor for Git for teams, Data analysis with pandas" in out, out
    await h.send("alice", "/book 1")
    assert "Booked" in await h.send("alice", "1")
    assert "1 session left this period" in await h.send("alice", "/subscription")


async def test_an_admin_adding_or_removing_a_course_reaches_running_subscriptions(
    make_app: AppFactory,
) -> None:
    """Adding Git to a running plan opens its lessons and group to the subscriber at once (she
    is told); taking it out closes them again, and Python stays."""
    h = await covering_market(make_app)
    await h.send(
        "admin",
        '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 sessions=2',
    )
    await on_telegram(h, "alice", "7001")
    await subscribed(h, "alice", "monthly")
    assert "Lessons come with a course" in await h.send("alice", "/nextlesson git-teamwork")

    out = await h.send("admin", "/admin plan edit monthly course=python-basics,git-teamwork")
    assert "Plan 'monthly' updated" in out, out
    assert "It covers Python from zero, Git for teams" in out, out
    assert "the courses of 1 running subscription changed" in out, out
    assert "Your subscription to Monthly Python now covers: Python from zero, Git for" in out
    assert "Branches" in await h.send("alice", "/nextlesson git-teamwork")
    assert await spaces(h, "alice") == {PY: "granted", GIT: "granted"}
    assert "Git for teams" in await h.send("alice", "/plans")

    out = await h.send("admin", "/admin plan edit monthly course=python-basics")
    assert "the courses of 1 running subscription changed" in out, out
    assert "Lessons come with a course" in await h.send("alice", "/nextlesson git-teamwork")
    assert "You have no lesson #2" in await h.send("alice", "/lesson 2")
    assert "Variables" in await h.send("alice", "/nextlesson python-basics")
    assert await spaces(h, "alice") == {PY: "granted", GIT: "revoked"}
    assert "Git for teams" not in await h.send("alice", "/plans")
    out = await h.send("admin", "/admin plan edit monthly course=python-basics,git-teamwork")
    assert "the courses of 1 running subscription changed" in out, out
    assert "Branches" in await h.send("alice", "/lesson 2")  # received before, readable again


async def plan_rows(h: Harness) -> list[tuple[str, int, list[int]]]:
    async with h.app.new_uow() as uow:
        plans = (await uow.session.execute(select(Plan).order_by(Plan.id))).scalars().all()
        covers = (await uow.session.execute(select(PlanCourse))).scalars().all()
        return [
            (p.slug, p.course_id, [c.course_id for c in covers if c.plan_id == p.id]) for p in plans
        ]


async def test_an_unknown_course_in_a_plan_is_refused_by_name_and_nothing_changes(
    make_app: AppFactory,
) -> None:
    """`course=` naming a course that does not exist is refused with its name, on adding and on
    editing, by an admin and by a mentor selling their own plan; nothing is stored."""
    h = await covering_market(make_app, subscriptions={"mentor_plans": True})
    out = await h.send(
        "admin",
        '/admin plan add duo course=python-basics,nope name="Duo" price=39.00 sessions=2',
    )
    assert "There is no course called 'nope'" in out, out
    assert await plan_rows(h) == []
    assert "Plan 'duo' added" in await h.send("admin", DUO)
    before = await plan_rows(h)
    out = await h.send("admin", "/admin plan edit duo course=data-analysis,nope")
    assert "There is no course called 'nope'" in out, out
    out = await h.send("admin", "/admin plan edit duo course=,")
    assert "course= needs a course's short name" in out, out
    assert await plan_rows(h) == before
    out = await h.send(
        "ada", '/myplans add ada-duo course=python-basics,nope name="Ada" price=20.00 sessions=1'
    )
    assert "There is no course called 'nope'" in out, out
    assert await plan_rows(h) == before
    out = await h.send(
        "ada",
        '/myplans add ada-duo course=python-basics,data-analysis name="Ada" price=20.00 sessions=1',
    )
    assert "Plan 'ada-duo' added" in out, out
    out = await h.send("alice", "/plans")
    assert "(Python from zero, Data analysis with pandas, with mentor ada)" in out, out


async def test_mycourses_names_the_plan_and_its_sessions_for_every_course_it_covers(
    make_app: AppFactory,
) -> None:
    """/mycourses reads each course a plan covers as covered by the plan, with the plan's
    sessions left this period (what /subscription shows), and offers a mentor for each while
    sessions are left (the button asks on the plan's sessions); a course bought on its own
    keeps its own count; in Chinese too; with the period's sessions spent, only the bought
    course has a button."""
    h = await covering_market(make_app)
    assert "Plan 'duo' added" in await h.send("admin", DUO)
    await buy(h, "bob", "data-analysis")
    sub_id = await subscribed(h, "bob", "duo")
    out = await h.send("bob", "/mycourses")
    assert "Data analysis with pandas: 6 sessions left" in out, out
    for title in ("Python from zero", "Git for teams"):
        assert f"{title}: covered by your plan Python and Git, 2 sessions left this period" in out
        assert f"Find a mentor for {title}" in out, out
    assert "0 sessions left" not in out, out
    out = await h.send("bob", "3")
    assert "Let's find you a mentor for Python from zero, Git for teams" in out, out
    await h.send("bob", "/cancel")

    await h.send("bob", "/language zh")
    out = await h.send("bob", "/mycourses")
    assert "《团队协作中的 Git》：由你的套餐《Python and Git》提供，本期剩余 2 次辅导" in out, out
    await h.send("bob", "/language en")

    async with h.app.new_uow() as uow:  # the period's sessions are all spent
        sub = await uow.get(Subscription, sub_id)
        assert sub is not None and sub.enrollment_id is not None
        primary = await uow.get(Enrollment, sub.enrollment_id)
        assert primary is not None
        primary.credits_remaining = 0
        await uow.commit()
    out = await h.send("bob", "/mycourses")
    assert "Git for teams: covered by your plan Python and Git, 0 sessions left this period" in out
    assert "Find a mentor for Data analysis with pandas" in out, out
    assert "Find a mentor for Git for teams" not in out, out
    assert "Find a mentor for Python from zero" not in out, out
    assert "0 sessions left this period" in await h.send("bob", "/subscription")


async def test_a_mentors_offer_names_the_covered_course_the_learner_asked_for(
    make_app: AppFactory,
) -> None:
    """`/mentor data-analysis` on a plan whose primary course is Git: the offer each mentor
    gets, and the learner's own request, name Data analysis, while the request still asks on
    the plan's sessions (the primary enrollment); `/mentor git-teamwork` would name Git."""
    h = await covering_market(make_app)
    await h.send(
        "admin",
        "/admin plan add gitdata course=git-teamwork,data-analysis "
        'name="Git and data" price=39.00 sessions=2',
    )
    sub_id = await subscribed(h, "alice", "gitdata")
    await h.send("alice", "/mentor data-analysis")
    await h.send("alice", "Clean up a messy CSV")
    await h.send("alice", "beginner")
    out = await h.send("alice", "any")
    assert "Request #1 is out to 3 mentors" in out, out
    assert "New mentorship request #1 from alice for Data analysis with pandas." in out, out
    assert "request #1 from alice for Git for teams" not in out, out
    async with h.app.new_uow() as uow:
        sub = await uow.get(Subscription, sub_id)
        request = await uow.get(MentorshipRequest, 1)
        assert sub is not None and request is not None
        assert request.enrollment_id == sub.enrollment_id  # the plan's one pool of sessions
        enrollment = await uow.get(Enrollment, request.enrollment_id)
        assert enrollment is not None and enrollment.credits_remaining == 2


async def test_admin_plans_lists_every_course_each_plan_covers(make_app: AppFactory) -> None:
    """`/admin plans` names each plan's courses, its primary one first, as `/plans` does;
    an archived plan (which /plans no longer shows) too."""
    h = await covering_market(make_app)
    assert "Plan 'duo' added" in await h.send("admin", DUO)
    await h.send(
        "admin",
        "/admin plan add gitdata course=git-teamwork,data-analysis "
        'name="Git and data" price=39.00 sessions=2',
    )
    await h.send("admin", "/admin plan archive gitdata")
    out = await h.send("admin", "/admin plans")
    assert "(Python from zero, Git for teams) — " in out, out
    assert "(Git for teams, Data analysis with pandas) — " in out, out
    assert "(Python from zero, Git for teams)" in await h.send("alice", "/plans")
