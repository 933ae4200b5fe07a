"""Discord sharded across processes: two services (two "processes") on one database, each
connecting one of two shards of the real discord.py client to the loopback fake.

Each answers the guilds of its own shard (and only shard 0's process gets DMs, as on Discord),
only shard 0's process syncs the slash commands, notices go out once whichever process
delivers them, and each process is ready only while all of its own shards are connected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bot.adapters.discord import DiscordService
from bot.app import Marketplace
from bot.config import ConfigError, config_from_mapping
from bot.core.users import Incoming
from bot.core.web import WebServer
from tests.fakes.fake_discord import WAIT_LIMIT, FakeDiscord, FakeGuild, discord_config
from tests.support import AppFactory
from tests.test_discord import catalogue, learner_asks, mentor_on_discord

SHARDS = 2


@dataclass
class Process:
    """One bot process: its marketplace, Discord service and web server, and the texts its
    core was asked to handle (which tells which process answered)."""

    app: Marketplace
    web: WebServer
    service: DiscordService
    handled: list[str] = field(default_factory=list)

    async def readyz(self) -> int:
        """The status a load balancer gets from GET /readyz."""
        url = f"http://127.0.0.1:{self.web.port}/readyz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(shard_count=SHARDS)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def guilds(fake: FakeDiscord) -> tuple[FakeGuild, FakeGuild]:
    """Two guilds, the first on shard 0 and the second on shard 1."""
    return (
        fake.add_guild("Shard zero", shard=0, of=SHARDS),
        fake.add_guild("Shard one", shard=1, of=SHARDS),
    )


@pytest.fixture
async def processes(
    make_app: AppFactory,
    fake: FakeDiscord,
    guilds: tuple[FakeGuild, FakeGuild],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[list[Process]]:
    """Process 0 with shard_ids [0], process 1 with [1], built but not started."""
    made: list[Process] = []
    for shard in range(SHARDS):
        discord = {
            "shard_count": SHARDS,
            "shard_ids": [shard],
            "guild_ids": [g.id for g in guilds],
        }
        app = await make_app(discord_config(fake, discord=discord))
        web = WebServer("127.0.0.1", 0)
        # Ready as soon as GUILD_CREATE is in, instead of discord.py's 2 s wait for more guilds.
        service = DiscordService(app, web=web, guild_ready_timeout=0.01)
        process = Process(app, web, service)
        monkeypatch.setattr(app, "handle", recording(app, process.handled))
        made.append(process)
    yield made
    # Last started, first stopped: each service restores the REST and gateway URLs it found.
    for process in reversed(made):
        await process.service.stop()
        await process.web.stop()


def recording(app: Marketplace, handled: list[str]) -> Any:
    """`app.handle`, noting each text it is given."""
    handle = app.handle

    async def record(msg: Incoming) -> Any:
        handled.append(msg.text)
        return await handle(msg)

    return record


async def start(processes: list[Process]) -> None:
    for process in processes:
        await process.web.start()
        await process.service.start()


async def test_each_process_answers_its_own_shards_guilds_once(
    processes: list[Process], fake: FakeDiscord, guilds: tuple[FakeGuild, FakeGuild]
) -> None:
    """A slash command in each guild is answered once, by the process owning its shard; a DM
    (Discord sends those on shard 0) by shard 0's process."""
    await start(processes)
    assert sorted(fake.identifies) == [(0, SHARDS), (1, SHARDS)]
    alice, bob = fake.user("alice"), fake.user("bob")

    on_zero = await fake.slash(alice, "courses", guild=guilds[0])
    on_one = await fake.slash(bob, "start", guild=guilds[1])
    await fake.reply(on_zero, "No courses are on offer yet")
    await fake.reply(on_one, "Welcome to mentorbot")
    await fake.send_dm(bob, "/mycourses")
    await fake.latest_dm(bob, "You have no courses yet")

    assert processes[0].handled == ["/courses", "/mycourses"]
    assert processes[1].handled == ["/start"]
    for interaction in (on_zero, on_one):
        assert len(fake.calls_to("POST", f"/interactions/{interaction.id}/")) == 1
        assert len(interaction.messages) == 1
    assert len(fake.dms_to(bob)) == 2  # the DM typed and the one answer


async def test_only_shard_zeros_process_syncs_the_commands(
    processes: list[Process], fake: FakeDiscord, guilds: tuple[FakeGuild, FakeGuild]
) -> None:
    """Commands are synced once per guild, by the process owning shard 0, and still work in
    the other process's guild."""
    await start(processes)
    for guild in guilds:
        synced = fake.calls_to("PUT", f"/guilds/{guild.id}/commands")
        assert len(synced) == 1
        assert {"courses", "buy", "admin"} <= {c["name"] for c in synced[0].body}
    assert len(fake.calls_to("PUT", "/commands")) == len(guilds)  # nothing global
    on_one = await fake.slash(fake.user("alice"), "courses", guild=guilds[1])
    await fake.reply(on_one, "No courses are on offer yet")


