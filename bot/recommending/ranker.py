"""The hybrid ranker: which courses to suggest to one learner, and why. Pure and deterministic:
the same `Signals` (read from one database), learner and seed give the same suggestions.

A model is built once from everyone's signals (`build`) and then ranks for one learner at a
time (`rank`). Each course's score blends three signals, each on 0–1:

- **content**: how well the course fits what the learner said and did. TF-IDF (scikit-learn's
  `TfidfVectorizer`) over each course's titles, descriptions and topics in English and Chinese
  (Chinese segmented into words by jieba), against the learner's stated goals (cosine
  similarity), blended with the similarity to the courses they already took and the overlap
  with the topics they asked a mentor about; then multiplied by the level fit (a course's
  level is read from its words: "from zero", "basics", 入门 … is 1, "intermediate", 进阶 2,
  "advanced", 高级 3; an unknown level fits half).
- **collaborative**: item to item, from what other learners did. For each learner's courses in
  the order bought, each later course `j` after an earlier `i` counts `s(i)·s(j)`, where `s`
  is the outcome of that learner's course (bought 1, + completion up to 1, + (stars − 3)/2),
  so a course that was finished and liked counts more than one bought and dropped. The
  strength of `i → j` is `P(j | i) · lift/(lift + 1) · n/(n + 3)` (lift `P(j | i)/P(j)`, `n`
  the weighted count: few co-occurrences are shrunk), plus half of the same for `j → i`
  ("also took"); a learner's score for `j` sums it over their courses.
- **popularity**: purchases in the last 90 days, each weighted by its recency (half-life 30
  days), normalised to the most popular course: the fallback for a learner with no history.

The blend weighs the signals from `[recommend]` (20/70/10) over those the learner has (a new
learner without goals gets popularity alone), then multiplies by the course's outcome
quality (0.7–1.3, from its Bayesian mean rating and completion rate). A share of replies
(`exploration_percent`, chosen per learner and day from the seed) gives its last place to the
best new course (added within `new_course_days`), so new courses are seen. The reason shown is
the strongest signal's: the goal words matched, the course most learners took before this one,
the topics, or popularity.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

Reason = Literal["goal", "topic", "next", "also", "popular", "new"]
Arm = Literal["hybrid", "baseline"]

# Words that mark a course's level, in both languages (lowercase; matched as words or, for
# Chinese, as substrings).
LEVEL_WORDS: dict[int, tuple[str, ...]] = {
    1: ("zero", "basics", "basic", "beginner", "beginners", "intro", "introduction", "first"),
    2: ("intermediate", "practical", "next"),
    3: ("advanced", "expert", "mastery", "deep"),
}
LEVEL_WORDS_ZH: dict[int, tuple[str, ...]] = {
    1: ("零基础", "入门", "基础", "初级"),
    2: ("进阶", "中级"),
    3: ("高级", "精通", "深入"),
}
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "learn",
        "learning",
        "me",
        "my",
        "of",
        "on",
        "or",
        "the",
        "to",
        "want",
        "with",
        "you",
        "your",
        "this",
        "that",
        "what",
    ]
)
_TOKEN = re.compile(r"[a-z0-9+#]+|[\u3400-\u9fff\uf900-\ufaff]+")
POPULAR_DAYS = 90
HALF_LIFE_DAYS = 30.0
SHRINK = 3.0


@dataclass(frozen=True)
class CourseDoc:
    id: int
    slug: str
    title_en: str
    title_zh: str = ""
    description_en: str = ""
    description_zh: str = ""
    topics: tuple[str, ...] = ()
    created_at: datetime | None = None
    active: bool = True

    @property
    def text(self) -> str:
        return " ".join((self.title_en, self.title_zh, self.description_en, self.description_zh))


@dataclass(frozen=True)
class Interaction:
    """One learner's course: when bought, how far completed (0–1), their mean rating."""

    user_id: int
    course_id: int
    at: datetime
    completed: float = 0.0
    stars: float | None = None

    @property
    def strength(self) -> float:
        """The outcome: bought 1, + completion (up to 1), + (stars − 3)/2; at least 0.1."""
        rated = 0.0 if self.stars is None else (self.stars - 3.0) / 2.0
        return max(0.1, 1.0 + min(1.0, self.completed) + rated)


