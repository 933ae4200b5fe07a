"""What test modules share besides fixtures: the test database and config, the console
harness, a snapshot of what the database holds, and common journeys.

Test modules and tests/fakes/ import these from here; tests/conftest.py holds only fixtures.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from bot.adapters.console import ConsoleChat
from bot.app import Marketplace
from bot.config import Config, config_from_mapping
from bot.core.clock import FakeClock
from bot.core.roles import make_mentor
from bot.core.users import Incoming, resolve_user
from storage.db import create_engine
from storage.migrate import newest_revisions, upgrade
from storage.models import (
    Base,
    Course,
    Enrollment,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    RequestOffer,
)

POSTGRES_ENV = "MENTORBOT_TEST_POSTGRES_URL"
# Webhook secrets as strong as start-up requires (bot/config.py): Telegram's 32-256 of
# [A-Za-z0-9_-], Stripe's whsec_ and at least 24 more characters.
TELEGRAM_WEBHOOK_SECRET = "test-telegram-webhook-secret_0123456789"
STRIPE_WEBHOOK_SECRET = "whsec_" + "not-a-real-secret-" * 2  # built, not a literal key
# Telegram's webhook mode, for make_config(telegram={**TELEGRAM_WEBHOOK, ...}).
TELEGRAM_WEBHOOK = {
    "mode": "webhook",
    "webhook_url": "https://bot.example.com/telegram/webhook",
    "webhook_secret": TELEGRAM_WEBHOOK_SECRET,
}
# A Monday morning, far from any daylight-saving change.
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

if TYPE_CHECKING:  # the fakes import this module
    from tests.fakes.fake_discord import FakeDiscord, FakeUser


@dataclass
class Database:
    url: str
    search_path: str | None = None

    def engine(self, pool_size: int = 5) -> Any:
        return create_engine(self.url, pool_size=pool_size, search_path=self.search_path)


def make_config(**sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {
        "bot": {"admins": ["console:admin"]},
        "payments": {"demo": True},
        "sessions": {"min_lead_minutes": 60},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return config_from_mapping(raw)


@dataclass
class Harness:
    """The console chat with its output captured, one string per reply or notice."""

    app: Marketplace
    chat: ConsoleChat
    output: list[str] = field(default_factory=list)

    async def send(self, who: str, line: str) -> str:
        """Type `line` as console user `who`; returns everything printed meanwhile."""
        start = len(self.output)
        if self.chat.name != who:
            self.chat.name = who
        await self.chat.handle_line(line)
        return "\n".join(self.output[start:])

    async def tick(self) -> str:
        start = len(self.output)
        await self.app.run_due()
        return "\n".join(self.output[start:])


AppFactory = Callable[..., Any]


def harness_for(app: Marketplace) -> Harness:
    """The console chat on `app`, its output captured and its attachments written to a fresh
    temporary folder."""
    output: list[str] = []
    files = Path(tempfile.mkdtemp(prefix="mentorbot-console-"))
    return Harness(app, ConsoleChat(app, output.append, files_dir=files), output)


SNAPSHOT_MODELS = (
    Course,
    Order,
    Enrollment,
    MentorProfile,
    MentorshipRequest,
    RequestOffer,
    MentorSession,
    Rating,
)


# Tables a refusal writes to on purpose: a wrong link code is counted (five lock /link).
REFUSAL_WRITES = frozenset({"link_failures"})


async def snapshot(h: Harness, every_table: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every business row's columns (`every_table`: every row of every table but those a
    refusal writes on purpose), to prove that a refused action changed nothing."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with h.app.new_uow() as uow:
        if every_table:
            for table in Base.metadata.sorted_tables:
                if table.name not in REFUSAL_WRITES:
                    rows = (await uow.session.execute(select(table))).all()
                    result[table.name] = sorted((tuple(r) for r in rows), key=repr)
            return result
        for model in SNAPSHOT_MODELS:
            rows = (await uow.session.execute(select(model))).scalars().all()
            cols = [c.key for c in model.__table__.columns]
            result[model.__tablename__] = sorted(
                (tuple(getattr(r, c) for c in cols) for r in rows), key=repr
            )
    return result


async def buy(h: Harness, who: str, slug: str = "python-basics") -> None:
    out = await h.send(who, f"/buy {slug}")
    order_id = out.split("Order #", 1)[1].split(":", 1)[0]
    out = await h.send(who, f"/pay {order_id}")
    assert "is yours" in out, out


async def request_mentor(h: Harness, who: str, slug: str = "python-basics") -> str:
    await h.send(who, f"/mentor {slug}")
    await h.send(who, "Learn to write tested code")
    await h.send(who, "beginner")
    return await h.send(who, "any")


async def matched_pair(h: Harness, learner: str = "alice", mentor: str = "ada") -> int:
    """A learner with a paid course whose request `mentor` accepted; returns the request id."""
    await buy(h, learner)
    out = await request_mentor(h, learner)
    request_id = int(out.split("Request #", 1)[1].split(" ", 1)[0])
    out = await h.send(mentor, f"/accept {request_id}")
    assert "You are now mentoring" in out, out
    return request_id


@dataclass
class SlowClient:
    """A raw TCP client on 127.0.0.1 that sends `request` one byte every `interval` seconds
    (a slowloris), and notes when the server closed the connection and what it answered."""

    port: int
    request: bytes = b"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 4000
    interval: float = 0.05
    opened_at: float = 0.0
    closed_after: float | None = None  # seconds from opening until the server closed it
    answer: bytes = b""

    async def run(self, limit: float = 10.0) -> SlowClient:
        """Dribble until the server closes the connection (or `limit` seconds pass)."""
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened_at = loop.time()

        async def dribble() -> None:
            for i in range(len(self.request)):
                writer.write(self.request[i : i + 1])
                await asyncio.sleep(self.interval)

        dribbling = asyncio.ensure_future(dribble())
        try:
            self.answer = await asyncio.wait_for(reader.read(), limit)  # all, up to the close
            self.closed_after = loop.time() - self.opened_at
        except ConnectionResetError:
            self.closed_after = loop.time() - self.opened_at
        except TimeoutError:
            pass  # still open after `limit`
        finally:
            dribbling.cancel()
            writer.close()
        return self


async def complete_one_session(h: Harness, clock: FakeClock) -> None:
    """alice books the first free time with ada (`matched_pair`); a day later ada completes it."""
    request_id = await matched_pair(h)
    await h.send("alice", f"/book {request_id}")
    await h.send("alice", "1")
    clock.advance(timedelta(days=1))
    await h.send("ada", "/complete 1")


async def booked_pair(h: Harness, learner: str = "alice", mentor: str = "ada") -> None:
    """`matched_pair`, and the learner booked the mentor's first free time."""
    request_id = await matched_pair(h, learner, mentor)
    await h.send(learner, f"/book {request_id}")
    assert "Booked" in await h.send(learner, "1")


