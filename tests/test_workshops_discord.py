"""Workshops on Discord: each one a guild scheduled event kept in step with it (created,
moved, cancelled), and optionally a voice channel only its attendees may connect to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.clock import FakeClock
from storage.models import Workshop
from tests.fakes.fake_discord import DiscordBot, FakeDiscord, discord_config
from tests.support import AppFactory


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


async def run(fake: FakeDiscord, user: Any, command: str, expect: str, **options: Any) -> str:
    interaction = await fake.slash(user, command, **options)
    await fake.reply(interaction, expect)
    return interaction.text()


async def started(make_app: AppFactory, fake: FakeDiscord, **sections: Any) -> DiscordBot:
    app = await make_app(discord_config(fake, **sections))
    return await DiscordBot(fake, app).start()


async def test_a_workshop_is_a_scheduled_event_kept_in_step(
    make_app: AppFactory, fake: FakeDiscord, clock: FakeClock
) -> None:
    """Creating a workshop creates an external guild event at its times, with no meeting link
    in it; moving it edits the event; cancelling deletes it."""
    fake.now = clock.now
    bot = await started(make_app, fake)
    try:
        boss = fake.user("boss", admin=True)
        out = await run(
            fake,
            boss,
            "workshop new",
            "workshop created",
            title="Office hours",
            start="2026-03-05 18:00",
            seats=4,
        )
        wid = int(out.split("#", 1)[1].split(" ", 1)[0])
        await bot.app.run_due()
        (event,) = fake.scheduled_events.values()
        assert event["name"] == "Office hours" and event["entity_type"] == 3
        assert event["scheduled_start_time"].startswith("2026-03-05T18:00:00")
        assert event["scheduled_end_time"].startswith("2026-03-05T19:00:00")
        assert f"/join {wid}" in event["description"]
        assert "meet.jit.si" not in str(event)
        await bot.app.run_due()  # nothing changed: nothing sent again
        assert len(fake.calls_to("POST", "/scheduled-events")) == 1
        await run(fake, boss, "workshop move", "now starts", workshop=wid, start="2026-03-06 19:30")
        await bot.app.run_due()
        (event,) = fake.scheduled_events.values()
        assert event["scheduled_start_time"].startswith("2026-03-06T19:30:00")
        assert len(fake.calls_to("PATCH", "/scheduled-events/")) == 1
        await run(fake, boss, "workshop cancel", "is cancelled", workshop=wid)
        await bot.app.run_due()
        assert fake.scheduled_events == {}
        assert len(fake.calls_to("DELETE", "/scheduled-events/")) == 1
    finally:
        await bot.stop()


async def test_a_title_of_the_longest_event_name_is_published_whole(
    make_app: AppFactory, fake: FakeDiscord, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A 100-character title, the longest Discord takes as an event's name (the fake refuses
    101 as Discord does), is the event's name whole; a 101-character one is refused when the
    workshop is created, so no event is published. A title stored longer before the limit is
    shortened with "…" on the event, and the log says so."""
    fake.now = clock.now
    bot = await started(make_app, fake)
    try:
        boss = fake.user("boss", admin=True)
        options = {"start": "2026-03-05 18:00", "seats": 2}
        await run(fake, boss, "workshop new", "at most 100", title="x" * 101, **options)
        await run(fake, boss, "workshop new", "workshop created", title="y" * 100, **options)
        await bot.app.run_due()
        (event,) = fake.scheduled_events.values()
        assert event["name"] == "y" * 100
        async with bot.app.new_uow() as uow:
            await uow.session.execute(
                update(Workshop).values(
                    title_en="z" * 150, venue_version=Workshop.venue_version + 1
                )
            )
            await uow.commit()
        await bot.app.run_due()
        (event,) = fake.scheduled_events.values()
        assert event["name"] == "z" * 99 + "…"
        assert "longer than a Discord event name" in caplog.text
    finally:
        await bot.stop()


