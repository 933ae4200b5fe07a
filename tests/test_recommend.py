"""Personalised recommendations: reasons, cold start, "not interested", owned courses, the
learner's language, the held-out baseline, the slots that show them and their outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from bot.core.clock import FakeClock
from bot.recommending import signals
from bot.recommending.ranker import (
    CourseDoc,
    Interaction,
    Learner,
    Signals,
    arm_for,
    build,
    rank,
)
from bot.recommending.signals import MODELS, versions
from bot.runtime.demo_data import seed_demo
from storage.models import (
    Course,
    MentorProfile,
    ModelChange,
    RecommendationDismissal,
    RecommendationShown,
    RequestOffer,
    User,
)
from tests.support import (
    AppFactory,
    Harness,
    add_lessons,
    buy,
    harness_for,
    make_config,
    matched_pair,
    request_mentor,
    snapshot,
)

NOW = datetime(2026, 3, 2, tzinfo=UTC)
COURSES = (
    CourseDoc(1, "python-basics", "Python from zero", "零基础学 Python", "", "", ("python",), NOW),
    CourseDoc(2, "data-analysis", "Data analysis", "用 pandas 做数据分析", "", "", ("data",), NOW),
    CourseDoc(3, "git-teamwork", "Git for teams", "团队协作中的 Git", "", "", ("git",), NOW),
)


async def seed_sequences(h: Harness) -> None:
    """Three learners took Python from zero and then data analysis; one took Git."""
    for who in ("u1", "u2", "u3"):
        await buy(h, who, "python-basics")
        await buy(h, who, "data-analysis")
    await buy(h, "u4", "git-teamwork")


async def test_cold_start_gives_popular_courses_with_a_reason(market: Harness) -> None:
    """A learner with no history and no goals is shown the most popular courses, each saying so."""
    await seed_sequences(market)
    out = await market.send("nina", "/recommend")
    assert "Suggested for you:" in out
    lines = [x for x in out.splitlines() if x.startswith("•")]
    assert len(lines) == 3
    assert all(x.endswith("popular with learners") for x in lines), out
    assert "Git for teams" in lines[2]  # bought once, the others three times each


async def test_cold_start_with_goals_puts_the_goal_matched_course_first(market: Harness) -> None:
    """Saying what you want to learn (in either language) puts the matching course first, with
    the goal words as its reason."""
    await seed_sequences(market)
    out = await market.send("nina", "/recommend data analysis")
    first = next(x for x in out.splitlines() if x.startswith("•"))
    assert "Data analysis with pandas" in first
    assert "matches your goal: data, analysis" in first
    # Told the goal, it does not ask for one again: it says what it suggested for.
    assert "Suggested for your goal: data analysis." in out
    assert "Tell me what you want to learn" not in out
    assert "Tell me what you want to learn" in await market.send("nina", "/recommend")
    out = await market.send("wei", "/recommend 我想学数据分析")
    first = next(x for x in out.splitlines() if x.startswith("•"))
    assert "Data analysis with pandas" in first and "数据分析" in first


async def test_goal_and_level_name_the_level(market: Harness) -> None:
    """A goal with a level matches a course at that level and says "your level"."""
    out = await market.send("nina", "/recommend python beginner")
    first = next(x for x in out.splitlines() if x.startswith("•"))
    assert "Python from zero" in first and "your level" in first


async def test_learners_who_took_a_course_suggest_what_came_next(market: Harness) -> None:
    """After Python from zero, the course others took next is suggested, saying so."""
    await seed_sequences(market)
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/recommend")
    assert "Data analysis with pandas — learners who took Python from zero took this next" in out, (
        out
    )


async def test_not_interested_is_remembered(market: Harness) -> None:
    """Pressing Not interested stores it, and the course is never suggested again, anywhere."""
    await seed_sequences(market)
    out = await market.send("nina", "/recommend")
    assert "Not interested: Data analysis with pandas" in out
    out = await market.send("nina", "/recommend hide data-analysis")
    assert "will not be suggested to you again" in out
    for line in ("/recommend", "/recommend data analysis", "/courses"):
        out = await market.send("nina", line)
        shown = [x for x in out.splitlines() if x.startswith("•")]
        assert shown and not any("Data analysis" in x for x in shown), out
    async with market.app.new_uow() as uow:
        count = await uow.session.scalar(select(func.count(RecommendationDismissal.id)))
    assert count == 1


async def test_a_course_owned_with_credits_left_is_never_suggested(market: Harness) -> None:
    """Whoever the learner and whatever the slot, a course they own with sessions left is not
    among the suggestions (nor in the log of what was shown)."""
    await seed_sequences(market)
    for i in range(12):
        who = f"owner{i}"
        await buy(market, who, "python-basics")
        for line in ("/recommend", "/courses", "/start", "/recommend python"):
            out = await market.send(who, line)
            shown = [x for x in out.splitlines() if x.startswith("•")]
            assert not any("Python from zero" in x.split(" — ")[0] for x in shown), out
    async with market.app.new_uow() as uow:
        owners = select(User.id).where(User.display_name.like("owner%"))
        shown_to_owners = (
            await uow.session.execute(
                select(RecommendationShown.course_id)
                .where(RecommendationShown.user_id.in_(owners))
                .where(RecommendationShown.kind == "course")  # a plan for it may be suggested
            )
        ).scalars()
        assert 1 not in set(shown_to_owners)


async def test_suggestions_are_in_the_learners_language(market: Harness) -> None:
    """A learner reading Chinese gets Chinese reasons and titles in 《》."""
    await seed_sequences(market)
    await buy(market, "bob", "python-basics")
    await market.send("bob", "/language zh")
    out = await market.send("bob", "/recommend")
    assert "为你推荐" in out
    assert "《用 pandas 做数据分析》" in out and "《零基础学 Python》" in out
    assert "Suggested for you" not in out


async def test_returning_learner_gets_suggestions_after_start(market: Harness) -> None:
    """/start ends with suggestions (as buttons too) for a learner who bought before, not for a
    newcomer, whose first button stays Browse courses."""
    await seed_sequences(market)
    newcomer = await market.send("nina", "/start")
    assert "Suggested for you" not in newcomer
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/start")
    assert "Suggested for you" in out and "[1] Browse courses" in out
    assert "[2] Data analysis with pandas" in out


async def test_courses_lists_the_catalogue_and_suggestions(market: Harness) -> None:
    """/courses keeps every course as a button and adds the suggestions as lines."""
    out = await market.send("nina", "/courses")
    assert "[1] Python from zero" in out and "Suggested for you" in out


async def test_last_lesson_done_suggests_the_next_course(market: Harness) -> None:
    """Marking the last lesson of a course done suggests what to take next."""
    await add_lessons(market, 1)
    await buy(market, "alice", "python-basics")
    await market.send("alice", "/nextlesson python-basics")
    out = await market.send("alice", "/lessondone 1")
    assert "Well done" in out and "Suggested for you" in out
    assert "[1] Rate this lesson" in out


async def test_last_session_completed_suggests_the_next_course(
    market: Harness, clock: FakeClock
) -> None:
    """Completing the session that used the last credit suggests next courses beside the rating
    request; an earlier session's rating request has none."""
    await seed_sequences(market)
    await buy(market, "alice", "git-teamwork")  # two sessions
    out = await request_mentor(market, "alice", "git-teamwork")
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    mentor = "linus" if "linus" in out else "ada"
    assert "You are now mentoring" in await market.send(mentor, f"/accept {request_id}")
    for _ in range(2):
        await market.send("alice", f"/book {request_id}")
        assert "Booked" in await market.send("alice", "1")
    clock.advance(timedelta(days=15))
    first = await market.send(mentor, "/complete 1")
    assert "is complete" in "\n".join(market.output) and "Suggested for you" not in first
    market.output.clear()
    await market.send(mentor, "/complete 2")
    told = "\n".join(market.output)
    assert "Session #2" in told and "Suggested for you" in told, told