# What may stay Latin inside Chinese text: commands and their arguments, links, files, codes.
NOT_PROSE = re.compile(
    r"/\S+|https?://\S+|\S+=\S*|\S+\.(?:png|csv|ics|json)\b|\b[A-Z][a-z]+/[A-Za-z_]+\b|"
    r"\b[a-z]+(?:-[a-z]+)+\b|\b[A-Z]{2,}\b|\bTelegram Stars\b|\bStripe\b"
)


# What no reply may contain: the generic apology (its English and Chinese texts), a traceback,
# or a status as the code spells it rather than as a person would read it.
APOLOGIES = ("something went wrong", "出了点问题", "Traceback", "Exception", "no_show", "None")


def apologies_in(text: str) -> list[str]:
    """The forbidden fragments `text` contains (empty: a proper answer)."""
    return [a for a in APOLOGIES if a in text]


def _outcomes(platform: str) -> dict[str, float]:
    from prometheus_client import REGISTRY

    return {
        o: REGISTRY.get_sample_value(
            "mentorbot_updates_total", {"platform": platform, "outcome": o}
        )
        or 0.0
        for o in ("ok", "refused", "error")
    }


@dataclass(frozen=True)
class Attempt:
    """One message sent: what it printed, how the core classed it, and whether the database
    was left as it was."""

    line: str
    output: str
    outcome: str
    unchanged: bool
    rows: dict[str, list[tuple[Any, ...]]]  # every table after it


async def attempt(
    h: Harness, who: str, line: str, rows: dict[str, list[tuple[Any, ...]]] | None = None
) -> Attempt:
    """Send `line` as `who` through the console, noting the outcome (ok, refused, error; none
    if the console answered without the core) and whether every table stayed as it was.
    `rows`: the tables as they are now (the previous attempt's `rows`), to save a read."""
    before_rows = rows if rows is not None else await snapshot(h, every_table=True)
    before = _outcomes("console")
    output = await h.send(who, line)
    after = _outcomes("console")
    outcome = next((o for o in after if after[o] > before[o]), "none")
    after_rows = await snapshot(h, every_table=True)
    return Attempt(line, output, outcome, after_rows == before_rows, after_rows)


async def refused(h: Harness, who: str, line: str) -> str:
    """Send a line that must be refused; assert no business row changed (`snapshot`: the
    sender's first contact may create their user). tests/test_hostile_input.py holds its
    refusals to every table."""
    before = await snapshot(h)
    out = await h.send(who, line)
    assert await snapshot(h) == before, f"{line!r} changed the database"
    return out


