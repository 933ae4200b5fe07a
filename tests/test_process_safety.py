"""Several processes on one database, health and metrics endpoints, and graceful drain."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy import func, select, text

from bot.core import conversations
from bot.core.users import Incoming
from bot.core.web import WebServer
from bot.runtime.demo_data import seed_demo
from storage.models import Enrollment, Identity, MentorshipRequest, Order, User
from tests.support import AppFactory, Database, harness_for


async def test_double_tap_across_two_processes_acts_once(make_app: AppFactory) -> None:
    """The same user's two identical updates, handled by two processes at once, end as if
    handled one after the other: one pending order, reused by the second."""
    first, second = await make_app(pool_size=4), await make_app(pool_size=4)
    await seed_demo(first)
    alice = Incoming("console", "alice", "alice", "/buy python-basics")
    await first.handle(Incoming("console", "alice", "alice", "/start"))
    replies = await asyncio.gather(*(app.handle(alice) for app in (first, second) for _ in "ab"))
    assert all(r[0].text.startswith("Order #1:") for r in replies), [r[0].text for r in replies]
    async with first.new_uow() as uow:
        assert (await uow.session.execute(select(func.count(Order.id)))).scalar_one() == 1


async def test_two_answers_to_one_question_are_taken_in_turn(make_app: AppFactory) -> None:
    """Two messages answering the same step at once: the first is the answer, the second is
    read as the next step's answer (and refused there), never both as the same answer."""
    first, second = await make_app(pool_size=4), await make_app(pool_size=4)
    h = harness_for(first)
    await seed_demo(first)
    await h.send("alice", "/buy python-basics")
    await h.send("alice", "/pay 1")
    await h.send("alice", "/mentor")
    replies = await asyncio.gather(
        first.handle(Incoming("console", "alice", "alice", "Goals one")),
        second.handle(Incoming("console", "alice", "alice", "Goals two")),
    )
    texts = sorted(r[0].text for r in replies)
    assert texts[0].startswith("I don't know the level 'Goals ")  # the later answer, refused
    assert texts[0].endswith("Answer beginner, intermediate or advanced.")
    assert texts[1] == "What is your level in this subject?"
    async with first.new_uow() as uow:
        count = await uow.session.execute(select(func.count(MentorshipRequest.id)))
        assert count.scalar_one() == 0


async def test_health_readiness_and_metrics_endpoints(make_app: AppFactory) -> None:
    """/healthz answers, /readyz reflects the database and shutdown, /metrics counts updates."""
    app = await make_app()
    await app.handle(Incoming("console", "alice", "alice", "/help"))
    await app.handle(Incoming("console", "alice", "alice", "/nonsense"))
    web = WebServer("127.0.0.1", 0)
    web.add_readiness_check("database", app.database_reachable)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["checks"]["database"] is True
            async with http.get(f"{base}/metrics") as resp:
                body = await resp.text()
                assert 'mentorbot_updates_total{outcome="ok",platform="console"}' in body
                assert 'mentorbot_updates_total{outcome="refused",platform="console"}' in body
                assert "mentorbot_handling_seconds_bucket" in body
            web.stopping = True
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503
            broken = WebServer("127.0.0.1", 0)

            async def unreachable() -> bool:
                return False

            broken.add_readiness_check("database", unreachable)
            await broken.start()
            async with http.get(f"http://127.0.0.1:{broken.port}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"]["database"] is False
            await broken.stop()
    finally:
        await web.stop()


async def test_drain_waits_for_messages_in_flight(make_app: AppFactory) -> None:
    """Graceful shutdown waits until the message being handled has finished."""
    app = await make_app()
    await seed_demo(app)
    handling = asyncio.create_task(app.handle(Incoming("console", "alice", "alice", "/courses")))
    await asyncio.sleep(0)  # the task has started and counts as in flight
    assert await app.drain(within=10)
    assert handling.done()
    assert "Python from zero" in (await handling)[0].choices[0].label
    assert await app.drain(within=0.01)  # nothing in flight: immediate


async def test_a_new_users_first_two_messages_at_once_make_one_user(
    make_app: AppFactory,
) -> None:
    """A first contact sent twice at once (two processes) is stored once and both messages are
    answered normally, not with an apology."""
    first, second = await make_app(pool_size=4), await make_app(pool_size=4)
    await seed_demo(first)
    hello = Incoming("telegram", "777", "Mei", "/courses", "zh-hans")
    replies = await asyncio.gather(*(app.handle(hello) for app in (first, second, first)))
    # Each is the catalogue (a suggestion line may follow its heading), none an apology.
    assert all(r[0].text.startswith("在售课程 — 选择一门查看详情：") for r in replies), replies
    async with first.new_uow() as uow:
        users = (await uow.session.execute(select(User.language))).scalars().all()
        identities = await uow.session.execute(
            select(func.count()).select_from(Identity).where(Identity.external_id == "777")
        )
        assert identities.scalar_one() == 1
    assert users.count("zh") == 1


async def test_a_refused_first_message_still_keeps_the_new_user(make_app: AppFactory) -> None:
    """Someone whose very first message is a typo is told so in their language, and is known
    from then on (their language and first contact are kept)."""
    app = await make_app()
    replies = await app.handle(Incoming("telegram", "778", "Li", "/cursos", "zh"))
    assert replies[0].text.startswith("未知命令"), replies[0].text
    async with app.new_uow() as uow:
        user = (
            await uow.session.execute(
                select(User).join(Identity).where(Identity.external_id == "778")
            )
        ).scalar_one()
        assert user.language == "zh"


async def test_a_step_begun_while_the_next_message_waits_is_seen_by_it(
    make_app: AppFactory, database: Database
) -> None:
    """A message that waited for the sender's lock sees what the lock holder committed: the
    question /mentor asked in one process is answered by the message another process had
    waiting, not refused as "I did not understand"."""
    first, second = await make_app(pool_size=4), await make_app(pool_size=4)
    h = harness_for(first)
    await seed_demo(first)
    await h.send("alice", "/buy python-basics")
    await h.send("alice", "/pay 1")
    async with first.new_uow() as uow:
        alice = (
            await uow.session.execute(
                select(User.id).join(Identity).where(Identity.external_id == "alice")
            )
        ).scalar_one()
        enrollment = (await uow.session.execute(select(Enrollment.id))).scalar_one()
    async with first.new_uow() as uow:  # "/mentor", half-way, in process one
        await uow.lock(User, alice)
        await conversations.begin(
            uow, alice, "request", "goals", {"enrollment_id": enrollment}, first.clock.now()
        )
        waiting = asyncio.create_task(
            second.handle(Incoming("console", "alice", "alice", "Ship a web app"))
        )
        await _blocked_on_a_lock(database, waiting)
        await uow.commit()
    replies = await waiting
    assert replies[0].text == "What is your level in this subject?", replies[0].text


async def _blocked_on_a_lock(database: Database, task: asyncio.Task[Any]) -> None:
    """Until `task` waits for a lock (PostgreSQL: a backend waiting on a row lock; SQLite: a
    moment for it to reach the write lock, which it cannot pass)."""
    if not database.url.startswith("postgresql"):
        await asyncio.sleep(0.2)
        assert not task.done()
        return
    engine = database.engine()
    try:
        for _ in range(500):
            async with engine.connect() as conn:
                waiting = await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%FOR NO KEY UPDATE%'"
                    )
                )
                if waiting.scalar_one():
                    return
            await asyncio.sleep(0.01)
        raise AssertionError("the second message never waited for the lock")
    finally:
        await engine.dispose()
