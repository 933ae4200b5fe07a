"""Plans and workshops beside the suggested courses: ranked by score with the reason of the
strongest signal, the baseline's popularity order, what is never offered (a plan already
subscribed to, a full, started or unaffordable workshop, anything of a dismissed course, a
plan or workshop series said no to), when one counts as opened, and impressions logged once
across processes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import Marketplace
from bot.config import ConfigError
from bot.core.clock import FakeClock
from bot.recommending.extra_ranker import Candidate, fit_of, rank_extras
from bot.recommending.log import Item, log_shown
from bot.recommending.ranker import CourseDoc, Signals, Suggestion, build
from bot.runtime.demo_data import seed_demo
from storage.models import RecommendationDismissal, RecommendationShown, User
from tests.support import AppFactory, Harness, buy, harness_for, make_config

NOW = datetime(2026, 3, 2, tzinfo=UTC)
COURSES = (
    CourseDoc(1, "python-basics", "Python from zero", "零基础学 Python", "", "", ("python",), NOW),
    CourseDoc(2, "data-analysis", "Data analysis", "用 pandas 做数据分析", "", "", ("data",), NOW),
    CourseDoc(3, "git-teamwork", "Git for teams", "团队协作中的 Git", "", "", ("git",), NOW),
)
MODEL = build(Signals(NOW, COURSES))


def plan(id: int, course: int, popularity: int = 0, peers: int = 0) -> Candidate:
    topics = COURSES[course - 1].topics if course <= len(COURSES) else ()
    return Candidate("plan", id, course, topics=topics, popularity=popularity, peers=peers)


def shop(
    id: int,
    title: str,
    topics: tuple[str, ...] = (),
    *,
    course_id: int | None = None,
    hours: float = 72.0,
    seats_left: int = 10,
    popularity: int = 0,
    peers: int = 0,
) -> Candidate:
    return Candidate(
        "workshop",
        id,
        course_id,
        text=f"{title} {' '.join(topics)}",
        topics=topics,
        popularity=popularity,
        peers=peers,
        hours=hours,
        seats_left=seats_left,
    )


def test_extras_rank_by_score_each_with_its_strongest_signal() -> None:
    """A plan of the learner's own course comes before those of a suggested course (the more
    subscribed first), a goal match after. A workshop of their course, then one matching
    their goal in Chinese words, one on a topic they follow, one joined by learners like them;
    timing alone does not make a workshop worth suggesting."""
    fit = fit_of([1], [2], "团队协作 git", ["python", "sql"])
    candidates = [
        plan(10, 3),
        plan(11, 2),
        plan(12, 1),
        plan(13, 2, popularity=50),
        shop(20, "Pandas night", ("pandas",), peers=3),
        shop(21, "SQL joins", ("sql", "databases")),
        shop(22, "Python testing", course_id=1),
        shop(23, "团队协作工作坊"),
        shop(24, "Knitting", ("craft",), hours=2.0, seats_left=1),
    ]
    ranked = rank_extras(MODEL, candidates, fit, 5)
    got = [(r.candidate.id, r.reason, r.course_id or r.words) for r in ranked]
    assert got == [
        (12, "course", 1),
        (13, "picked", 2),  # as 11, and more subscribed
        (11, "picked", 2),
        (10, "goal", ("团队", "git")),
        (22, "course", 1),
        (23, "goal", ("团队", "协作")),
        (21, "topic", ("sql",)),
        (20, "peers", ()),
    ], got
    assert [r.candidate.id for r in rank_extras(MODEL, candidates, fit, 1)] == [12, 22]
    assert rank_extras(MODEL, candidates, fit, 5) == ranked  # deterministic


def test_a_workshop_about_to_start_with_few_seats_says_so() -> None:
    """Between two equally relevant workshops the one starting soon with few seats left comes
    first, and when little else speaks for it the timing is its reason."""
    fit = fit_of([], [], "", ["python"])
    later = shop(30, "Python one", ("python", "a", "b", "c"), hours=24 * 10.0)
    soon = shop(31, "Python two", ("python", "a", "b", "c"), hours=3.0, seats_left=2)
    ranked = rank_extras(MODEL, [later, soon], fit, 2)
    assert [(r.candidate.id, r.reason) for r in ranked] == [(31, "soon"), (30, "topic")]


def test_a_plan_of_a_course_like_theirs_says_it_is_related() -> None:
    """A plan of a course whose words are close to the learner's course fits through it."""
    advanced = CourseDoc(4, "python-testing", "Python testing", "", "", "", ("testing",), NOW)
    model = build(Signals(NOW, (*COURSES, advanced)))
    ranked = rank_extras(model, [plan(40, 3), plan(41, 4)], fit_of([1], [], "", []), 2)
    assert [(r.candidate.id, r.reason, r.course_id) for r in ranked] == [(41, "related", 1)]


