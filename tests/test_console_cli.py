"""The `mentorbot` command as a person uses it: typed lines in, the conversation out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import run_mentorbot

ROOT = Path(__file__).resolve().parent.parent


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORBOT_")}
    env["MENTORBOT_STORAGE_DATA_DIR"] = str(tmp_path / "data")
    return env


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_mentorbot(cli_env(tmp_path), *args, cwd=tmp_path, stdin=stdin)


def newest_revision() -> str:
    versions = ROOT / "storage" / "migrations" / "versions"
    return max(path.name.split("_")[0] for path in versions.glob("[0-9]*.py"))


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mentorbot: ")
    for word in words:
        assert word in lines[0]


def test_shell_demo_walks_purchase_to_booking(tmp_path: Path) -> None:
    """`mentorbot shell --demo`: numbered choices buy a course, find a mentor and book."""
    lines = [
        "/courses",
        "1",
        "1",
        "1",  # course list → Python → Buy → Pay (demo)
        "/mentor",
        "Automate my reports",
        "2",
        "evening",
        "/as ada",
        "/requests",
        "1",
        "/as learner",
        "/book",
        "1",
        "/as someone admin",
        "/admin orders",
        "/language zh",
        "/sessions",
    ]
    proc = run_cli(tmp_path, "shell", "--demo", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Paid (demo — no money moved)" in out
    assert re.search(r"Request #\d+ is out to", out)
    assert "You are now mentoring learner" in out
    assert re.search(r"Booked: session #\d+ with ada", out)
    assert "learner: Python from zero $49.00 — paid (demo payment)" in out
    assert proc.stderr == ""  # quiet by default


def test_shell_demo_says_what_it_loaded_and_a_plain_shell_can_still_pay(tmp_path: Path) -> None:
    """--demo names what it loaded and what to try per role, with [clock] speed; a later
    plain `shell` on that database keeps demo payments, so the sample courses can be paid."""
    proc = run_cli(tmp_path, "shell", "--demo", stdin="/as admin\n/admin stats\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Demo loaded: 3 courses with lessons" in out
    for role in ("As a learner: /courses", "As a mentor (/as ada)", "As the admin (/as admin)"):
        assert role in out
    assert "speed under [clock]" in out
    assert re.search(r"Sessions completed: [1-9]\d* · no-shows: [1-9]", out)
    assert re.search(r"Learners rating their mentors: \d\.\d ★ from \d+ ratings", out)
    assert re.search(r"Paid orders: (\d+) course orders?, of which \1 paid with demo payments", out)
    proc = run_cli(tmp_path, "shell", stdin="/buy git-teamwork\n1\n")
    assert proc.returncode == 0, proc.stderr
    assert "demo payments are on" in proc.stdout
    assert "Paid (demo — no money moved). Git for teams is yours" in proc.stdout


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


def test_run_without_platform_or_terminal_fails_at_once(tmp_path: Path) -> None:
    """`mentorbot run` under a service manager with no token fails, saying how to fix it."""
    proc = run_cli(tmp_path, "run")
    assert_one_line_error(proc, "no chat platform is configured", "MENTORBOT_TELEGRAM_TOKEN")
    assert "mentorbot shell" in proc.stderr


def test_config_is_accepted_before_or_after_the_verb(tmp_path: Path) -> None:
    """`--config FILE` works on either side of the verb, and the file is really read."""
    (tmp_path / "elsewhere.toml").write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "other.db"}"\n', encoding="utf-8"
    )
    after = run_cli(tmp_path, "migrate", "--config", "elsewhere.toml")
    assert after.returncode == 0, after.stderr
    assert (tmp_path / "other.db").exists()
    before = run_cli(tmp_path, "--config", "elsewhere.toml", "migrate")
    assert "already at the newest revision" in before.stdout
    imported = run_cli(tmp_path, "lessons", "import", "--config", "missing.toml", "x.toml")
    assert_one_line_error(imported, "missing.toml does not exist")


def test_shell_leaves_promptly_on_ctrl_c(tmp_path: Path) -> None:
    """SIGINT in `mentorbot shell` ends it within seconds with exit 130 and no traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "shell"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path),
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if "Ctrl-D quits" in line:
                break
        proc.send_signal(signal.SIGINT)
        try:
            returncode = proc.wait(timeout=10)  # stdin stays open: only the signal can end it
        finally:
            proc.kill()
        err = proc.stderr.read()
    assert returncode == 130
    assert err == ""


def test_shell_leaves_on_end_of_input(tmp_path: Path) -> None:
    """Ctrl-D (end of input) after a command leaves the shell with exit 0."""
    proc = run_cli(tmp_path, "shell", stdin="/help")
    assert proc.returncode == 0, proc.stderr
    assert "/courses" in proc.stdout


def test_report_out_onto_a_file_is_one_line(tmp_path: Path) -> None:
    """`report --out` naming an existing file, or an unwritable place, is one line on stderr."""
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    assert_one_line_error(run_cli(tmp_path, "report", "--out", "taken"), "is a file")
    below_a_file = run_cli(tmp_path, "report", "--out", "taken/inside")
    assert_one_line_error(below_a_file, "cannot write the report into taken/inside")


def test_config_and_import_errors_are_one_line(tmp_path: Path) -> None:
    """A broken config file and a missing lessons file each give one line and a non-zero exit."""
    (tmp_path / "bad.toml").write_text("[storage\n", encoding="utf-8")
    assert_one_line_error(run_cli(tmp_path, "--config", "bad.toml", "migrate"), "not valid TOML")
    missing = run_cli(tmp_path, "lessons", "import", "nope.toml")
    assert_one_line_error(missing, "nope.toml: no such file")


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    """`migrate` on an empty data dir says it created the schema; a second run says up to date."""
    newest = newest_revision()
    first = run_cli(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert re.search(
        rf"created the database at .*mentorbot\.db, schema at revision {newest}$",
        first.stdout.strip(),
    )
    second = run_cli(tmp_path, "migrate")
    assert second.stdout.strip().endswith(f"is already at the newest revision {newest}")
