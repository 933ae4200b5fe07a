"""The shape of the code: a platform-neutral core, and lint-clean sources."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = {"telegram", "discord"}


def test_core_never_imports_a_chat_platform() -> None:
    """Nothing in bot/ outside bot/adapters/ (nor storage/) imports telegram or discord."""
    offenders = []
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "storage").rglob("*.py")]:
        if "adapters" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in PLATFORM_LIBRARIES]
    assert offenders == []


def test_core_never_reads_the_wall_clock() -> None:
    """Only bot/core/clock.py may call datetime.now(); everything else asks the injected clock."""
    offenders = [
        str(path)
        for path in (ROOT / "bot").rglob("*.py")
        if path.name != "clock.py" and ".now(" in path.read_text(encoding="utf-8")
        and "datetime.now(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_ruff_is_clean() -> None:
    """`ruff check` passes on the whole tree (rules in pyproject.toml)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