async def test_baseline_share_holds_and_is_fixed_per_learner() -> None:
    """About `baseline_share` of learners are in the baseline, always the same ones."""
    users = range(1, 20_001)
    arms = [arm_for(u, 0, 0.10) for u in users]
    share = arms.count("baseline") / len(arms)
    assert 0.09 < share < 0.11
    assert arms == [arm_for(u, 0, 0.10) for u in users]
    assert arm_for(7, 0, 0.0) == "hybrid" and arm_for(7, 0, 1.0) == "baseline"


async def test_baseline_learners_see_popularity(market: Harness) -> None:
    """With the whole audience held out, every suggestion is the popularity baseline's."""
    app = market.app
    app.config = dataclasses.replace(
        app.config, recommend=dataclasses.replace(app.config.recommend, baseline_share=1.0)
    )
    await seed_sequences(market)
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/recommend")
    shown = [x for x in out.splitlines() if x.startswith("•")]
    assert shown and all(x.endswith("popular with learners") for x in shown)
    async with app.new_uow() as uow:
        arms = set((await uow.session.execute(select(RecommendationShown.arm))).scalars())
    assert arms == {"baseline"}


async def test_admin_stats_recommendations_reports_outcomes(market: Harness) -> None:
    """Opening and buying a suggested course shows up as click-through and conversion."""
    await seed_sequences(market)
    await buy(market, "bob", "python-basics")
    await market.send("bob", "/recommend")
    await market.send("bob", "/course git-teamwork")  # looked up by hand: not a click-through
    await market.send("bob", "/course data-analysis suggested")  # what its button sends
    await buy(market, "bob", "data-analysis")
    out = await market.send("admin", "/admin stats recommendations")
    assert "in /recommend — hybrid: 3 shown · opened 33% · bought 33%" in out, out
    assert "taken next by others — hybrid: 1 shown · opened 100% · bought 100%" in out
    assert "a mentor for a new request — hybrid: 1 shown · opened 0% · bought 0%" in out
    await request_mentor(market, "bob", "python-basics")  # the mentor suggestion followed
    out = await market.send("admin", "/admin stats recommendations")
    assert "a mentor for a new request — hybrid: 1 shown · opened 0% · bought 100%" in out, out
    refused = await market.send("bob", "/admin stats recommendations")
    assert "Only marketplace admins" in refused


