"""The matching engine, pure: hard rules as properties, each factor's direction by example,
timezones, exploration, the explanation text and the `[matching]` config keys."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, MatchingSection, config_from_mapping
from bot.matching import (
    ANY_TIME,
    MINUTES_PER_WEEK,
    MentorCandidate,
    MentorPool,
    Ranked,
    RequestNeeds,
    bayesian_rating,
    explanation_from_code,
    explores,
    mentor_week,
    normalize_intervals,
    overlap_minutes,
    preferred_week,
    rank_mentors,
    score_pair,
)

WEEK = date(2026, 3, 2)  # a Monday; Europe on winter time, the US too until Sunday 8 March
TOPICS = ("python", "git", "data", "sql")
LANGS = ("en", "zh", "es")
ZONES = ("UTC", "Europe/Berlin", "Asia/Shanghai", "America/Los_Angeles", "Asia/Kolkata")
PARAMS = MatchingSection()
NO_EXPLORE = replace(PARAMS, exploration_percent=0)


def mentor(mentor_id: int, **kw: object) -> MentorCandidate:
    base: dict[str, object] = dict(
        mentor_id=mentor_id,
        topics={"python": 3},
        languages=frozenset({"en"}),
        rating_sum=0,
        rating_count=0,
        active_mentees=0,
        capacity=3,
        availability=ANY_TIME,
    )
    base.update(kw)
    return MentorCandidate(**base)  # type: ignore[arg-type]


def needs(**kw: object) -> RequestNeeds:
    base: dict[str, object] = dict(topics=("python",), level=1, language="en")
    base.update(kw)
    return RequestNeeds(**base)  # type: ignore[arg-type]


def order(n: RequestNeeds, cands: list[MentorCandidate], params: MatchingSection = NO_EXPLORE):
    return [r.mentor_id for r in rank_mentors(n, cands, params)]


# --- strategies ---------------------------------------------------------------------------

intervals = st.lists(
    st.tuples(st.integers(0, MINUTES_PER_WEEK - 1), st.integers(1, 600)).map(
        lambda p: (p[0], min(MINUTES_PER_WEEK, p[0] + p[1]))
    ),
    max_size=6,
)


@st.composite
def mentors(
    draw: st.DrawFn, max_size: int = 12, topics: tuple[str, ...] = TOPICS, dense: bool = False
) -> list[MentorCandidate]:
    """Mentors with unique ids; `dense` makes most of them fit most requests (for cohorts)."""
    ids = draw(st.lists(st.integers(1, 40), unique=True, max_size=max_size))
    langs = st.sampled_from(("en", "en", "en", "zh")) if dense else st.sampled_from(LANGS)
    out = []
    for mentor_id in ids:
        count = draw(st.integers(0, 30))
        capacity = draw(st.integers(1 if dense else 0, 4))
        out.append(
            MentorCandidate(
                mentor_id=mentor_id,
                topics=draw(
                    st.dictionaries(
                        st.sampled_from(topics), st.integers(1, 3), min_size=1 if dense else 0
                    )
                ),
                languages=frozenset(draw(st.sets(langs, min_size=int(dense), max_size=2))),
                rating_sum=draw(st.integers(count, 5 * count)),
                rating_count=count,
                active_mentees=draw(st.integers(0, capacity - 1 if dense else capacity + 1)),
                capacity=capacity,
                availability=normalize_intervals(draw(intervals)),
            )
        )
    return out


@st.composite
def requests(
    draw: st.DrawFn, topics: tuple[str, ...] = TOPICS, dense: bool = False
) -> RequestNeeds:
    """Requests; `dense` ones mostly speak English and rarely exclude anyone."""
    ids = st.frozensets(st.integers(1, 40), max_size=2 if dense else 6)
    times = draw(st.lists(st.sampled_from(("morning", "afternoon", "evening", "any"))))
    return RequestNeeds(
        topics=tuple(draw(st.lists(st.sampled_from(topics), min_size=1, max_size=3))),
        level=draw(st.integers(1, 2 if dense else 3)),
        language=draw(st.sampled_from(("en", "en", "zh") if dense else LANGS)),
        exclude=draw(ids),
        request_id=draw(st.integers(0, 10**9)),
        preferred_windows=preferred_week(times, draw(st.sampled_from(ZONES)), WEEK),
        preferred=draw(ids),
        blocked=draw(ids),
        only=draw(st.none() | st.none() | st.integers(1, 40)),  # mostly no plan's mentor
    )


params_st = st.builds(
    MatchingSection,
    offer_size=st.integers(1, 4),
    weight_topics=st.integers(0, 50),
    weight_availability=st.integers(0, 50),
    weight_rating=st.integers(0, 50),
    weight_load=st.integers(0, 50),
    weight_history=st.integers(0, 50),
    rating_prior_mean_tenths=st.integers(10, 50),
    rating_prior_weight=st.integers(0, 10),
    full_overlap_hours=st.integers(1, 40),
    exploration_percent=st.sampled_from((0, 10, 50, 100)),
    new_mentor_ratings=st.integers(0, 5),
)


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(requests(), mentors(), params_st)
def test_hard_rules_always_hold(n: RequestNeeds, cands: list[MentorCandidate], p) -> None:
    """Never a language mismatch, never at or over capacity, never a blocked or excluded
    mentor, never one without a course topic at the learner's level; each mentor once."""
    by_id = {c.mentor_id: c for c in cands}
    ranked = rank_mentors(n, cands, p)
    assert len({r.mentor_id for r in ranked}) == len(ranked)
    for r in ranked:
        c = by_id[r.mentor_id]
        assert n.language in c.languages
        assert c.active_mentees < c.capacity
        assert r.mentor_id not in n.blocked and r.mentor_id not in n.exclude
        assert any(
            t.lower() in {x.lower() for x in n.topics} and lv >= n.level
            for t, lv in c.topics.items()
        )
    assert {r.mentor_id for r in ranked} == {
        c.mentor_id for c in cands if score_pair(n, c, p) is not None
    }


