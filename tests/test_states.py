"""Status values are typed: each machine's table matches its type, and a misspelt status fails
`mypy --strict` before any test or user meets it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from bot.core import states

ROOT = Path(__file__).resolve().parent.parent

TYPES: dict[states.Entity, Any] = {
    "order": states.OrderStatus,
    "enrollment": states.EnrollmentStatus,
    "request": states.RequestStatus,
    "offer": states.OfferStatus,
    "session": states.SessionStatus,
    "mentor": states.MentorStatus,
    "course": states.ShelfStatus,
    "lesson": states.ShelfStatus,
    "subscription": states.SubscriptionStatus,
}

SNIPPET = """\
from bot.core.states import advance
from storage.models import MentorSession, Order, RequestOffer


def move(order: Order, session: MentorSession, offer: RequestOffer) -> None:
    advance("order", order, "{paid}")
    order.status = "{refunded}"
    advance("session", session, "{no_show}")
    offer.status = "{won}"
"""
RIGHT = {"paid": "paid", "refunded": "refunded", "no_show": "no_show", "won": "won"}
WRONG = {"paid": "payed", "refunded": "refundid", "no_show": "noshow", "won": "wonn"}


def test_every_machine_has_a_type_and_a_name() -> None:
    """The entity names `advance` accepts are exactly the machines with a table."""
    assert set(get_args(states.Entity)) == set(states.MACHINES) == set(TYPES)


@pytest.mark.parametrize("entity", sorted(TYPES))
def test_a_table_names_exactly_the_states_of_its_type(entity: states.Entity) -> None:
    """Every state a table mentions is a member of the machine's type, and every member of the
    type has its row in the table (a final state's row allows no move)."""
    table = states.MACHINES[entity]
    mentioned = set(table).union(*table.values())
    members = set(get_args(TYPES[entity]))
    assert mentioned <= members, f"not in the {entity} type: {mentioned - members}"
    assert set(table) == members, f"no {entity} row for: {members - set(table)}"


def test_mypy_strict_refuses_a_misspelt_status_and_accepts_it_spelt_right(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The same calls and assignments, once misspelt and once right: mypy flags each misspelt
    line and nothing in the right one."""
    (tmp_path / "wrong.py").write_text(SNIPPET.format(**WRONG), encoding="utf-8")
    (tmp_path / "right.py").write_text(SNIPPET.format(**RIGHT), encoding="utf-8")
    assert pytestconfig.cache is not None
    cache = pytestconfig.cache.mkdir("mypy")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-error-summary",
            "--cache-dir",
            str(cache),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(tmp_path / "wrong.py"),
            str(tmp_path / "right.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        timeout=600,
    )
    errors = re.findall(r"^.*?(\w+)\.py:(\d+): error:", proc.stdout, re.MULTILINE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(errors) == [("wrong", "6"), ("wrong", "7"), ("wrong", "8"), ("wrong", "9")], (
        proc.stdout
    )