async def test_hide_names_an_unknown_course_and_changes_nothing(market: Harness) -> None:
    """Not interested in a course that does not exist is refused politely."""
    out = await market.send("nina", "/recommend hide no-such-course")
    assert "There is no course called 'no-such-course'" in out


def test_ranking_is_deterministic_and_fast() -> None:
    """The same signals and seed give the same suggestions; one learner ranks in milliseconds."""
    interactions = tuple(
        Interaction(u, c, NOW - timedelta(days=10 - c), completed=1.0, stars=5)
        for u in range(1, 30)
        for c in (1, 2)
    )
    model = build(Signals(NOW, COURSES, interactions))
    again = build(Signals(NOW, COURSES, interactions))
    learner = Learner(99, "git", None, (), (1,), (2.0,))
    assert rank(model, learner, 2, seed=3) == rank(again, learner, 2, seed=3)
    assert rank(model, learner, 2)[0].course_id == 2
    started = time.perf_counter()
    for _ in range(100):
        rank(model, learner, 2)
    assert (time.perf_counter() - started) / 100 < 0.02


def test_config_key_sets_the_share() -> None:
    """`[recommend] baseline_share` is read from config, 0.10 by default."""
    assert make_config().recommend.baseline_share == 0.10
    assert make_config(recommend={"baseline_share": 0.25}).recommend.baseline_share == 0.25


