"""The Discord adapter's pure parts: rendering, command text and configuration."""

from __future__ import annotations

import pytest

from bot.adapters.discord.commands import core_text
from bot.adapters.discord.render import (
    Question,
    chunks,
    parse_answer,
    submitted_answer,
    view_for,
    with_timestamps,
)
from bot.config import ConfigError, config_from_mapping
from bot.core.replies import RenderedChoice, Reply


def test_instants_become_discord_timestamps() -> None:
    """Each instant the core rendered is replaced by `<t:UNIX:F> (<t:UNIX:R>)`."""
    reply = Reply(
        1,
        "Starts Tue 3 Mar 2026, 10:00 (UTC). Join",
        instants=(("Tue 3 Mar 2026, 10:00 (UTC)", 1772532000),),
    )
    assert with_timestamps(reply) == "Starts <t:1772532000:F> (<t:1772532000:R>). Join"


def test_long_text_is_split_at_line_breaks() -> None:
    """Messages stay within Discord's 2000 characters, broken between lines."""
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(60))
    parts = chunks(text)
    assert all(len(p) <= 2000 for p in parts) and len(parts) > 1
    assert "\n".join(parts) == text


def test_options_are_quoted_for_the_core() -> None:
    """Option values with spaces reach the core as one argument each."""
    assert core_text("admin", "course", "add", "py", "title=Python from zero") == (
        "/admin course add py 'title=Python from zero'"
    )
    assert core_text("book", None) == "/book"


def test_discord_config_is_checked_and_documented() -> None:
    """The token is a Secret (also from the environment); bad URLs and ids name the key."""
    config = config_from_mapping({}, env={"MENTORBOT_DISCORD_TOKEN": "abc.def"})
    assert config.discord.token.reveal() == "abc.def" and "abc" not in repr(config.discord)
    with pytest.raises(ConfigError, match=r"\[discord\] gateway_url must start with wss://"):
        config_from_mapping({"discord": {"gateway_url": "http://x"}})
    with pytest.raises(ConfigError, match=r"\[discord\] admin_role_ids must be Discord ids"):
        config_from_mapping({"discord": {"admin_role_ids": [-1]}})


async def test_choices_become_buttons_whose_custom_id_is_the_command() -> None:
    """Commands become buttons (once each), answers are bound to their question, links become
    link buttons; the Answer button comes last."""
    choices = (
        RenderedChoice("Accept", "/accept 3"),
        RenderedChoice("Accept again", "/accept 3"),
        RenderedChoice("beginner", "beginner"),
        RenderedChoice("Pay by card", "https://pay.example/x", url=True),
        RenderedChoice("Too long", "/x " + "y" * 100),
    )
    view = view_for(choices, Question("q1", "Answer"), answer=True)
    assert view is not None
    items = [item.to_component_dict() for item in view.children]
    assert [(i.get("label"), i.get("custom_id"), i.get("url")) for i in items] == [
        ("Accept", "/accept 3", None),
        ("beginner", "mentorbot:to:q1:beginner", None),
        ("Pay by card", None, "https://pay.example/x"),
        ("Answer", "mentorbot:answer", None),
    ]
    assert parse_answer("mentorbot:to:q1:beginner") == ("q1", "beginner")
    assert parse_answer("/accept 3") is None
    assert view_for((), None) is None


def test_the_answer_box_gives_back_what_was_typed() -> None:
    """A modal submission (legacy rows or labels) yields the typed text, others nothing."""
    row = {"type": 1, "components": [{"type": 4, "custom_id": "answer", "value": "Hi"}]}
    label = {"type": 18, "component": {"type": 4, "custom_id": "answer", "value": "Hi"}}
    for component in (row, label):
        data = {"custom_id": "mentorbot:answer-box", "components": [component]}
        assert submitted_answer(data) == "Hi"
    assert submitted_answer({"custom_id": "other", "components": [row]}) is None
