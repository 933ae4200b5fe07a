"""A walk through the console as each role, in English and in Chinese: the files each reply
says it wrote are there and open, and nothing a person reads speaks in the code's terms (a
state machine's "cannot become", "None", raw status names) or, in Chinese, falls back to
English sentences. A check over every catalog message holds the same words out."""

from __future__ import annotations

import csv
import json
import re
import typing
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import func, select

from bot.core import states
from bot.core.clock import FakeClock
from bot.runtime.demo_data import seed_demo
from storage.models import Identity, MentorSession, MentorshipRequest, Order
from tests.support import NOT_PROSE, AppFactory, Harness, harness_for, make_config
from tests.test_translations import ZH_PO_PATH

LANGUAGES = ("en", "zh")
SAVED = {
    "en": re.compile(r"Attachment (\S+) saved to (\S+)"),
    "zh": re.compile(r"附件 (\S+) 已保存到 (\S+)"),
}
RAW_STATUSES = sorted(
    {
        value
        for name in dir(states)
        if typing.get_origin(getattr(states, name)) is typing.Literal
        for value in typing.get_args(getattr(states, name))
        if "_" in value
    }
    | {"pending_payment"}
)
INTERNAL = re.compile(
    r"cannot become|\bNone\b|Traceback|something went wrong|"
    + "|".join(rf"\b{re.escape(s)}\b" for s in RAW_STATUSES)
)
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?:[ ,'’]+[A-Za-z]{2,}){2,}")
# A list inside Chinese text is enumerated with 、 (上午、晚上), never an ASCII comma.
ASCII_LIST = re.compile(r"[\u3400-\u9fff）》], |, [\u3400-\u9fff（《]")
TEXT = {
    "en": {
        "goals": "Learn to write tested code",
        "support": "Where is my receipt?",
        "bio": "I teach Python to beginners",
        "note": "Practise loops",
        "reason": "Add your topics first",
        "reply": "It is in your email",
    },
    "zh": {
        "goals": "学会写有测试的代码",
        "support": "我的收据在哪里？",
        "bio": "我教初学者 Python",
        "note": "多练习循环",
        "reason": "请先填写主题",
        "reply": "已发到你的邮箱",
    },
}


class Walk:
    """One language's walk: every reply kept, user-typed text known, files found."""

    def __init__(self, h: Harness, lang: str) -> None:
        self.h, self.lang = h, lang
        self.out: list[str] = []
        self.text = TEXT[lang]
        # Names and what people typed come back as they were written; so do the demo's bios.
        self.user_text = [
            *self.text.values(),
            "ada mentors python, testing.",
            "linus mentors python, git.",
            "mei mentors data, python.",
        ]

    async def send(self, who: str, line: str) -> str:
        out = await self.h.send(who, line)
        self.out.append(out)
        return out

    def files(self, out: str) -> dict[str, Path]:
        found = {name: Path(path) for name, path in SAVED[self.lang].findall(out)}
        for path in found.values():
            assert path.is_file(), path
            assert path.is_relative_to(self.h.chat.files_dir.resolve()), path
        return found

    async def user_id(self, who: str) -> int:
        async with self.h.app.new_uow() as uow:
            return int(
                (
                    await uow.session.execute(
                        select(Identity.user_id).where(Identity.external_id == who)
                    )
                ).scalar_one()
            )

    async def latest(self, who: str, model: type[Order | MentorshipRequest | MentorSession]) -> int:
        user_id = await self.user_id(who)
        async with self.h.app.new_uow() as uow:
            owner = Order.user_id if model is Order else model.learner_id  # type: ignore[union-attr]
            found = (
                await uow.session.execute(select(func.max(model.id)).where(owner == user_id))
            ).scalar_one()
        assert found is not None, (who, model)
        return int(found)

    async def booked(self, clock: FakeClock, learner: str = "alice") -> tuple[int, int]:
        """`learner` bought Python from zero, ada accepted, and the first free time is
        booked; returns (request, session)."""
        await self.send(learner, "/buy python-basics")
        await self.send(learner, f"/pay {await self.latest(learner, Order)}")
        await self.send(learner, "/mentor python-basics")
        await self.send(learner, self.text["goals"])
        await self.send(learner, "1")  # beginner
        await self.send(learner, "4")  # any time
        request = await self.latest(learner, MentorshipRequest)
        await self.send("ada", f"/accept {request}")
        await self.send(learner, f"/book {request}")
        out = await self.send(learner, "1")
        assert any(n.endswith(".ics") for n in self.files(out)), out
        return request, await self.latest(learner, MentorSession)

    async def held(self, clock: FakeClock, session: int) -> None:
        """The session's time passes and ada says it took place."""
        clock.advance(timedelta(days=3))
        self.out.append(await self.h.tick())
        await self.send("ada", f"/complete {session}")

    def assert_plain(self) -> None:
        """No reply speaks in the code's terms; in Chinese, no English sentence."""
        everything = "\n".join(self.out)
        assert not INTERNAL.search(everything), INTERNAL.search(everything)
        if self.lang != "zh":
            return
        for line in everything.splitlines():
            if line.lstrip().startswith("/"):
                continue  # a usage line: commands and their arguments
            for typed in self.user_text:
                line = line.replace(typed, "")
            prose = NOT_PROSE.sub("", line)
            assert not ENGLISH_RUN.search(prose), line
            assert not ASCII_LIST.search(line), line


async def _walk(make_app: AppFactory, lang: str) -> Walk:
    app = await make_app(make_config(console={"language": lang}))
    h = harness_for(app)
    await seed_demo(app)
    return Walk(h, lang)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_learner_walks_from_catalogue_to_rating(
    make_app: AppFactory, clock: FakeClock, lang: str
) -> None:
    """Browse, buy, ask for a mentor, book (an .ics), see progress, export /mydata (JSON),
    write to the admins, rate the session."""
    walk = await _walk(make_app, lang)
    for line in ("/start", "/help", "/courses", "1", "/course git-teamwork"):
        await walk.send("alice", line)
    _request, session = await walk.booked(clock)
    for line in ("/mycourses", "/sessions", "/progress", "/lessons", "/nextlesson"):
        await walk.send("alice", line)
    files = walk.files(await walk.send("alice", "/mydata"))
    data = json.loads(files["mydata.json"].read_text(encoding="utf-8"))
    assert data["account"]["display_name"] == "alice"
    assert "admin" in await walk.send("alice", f"/support {walk.text['support']}")
    out = await walk.send("alice", "/deleteme")
    assert ("回复“是”继续" in out and " yes " not in out) if lang == "zh" else "Reply yes" in out
    await walk.send("alice", "/cancel")
    await walk.send("alice", "/timezone Asia/Shanghai")
    await walk.held(clock, session)
    await walk.send("alice", f"/rate {session} 5")
    await walk.send("alice", "/skip")
    await walk.send("alice", "/progress")
    await walk.send("alice", "/cancel")
    walk.assert_plain()


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_mentor_walks_from_request_to_note(
    make_app: AppFactory, clock: FakeClock, lang: str
) -> None:
    """Profile, availability, the request and the booking (ada's .ics too), completing,
    a note and a rating of the learner; a new applicant told of a rejection."""
    walk = await _walk(make_app, lang)
    for line in ("/profile", f"/profile bio {walk.text['bio']}", "/availability"):
        await walk.send("ada", line)
    await walk.send("ada", "/availability add sat 10:00-12:00")
    await walk.send("ada", "/availability block 2026-03-20 10:00-12:00")
    out = await walk.send("ada", "/availability unblock 1")
    assert ("已解除休息时段 #1" if lang == "zh" else "Block #1 removed") in out, out
    out = await walk.send("ada", "/availability remove 7")
    assert ("已删除时段 #7" if lang == "zh" else "Removed window #7") in out, out
    _request, session = await walk.booked(clock)
    saved = [Path(p) for _n, p in SAVED[lang].findall("\n".join(walk.out))]
    assert any(p.parent.name == "ada" and p.suffix == ".ics" and p.is_file() for p in saved)
    for line in ("/requests", "/sessions"):
        await walk.send("ada", line)
    await walk.held(clock, session)
    await walk.send("ada", f"/note {session} {walk.text['note']}")
    await walk.send("ada", f"/rate {session} 4")
    await walk.send("ada", "/skip")
    await walk.send("zed", "/becomementor")
    assert "/profile topics" in await walk.send("zed", "/profile")  # no topics: how to add
    await walk.send("admin", f"/admin reject 4 {walk.text['reason']}")
    await walk.send("zed", "/profile")
    walk.assert_plain()


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_an_admin_walks_through_every_view(
    make_app: AppFactory, clock: FakeClock, lang: str
) -> None:
    """Stats (a PNG chart, three CSVs), breakdowns, mentors, applications with a rejection
    by reason, orders, earnings, disputes, the waitlist, lessons and a support answer."""
    walk = await _walk(make_app, lang)
    _request, session = await walk.booked(clock)
    await walk.held(clock, session)
    await walk.send("alice", f"/rate {session} 5")
    await walk.send("alice", f"/support {walk.text['support']}")
    await walk.send("zed", "/becomementor")
    files = walk.files(await walk.send("admin", "/admin stats"))
    assert files["stats.png"].read_bytes().startswith(b"\x89PNG")
    files = walk.files(await walk.send("admin", "/admin stats csv"))
    assert set(files) == {"weekly.csv", "courses.csv", "mentors.csv", "workshops.csv"}
    for path in files.values():
        header = next(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        assert header, path
    for line in (
        "/admin",
        "/admin stats courses",
        "/admin stats mentors",
        "/admin mentors",
        "/admin applications",
        "2",  # Reject #4
        walk.text["reason"],
        "/admin orders",
        "/admin orders paid",
        "/admin orders bogus",  # valid statuses named in the reader's language
        "/admin earnings",
        "/admin disputes",
        "/admin waitlist",
        "/admin lessons python-basics",
        f"/admin reply {await walk.user_id('alice')} {walk.text['reply']}",
    ):
        await walk.send("admin", line)
    files = walk.files(await walk.send("admin", "/admin earnings csv"))
    assert files and all(n.endswith(".csv") for n in files)
    walk.assert_plain()


def test_no_catalog_message_speaks_in_the_codes_terms() -> None:
    """Every English msgid and Chinese msgstr is free of "cannot become", "None", raw status
    names and tracebacks."""
    with ZH_PO_PATH.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans_CN")
    found = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in (*ids, *strings):
            hit = INTERNAL.search(text.replace("something went wrong on our side", ""))
            if hit:
                found.append(text)
    assert found == []
