"""Every command in the command table, fuzzed with hostile text by every role that can run it:
every input gets an answer, never an apology, and a refusal changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import Harness, apologies_in, attempt, command_paths, hostile_line

# Who plays each role in the `booked` marketplace.
PLAYERS = {"learner": "alice", "mentor": "ada", "admin": "admin"}
# Each example sends one hostile line to every command the role can run.
EXAMPLES = 6


def runnable_by(role: str) -> list[tuple[tuple[str, ...], tuple[object, ...]]]:
    """The commands `role` may run: everyone's, and those of the role itself."""
    return [(words, args) for words, args, needs in command_paths() if needs in (None, role)]


def test_the_fuzzed_commands_are_the_command_table() -> None:
    """A command registered in the table is fuzzed with no change here."""
    from bot.handlers.registry import COMMANDS

    fuzzed = {words[0] for words, _args, _role in command_paths()}
    assert fuzzed == set(COMMANDS)
    assert ("admin", "course", "add") in {w for w, _a, _r in command_paths()}


@pytest.mark.parametrize("role", list(PLAYERS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_hostile_input_is_answered_politely_and_refusals_change_nothing(
    booked: Harness, role: str, data: st.DataObject
) -> None:
    """No reply apologises, shows a traceback or a raw status, or is empty; a 10,000-character
    token is never echoed whole; a refused command leaves every table as it was."""
    who = PLAYERS[role]
    lines = [hostile_line(data.draw, words, args) for words, args in runnable_by(role)]
    failures = [
        f"{who} {line[:120]!r}: {why}" for line in lines for why in await judged(booked, who, line)
    ]
    assert not failures, "\n".join(failures)


async def judged(h: Harness, who: str, line: str) -> list[str]:
    """What is wrong with how `line` was answered (empty: nothing)."""
    sent = await attempt(h, who, line)
    wrong = []
    if not sent.output.strip():
        wrong.append("no answer")
    if apologies_in(sent.output):
        wrong.append(f"apologised: {sent.output[:300]!r}")
    if "y" * 10_000 in sent.output:
        wrong.append("echoed a 10,000-character token whole")
    if sent.outcome not in ("ok", "refused"):
        wrong.append(f"outcome {sent.outcome}")
    if sent.outcome == "refused" and not sent.unchanged:
        wrong.append(f"refused but changed the database: {sent.output[:200]!r}")
    return wrong
