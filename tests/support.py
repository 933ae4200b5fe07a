"""What test modules share besides fixtures: the test database and config, the console
harness, a snapshot of what the database holds, and common journeys.

Test modules and tests/fakes/ import these from here; tests/conftest.py holds only fixtures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.adapters.console import ConsoleChat
from bot.app import Marketplace
from bot.config import Config, config_from_mapping
from storage.db import create_engine
from storage.models import (
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
# A Monday morning, far from any daylight-saving change.
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


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


async def snapshot(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every business row's columns, to prove that a refused action changed nothing."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with h.app.new_uow() as uow:
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


async def add_lessons(h: Harness, n: int, slug: str = "python-basics") -> None:
    """The admin adds lessons "Lesson 1" to "Lesson n" to a course."""
    for i in range(1, n + 1):
        out = await h.send(
            "admin", f'/admin lesson add {slug} title="Lesson {i}" body="Body of lesson {i}."'
        )
        assert f"Lesson #{i} added" in out, out
