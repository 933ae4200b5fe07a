"""Offline benchmark of the recommender on a synthetic marketplace with a planted structure.

    python bench/recommend.py            # 20,000 learners, 300 courses, 2,000 mentors
    python bench/recommend.py --small    # 2,000 learners, 60 courses, 200 mentors
    python bench/recommend.py --serving  # the chat replies that show suggestions, on SQLite

The marketplace: courses come in prerequisite chains (one topic, levels 1 to 5: "basics",
"practical", "intermediate", "advanced", "expert"); learner segments each follow a path of
three topics, taking a chain's courses in order and moving to the next topic; one purchase in
eight is off the path (noise). Learners state goals naming their segment's topics (some words
dropped, some foreign ones added); ratings are noisy (on-path courses ~4★, off-path ~2.5★) and
completion is likelier on the path. Mentors (topics and levels) are generated for scale but
the metric is about courses.

Time-based split: events before the 80th percentile of time train the model; for each learner
with a course before and one after it, the first course after is the target. HitRate@5 and
NDCG@5 for the hybrid, content-only, co-purchase-only (collaborative) and popularity rankers;
the p99 of ranking for one learner; the time to rebuild the model from every event. Then the
plans and workshops beside the courses (bot/recommending/extra_ranker.py): one plan per three
courses and 20 upcoming workshops on the chains' topics, ranked for each test learner (p50,
p99).

`--serving` times what a learner waits for instead, end to end through the console adapter on a
SQLite file: the demo catalogue with a plan per course, six upcoming workshops and 30 buyers;
`/start` and `/recommend` of a returning learner (courses, plans and workshops), `/courses`
(courses only) and `/start` of a newcomer (no suggestions), p50 and p99 of `--rounds` each.
It asserts nothing and runs against any checkout with the console (the figures before a change
come from running it in the old tree).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import cuts, timed
from bot.recommending.ranker import (
    CourseDoc,
    Interaction,
    Learner,
    Signals,
    build,
    ndcg_at,
    rank,
    strengths_of,
)

LEVELS = ("basics", "practical", "intermediate", "advanced", "expert")
LEVELS_ZH = ("入门", "实践", "进阶", "高级", "精通")
START = datetime(2026, 1, 5, tzinfo=UTC)
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "pa",
    "qui",
    "ly",
    "do",
    "fe",
    "gu",
    "ha",
    "ji",
    "ko",
]


def topic_names(n: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)))
    return sorted(names)


def marketplace(
    learners: int, courses: int, mentors: int, seed: int = 7
) -> tuple[list[CourseDoc], list[Interaction], dict[int, str], int]:
    rng = random.Random(seed)
    topics = topic_names(courses // len(LEVELS), rng)
    docs: list[CourseDoc] = []
    chains: dict[str, list[int]] = {}
    for topic in topics:
        for lv, word in enumerate(LEVELS):
            cid = len(docs) + 1
            docs.append(
                CourseDoc(
                    cid,
                    f"{topic}-{word}",
                    f"{topic.title()} {word}",
                    f"{topic}{LEVELS_ZH[lv]}",
                    f"Learn {topic} at the {word} level, step {lv + 1} of the {topic} path.",
                    "",
                    (topic,),
                    START - timedelta(days=rng.randint(0, 400)),
                )
            )
            chains.setdefault(topic, []).append(cid)
    segments = [rng.sample(topics, 3) for _ in range(max(4, len(topics) // 3))]
    events: list[Interaction] = []
    goals: dict[int, str] = {}
    for uid in range(1, learners + 1):
        path = rng.choice(segments)
        words = [w for w in path if rng.random() < 0.7] or path[:1]
        if rng.random() < 0.3:
            words.append(rng.choice(topics))
        goals[uid] = " ".join(["learn", *words])
        sequence = [cid for topic in path for cid in chains[topic]]
        take = min(len(sequence), max(1, int(rng.expovariate(1 / 4)) + 1))
        at = START + timedelta(days=rng.uniform(0, 120))
        bought: set[int] = set()
        for step in range(take):
            on_path = rng.random() > 0.125
            cid = sequence[step] if on_path else rng.choice(docs).id
            if cid in bought:
                continue
            bought.add(cid)
            done = rng.random() < (0.8 if on_path else 0.3)
            stars = max(1, min(5, round(rng.gauss(4.2 if on_path else 2.5, 0.8))))
            events.append(
                Interaction(uid, cid, at, 1.0 if done else rng.random() * 0.5, float(stars))
            )
            at += timedelta(days=rng.uniform(3, 30))
    mentor_topics = sum(1 for _ in range(mentors) for _t in rng.sample(topics, 2))
    return docs, events, goals, mentor_topics


def evaluate(args: argparse.Namespace) -> int:
    sizes = (2_000, 60, 200) if args.small else (20_000, 300, 2_000)
    t0 = time.perf_counter()
    docs, events, goals, _mentor_topics = marketplace(*sizes)
    made = time.perf_counter() - t0
    times = sorted(x.at for x in events)
    cutoff = times[int(len(times) * 0.8)]
    train = [x for x in events if x.at < cutoff]
    later: dict[int, list[Interaction]] = {}
    for x in events:
        if x.at >= cutoff:
            later.setdefault(x.user_id, []).append(x)
    history: dict[int, list[Interaction]] = {}
    for x in train:
        history.setdefault(x.user_id, []).append(x)
    cases = []
    for uid, rows in later.items():
        if uid in history:
            target = min(rows, key=lambda x: (x.at, x.course_id)).course_id
            cases.append((uid, target))
    random.Random(1).shuffle(cases)
    cases = cases[: args.cases]
    t0 = time.perf_counter()
    model = build(Signals(cutoff, tuple(docs), tuple(train)))
    train_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    build(Signals(times[-1], tuple(docs), tuple(events)))
    rebuild = time.perf_counter() - t0
    print(
        f"marketplace: {sizes[0]:,} learners, {len(docs)} courses, {sizes[2]:,} mentors, "
        f"{len(events):,} purchases (made in {made:.1f} s); train {len(train):,}, "
        f"test {len(cases):,} learners"
    )
    figures: dict[str, tuple[float, float]] = {}
    latencies: list[float] = []
    for which in ("hybrid", "content", "collaborative", "popularity"):
        hits = ndcg = 0.0
        for uid, target in cases:
            course_ids, strengths = strengths_of(history[uid])
            learner = Learner(uid, goals[uid], 1, (), course_ids, strengths)
            started = time.perf_counter()
            ranked = rank(model, learner, 5, which=which, day="bench")
            if which == "hybrid":
                latencies.append(time.perf_counter() - started)
            ids = [s.course_id for s in ranked]
            hits += target in ids
            ndcg += ndcg_at(ids, {target}, 5)
        figures[which] = (hits / len(cases), ndcg / len(cases))
        print(f"  {which:<14} HitRate@5 {figures[which][0]:.3f}   NDCG@5 {figures[which][1]:.3f}")
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    p50 = latencies[len(latencies) // 2] * 1000
    ratio = figures["hybrid"][1] / figures["popularity"][1] if figures["popularity"][1] else 0
    print(f"hybrid / popularity NDCG@5: {ratio:.2f}x (+{(ratio - 1) * 100:.0f}%; needs >= +30%)")
    for other in ("content", "collaborative"):
        r = figures["hybrid"][1] / figures[other][1] if figures[other][1] else 0
        print(f"hybrid / {other} NDCG@5: {r:.2f}x")
    print(f"recommending for one learner: p50 {p50:.2f} ms, p99 {p99:.2f} ms (needs < 20 ms)")
    print(
        f"model build: {train_build:.2f} s (train), rebuild from every event {rebuild:.2f} s "
        "(needs < 30 s)"
    )
    extras(model, docs, cases, history, goals)
    ok = ratio >= 1.3 and p99 < 20 and rebuild < 30
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def extras(
    model: Any,
    docs: list[CourseDoc],
    cases: list[tuple[int, int]],
    history: dict[int, list[Interaction]],
    goals: dict[int, str],
) -> None:
    """Ranking one learner's plans and workshops, after their courses were ranked."""
    from bot.recommending.extra_ranker import Candidate, fit_of, rank_extras

    rng = random.Random(3)
    plans = [
        Candidate("plan", d.id, d.id, topics=d.topics, popularity=rng.randint(0, 40))
        for d in docs[::3]
    ]
    shops = []
    for n in range(20):
        d = rng.choice(docs)
        shops.append(
            Candidate(
                "workshop",
                1000 + n,
                d.id if n % 2 else None,
                text=f"{d.topics[0]} clinic {d.title_zh}",
                topics=d.topics,
                popularity=rng.randint(0, 9),
                peers=rng.randint(0, 3),
                stars=rng.uniform(3, 5),
                hours=rng.uniform(1, 300),
                seats_left=rng.randint(1, 10),
            )
        )
    times = []
    for uid, _target in cases:
        course_ids, strengths = strengths_of(history[uid])
        learner = Learner(uid, goals[uid], 1, (), course_ids, strengths)
        started = time.perf_counter()
        picks = [s.course_id for s in rank(model, learner, 3, day="bench")]
        follows = {t for c in course_ids for t in model.topics[model.index[c]]}
        rank_extras(
            model, [*plans, *shops], fit_of(course_ids[::-1], picks, goals[uid], follows), 2
        )
        times.append((time.perf_counter() - started) * 1000)
    p50, p99 = cuts(times)
    print(
        f"courses then {len(plans)} plans and {len(shops)} workshops for one learner: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )


async def serving(rounds: int) -> None:
    """The replies that show suggestions, end to end through the console on SQLite."""
    from bot.adapters.console import ConsoleChat
    from bot.app import Marketplace
    from bot.config import config_from_mapping
    from bot.core.clock import FakeClock
    from bot.recommending.signals import MODELS
    from bot.runtime.bootstrap import payment_providers
    from bot.runtime.demo_data import seed_demo
    from storage.db import create_engine
    from storage.migrate import upgrade

    MODELS.background = False  # every reply sees the newest model, built inline
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_mapping(
            {
                "bot": {"admins": ["console:admin"]},
                "payments": {"demo": True},
                "storage": {"data_dir": tmp},
            }
        )
        engine = create_engine(config.database_url())
        await upgrade(engine)
        app = Marketplace(
            config,
            engine,
            FakeClock(datetime(2026, 3, 2, 8, tzinfo=UTC)),
            payment_providers(config),
        )
        out: list[str] = []
        chat = ConsoleChat(app, out.append, files_dir=Path(tmp))

        async def say(who: str, line: str) -> str:
            start = len(out)
            chat.name = who
            await chat.handle_line(line)
            return "\n".join(out[start:])

        await seed_demo(app)
        slugs = ("python-basics", "data-analysis", "git-teamwork")
        for slug in slugs:
            await say(
                "admin",
                f'/admin plan add m-{slug} course={slug} name="Monthly {slug}" price=29.00 '
                "sessions=2",
            )
        for n, (host, topics) in enumerate(
            [("ada", "python,testing"), ("linus", "git"), ("mei", "data,python")] * 2
        ):
            await say(
                host,
                f'/workshop new title="Clinic {n}" start="2026-03-{5 + n} 18:00" seats=9 '
                f"topics={topics}",
            )
        for n in range(30):
            for slug in slugs[: 1 + n % 3]:
                bought = await say(f"buyer{n}", f"/buy {slug}")
                await say(f"buyer{n}", f"/pay {bought.split('Order #', 1)[1].split(':', 1)[0]}")
        bought = await say("bob", "/buy python-basics")
        await say("bob", f"/pay {bought.split('Order #', 1)[1].split(':', 1)[0]}")
        welcome = await say("bob", "/start")
        await say("newbie", "/start")
        print(f"serving on SQLite, {rounds} rounds each  p50 ms   p99 ms   CPU p50 ms")
        for who, line in (
            ("bob", "/start"),
            ("bob", "/recommend"),
            ("bob", "/courses"),
            ("newbie", "/start"),
        ):
            got = await timed(lambda who=who, line=line: say(who, line), rounds)
            p50, p99 = cuts(got.wall)
            name = f"{line} ({'returning' if who == 'bob' else 'newcomer'})"
            print(f"  {name:<28} {p50:8.2f} {p99:8.2f} {statistics.median(got.cpu):10.2f}")
        shown = sum(x.startswith(("• Plan", "• Workshop")) for x in welcome.splitlines())
        print(f"plans and workshops in the returning learner's welcome: {shown}")
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 learners, 60 courses")
    parser.add_argument("--cases", type=int, default=2_000, help="test learners to score")
    parser.add_argument("--serving", action="store_true", help="time chat replies instead")
    parser.add_argument("--rounds", type=int, default=200, help="replies timed (--serving)")
    args = parser.parse_args()
    if args.serving:
        asyncio.run(serving(args.rounds))
        return 0
    return evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