# Hostile input, as people (and scripts) type it: numbers no row can have, control and
# invisible characters, huge tokens, numbers that are not plain decimals, dates at the ends of
# the calendar and across a daylight-saving gap, quoting, mentions and markup, and button
# payloads (slot stamps) nobody was shown.
HOSTILE_TOKENS = (
    "99999999999999999999",
    "-99999999999999999999",
    "-1",
    "0",
    "#0",
    "1.5",
    "a\x00b",
    "\x00",
    "\x1b[2J",
    "\x7f\x08",
    "\u202eevil\u202c",
    "\u200b\u200d",
    "x" * 300,
    "y" * 10_000,
    "NaN",
    "inf",
    "-inf",
    "1e20",
    "²",
    "１２",
    "٣",
    "9999-12-31",
    "0000-01-01",
    "0001-01-01",
    "2026-03-08",  # spring forward in America/*
    "2026-03-29",  # and in Europe/*
    "02:00-03:00",
    "01:30-02:30",  # inside Europe/London's gap on 2026-03-29
    "23:59-24:00",
    "25:00-26:00",
    "'",
    '"',
    "\"unbalanced 'quotes",
    "@everyone",
    "@here",
    "<script>alert(1)</script>",
    "**bold** _it_ `code` [link](http://evil.example)",
    "<@&123456789012345678>",
    "999912312359",
    "000101010000",
    "202603100300",
    "99999999999999999999999999",
    "mon",
    "block",  # sub-actions the table's choices do not list (/availability block|off)
    "off",
    "python-basics",
    "1",
    "2",
    "5",
)

HOSTILE_CHARS = "0123456789-+.,:=#@'\"\\/ eE²１٣\x00\x1f\u200b\u202e\ufeff<>*_`~|中文"


def command_paths() -> list[tuple[tuple[str, ...], tuple[Any, ...], str | None]]:
    """Every command of the table as (words, arguments, role), `/admin` sub-commands spelt out
    to their leaves, so a command added to the table is in this list."""
    from bot.handlers.registry import ADMIN_SUBS, COMMANDS, Sub

    paths: list[tuple[tuple[str, ...], tuple[Any, ...], str | None]] = []

    def walk(words: tuple[str, ...], sub: Sub) -> None:
        if not sub.subs:
            paths.append((words, sub.args, "admin"))
        for child in sub.subs:
            walk((*words, child.name), child)

    for name, command in COMMANDS.items():
        if name == "admin":
            for sub in ADMIN_SUBS.values():
                walk(("admin", sub.name), sub)
        else:
            paths.append(((name,), command.args, command.role))
    return paths


def hostile_value(draw: Any, arg: Any) -> str:
    """One hostile value for the argument `arg`; sometimes a plausible one, so that the next
    argument is reached too."""
    from hypothesis import strategies as st

    plausible = [c[0] for c in arg.choices] or (["1", "2"] if arg.kind == "int" else [])
    value: str = draw(
        st.one_of(
            st.sampled_from(HOSTILE_TOKENS),
            st.text(HOSTILE_CHARS, min_size=1, max_size=30),
            st.sampled_from(plausible or HOSTILE_TOKENS),
        )
    )
    if arg.words:
        value = " ".join([value, *draw(st.lists(st.sampled_from(HOSTILE_TOKENS), max_size=3))])
    return f"{arg.name}={value}" if arg.keyed else value


def hostile_line(draw: Any, words: tuple[str, ...], args: tuple[Any, ...]) -> str:
    """A command line for the command `words` with hostile arguments: each argument given or
    left out, sometimes with an extra one."""
    from hypothesis import strategies as st

    given = draw(st.integers(min_value=0, max_value=len(args)))
    values = [hostile_value(draw, a) for a in args[:given]]
    if draw(st.booleans()):
        values.append(draw(st.sampled_from(HOSTILE_TOKENS)))
    return " ".join(["/" + " ".join(words), *values])


def judged(sent: Attempt) -> list[str]:
    """What is wrong with how a line was answered (empty: nothing)."""
    wrong = []
    if not sent.output.strip():
        wrong.append("no answer")
    if apologies_in(sent.output):
        wrong.append(f"apologised: {sent.output[:300]!r}")
    if "y" * 10_000 in sent.output:
        wrong.append("echoed a 10,000-character token whole")
    if sent.outcome not in ("ok", "refused", "none"):
        wrong.append(f"outcome {sent.outcome}")
    # "none": the console answered by itself (a number presses one of the last buttons).
    if sent.outcome in ("refused", "none") and not sent.unchanged:
        wrong.append(f"refused but changed the database: {sent.output[:200]!r}")
    return wrong


