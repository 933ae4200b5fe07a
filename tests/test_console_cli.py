"""The `mentorbot` command as a person uses it: typed lines in, the conversation out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORBOT_")}
    env["MENTORBOT_STORAGE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )


def test_shell_demo_walks_purchase_to_booking(tmp_path: Path) -> None:
    """`mentorbot shell --demo`: numbered choices buy a course, find a mentor and book."""
    lines = [
        "/courses", "1", "1", "1",  # course list → Python → Buy → Pay (demo)
        "/mentor", "Automate my reports", "2", "evening",
        "/as ada", "/requests", "1",
        "/as learner", "/book", "1",
        "/as someone admin", "/admin orders",
        "/language zh", "/sessions",
    ]
    proc = run_cli(tmp_path, "shell", "--demo", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Paid (demo — no money moved)" in out
    assert "Request #1 is out to" in out
    assert "You are now mentoring learner" in out
    assert "Booked: session #1 with ada" in out
    assert "#1" in out and "learner: Python from zero $49.00 — paid (demo)" in out
    assert proc.stderr == ""  # quiet by default


def test_state_survives_between_shell_runs(tmp_path: Path) -> None:
    """A second `mentorbot shell` on the same data directory sees the first one's purchase."""
    run_cli(tmp_path, "shell", "--demo", stdin="/buy git-teamwork\n1\n")
    proc = run_cli(tmp_path, "shell", "--demo", stdin="/mycourses\n")
    assert "Git for teams: 2 sessions left" in proc.stdout


def test_migrate_and_demo_data_commands(tmp_path: Path) -> None:
    """`migrate` creates the database; `demo-data` seeds once and then leaves it alone."""
    assert run_cli(tmp_path, "migrate").returncode == 0
    assert (tmp_path / "data" / "mentorbot.db").exists()
    assert "demo data loaded" in run_cli(tmp_path, "demo-data").stdout
    assert "nothing changed" in run_cli(tmp_path, "demo-data").stdout


def test_bad_as_role_is_named(tmp_path: Path) -> None:
    """`/as NAME ROLE` with an unknown role names it and keeps you who you were."""
    proc = run_cli(tmp_path, "shell", stdin="/as bob wizard\n")
    assert "Unknown role 'wizard'. Choose one of: learner, mentor, admin." in proc.stdout