@dataclass(frozen=True)
class Signals:
    now: datetime
    courses: tuple[CourseDoc, ...]
    interactions: tuple[Interaction, ...] = ()


@dataclass(frozen=True)
class Learner:
    """One learner as the ranker sees them: stated goals and level, the topics they asked a
    mentor about, their courses in the order bought, and what never to suggest."""

    user_id: int
    goals: str = ""
    level: int | None = None
    topics: tuple[str, ...] = ()
    history: tuple[int, ...] = ()
    strengths: tuple[float, ...] = ()  # the outcome of each course in `history`
    exclude: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Weights:
    content: float = 20
    collaborative: float = 70
    popularity: float = 10
    exploration_percent: int = 10
    new_course_days: int = 30

    @classmethod
    def from_config(cls, section: Any) -> Weights:
        return cls(
            section.weight_content,
            section.weight_collaborative,
            section.weight_popularity,
            section.exploration_percent,
            section.new_course_days,
        )


@dataclass(frozen=True)
class Suggestion:
    course_id: int
    score: float
    reason: Reason
    because: int | None = None  # the course behind a "next"/"also" reason
    words: tuple[str, ...] = ()  # the goal words or topics behind a "goal"/"topic" reason
    level_fit: bool = False  # the course is at the learner's level


def course_level(doc: CourseDoc) -> int | None:
    """The level a course's own words give it (1 beginner … 3 advanced), or None."""
    words = set(_TOKEN.findall(f"{doc.slug.replace('-', ' ')} {doc.title_en}".lower()))
    for level, marks in LEVEL_WORDS.items():
        if words & set(marks):
            return level
    for level, marks in LEVEL_WORDS_ZH.items():
        if any(m in doc.title_zh for m in marks):
            return level
    return None


@functools.cache
def _jieba() -> Any:
    """jieba, imported on first Chinese text (it takes a second to load its dictionary)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokens(text: str) -> list[str]:
    """Words for TF-IDF: lowercase Latin words and numbers (no stop words), Chinese runs cut
    into words by jieba (single characters dropped)."""
    found: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        word = match.group()
        if word[0] >= "\u3400":
            found.extend(w for w in _jieba().cut(word) if len(w) > 1)
        elif len(word) > 1 and word not in STOP_WORDS:
            found.append(word)
    return found


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts` (a seed, a user, a day): the same everywhere."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_for(user_id: int, seed: int, baseline_share: float) -> Arm:
    """Which arm a learner is in, for good: the held-out share sees the popularity baseline."""
    return "baseline" if stable_unit("arm", seed, user_id) < baseline_share else "hybrid"


@dataclass
class Model:
    """What `build` computed from everyone's signals; `rank` reads it for one learner."""

    now: datetime
    courses: list[CourseDoc]
    index: dict[int, int]
    vectorizer: Any
    docs: Any  # TF-IDF rows, L2-normalised (scipy sparse)
    columns: Any  # the same by column (CSC), for one goal's few words
    similar: Any  # course × course cosine similarity
    levels: Any  # 0: unknown
    topics: list[frozenset[str]]
    next_: Any  # i → j strength
    also: Any  # i ↔ j strength
    popularity: Any
    quality: Any
    new: Any
    active: Any
    weights: Weights = field(default_factory=Weights)
    # Each learner's own interactions as read for this model: a learner's state needs no
    # second read of them while the model is current (bot.recommending.signals).
    interactions_of: dict[int, tuple[Interaction, ...]] = field(default_factory=dict)
    # Workshop texts already read through `text_query` (bot.recommending.extra_ranker).
    extra_rows: dict[str, dict[int, float]] = field(default_factory=dict)

    def doc(self, course_id: int) -> CourseDoc:
        return self.courses[self.index[course_id]]


