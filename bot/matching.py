"""Ranking mentors for a request: pure, plain data in and ranked candidates out.

This first ranking is deliberately simple and explainable: a mentor must share the learner's
language, have room under their capacity and know at least one of the course's topics at or
above the learner's level. Among those, more shared topics rank higher, then a higher rating
(a new mentor counts as `NEW_MENTOR_RATING` so they are neither starved nor favoured), then the
lighter load, then the older profile (a stable order, so the same input gives the same output).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.i18n import Msg, _

NEW_MENTOR_RATING = 4.0
LEVELS = {1: "beginner", 2: "intermediate", 3: "advanced"}


@dataclass(frozen=True)
class MentorCandidate:
    mentor_id: int
    topics: Mapping[str, int]
    languages: frozenset[str]
    rating_sum: int
    rating_count: int
    active_mentees: int
    capacity: int


@dataclass(frozen=True)
class RequestNeeds:
    topics: tuple[str, ...]
    level: int
    language: str
    exclude: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Ranked:
    mentor_id: int
    shared_topics: int
    rating: float
    rating_count: int

    def explanation(self) -> Msg:
        if self.rating_count:
            return _(
                "{shared} shared topics · {rating}★ ({count} ratings)",
                shared=self.shared_topics,
                rating=f"{self.rating:.1f}",
                count=self.rating_count,
            )
        return _("{shared} shared topics · new mentor", shared=self.shared_topics)


def average_rating(rating_sum: int, rating_count: int) -> float:
    return rating_sum / rating_count if rating_count else NEW_MENTOR_RATING


def rank_mentors(needs: RequestNeeds, candidates: Iterable[MentorCandidate]) -> list[Ranked]:
    wanted = {t.lower() for t in needs.topics}
    scored: list[tuple[tuple[float, ...], Ranked]] = []
    for c in candidates:
        if c.mentor_id in needs.exclude or needs.language not in c.languages:
            continue
        if c.active_mentees >= c.capacity:
            continue
        shared = [
            t for t, level in c.topics.items() if t.lower() in wanted and level >= needs.level
        ]
        if not shared:
            continue
        rating = average_rating(c.rating_sum, c.rating_count)
        ranked = Ranked(c.mentor_id, len(shared), rating, c.rating_count)
        key = (-len(shared), -rating, c.active_mentees / c.capacity, c.mentor_id)
        scored.append((key, ranked))
    scored.sort(key=lambda pair: pair[0])
    return [r for _key, r in scored]
