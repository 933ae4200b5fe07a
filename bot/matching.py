"""Scoring and ranking mentors for a request: pure, plain data in and ranked candidates out.

Mentors are the scarce side, so the ranking has to be worth trusting and cheap enough to run
on every offer round. A pair (request, mentor) is first filtered by hard rules, then scored.

Hard rules (a mentor failing one is never offered the request):
  * they speak the learner's language;
  * they have room: fewer active mentees than their capacity;
  * they know at least one of the course's topics at or above the learner's level;
  * they are not excluded (offered this request before, or the learner themself) and the pair
    is not blocked (either side rated the other 2★ or less before);
  * where the request names the one mentor it may go to (`only`: a plan sold with one mentor),
    they are that mentor.

The score is a weighted sum of factors, each in [0, 1], with the weights from `[matching]`:
  * topics: the share of the course's topics the mentor covers, each counted by level fit —
    a mentor must be at least at the learner's level, and a stronger mentor fits better (a
    beginner is well served by someone strong in the topic);
  * availability: hours per week the mentor's windows overlap the learner's preferred times,
    both converted to UTC first, saturating at `full_overlap_hours` (beyond that, more hours
    do not make a better mentor);
  * rating: a Bayesian average, `(prior_mean·prior_weight + sum) / (prior_weight + count)`, so
    one 5★ rating does not lift a new mentor above one with forty 4.8★ ratings, and a new
    mentor still starts from a fair prior instead of zero;
  * load: the share of capacity still free, to spread learners across mentors;
  * history: a mentor this learner rated 4★ or more before is preferred.

Exploration: in `exploration_percent` of requests (chosen by hashing the request id, so the same
request always gets the same answer) the last offer slot goes to a new mentor (fewer than
`new_mentor_ratings` ratings) who did not make the top on merit, picked by hash as well, so the
exposure rotates among new mentors instead of always going to the same one.

Availability is kept as UTC minute-of-week intervals. Timezones are resolved once by
`mentor_week`/`preferred_week` for a reference date (so daylight-saving time is applied as it
is that week); scoring then only compares numbers.

Speed: ranking 10,000 mentors in plain Python costs tens of milliseconds, so candidates are
laid out once as arrays in a `MentorPool` and each request is scored with a handful of vector
operations. `score_pair` is the same score written plainly for one pair; tests check the two
agree, and it documents the arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from bot.config import MatchingSection
from bot.core.i18n import Msg, _, ngettext

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
GRID_MINUTES = 15  # every UTC offset in use is a multiple of 15 minutes
GRID_POINTS = MINUTES_PER_WEEK // GRID_MINUTES + 1
LEVELS = {1: "beginner", 2: "intermediate", 3: "advanced"}
# Local wall-clock minutes of the learner's preferred parts of the day.
DAYPARTS: dict[str, tuple[int, int]] = {
    "morning": (6 * 60, 12 * 60),
    "afternoon": (12 * 60, 18 * 60),
    "evening": (18 * 60, 23 * 60),
    "any": (0, MINUTES_PER_DAY),
}
# "weekend" is the whole of Saturday and Sunday, the learner's local days.
WEEKEND = "weekend"
WEEKEND_DAYS = (5, 6)

Interval = tuple[int, int]
ANY_TIME: tuple[Interval, ...] = ((0, MINUTES_PER_WEEK),)
DEFAULT_PARAMS = MatchingSection()


# --- time: weekly windows to UTC minute-of-week intervals ---------------------------------


def normalize_intervals(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, merged, non-empty intervals within one week, so overlaps are never counted twice."""
    items = sorted((max(0, s), min(MINUTES_PER_WEEK, e)) for s, e in intervals)
    merged: list[list[int]] = []
    for s, e in items:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple((s, e) for s, e in merged)


def _week_start(week_of: date | datetime) -> date:
    day = week_of.date() if isinstance(week_of, datetime) else week_of
    return day - timedelta(days=day.weekday())