def build(signals: Signals, weights: Weights = Weights()) -> Model:
    """The model for `signals`: TF-IDF, item-item strengths, popularity and quality."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    courses = sorted(signals.courses, key=lambda c: c.id)
    index = {c.id: i for i, c in enumerate(courses)}
    n = len(courses)
    texts = [f"{c.text} {' '.join(c.topics)} {' '.join(c.topics)}" for c in courses]
    vectorizer = TfidfVectorizer(analyzer=tokens, sublinear_tf=True)
    try:
        docs = vectorizer.fit_transform(texts) if texts else None
    except ValueError:  # no words at all
        docs = None
    similar = (docs @ docs.T).toarray() if docs is not None and n else np.zeros((n, n))
    levels = np.array([course_level(c) or 0 for c in courses], dtype=float)
    by_user: dict[int, list[Interaction]] = defaultdict(list)
    for x in signals.interactions:
        if x.course_id in index:
            by_user[x.user_id].append(x)
    counts = np.zeros((n, n))
    mass = np.zeros(n)
    for rows in by_user.values():
        rows.sort(key=lambda x: (x.at, x.course_id))
        seen: list[tuple[int, float]] = []
        for x in rows:
            i, s = index[x.course_id], x.strength
            mass[i] += s
            for j, t in seen:
                if j != i:
                    counts[j, i] += t * s
            seen.append((i, s))
    total = mass.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p_next = np.where(mass[:, None] > 0, counts / mass[:, None], 0.0)
        base = np.where(total > 0, mass / total, 0.0)
        lift = np.where(base[None, :] > 0, p_next / base[None, :], 0.0)
    next_ = p_next * (lift / (lift + 1.0)) * (counts / (counts + SHRINK))
    also = 0.5 * next_.T
    popularity = np.zeros(n)
    quality_stars = np.zeros(n)
    rated = np.zeros(n)
    completion = np.zeros(n)
    bought = np.zeros(n)
    since = signals.now - timedelta(days=POPULAR_DAYS)
    for x in signals.interactions:
        if x.course_id not in index:
            continue
        i = index[x.course_id]
        bought[i] += 1
        completion[i] += min(1.0, x.completed)
        if x.stars is not None:
            quality_stars[i] += x.stars
            rated[i] += 1
        if x.at >= since:
            age = max(0.0, (signals.now - x.at).total_seconds() / 86400)
            popularity[i] += 0.5 ** (age / HALF_LIFE_DAYS)
    if popularity.max(initial=0) > 0:
        popularity = popularity / popularity.max()
    mean_stars = (quality_stars + 3.5 * 5) / (rated + 5)  # Bayesian: 3.5★ worth 5 ratings
    completed = (completion + 0.5 * 5) / (bought + 5)
    quality = 0.5 * (mean_stars - 1.0) / 4.0 + 0.5 * completed
    fresh = signals.now - timedelta(days=weights.new_course_days)
    new = np.array([c.created_at is not None and c.created_at >= fresh for c in courses])
    active = np.array([c.active for c in courses], dtype=bool)
    return Model(
        signals.now,
        courses,
        index,
        vectorizer if docs is not None else None,
        docs,
        _by_column(docs),
        similar,
        levels,
        [frozenset(t.lower() for t in c.topics) for c in courses],
        next_,
        also,
        popularity,
        quality,
        new,
        active,
        weights,
        _per_learner(signals.interactions),
    )


def _per_learner(rows: Iterable[Interaction]) -> dict[int, tuple[Interaction, ...]]:
    mine: dict[int, list[Interaction]] = defaultdict(list)
    for x in rows:
        mine[x.user_id].append(x)
    return {user_id: tuple(xs) for user_id, xs in mine.items()}


def _by_column(docs: Any) -> Any:
    """The TF-IDF matrix for reading a few columns: dense when small (numpy indexing costs
    microseconds, scipy's sparse indexing tens of them), else compressed by column."""
    if docs is None:
        return None
    rows, cols = docs.shape
    return docs.toarray() if rows * cols <= 20_000_000 else docs.tocsc()


def _allowed(model: Model, learner: Learner) -> Any:
    keep = model.active.copy()
    for course_id in (*learner.exclude, *learner.history):
        i = model.index.get(course_id)
        if i is not None:
            keep[i] = False
    return keep


def text_query(model: Model, text: str) -> tuple[dict[int, float], list[str]]:
    """`text`'s TF-IDF row in the model's vocabulary, by column, and its words: computed as
    `TfidfVectorizer.transform` would (sublinear tf × idf, L2-normalised) but without its
    per-call checks, which cost more than the ranking. Anything compared with the courses'
    words (goals, a workshop's title and topics) is read through here, Chinese included."""
    words = tokens(text) if text else []
    if not words or model.vectorizer is None:
        return {}, words
    vocab = model.vectorizer.vocabulary_
    counts: dict[int, int] = {}
    for w in words:
        j = vocab.get(w)
        if j is not None:
            counts[j] = counts.get(j, 0) + 1
    if not counts:
        return {}, words
    idf = model.vectorizer.idf_
    weights = {j: (1.0 + math.log(c)) * idf[j] for j, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in weights.values()))
    return {j: v / norm for j, v in weights.items()}, words


