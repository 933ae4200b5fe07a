"""Lessons in chat: on demand, dripped on a durable schedule, rated once, managed by admins."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.runtime.demo_data import seed_demo
from storage.models import Course, Lesson, LessonDelivery, LessonDrip, LessonFile, LessonRating
from tests.support import (
    AppFactory,
    Database,
    Harness,
    add_lessons,
    buy,
    harness_for,
    run_mentorbot,
    snapshot,
)

LONDON = "Europe/London"
ROOT = Path(__file__).resolve().parent.parent


async def deliveries(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        return int((await uow.session.execute(select(func.count(LessonDelivery.id)))).scalar_one())


async def lesson_ratings(h: Harness) -> list[tuple[int, str]]:
    async with h.app.new_uow() as uow:
        rows = (await uow.session.execute(select(LessonRating).order_by(LessonRating.id))).scalars()
        return [(r.stars, r.comment) for r in rows]


async def test_lessons_on_demand_arrive_in_order_and_count_in_progress(market: Harness) -> None:
    """/nextlesson sends the lessons one by one in order; /progress counts those done."""
    await add_lessons(market, 2)
    await buy(market, "alice")
    out = await market.send("alice", "/nextlesson")
    assert "lesson 1 of 2 (#1): Lesson 1" in out and "Body of lesson 1." in out
    out = await market.send("alice", "/nextlesson")
    assert "lesson 2 of 2 (#2): Lesson 2" in out
    assert "received every lesson" in await market.send("alice", "/nextlesson")
    out = await market.send("alice", "/lessondone 1")
    assert "Lesson #1 is done" in out
    out = await market.send("alice", "/progress")
    assert "Lessons done: 1 of 2" in out and "Sessions done: 0" in out
    out = await market.send("alice", "/lessons")
    assert "received 2 of 2 lessons, done 1" in out and "#1 Lesson 1 ✓" in out
    assert "Lesson 1" in await market.send("alice", "/lesson 1")


async def test_lessons_are_only_for_learners_of_the_course(market: Harness) -> None:
    """Without the course, /nextlesson refuses and another learner's lesson cannot be read."""
    await add_lessons(market, 1)
    assert "Buy one first" in await market.send("bob", "/nextlesson")
    await buy(market, "alice")
    await market.send("alice", "/nextlesson")
    assert "You have no lesson #1" in await market.send("bob", "/lesson 1")
    assert "You have no lesson #1" in await market.send("bob", "/ratelesson 1 5")
    assert "Only marketplace admins" in await market.send("alice", "/admin lesson drip x 1")


