"""The gates CI keeps shut: the tree is formatted (`ruff format --check`), bot/ and storage/
type-check (`mypy --strict`, settings in pyproject.toml), and the tests keep their layout
(fixtures in tests/conftest.py, everything else they share in tests/support.py)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_the_tree_is_formatted() -> None:
    """`ruff format --check` passes on the whole tree (exclusions in pyproject.toml)."""
    proc = run("ruff", "format", "--check", str(ROOT))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_the_core_type_checks_strictly() -> None:
    """`mypy` with the pyproject.toml settings (strict, bot/ and storage/) reports no error."""
    proc = run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tests_import_shared_code_from_support_never_from_conftest() -> None:
    """No module imports from tests.conftest: what tests share beyond fixtures is in
    tests/support.py, so a fixture file never becomes a second home for helpers."""
    offenders = []
    tops = [p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]  # not .venv
    for path in [*ROOT.glob("*.py"), *(path for top in tops for path in top.rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "tests.conftest":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_conftest_defines_only_fixtures() -> None:
    """Every function tests/conftest.py defines is a pytest fixture, and it defines no class."""
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    others = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        or (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and not any("fixture" in ast.unparse(d) for d in node.decorator_list)
        )
    ]
    assert others == []