def shared_words(
    model: Model, query: dict[int, float], words: list[str], row: dict[int, float]
) -> tuple[str, ...]:
    """The words of `query` (typed as `words`) that `row` shares, strongest first (at most
    two), in the order typed."""
    if model.vectorizer is None:
        return ()
    vocab = model.vectorizer.vocabulary_
    weight = {}
    for w in dict.fromkeys(words):
        j = vocab.get(w)
        if j is not None and row.get(j, 0) > 0:
            weight[w] = row[j] * query[j]
    best = sorted(weight, key=lambda w: -weight[w])[:2]
    return tuple(sorted(best, key=words.index))


def goal_match(model: Model, goals: str) -> tuple[Any, dict[int, float], list[str]]:
    """Cosine similarity of each course to the goals, the goal's TF-IDF weights by column,
    its words."""
    n = len(model.courses)
    query, words = text_query(model, goals)
    if not query:
        return np.zeros(n), {}, words
    cols = list(query)
    similarity = model.columns[:, cols] @ np.array([query[j] for j in cols])
    return np.asarray(similarity).ravel(), query, words


def course_row(model: Model, query: dict[int, float], i: int) -> dict[int, float]:
    """Course `i`'s TF-IDF weights in the columns of `query`."""
    return {j: float(model.columns[i, j]) for j in query}


def scores(model: Model, learner: Learner, which: str = "hybrid") -> dict[str, Any]:
    """Each signal's score for every course (0–1), and the blend `which` asks for: hybrid,
    content, collaborative or popularity."""
    n = len(model.courses)
    goal, query, words = goal_match(model, learner.goals)
    hist = [model.index[c] for c in learner.history if c in model.index]
    strengths = list(learner.strengths) or [1.0] * len(hist)
    history_sim = model.similar[hist].mean(axis=0) if hist else np.zeros(n)
    asked = {t.lower() for t in learner.topics}
    topic = (
        np.array([len(asked & t) / len(asked | t) if t else 0.0 for t in model.topics])
        if asked
        else np.zeros(n)
    )
    parts = [(0.6, goal, bool(learner.goals)), (0.25, history_sim, bool(hist))]
    parts.append((0.15, topic, bool(asked)))
    known = [(w, v) for w, v, ok in parts if ok]
    content = sum(w * v for w, v in known) / sum(w for w, _v in known) if known else np.zeros(n)
    if learner.level is not None:
        fit = np.where(model.levels > 0, 1.0 - np.abs(model.levels - learner.level) / 2.0, 0.5)
        content = content * (0.5 + 0.5 * fit)
    if content.max(initial=0) > 0:
        content = content / content.max()
    collab = np.zeros(n)
    for i, s in zip(hist, strengths, strict=False):
        collab = collab + s * (model.next_[i] + model.also[i])
    if collab.max(initial=0) > 0:
        collab = collab / collab.max()
    w = model.weights
    if which == "content":
        blend = content
    elif which == "collaborative":
        blend = collab
    elif which == "popularity":
        blend = model.popularity * (0.7 + 0.6 * model.quality)
    else:
        terms = [(w.popularity, model.popularity)]
        if known:
            terms.append((w.content, content))
        if hist and collab.max(initial=0) > 0:
            terms.append((w.collaborative, collab))
        weight = sum(x for x, _v in terms) or 1.0
        blend = sum(x * v for x, v in terms) / weight * (0.7 + 0.6 * model.quality)
    return {
        "content": content,
        "goal": goal,
        "collaborative": collab,
        "popularity": model.popularity,
        "blend": blend,
        "query": query,
        "words": words,
    }


