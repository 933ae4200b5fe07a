"""Money and trust hold under any sequence of actions: the state machine of
tests/model_money.py, run briefly on SQLite and PostgreSQL (bench/model_money.py runs it long).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from bot.app import Marketplace
from bot.core import ledger
from bot.core.users import Incoming, known_user
from storage.models import Order
from tests.fakes.fake_stripe import StripeWorld
from tests.model_money import Rig, machine_for
from tests.support import (
    AppFactory,
    Database,
    Harness,
    buy,
    harness_for,
    make_config,
    matched_pair,
    snapshot,
)

Roles = frozenset[str] | None

SHORT = settings(
    max_examples=25,
    stateful_step_count=40,
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


# -- counterexamples the machine found, shrunk, as plain tests ---------------------------------

ADMIN_ROLE = frozenset({"999"})


async def as_user(app: Marketplace, who: tuple[str, str], line: str, roles: Roles = None) -> str:
    replies = await app.handle(Incoming(who[0], who[1], who[1], line, "en", roles))
    return "\n".join(r.text for r in replies)


async def is_admin(app: Marketplace, who: tuple[str, str]) -> bool:
    async with app.new_uow() as uow:
        found = await known_user(uow, Incoming(who[0], who[1], who[1], ""), app.clock.now())
    assert found is not None
    return "admin" in found[1]


async def linked(app: Marketplace, first: tuple[str, str], then: tuple[str, str]) -> None:
    """`first` asks for a link code and `then` joins with it."""
    code = (await as_user(app, first, "/link")).split("/link ", 1)[1].split(" ", 1)[0]
    assert "Linked" in await as_user(app, then, f"/link {code} yes")


async def test_a_config_admin_stays_admin_after_writing_from_a_linked_discord_account(
    make_app: AppFactory,
) -> None:
    """An admin listed in `bot.admins` who linked a Discord account and writes in the guild
    without an admin role there is still an admin: the config lists them."""
    app = await make_app(make_config(discord={"admin_role_ids": [999]}))
    admin, member = ("console", "admin"), ("discord", "601")
    await as_user(app, admin, "/start")
    await linked(app, admin, member)
    await as_user(app, member, "/help", frozenset({"1"}))
    assert await is_admin(app, member)
    assert "Only marketplace admins" not in await as_user(app, member, "/admin disputes")


async def test_two_admins_linked_are_both_admins_again_after_unlinking(
    make_app: AppFactory,
) -> None:
    """A Discord admin (by guild role) who links the config's console admin and unlinks it
    again leaves both accounts admins: neither loses the role the other also had."""
    app = await make_app(make_config(discord={"admin_role_ids": [999]}))
    admin, member = ("console", "admin"), ("discord", "601")
    await as_user(app, member, "/help", ADMIN_ROLE)
    await as_user(app, admin, "/start")
    await linked(app, admin, member)
    out = await as_user(app, member, "/unlink")
    console_id = out.split("#", 1)[1].split(" console", 1)[0]
    assert "Unlinked" in await as_user(app, member, f"/unlink {console_id}")
    assert await is_admin(app, admin) and await is_admin(app, member)
    assert "Only marketplace admins" not in await as_user(app, admin, "/admin disputes")


async def test_an_account_leaving_takes_the_admin_role_its_discord_identity_last_got(
    make_app: AppFactory,
) -> None:
    """Discord 601 is linked into bob and says it holds no admin role; bob's account links into
    the config's console admin; then 601 says it holds the admin role (on an account already
    admin, in a message that is refused). When the admin unlinks their own identity, bob's
    account leaves with 601, and it is an admin: the last thing Discord said about 601 goes
    with 601."""
    app = await make_app(make_config(discord={"admin_role_ids": [999]}))
    admin, bob, member = ("console", "admin"), ("console", "bob"), ("discord", "601")
    await as_user(app, bob, "/start")
    await linked(app, member, bob)
    await as_user(app, member, "/help", frozenset({"1"}))
    assert not await is_admin(app, bob)
    await as_user(app, admin, "/start")
    await linked(app, bob, admin)
    refused = await as_user(app, member, "/unlink 999", ADMIN_ROLE)  # refused, yet Discord spoke
    assert "no platform #999" in refused
    out = await as_user(app, admin, "/unlink")
    own = re.findall(r"#(\d+) console admin", out)[0]
    assert "Unlinked" in await as_user(app, admin, f"/unlink {own}")
    assert await is_admin(app, admin) and await is_admin(app, member) and await is_admin(app, bob)
    assert "Only marketplace admins" not in await as_user(app, member, "/admin disputes")
    await as_user(app, member, "/help", frozenset({"1"}))  # and a later word still decides
    assert not await is_admin(app, bob)


async def test_a_console_grant_stays_with_the_console_identity_through_link_and_unlink(
    make_app: AppFactory,
) -> None:
    """`/as bob admin` is the console's word about console bob: linked, a Discord member saying
    it holds no admin role does not take it away, and unlinked, bob stays an admin while the
    Discord account, which nothing made admin, leaves without the role."""
    app = await make_app(make_config(discord={"admin_role_ids": [999]}))
    bob, member = ("console", "bob"), ("discord", "601")
    await harness_for(app).chat.become("bob", "admin")
    await as_user(app, member, "/help", frozenset({"1"}))
    await linked(app, member, bob)
    await as_user(app, member, "/help", frozenset({"1"}))
    assert await is_admin(app, bob)
    out = await as_user(app, bob, "/unlink")
    discord_id = re.findall(r"#(\d+) discord 601", out)[0]
    assert "Unlinked" in await as_user(app, bob, f"/unlink {discord_id}")
    assert await is_admin(app, bob) and not await is_admin(app, member)
    assert "Only marketplace admins" in await as_user(app, member, "/admin disputes")


async def test_a_mentor_and_a_learner_busy_at_the_same_time_cannot_become_one_account(
    market: Harness,
) -> None:
    """Linking a mentor who teaches at 09:00 with a learner who is taught at 09:00 elsewhere is
    refused, changing nothing: one person cannot be in both sessions."""
    for learner, mentor in (("alice", "ada"), ("bob", "linus")):
        request_id = await matched_pair(market, learner, mentor)
        await market.send(learner, f"/book {request_id}")
        assert "09:00" in await market.send(learner, "1")
    code = (await market.send("bob", "/link")).split("/link ", 1)[1].split(" ", 1)[0]
    before = await snapshot(market)
    out = await market.send("ada", f"/link {code} yes")
    assert "Both accounts have a session booked at Mon 2 Mar 2026, 09:00" in out
    assert await snapshot(market) == before


async def erase(h: Harness, who: str) -> None:
    await h.send(who, "/deleteme")
    await h.send(who, "yes")
    assert "Your personal data is erased" in await h.send(who, "delete")


async def test_a_paid_order_of_an_erased_account_can_still_be_refunded(market: Harness) -> None:
    """Refunding the order of someone who erased their account marks it refunded and posts the
    refund (it used to give the money back, then fail on the course /deleteme had revoked,
    leaving the order paid in the books)."""
    await buy(market, "alice")
    await erase(market, "alice")
    assert "Order #1 refunded" in await market.send("admin", "/admin refund 1")
    async with market.app.new_uow() as uow:
        order = await uow.get(Order, 1)
        assert order is not None and order.status == "refunded"
        assert await ledger.order_balance(uow, 1) == (4900, 4900)


async def test_stripe_reporting_a_refund_for_an_erased_account_applies_it(
    world: StripeWorld,
) -> None:
    """A refund made in Stripe's dashboard for the order of someone who erased their account
    is applied (it used to be answered 500 for Stripe to retry for days, never applying)."""
    order_id, session_id = await world.buy("alice")
    paid = world.fake.pay(session_id)
    assert (await world.send(world.fake.event("checkout.session.completed", paid)))[0] == 200
    await erase(world.h, "alice")
    charge = world.fake.refund_charge(paid["payment_intent"])
    status, body = await world.send(world.fake.event("charge.refunded", charge))
    assert (status, body["outcome"]) == (200, "revoked")
    assert (await world.order(order_id)).status == "refunded"
