"""Admin stats: the summary with the satisfaction index, the 12-week PNG chart, breakdowns per
course and mentor, and CSV files whose sums match the database (in chat and from the CLI)."""

from __future__ import annotations

import csv
import io
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.core import ledger
from bot.core.clock import FakeClock
from bot.core.ledger import Kind
from bot.core.replies import Attachment
from bot.core.users import Incoming
from bot.reporting.files import CHART_SIZE, cell
from bot.sessions.scheduling import slot_token
from storage.models import Identity, LessonDelivery, MentorSession, Order, User
from tests.support import Harness, buy, matched_pair, run_mentorbot

ROOT = Path(__file__).resolve().parent.parent


async def admin_files(h: Harness, text: str) -> tuple[str, dict[str, Attachment]]:
    replies = await h.app.handle(Incoming("console", "admin", "admin", text))
    files = {a.filename: a for r in replies for a in r.attachments}
    return "\n".join(r.text for r in replies), files


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


async def rated_session_and_lesson(h: Harness, clock: FakeClock) -> None:
    """alice: mentor accepted at once, one session held and rated 5★, one lesson rated 3★."""
    request_id = await matched_pair(h)
    start = (clock.now() + timedelta(days=2)).replace(hour=9, minute=0)
    await h.send("alice", f"/book {request_id} {slot_token(start)}")
    clock.set(start + timedelta(minutes=65))
    await h.send("ada", "/complete 1")
    await h.send("alice", "/rate 1 5 great")
    await h.send("ada", "/rate 1 2")  # a mentor's rating of a learner does not count
    await h.send("admin", '/admin lesson add python-basics title="Intro" body="Hello"')
    await h.send("alice", "/nextlesson")
    await h.send("alice", "/ratelesson 1 3 ok")


async def test_stats_show_the_satisfaction_index_and_a_chart_of_the_expected_size(
    market: Harness, clock: FakeClock
) -> None:
    """Lessons at 3★ (50), sessions at 5★ (100), an instant match with no no-show (100):
    0.4·50 + 0.3·100 + 0.3·100 = 80; the chart is a valid 1200×900 PNG."""
    await rated_session_and_lesson(market, clock)
    text, files = await admin_files(market, "/admin stats")
    assert "Sessions completed: 1" in text
    assert "Satisfaction: 80 of 100 (resources 50 · mentors 100 · support 100)" in text
    chart = files["stats.png"]
    assert chart.content_type == "image/png"
    assert png_size(chart.data) == CHART_SIZE
    with Image.open(io.BytesIO(chart.data)) as image:
        image.verify()
    out = await market.send("admin", "/admin stats")
    assert "[1] By course" in out and "[3] CSV export" in out


async def test_breakdowns_per_course_and_mentor(market: Harness, clock: FakeClock) -> None:
    """The course and mentor breakdowns show learners, lessons, sessions, stars and scores."""
    await rated_session_and_lesson(market, clock)
    out = await market.send("admin", "/admin stats courses")
    assert "python-basics — Python from zero: learners 1 · revenue" in out
    assert "lessons 1 (done 1, 3.0★ (1)) · sessions 1 (5.0★ (1)) · satisfaction 80" in out
    out = await market.send("admin", "/admin stats mentors")
    assert "#1 ada (approved): sessions 1 · no-shows 0 · 5.0★ (1) · accepted 1" in out
    assert "Only marketplace admins" in await market.send("alice", "/admin stats csv")
    out = await market.send("admin", "/admin stats pies")
    assert "/admin stats does not take 'pies'. Choose one of: courses, mentors, csv" in out