def test_the_baseline_orders_extras_by_popularity_alone() -> None:
    """The held-out arm sees the most subscribed plans and the fullest workshops, relevant or
    not, with the popular reason; ties to the lower id and the sooner workshop."""
    fit = fit_of([1], [], "", ["python"])
    candidates = [
        plan(10, 1),
        plan(11, 3, popularity=4),
        plan(12, 2, popularity=4),
        shop(20, "Python", ("python",), course_id=1, popularity=1),
        shop(21, "Knitting", popularity=6),
        shop(22, "Chess", popularity=6, hours=5.0),
    ]
    ranked = rank_extras(MODEL, candidates, fit, 2, arm="baseline")
    assert [(r.candidate.id, r.reason) for r in ranked] == [
        (11, "popular"),
        (12, "popular"),
        (22, "popular"),
        (21, "popular"),
    ]


async def two_plans_and_workshops(market: Harness) -> None:
    """Plans on Python from zero and on Git; a Python workshop paid in its credits, a free one
    on git; bob takes Python from zero."""
    for slug, course, name in (
        ("monthly", "python-basics", "Monthly Python"),
        ("git-club", "git-teamwork", "Git club"),
    ):
        out = await market.send(
            "admin",
            f'/admin plan add {slug} course={course} name="{name}" price=29.00 sessions=2',
        )
        assert "added" in out, out
    await buy(market, "bob", "python-basics")
    await buy(market, "carol", "python-basics")
    await buy(market, "carol", "git-teamwork")


async def test_recommend_shows_two_plans_by_score_and_the_welcome_one(market: Harness) -> None:
    """`/recommend` lists up to two plans, the one of the learner's course first, each with
    its reason in their language; the welcome keeps to one; both are logged with the reason."""
    await two_plans_and_workshops(market)
    out = await market.send("bob", "/recommend")
    lines = [x for x in out.splitlines() if x.startswith("• Plan")]
    assert len(lines) == 2, out
    assert "Monthly Python" in lines[0] and lines[0].endswith("for learners of Python from zero")
    assert "Git club" in lines[1] and "for Git for teams, suggested above" in lines[1], out
    welcome = await market.send("bob", "/start")
    assert welcome.count("• Plan") == 1 and "• Plan Monthly Python" in welcome, welcome
    await market.send("bob", "/language zh")
    out = await market.send("bob", "/recommend")
    assert "面向《零基础学 Python》的学员" in out, out
    async with market.app.new_uow() as uow:
        reasons = (
            await uow.session.execute(
                select(RecommendationShown.reason)
                .where(RecommendationShown.kind == "plan")
                .where(RecommendationShown.slot == "recommend")
            )
        ).scalars()
        assert sorted(set(reasons)) == ["plan-course", "plan-picked"]


async def test_a_plan_already_subscribed_to_is_not_offered(market: Harness) -> None:
    """Once subscribed, the plan leaves the suggestions and the next one takes its place."""
    await two_plans_and_workshops(market)
    await market.send("bob", "/subscribe monthly")
    out = await market.send("bob", "/subscription pay 1")
    assert "has started" in out, out
    out = await market.send("bob", "/recommend")
    assert "Monthly Python" not in out.split("Mentors")[0] and "• Plan Git club" in out, out


async def test_full_started_unaffordable_and_dismissed_workshops_are_not_offered(
    market: Harness, clock: FakeClock
) -> None:
    """A full workshop (its line is for /workshops, not a suggestion), one that has started,
    one priced in credits the learner lacks and one of a course they said no to are left
    out; a free one on a topic they follow is offered with that reason."""
    await two_plans_and_workshops(market)
    made = {}
    for name, extra in (
        ("Full", 'start="2026-03-05 18:00" seats=1 course=python-basics'),
        ("Dear", 'start="2026-03-05 20:00" seats=5 course=python-basics credits=9'),
        ("Gitfree", 'start="2026-03-06 18:00" seats=5 topics=python,git'),
        ("Soon", 'start="2026-03-02 09:30" seats=5 course=python-basics'),
    ):
        out = await market.send("ada", f'/workshop new title="{name}" {extra}')
        assert "workshop created" in out, out
        made[name] = int(out.split("#", 1)[1].split(" ", 1)[0])
    await market.send("carol", f"/join {made['Full']}")
    clock.advance(timedelta(hours=2))  # "Soon" has started
    out = await market.send("bob", "/recommend")
    shown = [x for x in out.splitlines() if x.startswith("• Workshop")]
    assert shown == [x for x in shown if "Gitfree" in x] and shown, out
    assert "on a topic you follow: python" in shown[0], out
    assert "• Plan Git club" in out, out
    await market.send("bob", "/recommend hide git-teamwork")
    out = await market.send("bob", "/recommend")
    assert "Git club" not in out, out  # the plan of a course dismissed