def _to_utc_week(
    local: Iterable[tuple[int, int, int]], tz_name: str, week_of: date | datetime
) -> tuple[Interval, ...]:
    """(local weekday, start, end) → UTC minute-of-week intervals, wrapping around the week.

    The offset is the one in force at local noon of that weekday in the reference week; a
    window that crosses a daylight-saving change that very night is off by the change (an hour
    at most, twice a year), which ranking can live with.
    """
    tz = ZoneInfo(tz_name)
    monday = _week_start(week_of)
    offsets: dict[int, int] = {}
    out: list[Interval] = []
    for weekday, start, end in local:
        if weekday not in offsets:
            noon = datetime.combine(monday + timedelta(days=weekday), time(12), tzinfo=tz)
            delta = noon.utcoffset() or timedelta(0)
            offsets[weekday] = int(delta.total_seconds() // 60)
        shift = weekday * MINUTES_PER_DAY - offsets[weekday]
        s = (start + shift) % MINUTES_PER_WEEK
        e = s + (end - start)
        if e <= MINUTES_PER_WEEK:
            out.append((s, e))
        else:
            out.append((s, MINUTES_PER_WEEK))
            out.append((0, e - MINUTES_PER_WEEK))
    return normalize_intervals(out)


def mentor_week(
    windows: Iterable[tuple[int, int, int]], tz_name: str, week_of: date | datetime
) -> tuple[Interval, ...]:
    """A mentor's weekly windows (weekday, start_minute, end_minute in their own timezone)."""
    return _to_utc_week(windows, tz_name, week_of)


def preferred_week(
    times: Iterable[str], tz_name: str, week_of: date | datetime
) -> tuple[Interval, ...]:
    """A learner's preferred parts of the day ("morning", …, "weekend", "any") as UTC
    intervals; several are their union.

    Nothing chosen, or "any", means any time: the whole week.
    """
    names = [t for t in times if t in DAYPARTS or t == WEEKEND]
    if not names or "any" in names:
        return ANY_TIME
    local = [
        (day, 0, MINUTES_PER_DAY) if name == WEEKEND else (day, *DAYPARTS[name])
        for name in names
        for day in (WEEKEND_DAYS if name == WEEKEND else range(7))
    ]
    return _to_utc_week(local, tz_name, week_of)


# --- plain data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MentorCandidate:
    """What ranking knows about a mentor; availability in UTC minute-of-week intervals."""

    mentor_id: int
    topics: Mapping[str, int]
    languages: frozenset[str]
    rating_sum: int
    rating_count: int
    active_mentees: int
    capacity: int
    availability: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class RequestNeeds:
    """What a request asks of a mentor.

    `exclude`: mentors who may not get it (offered it before, or the learner's own profile).
    `blocked`: mentors in a pair rated 2★ or less before, either way — never matched again.
    `preferred`: previous mentors this learner rated 4★ or more.
    `request_id` seeds exploration, so the same request always gets the same ranking.
    `only`: the one mentor who may get it (the mentor a subscription's plan is sold with).
    """

    topics: tuple[str, ...]
    level: int
    language: str
    exclude: frozenset[int] = frozenset()
    request_id: int = 0
    preferred_windows: tuple[Interval, ...] = ANY_TIME
    preferred: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    only: int | None = None


@dataclass(frozen=True)
class Ranked:
    """One candidate with its score and the facts behind it, for the explanation."""

    mentor_id: int
    shared_topics: int
    rating: float  # the plain average shown to people; 0.0 without ratings
    rating_count: int
    score: float = 0.0
    overlap_minutes: int = 0
    worked_before: bool = False
    explored: bool = False

    def explanation(self) -> Msg:
        """e.g. "3 shared topics · 6 h/week overlap · 4.8★ (23 ratings)", translated late."""
        return explain(
            self.shared_topics,
            self.overlap_minutes,
            self.rating,
            self.rating_count,
            self.worked_before,
        )

    def code(self) -> str:
        """The explanation's facts as a short string, to store with an offer and show later."""
        return (
            f"{self.shared_topics}|{self.overlap_minutes}|{self.rating:.2f}|"
            f"{self.rating_count}|{int(self.worked_before)}"
        )


def explain(
    shared_topics: int,
    overlap_minutes: int,
    rating: float,
    rating_count: int,
    worked_before: bool = False,
) -> Msg:
    """The short "why this mentor" line: the facts, never the score (it means nothing to people)."""
    topics = ngettext("{n} shared topic", "{n} shared topics", shared_topics)
    if overlap_minutes > 0:
        hours = f"{overlap_minutes / 60:.1f}".removesuffix(".0")
        overlap = _("{hours} h/week overlap", hours=hours)
    else:
        overlap = _("no overlap with the preferred times")
    if rating_count == 0:
        stars = _("new mentor")
    else:
        stars = ngettext(
            "{rating}★ ({n} rating)",
            "{rating}★ ({n} ratings)",
            rating_count,
            rating=f"{rating:.1f}",
        )
    if worked_before:
        return _(
            "{topics} · {overlap} · {rating} · {history}",
            topics=topics,
            overlap=overlap,
            rating=stars,
            history=_("worked together before"),
        )
    return _("{topics} · {overlap} · {rating}", topics=topics, overlap=overlap, rating=stars)


def explanation_from_code(code: str) -> Msg | None:
    """The explanation stored by `Ranked.code()`, or None for an empty or foreign string."""
    try:
        shared, overlap, rating, count, before = code.split("|")
        return explain(int(shared), int(overlap), float(rating), int(count), before == "1")
    except ValueError:
        return None


def average_rating(rating_sum: int, rating_count: int) -> float:
    """The plain average people see; 0.0 means "no ratings yet"."""
    return rating_sum / rating_count if rating_count else 0.0


def bayesian_rating(rating_sum: float, rating_count: float, params: MatchingSection) -> float:
    """The average pulled towards the prior by `rating_prior_weight` imaginary ratings."""
    prior = params.rating_prior_mean_tenths / 10
    weight = params.rating_prior_weight
    if weight + rating_count == 0:
        return prior
    return (prior * weight + rating_sum) / (weight + rating_count)


def level_fit(mentor_level: int, learner_level: int) -> float:
    """0 below the learner's level; otherwise 0.5, 0.75, 1.0 for a level 1, 2, 3 mentor."""
    return 0.0 if mentor_level < max(1, learner_level) else (mentor_level + 1) / 4


def overlap_minutes(a: Sequence[Interval], b: Sequence[Interval]) -> int:
    """Minutes two sets of intervals share (both normalized)."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _grid(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Learner intervals snapped to the 15-minute grid the pool indexes."""
    snapped = (
        (round(s / GRID_MINUTES) * GRID_MINUTES, round(e / GRID_MINUTES) * GRID_MINUTES)
        for s, e in intervals
    )
    return normalize_intervals(snapped)


def score_pair(
    needs: RequestNeeds,
    candidate: MentorCandidate,
    params: MatchingSection = DEFAULT_PARAMS,
) -> Ranked | None:
    """The score of one pair written plainly, or None when a hard rule rules the mentor out.

    `MentorPool` computes exactly this for many mentors at once.
    """
    c = candidate
    if c.mentor_id in needs.exclude or c.mentor_id in needs.blocked:
        return None
    if needs.only is not None and c.mentor_id != needs.only:
        return None
    if needs.language not in c.languages or c.active_mentees >= c.capacity:
        return None
    wanted = _wanted(needs.topics)
    levels: dict[str, int] = {}
    for topic, level in c.topics.items():
        levels[topic.lower()] = max(level, levels.get(topic.lower(), 0))
    fits = [level_fit(levels.get(t, 0), needs.level) for t in wanted]
    shared = sum(1 for f in fits if f > 0)
    if not shared:
        return None
    overlap = overlap_minutes(normalize_intervals(c.availability), _grid(needs.preferred_windows))
    full = params.full_overlap_hours * 60
    factors = (
        (params.weight_topics, sum(fits) / len(wanted)),
        (params.weight_availability, min(overlap, full) / full),
        (params.weight_rating, (bayesian_rating(c.rating_sum, c.rating_count, params) - 1) / 4),
        (params.weight_load, 1 - c.active_mentees / c.capacity),
        (params.weight_history, 1.0 if c.mentor_id in needs.preferred else 0.0),
    )
    score = 0.0
    for weight, factor in factors:
        score += weight * factor
    return Ranked(
        mentor_id=c.mentor_id,
        shared_topics=shared,
        rating=average_rating(c.rating_sum, c.rating_count),
        rating_count=c.rating_count,
        score=score,
        overlap_minutes=overlap,
        worked_before=c.mentor_id in needs.preferred,
    )


def _wanted(topics: Iterable[str]) -> tuple[str, ...]:
    """The request's topics, lower-cased and de-duplicated in order."""
    return tuple(dict.fromkeys(t.lower() for t in topics))


# --- the vectorized pool ------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One request scored against the whole pool: arrays aligned with `MentorPool.ids`.

    `score` leaves load out (`load` holds it), because cohort mode scores each further mentee
    of the same mentor with the load that mentor would then have.
    """

    eligible: np.ndarray
    score: np.ndarray
    load: np.ndarray
    shared: np.ndarray
    overlap: np.ndarray
    preferred: np.ndarray


class MentorPool:
    """Candidates laid out as arrays once, so each request costs a few vector operations.

    Availability is stored as cumulative minutes at every 15-minute point of the UTC week
    (`cum[g, i]`: minutes mentor i is available in [0, 15·g)), so the overlap with a learner's
    intervals (which lie on that grid) is a sum of differences of a few rows, whatever the
    number of mentor windows.
    """

    def __init__(self, candidates: Iterable[MentorCandidate]) -> None:
        self.candidates = cands = tuple(candidates)
        n = len(cands)
        self.ids = np.fromiter((c.mentor_id for c in cands), dtype=np.int64, count=n)
        self.index = {c.mentor_id: i for i, c in enumerate(cands)}
        if len(self.index) != n:
            raise ValueError("mentor ids must be unique")
        self.rating_sum = np.fromiter((c.rating_sum for c in cands), dtype=np.float64, count=n)
        self.rating_count = np.fromiter((c.rating_count for c in cands), dtype=np.float64, count=n)
        self.active = np.fromiter((c.active_mentees for c in cands), dtype=np.float64, count=n)
        self.capacity = np.fromiter((c.capacity for c in cands), dtype=np.float64, count=n)
        self.average = np.divide(
            self.rating_sum,
            self.rating_count,
            out=np.zeros(n),
            where=self.rating_count > 0,
        )
        self.room = self.active < self.capacity
        self.load_free = np.divide(
            self.capacity - self.active,
            self.capacity,
            out=np.zeros(n),
            where=self.capacity > 0,
        )
        self.topic_index: dict[str, int] = {}
        self.lang_index: dict[str, int] = {}
        topic_cells: list[tuple[int, int, int]] = []
        lang_cells: list[tuple[int, int]] = []
        for i, c in enumerate(cands):
            for topic, level in c.topics.items():
                t = self.topic_index.setdefault(topic.lower(), len(self.topic_index))
                topic_cells.append((t, i, level))
            for lang in c.languages:
                lang_cells.append((self.lang_index.setdefault(lang, len(self.lang_index)), i))
        self.levels = np.zeros((len(self.topic_index), n), dtype=np.int8)
        for t, i, level in topic_cells:
            self.levels[t, i] = max(self.levels[t, i], level)
        self.speaks = np.zeros((len(self.lang_index), n), dtype=bool)
        for lang_row, i in lang_cells:
            self.speaks[lang_row, i] = True
        self.cum = _cumulative_availability(cands)

    def __len__(self) -> int:
        return len(self.candidates)

    def evaluate(self, needs: RequestNeeds, params: MatchingSection = DEFAULT_PARAMS) -> Evaluation:
        """Every mentor's eligibility and score for `needs` (see `score_pair`)."""
        n = len(self.candidates)
        lang = self.lang_index.get(needs.language)
        if lang is None or n == 0:
            eligible = np.zeros(n, dtype=bool)
        else:
            eligible = self.speaks[lang] & self.room
        wanted = _wanted(needs.topics)
        rows = [self.topic_index[t] for t in wanted if t in self.topic_index]
        if rows:
            levels = self.levels[rows].astype(np.float64)
            fits = np.where(levels >= max(1, needs.level), (levels + 1) / 4, 0.0)
            shared = (fits > 0).sum(axis=0)
            topic_factor = fits.sum(axis=0) / len(wanted)
        else:
            shared = np.zeros(n, dtype=np.int64)
            topic_factor = np.zeros(n)
        eligible &= shared > 0
        for mentor_id in needs.exclude | needs.blocked:
            i = self.index.get(mentor_id)
            if i is not None:
                eligible[i] = False
        if needs.only is not None:
            only = self.index.get(needs.only)
            keep = np.zeros(n, dtype=bool)
            if only is not None:
                keep[only] = eligible[only]
            eligible = keep
        preferred = np.zeros(n, dtype=bool)
        for mentor_id in needs.preferred:
            i = self.index.get(mentor_id)
            if i is not None:
                preferred[i] = True
        overlap = self._overlap(needs.preferred_windows)
        full = params.full_overlap_hours * 60
        prior = params.rating_prior_mean_tenths / 10
        weight = params.rating_prior_weight
        denominator = weight + self.rating_count
        bayes = np.divide(
            prior * weight + self.rating_sum,
            denominator,
            out=np.full(n, prior),
            where=denominator > 0,
        )
        score = (
            params.weight_topics * topic_factor
            + params.weight_availability * (np.minimum(overlap, full) / full)
            + params.weight_rating * ((bayes - 1) / 4)
            + params.weight_history * preferred
        )
        return Evaluation(
            eligible=eligible,
            score=score,
            load=params.weight_load * self.load_free,
            shared=shared,
            overlap=overlap,
            preferred=preferred,
        )

    def _overlap(self, windows: Sequence[Interval]) -> np.ndarray:
        grid = _grid(windows)
        if not grid:
            return np.zeros(len(self.candidates), dtype=np.int64)
        starts = [s // GRID_MINUTES for s, _e in grid]
        ends = [e // GRID_MINUTES for _s, e in grid]
        cum = self.cum
        overlap: np.ndarray = cum[ends].sum(axis=0, dtype=np.int64) - cum[starts].sum(
            axis=0, dtype=np.int64
        )
        return overlap

    def ranked(self, ev: Evaluation, i: int, *, explored: bool = False) -> Ranked:
        """The `Ranked` for mentor at index `i`, from an evaluation."""
        return Ranked(
            mentor_id=int(self.ids[i]),
            shared_topics=int(ev.shared[i]),
            rating=float(self.average[i]),
            rating_count=int(self.rating_count[i]),
            score=float(ev.score[i] + ev.load[i]),
            overlap_minutes=int(ev.overlap[i]),
            worked_before=bool(ev.preferred[i]),
            explored=explored,
        )

    def rank(
        self,
        needs: RequestNeeds,
        params: MatchingSection = DEFAULT_PARAMS,
        limit: int | None = None,
    ) -> list[Ranked]:
        """Eligible mentors, best first; ties go to the lower mentor id, so order is stable.

        `rank(limit=k)` is always `rank()[:k]`: exploration looks at the first `offer_size`
        places whatever the limit.
        """
        ev = self.evaluate(needs, params)
        candidates = np.flatnonzero(ev.eligible)
        if candidates.size == 0:
            return []
        total = ev.score[candidates] + ev.load[candidates]
        window = max(limit or 0, params.offer_size) if limit is not None else candidates.size
        window = min(window, candidates.size)
        if window < candidates.size:
            kth = np.partition(total, candidates.size - window)[candidates.size - window]
            keep = total >= kth
            candidates, total = candidates[keep], total[keep]
        order = np.lexsort((self.ids[candidates], -total))
        top = [int(i) for i in candidates[order][:window]]
        explorer = self._explorer(needs, params, ev, top)
        if explorer is not None:
            slot = min(params.offer_size, len(top)) - 1
            if explorer in top:
                top.remove(explorer)
            top.insert(slot, explorer)
            if limit is not None:
                top = top[:window]
        chosen = np.array(top if limit is None else top[:limit], dtype=np.int64)
        columns = zip(
            self.ids[chosen].tolist(),
            ev.shared[chosen].tolist(),
            self.average[chosen].tolist(),
            self.rating_count[chosen].astype(np.int64).tolist(),
            (ev.score[chosen] + ev.load[chosen]).tolist(),
            ev.overlap[chosen].tolist(),
            ev.preferred[chosen].tolist(),
            (chosen == (-1 if explorer is None else explorer)).tolist(),
            strict=True,
        )
        return [Ranked(*row) for row in columns]

    def _explorer(
        self, needs: RequestNeeds, params: MatchingSection, ev: Evaluation, top: list[int]
    ) -> int | None:
        """The new mentor given the last offer slot of this request, if it explores."""
        if params.exploration_percent <= 0:
            return None
        if not explores(needs.request_id, params):
            return None
        slots = top[: params.offer_size]
        newcomer = ev.eligible & (self.rating_count < params.new_mentor_ratings)
        if newcomer[slots].any():
            return None  # a new mentor made it on merit already
        pool = np.flatnonzero(newcomer)
        if pool.size == 0:
            return None
        salt = _mix64(needs.request_id ^ 0x5DEECE66D)
        keys = _mix64_array(self.ids[pool].astype(np.uint64) ^ np.uint64(salt))
        best = np.lexsort((self.ids[pool], keys))[0]
        return int(pool[best])


def _cumulative_availability(cands: Sequence[MentorCandidate]) -> np.ndarray:
    """cum[g, i] = minutes mentor i is available in [0, 15·g) of the UTC week."""
    n = len(cands)
    slots = MINUTES_PER_WEEK // GRID_MINUTES
    per_slot = np.zeros((n, slots + 1), dtype=np.int32)  # one spare column for the diff trick
    full_diff = np.zeros((n, slots + 1), dtype=np.int32)
    rows: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, c in enumerate(cands):
        for s, e in normalize_intervals(c.availability):
            rows.append(i)
            starts.append(s)
            ends.append(e)
    if rows:
        row, start, end = np.array(rows), np.array(starts), np.array(ends)
        first = start // GRID_MINUTES
        last = (end - 1) // GRID_MINUTES
        same = first == last
        np.add.at(per_slot, (row[same], first[same]), (end - start)[same])
        row, start, end, first, last = (x[~same] for x in (row, start, end, first, last))
        np.add.at(per_slot, (row, first), (first + 1) * GRID_MINUTES - start)
        np.add.at(per_slot, (row, last), end - last * GRID_MINUTES)
        np.add.at(full_diff, (row, first + 1), GRID_MINUTES)
        np.add.at(full_diff, (row, last), -GRID_MINUTES)
    minutes = per_slot[:, :slots] + np.cumsum(full_diff, axis=1)[:, :slots]
    cum = np.zeros((slots + 1, n), dtype=np.int32)
    np.cumsum(minutes.T, axis=0, out=cum[1:])
    return np.ascontiguousarray(cum)


_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64: a well-spread, platform-independent hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix64_array(x: np.ndarray) -> np.ndarray:
    """`_mix64` over a uint64 array (array arithmetic wraps modulo 2**64, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _unit(h: int) -> float:
    return h / 2**64


def explores(request_id: int, params: MatchingSection = DEFAULT_PARAMS) -> bool:
    """Whether this request is one of the `exploration_percent` that give a new mentor a slot."""
    return _unit(_mix64(request_id)) < params.exploration_percent / 100


def rank_mentors(
    needs: RequestNeeds,
    candidates: Iterable[MentorCandidate] | MentorPool,
    params: MatchingSection = DEFAULT_PARAMS,
    limit: int | None = None,
) -> list[Ranked]:
    """Eligible mentors for `needs`, best first (at most `limit`).

    Pass a `MentorPool` to rank many requests against the same mentors without laying them
    out again.
    """
    pool = candidates if isinstance(candidates, MentorPool) else MentorPool(candidates)
    return pool.rank(needs, params, limit)