@settings(max_examples=100, deadline=None)
@given(requests(), mentors(), params_st, st.randoms(use_true_random=False))
def test_same_input_gives_the_same_output(
    n: RequestNeeds, cands: list[MentorCandidate], p, rnd: random.Random
) -> None:
    """Same request and mentors (in any order) → the same ranking, exploration included."""
    first = rank_mentors(n, cands, p)
    assert rank_mentors(n, cands, p) == first
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert rank_mentors(n, shuffled, p) == first


@settings(max_examples=150, deadline=None)
@given(requests(), mentors(), params_st, st.integers(0, 6))
def test_a_limit_is_a_prefix_and_scores_match_the_plain_formula(
    n: RequestNeeds, cands: list[MentorCandidate], p, k: int
) -> None:
    """`limit=k` returns the first k of the full ranking; the vectorized score equals
    `score_pair`; apart from an explored slot, scores never increase down the list."""
    full = rank_mentors(n, cands, p)
    assert rank_mentors(n, cands, p, limit=k) == full[:k]
    by_id = {c.mentor_id: c for c in cands}
    for r in full:
        plain = score_pair(n, by_id[r.mentor_id], p)
        assert plain is not None
        assert r.score == pytest.approx(plain.score, abs=1e-9)
        assert replace(r, score=0.0, explored=False) == replace(plain, score=0.0)
    merit = [r for r in full if not r.explored]
    for a, b in itertools.pairwise(merit):
        assert a.score >= b.score - 1e-9
        if abs(a.score - b.score) < 1e-12:
            assert a.mentor_id < b.mentor_id
    explored = [i for i, r in enumerate(full) if r.explored]
    assert len(explored) <= 1
    if explored:
        assert explored[0] == min(p.offer_size, len(full)) - 1
        assert by_id[full[explored[0]].mentor_id].rating_count < p.new_mentor_ratings


