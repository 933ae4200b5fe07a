"""Money and trust hold under any sequence of actions: the state machine of
tests/model_money.py, run briefly on SQLite and PostgreSQL (bench/model_money.py runs it long).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model_money import Rig, machine_for
from tests.support import Database

SHORT = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_money_and_trust_hold_under_random_sequences(database: Database) -> None:
    """Random buys, payments by every provider (duplicate and out of order), bookings, moves,
    cancellations, outcome claims, settlements, refunds, course edits, linking, deletion, role
    changes and clock jumps never break the ledger, the one-place rule, roles or identities."""
    rig = Rig(database)
    rig.run(rig.open())
    try:
        run_state_machine_as_test(machine_for(rig), settings=SHORT)
    finally:
        rig.close()