async def test_the_baseline_arm_is_offered_the_most_subscribed_plan(market: Harness) -> None:
    """A learner held out for the baseline sees plans by subscribers, not by fit, with the
    popular reason, and `/admin stats recommendations` counts them apart."""
    app = market.app
    app.config = dataclasses.replace(
        app.config, recommend=dataclasses.replace(app.config.recommend, baseline_share=1.0)
    )
    await two_plans_and_workshops(market)
    await market.send("carol", "/subscribe git-club")
    assert "has started" in await market.send("carol", "/subscription pay 1")
    out = await market.send("bob", "/recommend")
    lines = [x for x in out.splitlines() if x.startswith("• Plan")]
    assert len(lines) == 2 and "Git club" in lines[0], out
    assert all(x.endswith("popular with learners") for x in lines), out
    out = await market.send("admin", "/admin stats recommendations")
    assert "plan: popular — hybrid: nothing shown\n    baseline: 2 shown" in out, out


def test_extras_per_reply_must_be_from_0_to_5() -> None:
    """A count of plans and workshops per reply out of range is refused, naming the key."""
    with pytest.raises(ConfigError, match=r"\[recommend\] extras_recommend must be from 0 to 5"):
        make_config(recommend={"extras_recommend": 6})
    assert make_config(recommend={"extras": 0}).recommend.extras == 0


def _lines(out: str, kind: str) -> list[str]:
    return [x for x in out.splitlines() if x.startswith(f"• {kind}")]


async def _workshops_made(h: Harness, who: str, fields: str) -> list[int]:
    out = await h.send(who, f"/workshop new {fields}")
    assert "created" in out, out
    return [int(x.split("#", 1)[1].split(" ", 1)[0]) for x in out.splitlines() if "#" in x]


async def test_a_plan_and_a_workshop_series_said_no_to_stay_hidden_after_a_restart(
    make_app: AppFactory,
) -> None:
    """ "Not interested" in a plan (its button, or `/recommend hide plan SLUG`) and in one
    week of a weekly workshop (`hide workshop ID`) leaves that plan and every week of that
    workshop out of `/recommend`, the welcome and `/courses`, also for a marketplace started
    afresh on the same database; the other plan and a workshop of another series stay."""
    first = await make_app()
    await seed_demo(first)
    one = harness_for(first)
    await two_plans_and_workshops(one)
    weekly = await _workshops_made(
        one,
        "ada",
        'title="Pytest weekly" start="2026-03-05 18:00" seats=5 course=python-basics weekly=2',
    )
    assert len(weekly) == 2, weekly
    (other,) = await _workshops_made(
        one, "ada", 'title="Python clinic" start="2026-03-07 18:00" seats=5 topics=python'
    )
    out = await one.send("bob", "/recommend")
    assert "Not interested: Monthly Python" in out and "Not interested: Pytest weekly" in out
    assert any("Monthly Python" in x for x in _lines(out, "Plan")), out
    assert any("Pytest weekly" in x for x in _lines(out, "Workshop")), out
    said = await one.send("bob", "/recommend hide plan monthly")  # the button's command
    assert "Noted: plan Monthly Python will not be suggested to you again." in said, said
    said = await one.send("bob", f"/recommend hide workshop {weekly[1]}")
    assert "nor any other week of it" in said, said
    second = harness_for(await make_app())  # a restart: nothing kept in memory
    for h in (one, second):
        for line in ("/recommend", "/start", "/courses"):
            out = await h.send("bob", line)
            assert not any("Monthly Python" in x for x in _lines(out, "Plan")), out
            assert not any("Pytest weekly" in x for x in _lines(out, "Workshop")), out
            if line == "/recommend":
                assert any("Git club" in x for x in _lines(out, "Plan")), out
                assert any("Python clinic" in x for x in _lines(out, "Workshop")), out
    assert f"#{other}" in await second.send("bob", "/workshops")  # still listed, just not pushed
    async with first.new_uow() as uow:
        kinds = sorted(
            (k, i)
            for k, i in await uow.session.execute(
                select(RecommendationDismissal.kind, RecommendationDismissal.item_id)
            )
        )
    assert kinds == [("plan", 1), ("workshop", weekly[0])], kinds  # the series: its first id