def rank(
    model: Model,
    learner: Learner,
    k: int = 3,
    *,
    seed: int = 0,
    arm: Arm = "hybrid",
    which: str = "hybrid",
    day: str = "",
) -> list[Suggestion]:
    """The learner's top `k` courses with the reason for each (the baseline arm: the most
    popular). Never a course they have, had or dismissed, nor one not on offer."""
    if not model.courses:
        return []
    parts = scores(model, learner, "popularity" if arm == "baseline" else which)
    keep = _allowed(model, learner)
    blend = np.where(keep, parts["blend"], -1.0)
    order = sorted(
        (int(i) for i in np.flatnonzero(keep)), key=lambda i: (-blend[i], model.courses[i].id)
    )
    picked = list(order[:k])
    explored = None
    if (
        arm == "hybrid"
        and which == "hybrid"
        and picked
        and not any(model.new[i] for i in picked)
        and stable_unit("explore", seed, learner.user_id, day) * 100
        < model.weights.exploration_percent
    ):
        fresh = [i for i in order if model.new[i]]
        if fresh:
            picked[-1] = explored = fresh[0]
    return [
        Suggestion(model.courses[i].id, float(parts["blend"][i]), "new")
        if i == explored
        else _explain(model, learner, parts, i, arm)
        for i in picked
    ]


def _explain(model: Model, learner: Learner, parts: dict[str, Any], i: int, arm: Arm) -> Suggestion:
    course_id = model.courses[i].id
    score = float(parts["blend"][i])
    if arm == "baseline":
        return Suggestion(course_id, score, "popular")
    w = model.weights
    level_fit = bool(learner.level is not None and model.levels[i] == learner.level)
    contributions = {
        "content": w.content * parts["content"][i],
        "collaborative": w.collaborative * parts["collaborative"][i],
        "popularity": w.popularity * parts["popularity"][i],
    }
    strongest = max(contributions, key=lambda name: (contributions[name], name))
    if contributions[strongest] <= 0 or strongest == "popularity":
        return Suggestion(course_id, score, "popular")
    if strongest == "collaborative":
        hist = [model.index[c] for c in learner.history if c in model.index]
        best = max(hist, key=lambda h: (model.next_[h, i] + model.also[h, i], -h))
        kind: Reason = "next" if model.next_[best, i] >= model.also[best, i] else "also"
        return Suggestion(course_id, score, kind, model.courses[best].id, level_fit=level_fit)
    if parts["goal"][i] > 0:
        query = parts["query"]
        matched = shared_words(model, query, parts["words"], course_row(model, query, i))
        return Suggestion(course_id, score, "goal", words=matched, level_fit=level_fit)
    shared = sorted({t.lower() for t in learner.topics} & model.topics[i])
    if not shared:
        hist_topics: set[str] = set()
        for c in learner.history:
            if c in model.index:
                hist_topics |= model.topics[model.index[c]]
        shared = sorted(hist_topics & model.topics[i])
    return Suggestion(course_id, score, "topic", words=tuple(shared), level_fit=level_fit)


def strengths_of(rows: Iterable[Interaction]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A learner's courses in the order bought and each one's outcome."""
    ordered = sorted(rows, key=lambda x: (x.at, x.course_id))
    return tuple(x.course_id for x in ordered), tuple(x.strength for x in ordered)


def ndcg_at(ranked: Sequence[int], relevant: set[int], k: int = 5) -> float:
    """NDCG@k with binary relevance (for the benchmark)."""
    dcg = sum(1.0 / math.log2(r + 2) for r, c in enumerate(ranked[:k]) if c in relevant)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0