async def test_a_failed_publish_is_retried_after_the_lease(
    make_app: AppFactory, fake: FakeDiscord, clock: FakeClock
) -> None:
    """While Discord refuses (here: a start it thinks has passed), nothing is recorded as
    published; once it accepts, the next sweep after the lease creates the event once."""
    from datetime import timedelta

    bot = await started(make_app, fake)
    try:
        boss = fake.user("boss", admin=True)
        await run(
            fake,
            boss,
            "workshop new",
            "workshop created",
            title="T",
            start="2026-03-05 18:00",
            seats=2,
        )
        fake.now = lambda: clock.now() + timedelta(days=30)  # Discord's clock is ahead
        await bot.app.run_due()
        assert fake.scheduled_events == {}
        fake.now = clock.now
        await bot.app.run_due()  # still leased to the failed attempt
        assert fake.scheduled_events == {}
        clock.advance(timedelta(minutes=3))
        await bot.app.run_due()
        assert len(fake.scheduled_events) == 1
    finally:
        await bot.stop()


async def test_voice_channel_holds_the_seats_and_lets_attendees_in(
    make_app: AppFactory, fake: FakeDiscord, clock: FakeClock
) -> None:
    """With voice channels on, a workshop's voice channel has user_limit = seats, denies
    everyone CONNECT and allows each attendee, updated as they join."""
    fake.now = clock.now
    bot = await started(make_app, fake, workshops={"discord_voice_channels": True})
    try:
        boss = fake.user("boss", admin=True)
        out = await run(
            fake,
            boss,
            "workshop new",
            "workshop created",
            title="Voice",
            start="2026-03-05 18:00",
            seats=3,
        )
        wid = int(out.split("#", 1)[1].split(" ", 1)[0])
        await bot.app.run_due()
        (channel,) = fake.voice_channels.values()
        assert channel["user_limit"] == 3 and channel["type"] == 2
        learner = fake.user("lea")
        await run(fake, learner, "join", "You have a seat", workshop=wid)
        await bot.app.run_due()
        (channel,) = fake.voice_channels.values()
        allowed = {o["id"] for o in channel["permission_overwrites"] if o["allow"] != "0"}
        denied = {o["id"] for o in channel["permission_overwrites"] if o["deny"] != "0"}
        assert str(learner.id) in allowed and str(fake.guild_id) in denied
    finally:
        await bot.stop()


async def test_an_event_whose_id_was_lost_in_a_crash_is_taken_over_not_doubled(
    make_app: AppFactory, fake: FakeDiscord, clock: FakeClock
) -> None:
    """The process died after Discord created the event and before the commit that records
    its id: the next sweep finds the bot's event for that workshop (its description names
    /join ID) and edits it instead of creating a second one; the other workshop's event is left
    as it was."""
    from datetime import timedelta

    fake.now = clock.now
    bot = await started(make_app, fake)
    try:
        boss = fake.user("boss", admin=True)
        for title, start in (("One", "2026-03-05 18:00"), ("Two", "2026-03-06 18:00")):
            await run(
                fake, boss, "workshop new", "workshop created", title=title, start=start, seats=2
            )
        await bot.app.run_due()
        assert len(fake.scheduled_events) == 2
        async with bot.app.new_uow() as uow:  # as if the first commit never happened
            await uow.session.execute(
                update(Workshop)
                .where(Workshop.id == 1)
                .values(venue_ref=None, venue_synced=0, title_en="One, moved")
            )
            await uow.commit()
        clock.advance(timedelta(minutes=3))
        await bot.app.run_due()
        assert len(fake.calls_to("POST", "/scheduled-events")) == 2
        assert sorted(e["name"] for e in fake.scheduled_events.values()) == ["One, moved", "Two"]
        async with bot.app.new_uow() as uow:
            refs = (await uow.session.execute(select(Workshop.venue_ref))).scalars().all()
        assert sorted(refs) == sorted(e["id"] for e in fake.scheduled_events.values())
    finally:
        await bot.stop()