def test_a_short_bench_run_beats_popularity() -> None:
    """On a small planted marketplace the hybrid's NDCG@5 beats popularity by at least 30 %."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "recommend.py"
    spec = importlib.util.spec_from_file_location("bench_recommend", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    docs, events, goals, _mentors = bench.marketplace(600, 30, 20)
    cutoff = sorted(x.at for x in events)[int(len(events) * 0.8)]
    train = [x for x in events if x.at < cutoff]
    model = build(Signals(cutoff, tuple(docs), tuple(train)))
    targets: dict[int, int] = {}
    for x in sorted(events, key=lambda x: (x.at, x.course_id)):
        if x.at >= cutoff:
            targets.setdefault(x.user_id, x.course_id)
    ndcg = {"hybrid": 0.0, "popularity": 0.0}
    for uid, target in targets.items():
        mine = [x for x in train if x.user_id == uid]
        if not mine:
            continue
        history, strengths = bench.strengths_of(mine)
        learner = Learner(uid, goals[uid], 1, (), history, strengths)
        for which in ndcg:
            ids = [s.course_id for s in rank(model, learner, 5, which=which)]
            ndcg[which] += bench.ndcg_at(ids, {target}, 5)
    assert ndcg["hybrid"] >= 1.3 * ndcg["popularity"] > 0


async def test_recommend_names_a_mentor_for_a_course_not_yet_asked_about(market: Harness) -> None:
    """A learner with a course and no request yet reads which mentor matching would pick, with
    its reasons, and a button to ask."""
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/recommend")
    assert "Mentors for your courses:" in out
    assert "For Python from zero:" in out and "shared topic" in out
    assert "Find a mentor for Python from zero" in out


async def test_not_interested_in_a_mentor_is_never_suggested_nor_offered_them(
    market: Harness,
) -> None:
    """ "Not interested" in the mentor /recommend names leaves that mentor out of the next
    suggestion and out of the offers of the learner's next request; an unknown mentor is
    refused and nothing is stored."""
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/recommend")
    first = next(x for x in out.splitlines() if x.startswith("For Python from zero:"))
    name = first.split(": ", 1)[1].split(" — ", 1)[0]
    button = next(
        c for c in market.chat.last_choices["bob"] if c.label == f"Not interested: {name}"
    )
    out = await market.send("bob", str(market.chat.last_choices["bob"].index(button) + 1))
    assert f"Noted: {name} will not be suggested to you again" in out, out
    out = await market.send("bob", "/recommend")
    assert f"For Python from zero: {name} —" not in out
    before = await snapshot(market)
    assert "There is no mentor #99." in await market.send("bob", "/recommend hide mentor 99")
    assert await snapshot(market) == before
    await request_mentor(market, "bob")
    async with market.app.new_uow() as uow:
        offered = set(
            (
                await uow.session.execute(
                    select(User.display_name)
                    .join(MentorProfile, MentorProfile.user_id == User.id)
                    .join(RequestOffer, RequestOffer.mentor_id == MentorProfile.id)
                )
            ).scalars()
        )
    assert offered and name not in offered


def _suggested(out: str) -> list[str]:
    return [x for x in out.splitlines() if x.startswith("•")]


async def test_an_edited_course_reads_anew_in_suggestions_at_once(market: Harness) -> None:
    """Suggestions are reused while nothing they read changed; a course's new title is a change
    (storage.changes notes it), so the next /courses shows it."""
    await seed_sequences(market)
    before = _suggested(await market.send("nina", "/courses"))
    assert any("Git for teams" in x for x in before), before
    out = await market.send("admin", '/admin course edit git-teamwork title="Git together"')
    assert "updated" in out, out
    after = _suggested(await market.send("nina", "/courses"))
    assert any("Git together" in x for x in after) and not any("Git for teams" in x for x in after)


async def _model_key(h: Harness) -> str:
    async with h.app.new_uow() as uow:
        return (await versions(uow, 0, h.app.clock.now())).model


async def test_the_model_key_follows_what_the_model_reads_and_nothing_else(
    market: Harness, clock: FakeClock
) -> None:
    """A purchase, an edited course and a completed session change the model's key; a booking
    (credits left), a rolled-back edit and a mentor's profile do not, so none of those makes
    every process rebuild its model."""
    request_id = await matched_pair(market)
    key = await _model_key(market)
    await market.send("alice", f"/book {request_id}")
    assert "Booked" in await market.send("alice", "1")
    await market.send("ada", "/profile bio=Patient teacher")
    assert await _model_key(market) == key
    async with market.app.new_uow() as uow:
        course = (
            await uow.session.execute(select(Course).where(Course.slug == "git-teamwork"))
        ).scalar_one()
        course.title_en = "Never committed"
        await uow.flush()
    assert await _model_key(market) == key
    out = await market.send("admin", '/admin course edit git-teamwork title="Git together"')
    assert "updated" in out, out
    assert (edited := await _model_key(market)) != key
    clock.advance(timedelta(days=1))
    assert await _model_key(market) != edited  # the day is part of it
    day = await _model_key(market)
    await market.send("ada", "/complete 1")
    assert (completed := await _model_key(market)) != day
    await buy(market, "bob", "data-analysis")
    assert await _model_key(market) != completed


async def test_a_change_committed_out_of_id_order_still_changes_the_model_key(
    market: Harness,
) -> None:
    """On PostgreSQL a transaction holding a lower id can commit after one holding a higher
    id: the newest id is then the same, and the count of the last ids still tells."""
    await buy(market, "bob", "data-analysis")
    async with market.app.new_uow() as uow:
        newest = (await uow.session.execute(select(func.max(ModelChange.id)))).scalar_one()
        for n in range(1, 4):
            uow.add(ModelChange(id=newest + n, tables="test"))
        await uow.commit()
    async with market.app.new_uow() as uow:
        await uow.session.execute(delete(ModelChange).where(ModelChange.id == newest + 2))
        await uow.commit()
    key = await _model_key(market)
    async with market.app.new_uow() as uow:
        uow.add(ModelChange(id=newest + 2, tables="late"))
        await uow.commit()
    assert await _model_key(market) != key


async def test_the_same_suggestions_pressed_again_are_one_impression(market: Harness) -> None:
    """Browsing the catalogue again within the hour logs its suggestions once; an hour later they
    are logged again. Each item counts on its own: after a "not interested" the list changes,
    but the courses left in it were shown within the hour, so nothing more is logged."""
    await seed_sequences(market)

    async def logged() -> int:
        async with market.app.new_uow() as uow:
            return int(
                (
                    await uow.session.execute(
                        select(func.count(RecommendationShown.id))
                        .join(User, User.id == RecommendationShown.user_id)
                        .where(User.display_name == "nina")
                    )
                ).scalar_one()
            )

    await market.send("nina", "/courses")
    await market.send("nina", "/courses")
    assert await logged() == 3
    market.app.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    await market.send("nina", "/courses")
    assert await logged() == 6
    await market.send("nina", "/recommend hide git-teamwork")
    fewer = _suggested(await market.send("nina", "/courses"))
    assert len(fewer) == 2 and await logged() == 6, fewer


async def test_a_change_in_one_process_shows_in_the_others_suggestions(
    make_app: AppFactory,
) -> None:
    """Two bot processes on one database: "not interested" said through one, and a course
    bought through it, leave the other's next suggestions at once (nothing is served from a
    stale cache)."""
    first, second = await make_app(), await make_app()
    await seed_demo(first)
    one, two = harness_for(first), harness_for(second)
    await seed_sequences(one)
    seen = _suggested(await two.send("nina", "/courses"))
    assert any("Git for teams" in x for x in seen), seen
    await one.send("nina", "/recommend hide git-teamwork")
    seen = _suggested(await two.send("nina", "/courses"))
    assert seen and not any("Git for teams" in x for x in seen), seen
    top = seen[0].split(" — ")[0]
    slug = "python-basics" if "Python" in top else "data-analysis"
    await buy(one, "nina", slug)
    again = _suggested(await two.send("nina", "/courses"))
    assert not any(top in x.split(" — ")[0] for x in again), again


async def test_the_catalogue_kept_by_one_process_follows_edits_made_through_another(
    make_app: AppFactory,
) -> None:
    """Each process keeps the list of courses while the model's versions stand: a price, a
    title and an archived course changed through another process show at the next /courses,
    and a rolled-back edit changes nothing."""
    first, second = await make_app(), await make_app()
    await seed_demo(first)
    one, two = harness_for(first), harness_for(second)
    listed = await two.send("nina", "/courses")
    assert "Python from zero" in listed and "$49.00" in listed, listed
    edited = await one.send(
        "admin", '/admin course edit python-basics price=59.00 title="Python today"'
    )
    assert "updated" in edited, edited
    await one.send("admin", "/admin course archive git-teamwork")
    await one.send("admin", "/admin course edit python-basics currency=XYZ")  # refused
    listed = await two.send("nina", "/courses")
    assert "Python today — $59.00" in listed and "Python from zero" not in listed, listed
    assert "Git for teams" not in listed, listed
    assert "$59.00" in await one.send("nina", "/courses")


async def test_a_changed_model_is_rebuilt_in_the_background(
    market: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a change, the learner is answered at once by the model in hand while one rebuild
    runs beside; once it lands, suggestions read the change."""
    monkeypatch.setattr(MODELS, "background", True)
    await seed_sequences(market)
    await market.send("nina", "/courses")
    await market.send("admin", '/admin course edit git-teamwork title="Git together"')
    served = _suggested(await market.send("nina", "/courses"))
    assert any("Git for teams" in x for x in served), served  # the model in hand
    assert MODELS.building  # one rebuild under way
    await MODELS.settled()
    after = _suggested(await market.send("nina", "/courses"))
    assert any("Git together" in x for x in after), after