async def test_hiding_an_unknown_plan_or_workshop_names_it_and_changes_nothing(
    market: Harness,
) -> None:
    """A plan or workshop that does not exist, or a workshop number that is not one, is
    refused, naming what was typed; nothing is stored and the suggestions stay as they were."""
    await two_plans_and_workshops(market)
    before = _lines(await market.send("bob", "/recommend"), "Plan")
    for line, refusal in (
        ("/recommend hide plan no-such-plan", "There is no plan called 'no-such-plan'"),
        ("/recommend hide workshop 999", "There is no workshop #999"),
        ("/recommend hide workshop abc", "'abc' is not a number"),
    ):
        out = await market.send("bob", line)
        assert refusal in out and "Noted" not in out, out
    async with market.app.new_uow() as uow:
        assert await uow.session.scalar(select(func.count(RecommendationDismissal.id))) == 0
    assert _lines(await market.send("bob", "/recommend"), "Plan") == before


async def test_a_plan_or_workshop_opened_counts_within_a_week_for_its_learner_only(
    market: Harness, clock: FakeClock
) -> None:
    """Pressing a suggested plan's Subscribe or a workshop's Join marks that suggestion opened
    in `/admin stats recommendations` (by slot and by reason, beside the courses); the same
    typed by hand, pressed by another learner, or pressed more than 7 days after it was shown
    does not."""
    await two_plans_and_workshops(market)
    (workshop,) = await _workshops_made(
        market, "ada", 'title="Pytest night" start="2026-03-12 18:00" seats=5 course=python-basics'
    )
    out = await market.send("bob", "/recommend")
    assert "Monthly Python" in out and "Pytest night" in out, out
    await market.send("dave", "/subscribe monthly suggested")  # not shown to dave
    await market.send("bob", "/subscribe git-club")  # typed by hand
    clock.advance(timedelta(days=8))
    out = await market.send("bob", "/subscribe monthly suggested")  # shown 8 days ago
    assert "Subscription #" in out, out
    stats = await market.send("admin", "/admin stats recommendations")
    assert "plan: for their course — hybrid: 1 shown · opened 0%" in stats, stats
    assert "plan: for a course suggested with it — hybrid: 1 shown · opened 0%" in stats, stats
    assert "workshop: for their course — hybrid: 1 shown · opened 0%" in stats, stats
    assert "Plans and workshops by slot:\nin /recommend — hybrid: 3 shown · opened 0%" in stats
    out = await market.send("bob", "/recommend")  # shown again, a week later
    assert "Pytest night" in out, out
    out = await market.send("bob", f"/join {workshop} suggested")  # the Join button
    assert "You have a seat" in out, out
    await market.send("bob", "/subscribe monthly suggested")
    stats = await market.send("admin", "/admin stats recommendations")
    # bought: the seat followed both showings within 30 days; opened: only the newer's press
    assert "workshop: for their course — hybrid: 2 shown · opened 50% · bought 100%" in stats
    assert "plan: for their course — hybrid: 2 shown · opened 50%" in stats, stats
    extras = stats.split("Plans and workshops by slot:\n", 1)[1].split("\n", 1)[0]
    assert extras.startswith("in /recommend — hybrid: 6 shown · opened 33%"), stats
    courses = stats.split("Courses by slot:\n", 1)[1].split("\n", 1)[0]
    assert courses.startswith("in /recommend — hybrid:") and "opened 0%" in courses, stats


async def test_two_processes_showing_the_same_log_it_once(make_app: AppFactory) -> None:
    """Two bot processes on one database: the same suggestions shown to a learner within the
    hour through either, one after the other or at the very same time, are one impression
    each; the database decides, not each process's memory."""
    first, second = await make_app(), await make_app()
    await seed_demo(first)
    one, two = harness_for(first), harness_for(second)

    async def logged() -> int:
        async with first.new_uow() as uow:
            return int(await uow.session.scalar(select(func.count(RecommendationShown.id))) or 0)

    shown = len(_lines(await one.send("nina", "/courses"), ""))
    await two.send("nina", "/courses")
    assert shown == 3 and await logged() == 3
    await asyncio.gather(one.send("wei", "/courses"), two.send("wei", "/courses"))
    assert await logged() == 6
    async with first.new_uow() as uow:
        wei = (
            await uow.session.execute(select(User.id).where(User.display_name == "wei"))
        ).scalar_one()
    picks = [Suggestion(1, 1.0, "popular"), Item("plan", 7, 1, "plan-course")]
    now = first.clock.now() + timedelta(hours=2)

    async def show(app: Marketplace, wait: float, hold: float) -> None:
        await asyncio.sleep(wait)
        async with app.new_uow() as uow:
            await log_shown(uow, wei, picks, "recommend", "hybrid", now)
            await asyncio.sleep(hold)  # the other one reads meanwhile
            await uow.commit()

    await asyncio.gather(show(first, 0, 0.3), show(second, 0.1, 0))
    assert await logged() == 8