@settings(max_examples=100, deadline=None)
@given(intervals, intervals)
def test_pool_overlap_equals_the_plain_overlap_on_the_grid(a, b) -> None:
    """Cumulative 15-minute grid lookups give exactly the minute-by-minute overlap."""
    grid_b = normalize_intervals((s // 15 * 15, e // 15 * 15) for s, e in b)
    pool = MentorPool([mentor(1, availability=tuple(a))])
    got = int(pool.evaluate(needs(preferred_windows=grid_b)).overlap[0])
    assert got == overlap_minutes(normalize_intervals(a), grid_b)
    minutes_a = {m for s, e in a for m in range(s, e)}
    minutes_b = {m for s, e in grid_b for m in range(s, e)}
    assert got == len(minutes_a & minutes_b)


# --- each factor's direction --------------------------------------------------------------


def test_more_shared_topics_rank_higher() -> None:
    n = needs(topics=("python", "git", "data"))
    cands = [
        mentor(1, topics={"python": 3}),
        mentor(2, topics={"python": 3, "git": 3, "data": 3}),
        mentor(3, topics={"python": 3, "git": 3}),
    ]
    assert order(n, cands) == [2, 3, 1]
    assert [r.shared_topics for r in rank_mentors(n, cands, NO_EXPLORE)] == [3, 2, 1]


def test_level_fit_a_stronger_mentor_suits_a_beginner_better() -> None:
    cands = [mentor(1, topics={"python": 1}), mentor(2, topics={"python": 3})]
    cands.append(mentor(3, topics={"python": 2}))
    assert order(needs(level=1), cands) == [2, 3, 1]
    assert order(needs(level=2), cands) == [2, 3]  # below the learner's level: not offered
    assert order(needs(level=3), cands) == [2]


def test_topics_match_case_insensitively() -> None:
    assert order(needs(topics=("Python",)), [mentor(1, topics={"PYTHON": 2})]) == [1]


def test_a_shared_language_is_required() -> None:
    cands = [mentor(1, languages=frozenset({"zh"})), mentor(2, languages=frozenset({"en", "zh"}))]
    assert order(needs(language="en"), cands) == [2]
    assert order(needs(language="zh"), cands) == [1, 2]
    assert order(needs(language="es"), cands) == []


def test_more_availability_overlap_ranks_higher_up_to_the_full_hours() -> None:
    mornings = preferred_week(["morning"], "UTC", WEEK)  # 06:00–12:00 UTC daily
    cands = [
        mentor(1, availability=((6 * 60, 7 * 60),)),  # Monday 06–07: 1 h
        mentor(2, availability=((6 * 60, 9 * 60),)),  # 3 h
        mentor(3, availability=((0, 6 * 60),)),  # Monday 00–06: no overlap
    ]
    ranked = rank_mentors(needs(preferred_windows=mornings), cands, NO_EXPLORE)
    assert [r.mentor_id for r in ranked] == [2, 1, 3]
    assert [r.overlap_minutes for r in ranked] == [180, 60, 0]
    capped = replace(NO_EXPLORE, full_overlap_hours=1)
    assert order(needs(preferred_windows=mornings), cands[:2], capped) == [1, 2]  # tie → id


def test_availability_is_compared_across_timezones() -> None:
    """A Shanghai mentor's Monday evening is a Berlin learner's Monday morning."""
    shanghai = mentor_week([(0, 18 * 60, 20 * 60)], "Asia/Shanghai", WEEK)
    assert shanghai == ((10 * 60, 12 * 60),)  # Monday 10:00–12:00 UTC
    berlin_mornings = preferred_week(["morning"], "Europe/Berlin", WEEK)  # 05:00–11:00 UTC
    assert berlin_mornings[0] == (5 * 60, 11 * 60)
    assert overlap_minutes(shanghai, berlin_mornings) == 60
    berlin_summer = preferred_week(["morning"], "Europe/Berlin", date(2026, 4, 6))
    assert berlin_summer[0] == (4 * 60, 10 * 60)  # daylight-saving time that week
    assert overlap_minutes(shanghai, berlin_summer) == 0


def test_windows_wrap_around_the_week() -> None:
    """Sunday night in Los Angeles is Monday in UTC; Monday morning in Auckland is Sunday."""
    la = mentor_week([(6, 20 * 60, 23 * 60)], "America/Los_Angeles", WEEK)
    assert la == ((3 * 60, 6 * 60),)  # that Sunday is 8 March: already summer time, UTC-7
    auckland = mentor_week([(0, 6 * 60, 8 * 60)], "Pacific/Auckland", WEEK)
    assert auckland == ((6 * 1440 + 17 * 60, 6 * 1440 + 19 * 60),)
    crossing = mentor_week([(6, 23 * 60, 24 * 60)], "Asia/Kolkata", WEEK)
    assert crossing == ((6 * 1440 + 17 * 60 + 30, 6 * 1440 + 18 * 60 + 30),)
    assert mentor_week([(0, 0, 120)], "Europe/London", WEEK) == ((0, 120),)
    assert mentor_week([(0, 0, 120)], "Europe/Berlin", WEEK) == (
        (0, 60),
        (MINUTES_PER_WEEK - 60, MINUTES_PER_WEEK),
    )


def test_nothing_or_any_preferred_means_the_whole_week() -> None:
    assert preferred_week([], "Asia/Shanghai", WEEK) == ANY_TIME
    assert preferred_week(["morning", "any"], "Asia/Shanghai", WEEK) == ANY_TIME
    evening = preferred_week(["evening"], "UTC", WEEK)
    assert sum(e - s for s, e in evening) == 7 * 5 * 60


def test_bayesian_rating_neither_starves_new_mentors_nor_lets_them_jump_ahead() -> None:
    proven = mentor(1, rating_sum=192, rating_count=40)  # 4.8★ over 40
    lucky = mentor(2, rating_sum=5, rating_count=1)  # one 5★
    new = mentor(3)
    poor = mentor(4, rating_sum=20, rating_count=10)  # 2.0★ over 10
    assert order(needs(), [poor, new, lucky, proven]) == [1, 2, 3, 4]
    assert bayesian_rating(0, 0, PARAMS) == pytest.approx(4.0)
    assert bayesian_rating(5, 1, PARAMS) == pytest.approx(25 / 6)
    no_prior = replace(NO_EXPLORE, rating_prior_weight=0)
    assert order(needs(), [proven, lucky], no_prior) == [2, 1]  # the raw average would


def test_lighter_load_ranks_higher_and_a_full_mentor_is_excluded() -> None:
    cands = [
        mentor(1, active_mentees=2, capacity=3),
        mentor(2, active_mentees=0, capacity=3),
        mentor(3, active_mentees=3, capacity=3),
        mentor(4, active_mentees=0, capacity=0),
    ]
    assert order(needs(), cands) == [2, 1]


def test_history_prefers_a_well_rated_mentor_and_never_rematches_a_bad_pair() -> None:
    cands = [mentor(1, rating_sum=50, rating_count=10), mentor(2), mentor(3)]
    assert order(needs(), cands) == [1, 2, 3]
    ranked = rank_mentors(needs(preferred=frozenset({3})), cands, NO_EXPLORE)
    assert [r.mentor_id for r in ranked] == [3, 1, 2]
    assert ranked[0].worked_before
    assert order(needs(blocked=frozenset({1}), preferred=frozenset({3})), cands) == [3, 2]
    assert order(needs(exclude=frozenset({1, 2, 3})), cands) == []


# --- exploration --------------------------------------------------------------------------


def test_exploration_gives_the_last_offer_slot_to_a_new_mentor() -> None:
    proven = [mentor(i, rating_sum=45 * 2, rating_count=20) for i in range(1, 6)]
    newcomers = [mentor(i) for i in range(10, 15)]
    always = replace(PARAMS, exploration_percent=100, offer_size=3)
    ranked = rank_mentors(needs(request_id=7), proven + newcomers, always)
    assert [r.mentor_id for r in ranked[:2]] == [1, 2]
    assert ranked[2].explored and ranked[2].mentor_id in range(10, 15)
    assert [r.mentor_id for r in ranked[3:6]] == [3, 4, 5]
    chosen = {
        rank_mentors(needs(request_id=i), proven + newcomers, always)[2].mentor_id
        for i in range(40)
    }
    assert len(chosen) >= 4  # exposure rotates among new mentors, by request
    never = replace(always, exploration_percent=0)
    assert not any(r.explored for r in rank_mentors(needs(request_id=7), proven + newcomers, never))


def test_no_exploration_when_a_new_mentor_makes_the_top_on_merit() -> None:
    always = replace(PARAMS, exploration_percent=100, offer_size=2)
    cands = [mentor(1, rating_sum=90, rating_count=20), mentor(2, topics={"python": 3, "git": 3})]
    cands.append(mentor(3))
    ranked = rank_mentors(needs(topics=("python", "git")), cands, always)
    assert [r.mentor_id for r in ranked] == [2, 1, 3]
    assert not any(r.explored for r in ranked)


def test_the_exploration_share_is_about_the_configured_percent() -> None:
    for percent in (0, 10, 25, 100):
        share = sum(
            explores(i, replace(PARAMS, exploration_percent=percent)) for i in range(10_000)
        )
        assert abs(share / 10_000 - percent / 100) < 0.02


# --- explanation --------------------------------------------------------------------------


def test_explanation_reads_like_the_issue_example() -> None:
    r = Ranked(1, shared_topics=3, rating=4.8, rating_count=23, overlap_minutes=360)
    assert r.explanation().render("en") == "3 shared topics · 6 h/week overlap · 4.8★ (23 ratings)"
    r = Ranked(1, shared_topics=1, rating=0.0, rating_count=0, overlap_minutes=90)
    assert r.explanation().render("en") == "1 shared topic · 1.5 h/week overlap · new mentor"
    r = Ranked(1, 2, 5.0, 1, overlap_minutes=0, worked_before=True)
    assert (
        r.explanation().render("en")
        == "2 shared topics · no overlap with the preferred times · 5.0★ (1 rating) · "
        "worked together before"
    )


def test_explanation_is_translated_and_survives_storage() -> None:
    r = Ranked(1, shared_topics=3, rating=4.8, rating_count=23, overlap_minutes=360)
    zh = r.explanation().render("zh")
    assert "3" in zh and "6" in zh and "4.8★" in zh and "23" in zh
    assert "shared" not in zh and "ratings" not in zh
    stored = explanation_from_code(r.code())
    assert stored is not None and stored.render("en") == r.explanation().render("en")
    assert explanation_from_code("") is None
    assert explanation_from_code("not|a|code") is None


def test_ranked_explanations_come_from_the_ranking() -> None:
    n = needs(topics=("python", "git"), preferred_windows=preferred_week(["morning"], "UTC", WEEK))
    c = mentor(
        1, topics={"python": 2, "git": 1}, availability=((360, 600),), rating_sum=9, rating_count=2
    )
    [r] = rank_mentors(n, [c], NO_EXPLORE)
    assert r.explanation().render("en") == "2 shared topics · 4 h/week overlap · 4.5★ (2 ratings)"


# --- config -------------------------------------------------------------------------------


def test_matching_defaults_and_overrides() -> None:
    config = config_from_mapping({"matching": {"weight_history": 0, "exploration_percent": 0}})
    assert config.matching.weight_history == 0 and config.matching.exploration_percent == 0
    assert config.matching.rating_prior_mean_tenths == 40
    env = {"MENTORBOT_MATCHING_WEIGHT_TOPICS": "7"}
    assert config_from_mapping({}, env).matching.weight_topics == 7


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("weight_topics", -1),
        ("weight_load", -5),
        ("rating_prior_weight", -1),
        ("rating_prior_mean_tenths", 51),
        ("rating_prior_mean_tenths", 9),
        ("full_overlap_hours", 0),
        ("exploration_percent", 101),
        ("new_mentor_ratings", -1),
    ],
)
def test_bad_matching_values_name_the_key(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"\[matching\] {key}"):
        config_from_mapping({"matching": {key: value}})


def test_a_fractional_weight_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[matching\] weight_rating"):
        config_from_mapping({"matching": {"weight_rating": 1.5}})