async def test_drip_keeps_local_time_across_dst_and_a_restart(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Dripped lessons arrive at 09:00 London time before and after the clocks go forward,
    and a restarted process sends each due lesson exactly once."""
    clock.set(datetime(2026, 3, 27, 10, 0, tzinfo=UTC))  # a Friday; clocks change Sunday
    first = harness_for(await make_app())
    await seed_demo(first.app)
    await add_lessons(first, 4)
    assert "a new lesson every 1 days" in await first.send(
        "admin", "/admin lesson drip python-basics 1"
    )
    await first.send("alice", f"/timezone {LONDON}")
    await buy(first, "alice")
    out = await first.tick()
    assert "message for alice" in out and "lesson 1 of 4 (#1)" in out

    # A restart: a new process on the same database takes over.
    second = harness_for(await make_app())
    clock.set(datetime(2026, 3, 28, 8, 59, tzinfo=UTC))
    assert "lesson" not in await second.tick()
    clock.set(datetime(2026, 3, 28, 9, 0, tzinfo=UTC))  # 09:00 GMT
    assert "lesson 2 of 4 (#2)" in await second.tick()
    assert "lesson" not in await second.tick()

    clock.set(datetime(2026, 3, 29, 7, 59, tzinfo=UTC))
    assert "lesson" not in await second.tick()
    clock.set(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # 09:00 BST
    assert "lesson 3 of 4 (#3)" in await second.tick()
    clock.set(datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    assert "lesson 4 of 4 (#4)" in await second.tick()
    clock.set(datetime(2026, 4, 5, 8, 0, tzinfo=UTC))
    assert "lesson" not in await second.tick()
    assert await deliveries(second) == 4
    out = await second.send("alice", "/lessons")
    assert "received 4 of 4 lessons" in out and "You have received every lesson." in out


async def test_concurrent_sweeps_send_each_dripped_lesson_once(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """Two processes sweeping at the same instant deliver every due lesson once."""
    one = harness_for(await make_app())
    two = harness_for(await make_app())
    await seed_demo(one.app)
    await add_lessons(one, 3)
    await one.send("admin", "/admin lesson drip python-basics 2")
    for learner in ("alice", "bob", "carol"):
        await buy(one, learner)
    await asyncio.gather(one.app.run_due(), two.app.run_due())
    assert await deliveries(one) == 3
    clock.advance(timedelta(days=2, hours=2))
    await asyncio.gather(one.app.run_due(), two.app.run_due(), one.app.run_due())
    assert await deliveries(one) == 6
    out = "\n".join(one.output + two.output)
    assert out.count("lesson 2 of 3") == 3


async def test_on_demand_and_drip_share_one_sequence(market: Harness, clock: FakeClock) -> None:
    """A lesson fetched on demand is not dripped again; the drip sends the one after it."""
    await add_lessons(market, 3)
    await market.send("admin", "/admin lesson drip python-basics 3")
    await buy(market, "alice")
    assert "lesson 1 of 3" in await market.tick()
    assert "lesson 2 of 3" in await market.send("alice", "/nextlesson")
    clock.advance(timedelta(days=3, hours=1))
    out = await market.tick()
    assert "lesson 3 of 3" in out and "lesson 2 of 3" not in out
    assert await deliveries(market) == 3


async def test_a_refund_stops_the_drip(market: Harness, clock: FakeClock) -> None:
    """After the course is refunded no further lesson is dripped or given on demand."""
    await add_lessons(market, 3)
    await market.send("admin", "/admin lesson drip python-basics 1")
    await buy(market, "alice")
    await market.tick()
    await market.send("admin", "/admin refund 1")
    clock.advance(timedelta(days=2))
    assert "lesson" not in await market.tick()
    assert "Buy one first" in await market.send("alice", "/nextlesson")
    async with market.app.new_uow() as uow:
        assert (await uow.session.execute(select(LessonDrip.next_due_at))).scalar_one() is None


async def test_a_lesson_is_rated_once_per_learner(market: Harness) -> None:
    """A learner rates a received lesson once, with an optional comment; a second rating is
    refused and changes nothing; another learner rates it independently."""
    await add_lessons(market, 1)
    for learner in ("alice", "bob"):
        await buy(market, learner)
        await market.send(learner, "/nextlesson")
    out = await market.send("alice", "/ratelesson 1")
    assert "How was lesson #1" in out
    out = await market.send("alice", "4")  # the fourth button: ★★★★
    assert "You rated lesson #1 4★" in out and "Add a comment?" in out
    assert "Your comment is saved" in await market.send("alice", "Clear and short")
    before = (await snapshot(market), await lesson_ratings(market))
    out = await market.send("alice", "/ratelesson 1 1 changed my mind")
    assert "each lesson is rated once" in out
    assert (await snapshot(market), await lesson_ratings(market)) == before
    assert "is not a number" in await market.send("bob", "/ratelesson x 2")
    assert "whole number from 1 to 5" in await market.send("bob", "/ratelesson 1 9")
    assert "You rated lesson #1 2★" in await market.send("bob", "/ratelesson 1 2 too fast")
    assert await lesson_ratings(market) == [(4, "Clear and short"), (2, "too fast")]
    assert "#1 Lesson 1 ✓ 4★" in await market.send("alice", "/lessons")


async def test_admins_edit_archive_and_restore_lessons(market: Harness) -> None:
    """Admins list, edit, archive and restore lessons; archived lessons are not sent."""
    await add_lessons(market, 2)
    out = await market.send(
        "admin", '/admin lesson edit 1 title="Variables" link=https://docs.python.org/3/'
    )
    assert "Lesson #1 updated" in out
    assert "must start with https://" in await market.send(
        "admin", "/admin lesson edit 1 link=ftp://x"
    )
    assert "Unknown lesson field 'colour'" in await market.send(
        "admin", "/admin lesson edit 1 colour=red"
    )
    assert "archived" in await market.send("admin", "/admin lesson archive 2")
    assert "is already archived" in await market.send("admin", "/admin lesson archive 2")
    out = await market.send("admin", "/admin lessons python-basics")
    assert (
        "#1 [1] Variables — active; 0 files, 1 link;" in out and "#2 [2] Lesson 2 — archived" in out
    )
    await buy(market, "alice")
    out = await market.send("alice", "/nextlesson")
    assert "lesson 1 of 1 (#1): Variables" in out and "https://docs.python.org/3/" in out
    assert "received every lesson" in await market.send("alice", "/nextlesson")
    await market.send("admin", "/admin lesson restore 2")
    assert "lesson 2 of 2 (#2)" in await market.send("alice", "/nextlesson")


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "MENTORBOT_STORAGE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db"}
    return run_mentorbot(env, *args)


async def test_import_from_toml_and_markdown_with_files_and_a_progress_bar(
    tmp_path: Path,
) -> None:
    """`mentorbot lessons import` adds lessons with links and files, shows a progress bar for a
    large file, sets the drip, and importing again updates instead of adding twice."""
    assert run_cli(tmp_path, "demo-data").returncode == 0
    (tmp_path / "handouts").mkdir()
    (tmp_path / "handouts" / "cheatsheet.pdf").write_bytes(b"%PDF-1.4 cheat sheet")
    toml = tmp_path / "python.toml"
    toml.write_text(
        'course = "python-basics"\ndrip_days = 3\n'
        + "".join(
            f'\n[[lessons]]\ntitle = "Step {i}"\nbody = """Text {i}"""\n'
            + (
                'links = ["https://docs.python.org/3/"]\nfiles = ["handouts/cheatsheet.pdf"]\n'
                if i == 1
                else ""
            )
            for i in range(1, 26)
        ),
        encoding="utf-8",
    )
    markdown = tmp_path / "git.md"
    markdown.write_text(
        "# Branches\nA branch is a pointer.\n[Pro Git](https://git-scm.com/book)\n"
        "![sheet](handouts/cheatsheet.pdf)\n\n# Merging\nTwo histories become one.\n",
        encoding="utf-8",
    )
    proc = run_cli(tmp_path, "lessons", "import", str(toml))
    assert proc.returncode == 0, proc.stderr
    assert "Importing lessons [" in proc.stderr and "25/25" in proc.stderr
    assert "25 added, 0 updated" in proc.stdout
    proc = run_cli(
        tmp_path, "lessons", "import", str(toml), str(markdown), "--course", "git-teamwork"
    )
    assert "2 added, 25 updated" in proc.stdout, proc.stderr

    engine = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db").engine()
    async with engine.connect() as conn:
        lessons = (
            await conn.execute(
                select(Lesson.title, Lesson.body, Lesson.links, Course.slug)
                .join(Course, Course.id == Lesson.course_id)
                .order_by(Lesson.id)
            )
        ).all()
        files = (await conn.execute(select(LessonFile.filename, LessonFile.data))).all()
        drip = (
            await conn.execute(
                select(Course.lesson_drip_days).where(Course.slug == "python-basics")
            )
        ).scalar_one()
    await engine.dispose()
    assert len(lessons) == 27 and drip == 3
    assert lessons[0] == ("Step 1", "Text 1", ["https://docs.python.org/3/"], "python-basics")
    assert lessons[25] == (
        "Branches",
        "A branch is a pointer.",
        ["https://git-scm.com/book"],
        "git-teamwork",
    )
    assert sorted(f.filename for f in files) == ["cheatsheet.pdf", "cheatsheet.pdf"]


def test_a_bad_import_names_the_problem_and_imports_nothing(tmp_path: Path) -> None:
    """A missing file or an unknown course stops the import with a message; nothing is added."""
    assert run_cli(tmp_path, "demo-data").returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('course = "python-basics"\n[[lessons]]\ntitle = "A"\nfiles = ["nope.pdf"]\n')
    proc = run_cli(tmp_path, "lessons", "import", str(bad))
    assert proc.returncode == 2 and "file 'nope.pdf' not found" in proc.stderr
    bad.write_text('course = "cooking"\n[[lessons]]\ntitle = "A"\n')
    proc = run_cli(tmp_path, "lessons", "import", str(bad))
    assert proc.returncode == 2 and "no course called cooking" in proc.stderr
    assert "nothing was imported" in proc.stderr


async def test_next_lesson_with_no_lessons_at_all_says_so_and_offers_the_way_on(
    market: Harness,
) -> None:
    """A course without lessons does not claim "every lesson received": it says there are none
    yet and offers the sessions and a mentor."""
    await buy(market, "alice", "git-teamwork")
    out = await market.send("alice", "/nextlesson")
    assert "Your courses have no lessons yet" in out and "every lesson" not in out
    assert "[1] Your sessions" in out


def test_an_imported_title_over_the_limit_is_refused_not_cut(tmp_path: Path) -> None:
    """A lesson title of 201 characters in a TOML or Markdown import stops the import naming
    the limit, as `/admin lesson add` refuses it; a title of 200 is read whole."""
    from bot.learning.importer import LessonImportError, read_files

    toml, markdown = tmp_path / "long.toml", tmp_path / "long.md"
    for title, fits in (("t" * 201, False), ("t" * 200, True)):
        toml.write_text(f'course = "python-basics"\n[[lessons]]\ntitle = "{title}"\n')
        markdown.write_text(f"# {title}\nBody.\n")
        for path in (toml, markdown):
            if fits:
                (lesson,) = read_files([path], "python-basics", 100).lessons
                assert lesson.title == title
                continue
            with pytest.raises(LessonImportError, match="at most 200 characters; this one has 201"):
                read_files([path], "python-basics", 100)