async def test_a_serving_process_builds_its_first_model_before_a_learner_asks(
    market: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Marketplace.warm` (what `mentorbot run` does at start) builds the first model in the
    background; a learner who asks while it computes is answered from it, not from a second
    build of their own; one who asks while it is still reading does not wait on it."""
    await seed_sequences(market)
    monkeypatch.setattr(MODELS, "background", True)
    monkeypatch.setattr(MODELS, "models", {})
    builds: list[int] = []

    def slow_build(*args: Any) -> Any:
        builds.append(1)
        time.sleep(0.2)  # on the worker thread: the event loop runs on
        return real_build(*args)

    real_build = signals.build
    monkeypatch.setattr(signals, "build", slow_build)
    market.app.warm()
    while MODELS.reading:  # noqa: ASYNC110 (the cache has no event to wait on; tests only)
        await asyncio.sleep(0.01)
    out = await market.send("nina", "/courses")
    assert len(_suggested(out)) == 3, out
    assert builds == [1]
    market.app.warm()  # a model in hand: nothing to warm
    assert not MODELS.building
    monkeypatch.setattr(MODELS, "models", {})
    now = market.app.clock.now()
    async with market.app.new_uow() as uow:  # holds the database, as a learner's update does
        market.app.warm()
        key = (await versions(uow, 0, now)).model
        model = MODELS.model(uow, market.app.config, now, key)
        _model, current = await asyncio.wait_for(model, 10)  # builds its own: no deadlock
        assert current
    await MODELS.settled()
    assert builds == [1, 1, 1]


async def test_a_plan_and_a_workshop_for_the_learners_course_join_the_suggestions(
    market: Harness,
) -> None:
    """A learner who comes back is offered the monthly plan and the next workshop of the course
    they take, each with its reason and button, after the courses; the catalogue keeps to
    courses; taking the seat counts as the suggestion followed."""
    await seed_sequences(market)
    out = await market.send(
        "admin",
        '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 sessions=2',
    )
    out = await market.send(
        "ada",
        '/workshop new title="Testing with pytest" start="2026-03-05 18:00" seats=4 '
        "course=python-basics",
    )
    assert "workshop created" in out, out
    wid = int(out.split("#", 1)[1].split(" ", 1)[0])
    await buy(market, "bob", "python-basics")
    out = await market.send("bob", "/recommend")
    assert (
        "• Plan Monthly Python — $29.00 a month, 2 sessions per period · for learners of Python"
        in out
    ), out
    assert "• Workshop Testing with pytest" in out and "for learners of Python from zero" in out
    assert "Subscribe: Monthly Python" in out and f"Join #{wid}" in out
    welcome = await market.send("bob", "/start")
    assert "• Plan Monthly Python" in welcome, welcome
    assert "• Plan" not in await market.send("bob", "/courses")
    out = await market.send("bob", f"/join {wid}")
    out = await market.send("admin", "/admin stats recommendations")
    assert "workshop: for their course — hybrid: 2 shown · opened 0% · bought 100%" in out, out
    again = await market.send("bob", "/recommend")
    assert "• Workshop" not in again, again  # in it already