async def add_lessons(h: Harness, n: int, slug: str = "python-basics") -> None:
    """The admin adds lessons "Lesson 1" to "Lesson n" to a course."""
    for i in range(1, n + 1):
        out = await h.send(
            "admin", f'/admin lesson add {slug} title="Lesson {i}" body="Body of lesson {i}."'
        )
        assert f"Lesson #{i} added" in out, out


REPO_ROOT = Path(__file__).resolve().parent.parent


def run_mentorbot(
    env: dict[str, str], *args: str, cwd: Path = REPO_ROOT, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in a process of its own, with only `env` for its environment."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


# --- databases migrated once (tests/conftest.py `database`) ----------------------------------
SQLITE_TEMPLATE: list[Path] = []
PG_POOL: list[str] = []
PG_ALL: set[str] = set()


async def sqlite_template() -> Path:
    """A SQLite file migrated to head once per run, for tests to copy."""
    if not SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="mentorbot-template-"))
        engine = create_engine(f"sqlite+aiosqlite:///{folder}/mentorbot.db")
        await upgrade(engine)
        await engine.dispose()
        SQLITE_TEMPLATE.append(folder / "mentorbot.db")
    return SQLITE_TEMPLATE[0]


async def give_back_schema(admin: Any, schema: str) -> None:
    """Empty a finished test's schema for the next test, or drop it if it is not at head."""
    async with admin.begin() as conn:
        version = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = :s AND table_name = 'alembic_version'"
                ),
                {"s": schema},
            )
        ).scalar_one()
        heads = (
            set(
                (
                    await conn.execute(text(f"SELECT version_num FROM {schema}.alembic_version"))
                ).scalars()
            )
            if version
            else set()
        )
        if heads != set(newest_revisions()):
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            PG_ALL.discard(schema)
            return
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = :s "
                    "AND tablename <> 'alembic_version'"
                ),
                {"s": schema},
            )
        ).scalars()
        names = ", ".join(f'{schema}."{t}"' for t in tables)
        if names:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    PG_POOL.append(schema)


# --- a marketplace driven from Discord (tests/test_discord.py, tests/test_relay.py) ----------


async def typed(app: Marketplace, user: FakeUser, text: str) -> str:
    """What the core answers `user` (a Discord identity) for `text`."""
    replies = await app.handle(Incoming("discord", str(user.id), user.name, text))
    return "\n".join(r.text for r in replies)


async def catalogue(app: Marketplace) -> None:
    h = harness_for(app)
    out = await h.send(
        "admin", "/admin course add python-basics title=Python price=49.00 sessions=4 topics=python"
    )
    assert "added" in out, out


async def mentor_on_discord(app: Marketplace, user: FakeUser) -> None:
    now = app.clock.now()
    async with app.new_uow() as uow:
        found, _roles = await resolve_user(
            uow, app.config, Incoming("discord", str(user.id), user.name, ""), now
        )
        await make_mentor(uow, found.id, "en", now)
        await uow.commit()
    assert "python (advanced)" in await typed(app, user, "/profile topics python:advanced")
    await typed(app, user, "/availability add tue 09:00-12:00")


async def learner_asks(
    app: Marketplace, learner: FakeUser, goals: str = "Learn to write tested code"
) -> None:
    out = await typed(app, learner, "/buy python-basics")
    order = out.split("Order #", 1)[1].split(":", 1)[0]
    assert "is yours" in await typed(app, learner, f"/pay {order}")
    await typed(app, learner, "/mentor python-basics")
    await typed(app, learner, goals)
    await typed(app, learner, "beginner")
    assert "is out to" in await typed(app, learner, "any")


async def channel_post(fake: FakeDiscord) -> dict[str, Any]:
    posts = await fake.wait_for(lambda: fake.channel_messages(fake.mentors_channel))
    assert len(posts) == 1
    post: dict[str, Any] = posts[0]
    return post


async def press(
    fake: FakeDiscord, user: FakeUser, message: dict[str, Any], expect: str, **button: Any
) -> dict[str, Any]:
    """Press a button (by `label=` or `custom_id=`) and wait for the reply containing `expect`."""
    interaction = await fake.press(
        user, message, button.get("custom_id"), label=button.get("label")
    )
    return await fake.reply(interaction, expect)


async def telegram_learner_requests(tg_bot: Any) -> Any:
    """Alice, on Telegram, buys python-basics with the demo provider and asks for a mentor;
    returns her and the answer to her last press (the request going out)."""
    alice = tg_bot.user("Alice")
    await alice.send("/buy python-basics")
    await alice.press("Pay (demo")
    await alice.press("Find a mentor")
    await alice.send("Learn to write tested code")
    await alice.press("beginner")
    return alice, await alice.press("any time")
