"""The console shows everything a chat platform would: attachments as files, and numbered
presses that only ever mean the last reply's buttons."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta
from pathlib import Path

from bot.core.clock import FakeClock
from bot.sessions.scheduling import slot_token
from tests.support import Harness, matched_pair, snapshot

SAVED = re.compile(r"Attachment (\S+) saved to (\S+)")


def saved(out: str) -> dict[str, Path]:
    """The files a reply says it wrote, by name; each one exists."""
    found = {name: Path(path) for name, path in SAVED.findall(out)}
    for path in found.values():
        assert path.is_file(), path
    return found


async def test_the_stats_chart_and_csv_exports_are_written_where_the_reply_says(
    market: Harness,
) -> None:
    """/admin stats writes its PNG chart, /admin stats csv its CSV files, each openable."""
    files = saved(await market.send("admin", "/admin stats"))
    assert files["stats.png"].read_bytes().startswith(b"\x89PNG")
    files = saved(await market.send("admin", "/admin stats csv"))
    assert set(files) == {"weekly.csv", "courses.csv", "mentors.csv", "workshops.csv"}
    for path in files.values():
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        assert rows and rows[0], path


async def test_a_second_file_of_the_same_name_does_not_overwrite_the_first(
    market: Harness,
) -> None:
    """Each reply's file stays where that reply said it was."""
    first = saved(await market.send("admin", "/admin stats"))["stats.png"]
    (second_path,) = saved(await market.send("admin", "/admin stats")).values()
    assert second_path != first and first.is_file() and second_path.name == "stats-2.png"


async def test_mydata_is_written_as_json(market: Harness) -> None:
    """/mydata's export is a JSON file that parses and names the reader."""
    files = saved(await market.send("alice", "/mydata"))
    data = json.loads(files["mydata.json"].read_text(encoding="utf-8"))
    assert data["account"]["display_name"] == "alice"


async def test_a_booking_carries_its_calendar_invite(market: Harness, clock: FakeClock) -> None:
    """The confirmation of a booking comes with its .ics invite, written as a file."""
    request_id = await matched_pair(market)
    token = slot_token((clock.now() + timedelta(days=2)).replace(hour=9, minute=0))
    out = await market.send("alice", f"/book {request_id} {token}")
    invites = [p for name, p in saved(out).items() if name.endswith(".ics")]
    assert invites and "BEGIN:VCALENDAR" in invites[0].read_text(encoding="utf-8")


async def test_a_number_after_a_reply_without_buttons_presses_nothing(market: Harness) -> None:
    """Stale buttons: after /courses (with buttons) and /help (without), typing 1 is refused
    instead of pressing the catalogue's first button."""
    assert "[1]" in await market.send("alice", "/courses")
    await market.send("alice", "/help")
    before = await snapshot(market)
    assert "There is no option 1 here." in await market.send("alice", "1")
    assert await snapshot(market) == before