async def paid_orders(
    h: Harness, orders: list[tuple[str, int, int, datetime, datetime | None]]
) -> None:
    """alice's real (not demo) USD orders: (reference, course, amount, paid, refunded), each
    with its ledger entries."""
    async with h.app.new_uow() as uow:
        alice = (
            await uow.session.execute(
                select(Identity.user_id).where(Identity.external_id == "alice")
            )
        ).scalar_one()
        for ref, course, amount, paid, refunded in orders:
            order = Order(
                user_id=alice,
                course_id=course,
                status="refunded" if refunded else "paid",
                amount_minor=amount,
                currency="USD",
                sessions_included=4,
                provider="stripe",
                provider_ref=ref,
                created_at=paid,
                expires_at=paid + timedelta(hours=1),
                paid_at=paid,
                refunded_at=refunded,
            )
            uow.add(order)
            await uow.flush()
            money = {"order_id": order.id, "currency": "USD"}
            await ledger.post(uow, f"p:{ref}", Kind.ORDER_PAID, paid, amount_minor=amount, **money)
            if refunded:
                await ledger.post(
                    uow, f"r:{ref}", Kind.ORDER_REFUNDED, refunded, amount_minor=-amount, **money
                )
        await uow.commit()


async def test_csv_sums_match_the_database(market: Harness, clock: FakeClock) -> None:
    """Weekly revenue (paid minus refunded, demo left out), sessions and lessons in the CSV add
    up to what the database holds; the course breakdown adds up to the same revenue."""
    await rated_session_and_lesson(market, clock)
    await paid_orders(
        market,
        [
            ("a", 1, 4900, datetime(2026, 2, 10, tzinfo=UTC), None),
            ("b", 2, 9900, datetime(2026, 2, 24, tzinfo=UTC), None),
            ("c", 3, 2900, datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),
            ("d", 1, 4900, datetime(2025, 6, 1, tzinfo=UTC), None),  # before the 12 weeks
        ],
    )
    text, files = await admin_files(market, "/admin stats csv")
    assert "weekly.csv, courses.csv, mentors.csv" in text
    weekly = rows(files["weekly.csv"].data)
    assert len(weekly) == 12 and weekly[-1]["week_start"] == "2026-03-02"
    since = datetime(2025, 12, 15, tzinfo=UTC)
    async with market.app.new_uow() as uow:
        run = uow.session.execute
        paid = (
            await run(
                select(func.sum(Order.amount_minor))
                .where(Order.status == "paid")
                .where(Order.provider != "demo")
                .where(Order.paid_at >= since)
            )
        ).scalar_one()
        completed = (
            await run(
                select(func.count(MentorSession.id)).where(MentorSession.status == "completed")
            )
        ).scalar_one()
        done = (
            await run(
                select(func.count(LessonDelivery.id)).where(LessonDelivery.done_at.is_not(None))
            )
        ).scalar_one()
    assert sum(Decimal(w["revenue_USD"]) for w in weekly) == Decimal(paid) / 100 == Decimal("148")
    assert sum(int(w["sessions_completed"]) for w in weekly) == completed == 1
    assert sum(int(w["lessons_done"]) for w in weekly) == done == 1
    by_week = {w["week_start"]: w for w in weekly}
    assert by_week["2026-02-23"]["revenue_USD"] == "128.00"
    assert by_week["2026-03-02"]["revenue_USD"] == "-29.00"
    assert by_week["2026-03-02"]["satisfaction"] == "80.0"
    courses = rows(files["courses.csv"].data)
    assert sum(Decimal(c["revenue_USD"]) for c in courses) == Decimal("148")
    mentors = rows(files["mentors.csv"].data)
    assert [m["name"] for m in mentors] == ["ada", "linus", "mei"]
    assert mentors[0]["average_stars"] == "5.00"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_mentorbot(env, *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_report_command_writes_the_chart_and_csv(tmp_path: Path) -> None:
    """`mentorbot report --out DIR` writes stats.png, the CSV files (headed in `--lang`, here
    en, whatever the configured default language) and the design's models (as CSV and as text
    in both languages)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "MENTORBOT_STORAGE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db",
        "MENTORBOT_BOT_DEFAULT_LANGUAGE": "zh",
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }
    _cli(env, "demo-data")
    _cli(env, "report", "--out", str(tmp_path / "out"), "--lang", "en")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "courses.csv",
        "mentors.csv",
        "models.csv",
        "models.txt",
        "stats.png",
        "weekly.csv",
        "workshops.csv",
    ]
    assert png_size((out / "stats.png").read_bytes()) == CHART_SIZE
    weekly = rows((out / "weekly.csv").read_bytes())
    assert len(weekly) == 12 and "week_start" in weekly[0]
    assert len(rows((out / "courses.csv").read_bytes())) == 3
    assert len(rows((out / "models.csv").read_bytes())) == 12
    models = (out / "models.txt").read_text(encoding="utf-8")
    assert "Learning efficiency:" in models and "学习效率" in models

    chinese = _cli(env, "report", "--out", str(tmp_path / "zh"))  # the configured default
    assert "missing from font" not in chinese.stderr
    assert png_size((tmp_path / "zh" / "stats.png").read_bytes()) == CHART_SIZE
    weekly_zh = rows((tmp_path / "zh" / "weekly.csv").read_bytes())
    assert next(iter(weekly_zh[0])) == "周起始日"
    assert {"学员数", "已完成辅导", "满意度"} <= set(weekly_zh[0])
    assert [w["周起始日"] for w in weekly_zh] == [w["week_start"] for w in weekly]
    mentors_zh = rows((tmp_path / "zh" / "mentors.csv").read_bytes())
    assert {"导师编号", "姓名", "状态"} <= set(mentors_zh[0])
    assert "已批准" in {m["状态"] for m in mentors_zh}
    for lang, folder in (("en", out), ("zh", tmp_path / "zh")):
        header = (folder / "workshops.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == WORKSHOP_COLUMNS[lang]


async def test_csv_cells_typed_by_people_never_run_as_formulas(
    market: Harness, clock: FakeClock
) -> None:
    """A mentor named like a formula and a course title starting with `@` reach the CSV files
    (stats and earnings) with a `'` in front, so a spreadsheet shows them as text; plain
    numbers stay numbers."""
    await rated_session_and_lesson(market, clock)
    formula = '=HYPERLINK("http://x")'
    async with market.app.new_uow() as uow:
        ada = await uow.session.execute(select(Identity).where(Identity.external_id == "ada"))
        user = await uow.get(User, ada.scalar_one().user_id)
        assert user is not None
        user.display_name = formula
        await uow.commit()
    out = await market.send("admin", "/admin course edit python-basics title=@everyone")
    assert "updated" in out

    _text, files = await admin_files(market, "/admin stats csv")
    (mentor,) = [r for r in rows(files["mentors.csv"].data) if r["sessions_completed"] == "1"]
    assert mentor["name"] == "'" + formula
    titles = {r["slug"]: r["title"] for r in rows(files["courses.csv"].data)}
    assert titles["python-basics"] == "'@everyone"
    _text, files = await admin_files(market, "/admin earnings csv")
    (earned,) = rows(files["mentor-earnings.csv"].data)
    assert earned["mentor"] == "'" + formula and earned["amount_minor"] == "980"
    assert [cell(v) for v in ("-12.5", "+3", "-", "\tx", "\rx", "+1 555")] == [
        "-12.5",
        "+3",
        "'-",
        "'\tx",
        "'\rx",
        "'+1 555",
    ]


async def test_a_chinese_admin_gets_csv_headed_in_chinese(
    market: Harness, clock: FakeClock
) -> None:
    """`/admin stats csv` for an admin reading Chinese: the columns are named in Chinese
    (revenue with its currency), the mentor's status in words, the numbers unchanged."""
    await buy(market, "alice")
    await paid_orders(market, [("z", 1, 4900, clock.now() - timedelta(days=1), None)])
    await market.send("admin", "/language zh")
    _text, files = await admin_files(market, "/admin stats csv")
    weekly = rows(files["weekly.csv"].data)
    assert list(weekly[0])[:2] == ["周起始日", "收入（USD）"]
    assert sum(Decimal(w["收入（USD）"]) for w in weekly) > 0
    mentors = rows(files["mentors.csv"].data)
    assert {m["状态"] for m in mentors} == {"已批准"}


# The workshops.csv and mentor-earnings.csv columns as each language heads them.
WORKSHOP_COLUMNS = {
    "en": [
        "workshop",
        "title",
        "host",
        "start_utc",
        "status",
        "seats",
        "seated",
        "attended",
        "absent",
        "credits",
        "revenue_minor",
        "currency",
    ],
    "zh": [
        "研讨会编号",
        "标题",
        "主持人",
        "开始时间（UTC）",
        "状态",
        "座位数",
        "已占座",
        "已到场",
        "缺席",
        "课时数",
        "收入（最小货币单位）",
        "货币",
    ],
}
EARNING_COLUMNS = {
    "en": [
        "mentor_id",
        "mentor",
        "session_id",
        "session_start_utc",
        "order_id",
        "provider",
        "amount_minor",
        "currency",
        "workshop_seat_id",
    ],
    "zh": [
        "导师编号",
        "导师",
        "辅导编号",
        "辅导开始时间（UTC）",
        "订单编号",
        "支付方式",
        "金额（最小货币单位）",
        "货币",
        "研讨会席位编号",
    ],
}
COMPLETED_WORD = {"en": "completed", "zh": "已完成"}
WORKSHOP_TITLE = {"en": "Testing with pytest", "zh": "用 pytest 做测试"}
DEMO_PROVIDER = {"en": "demo payment", "zh": "演示支付"}


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_workshop_and_earnings_csv_are_headed_in_the_admins_language(
    market: Harness, clock: FakeClock, lang: str
) -> None:
    """workshops.csv (in `/admin stats csv`) and mentor-earnings.csv (`/admin earnings csv`)
    name their columns in the admin's language, as the report's other CSV files do, a
    workshop's title in that language, its status and each earning's provider in words; the
    numbers are the same in both."""
    await buy(market, "bob")
    out = await market.send(
        "ada",
        '/workshop new title="Testing with pytest" title_zh="用 pytest 做测试" '
        'start="2026-03-05 18:00" seats=2 course=python-basics',
    )
    workshop = out.split("#", 1)[1].split(" ", 1)[0]
    await market.send("bob", f"/join {workshop}")
    clock.advance(timedelta(days=4))
    await market.send("ada", f"/workshop attendance {workshop} all")
    await rated_session_and_lesson(market, clock)
    await market.send("admin", f"/language {lang}")
    _text, files = await admin_files(market, "/admin stats csv")
    (row,) = rows(files["workshops.csv"].data)
    assert list(row) == WORKSHOP_COLUMNS[lang]
    columns = WORKSHOP_COLUMNS[lang]
    assert [row[columns[i]] for i in (0, 5, 6, 7, 8, 9)] == [workshop, "2", "1", "1", "0", "1"]
    assert row[columns[4]] == COMPLETED_WORD[lang]
    assert row[columns[1]] == WORKSHOP_TITLE[lang]
    _text, files = await admin_files(market, "/admin earnings csv")
    earned = rows(files["mentor-earnings.csv"].data)
    assert all(list(row) == EARNING_COLUMNS[lang] for row in earned)
    by_session = [r for r in earned if r[EARNING_COLUMNS[lang][2]]]
    by_seat = [r for r in earned if r[EARNING_COLUMNS[lang][8]]]
    assert [r[EARNING_COLUMNS[lang][6]] for r in by_session] == ["980"]
    assert len(by_seat) == 1  # the attended seat earned its host
    assert {r[EARNING_COLUMNS[lang][5]] for r in earned} == {DEMO_PROVIDER[lang]}