async def test_a_notice_goes_out_once_from_whichever_process_delivers_it(
    processes: list[Process], fake: FakeDiscord, make_app: AppFactory
) -> None:
    """Both processes sweep the outbox at once: the offered mentor gets one DM and the mentors
    channel one post, over REST, whichever shard the process holds."""
    await start(processes)
    worker = await make_app(discord_config(fake))  # e.g. a webhook process, no Discord here
    await catalogue(worker)
    ada = fake.user("ada")
    await mentor_on_discord(worker, ada)
    await learner_asks(worker, fake.user("alice"))
    assert fake.dms_to(ada) == []  # waiting in the outbox: the worker has no Discord

    sent = await asyncio.gather(*(p.app.notifier.deliver_pending() for p in processes))
    assert sum(sent) == 1
    offers = [m for m in fake.dms_to(ada) if "New mentorship request #1" in m["content"]]
    assert len(offers) == 1
    posts = fake.channel_messages(fake.mentors_channel)
    assert len(posts) == 1 and "Mentorship request #1 from alice" in posts[0]["content"]


async def test_shard_one_process_alone_delivers_notices(
    processes: list[Process], fake: FakeDiscord, make_app: AppFactory
) -> None:
    """The process without shard 0 (no DMs reach it) still sends DMs: they are REST calls."""
    await start(processes[1:])
    worker = await make_app(discord_config(fake))
    await catalogue(worker)
    ada = fake.user("ada")
    await mentor_on_discord(worker, ada)
    await learner_asks(worker, fake.user("alice"))
    assert await processes[1].app.notifier.deliver_pending() == 1
    await fake.latest_dm(ada, "New mentorship request #1")


async def test_ready_only_while_all_own_shards_are_connected(
    processes: list[Process], fake: FakeDiscord
) -> None:
    """/readyz is 503 before the shards connect and while one of the process's own shards is
    reconnecting; another process's shard does not matter to it."""
    zero, one = processes
    for process in processes:
        await process.web.start()
        assert await process.readyz() == 503  # not connected yet
        await process.service.start()
        assert await process.readyz() == 200

    client = one.service.client
    assert client is not None
    fake.held.add(1)  # shard 1's RESUME will wait: Discord is slow to take it back
    gone = asyncio.create_task(
        client.wait_for("shard_disconnect", check=lambda shard: shard == 1, timeout=WAIT_LIMIT)
    )
    await fake.reconnect(1)
    await gone
    await fake.wait_for(lambda: fake.waiting)
    assert await one.readyz() == 503
    assert await zero.readyz() == 200

    back = asyncio.create_task(
        client.wait_for("shard_resumed", check=lambda shard: shard == 1, timeout=WAIT_LIMIT)
    )
    await fake.release(1)
    await back
    assert await one.readyz() == 200
    assert fake.identifies == [(0, SHARDS), (1, SHARDS)]  # resumed, not identified again


async def test_unsharded_is_one_connection_that_syncs(
    make_app: AppFactory, fake: FakeDiscord
) -> None:
    """With shard_count 0 the process opens one gateway connection (shard 0 of 1), gets every
    guild, syncs the commands and is ready."""
    extra = fake.add_guild("Second", shard=1, of=SHARDS)
    app = await make_app(discord_config(fake, discord={"guild_ids": [fake.guild_id, extra.id]}))
    web = WebServer("127.0.0.1", 0)
    service = DiscordService(app, web=web, guild_ready_timeout=0.01)
    process = Process(app, web, service)
    await web.start()
    try:
        await service.start()
        assert fake.identifies == [(0, 1)]
        assert len(fake.calls_to("PUT", "/commands")) == 2
        assert await process.readyz() == 200
        for guild in (fake.guild, extra):
            asked = await fake.slash(fake.user("alice"), "courses", guild=guild)
            await fake.reply(asked, "No courses are on offer yet")
    finally:
        await service.stop()
        await web.stop()


@pytest.mark.parametrize(
    ("discord", "expected"),
    [
        ({"shard_count": -1}, "[discord] shard_count must not be negative (0: unsharded), got -1"),
        ({"shard_ids": [0]}, "[discord] shard_ids needs shard_count"),
        (
            {"shard_count": 2, "shard_ids": [0, 2]},
            "[discord] shard_ids[1] must be from 0 to 1 (shard_count is 2), got 2",
        ),
        (
            {"shard_count": 2, "shard_ids": [-1]},
            "[discord] shard_ids[0] must be from 0 to 1 (shard_count is 2), got -1",
        ),
        ({"shard_count": 3, "shard_ids": [1, 1]}, "[discord] shard_ids lists shard 1 twice"),
        ({"shard_count": "2"}, "[discord] shard_count must be a whole number, got '2'"),
    ],
)
def test_bad_shard_config_names_the_key(discord: dict[str, Any], expected: str) -> None:
    """Impossible shard settings stop start-up with a message naming the key."""
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"discord": discord})
    assert expected in str(err.value)


def test_shards_from_the_environment() -> None:
    """MENTORBOT_DISCORD_SHARD_COUNT / _SHARD_IDS set them; the process owns what it lists."""
    env = {"MENTORBOT_DISCORD_SHARD_COUNT": "4", "MENTORBOT_DISCORD_SHARD_IDS": "2,3"}
    d = config_from_mapping({}, env=env).discord
    assert (d.shard_count, d.own_shards(), d.syncs_commands()) == (4, (2, 3), False)
    everything = config_from_mapping({"discord": {"shard_count": 3}}).discord
    assert everything.own_shards() == (0, 1, 2) and everything.syncs_commands()
    unsharded = config_from_mapping({}).discord
    assert unsharded.own_shards() == (0,) and unsharded.syncs_commands()
    with pytest.raises(ConfigError, match="MENTORBOT_DISCORD_SHARD_IDS must be a whole number"):
        config_from_mapping({}, env={"MENTORBOT_DISCORD_SHARD_IDS": "zero"})
