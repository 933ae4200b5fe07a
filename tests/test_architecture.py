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
        if path.name != "clock.py"
        and ".now(" in path.read_text(encoding="utf-8")
        and "datetime.now(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


BUSINESS_AREAS = {
    "mentoring",
    "sessions",
    "learning",
    "accounts",
    "reporting",
    "providers",
    "handlers",
    "adapters",
    "runtime",
    "app",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every bot/ module and the bot/ modules it imports, TYPE_CHECKING and function-level
    imports included: `from a import b` counts as importing `a.b` when that is a module."""
    modules = {module_name(p): p for p in (ROOT / "bot").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                subs = {f"{base}.{a.name}" for a in node.names} & modules.keys()
                found.update(subs or {base})
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_core_imports_no_business_area() -> None:
    """bot/core/ is the shared vocabulary: it imports no business area, no provider, no
    adapter, no runtime and not the app, so every area can build on it."""
    offenders = [
        f"{name} imports {dep}"
        for name, deps in import_graph().items()
        if name.startswith("bot.core")
        for dep in deps
        if dep.split(".")[1] in BUSINESS_AREAS
    ]
    assert offenders == []


def test_providers_never_import_the_app() -> None:
    """Payment providers sit below the front door: they take its `Ports`, never bot.app."""
    offenders = [
        f"{name} imports {dep}"
        for name, deps in import_graph().items()
        if name.startswith("bot.providers")
        for dep in deps
        if dep == "bot.app"
    ]
    assert offenders == []


def test_no_import_cycles_among_bot_modules() -> None:
    """No bot/ module reaches itself through its imports (TYPE_CHECKING ones included)."""
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert [" → ".join(c) for c in cycles] == []


def test_ruff_is_clean() -> None:
    """`ruff check` passes on the whole tree (rules in pyproject.toml)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
