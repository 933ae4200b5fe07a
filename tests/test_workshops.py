"""Workshops (group sessions) through the chat: seats, the waitlist, leaving and cancelling,
attendance, ratings, reminders, and where the meeting link is shown."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.core.ledger import violations
from bot.core.users import Incoming
from storage.models import LedgerEntry, MentorProfile, Order, Workshop, WorkshopSeat
from tests.fakes.fake_stripe import StripeWorld
from tests.support import Harness, attempt, buy, snapshot

NEW = '/workshop new title="Testing with pytest" start="2026-03-05 18:00" seats={seats}'
LINK = "meet.jit.si/mentorbot-w"


async def new_workshop(h: Harness, seats: int = 2, extra: str = "", who: str = "ada") -> int:
    out = await h.send(who, NEW.format(seats=seats) + " " + extra)
    assert "workshop created" in out, out
    return int(out.split("#", 1)[1].split(" ", 1)[0])


async def credits_used(h: Harness) -> int:
    async with h.app.new_uow() as uow:
        found = await uow.session.execute(
            select(func.coalesce(func.sum(LedgerEntry.credits), 0)).where(
                LedgerEntry.kind.in_(["workshop_credit_used", "workshop_credit_returned"])
            )
        )
        return -int(found.scalar_one())


async def test_a_seat_is_taken_with_a_credit_and_shows_the_link(market: Harness) -> None:
    """Joining a paid workshop spends its credit, and the seat's reply carries the link."""
    await buy(market, "alice")
    wid = await new_workshop(market, extra="course=python-basics credits=1")
    out = await market.send("alice", f"/join {wid}")
    assert "You have a seat" in out and LINK in out, out
    assert "3 session credits left" in out, out
    assert await credits_used(market) == 1


async def test_freed_seat_goes_to_the_first_in_line_who_confirms(market: Harness) -> None:
    """A learner leaving early gets the credit back; the first waitlisted is offered the seat
    and confirms it with /join; the second stays in line."""
    for who in ("alice", "bob", "carol", "dan"):
        await buy(market, who)
    wid = await new_workshop(market, seats=2, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    out = await market.send("carol", f"/join {wid}")
    assert "number 1 on its waitlist" in out, out
    out = await market.send("dan", f"/join {wid}")
    assert "number 2 on its waitlist" in out, out
    out = await market.send("alice", f"/leave {wid}")
    assert "credits are back" in out, out
    assert "message for carol" in out and "A seat is free for you" in out, out
    out = await market.send("dan", f"/join {wid}")
    assert "number 1 on its waitlist" in out, out  # dan waits behind carol's offer
    out = await market.send("carol", f"/join {wid}")
    assert "You have a seat" in out and LINK in out, out
    assert await credits_used(market) == 2  # bob and carol; alice's came back


async def test_an_offer_not_confirmed_in_time_goes_to_the_next(
    market: Harness, clock: FakeClock
) -> None:
    """An offered seat left unconfirmed for workshops.confirm_minutes expires in the sweep:
    its learner is told and the next in line is offered it."""
    for who in ("alice", "bob", "carol"):
        await buy(market, who)
    wid = await new_workshop(market, seats=1, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    await market.send("carol", f"/join {wid}")
    await market.send("alice", f"/leave {wid}")
    clock.advance(timedelta(minutes=59))
    assert "did not confirm" not in await market.tick()
    clock.advance(timedelta(minutes=2))
    out = await market.tick()
    assert "You did not confirm the seat" in out, out
    assert "A seat is free for you" in out, out
    out = await market.send("bob", f"/join {wid}")
    assert "number 1 on its waitlist" in out or "full" in out, out
    out = await market.send("carol", f"/join {wid}")
    assert "You have a seat" in out, out


async def test_host_cancels_and_everyone_is_credited_back_and_told(market: Harness) -> None:
    """The host's cancellation returns every attendee's credits and tells them, and tells the
    waitlist too."""
    for who in ("alice", "bob", "carol"):
        await buy(market, who)
    wid = await new_workshop(market, seats=2, extra="course=python-basics credits=2")
    for who in ("alice", "bob", "carol"):
        await market.send(who, f"/join {wid}")
    assert await credits_used(market) == 4
    out = await market.send("ada", f"/workshop cancel {wid}")
    assert "2 attendees got their credits back" in out and "1 people on the waitlist" in out, out
    assert out.count("is cancelled by its host. Your 2 session credits are back.") == 2, out
    assert "which you were waiting for, is cancelled" in out, out
    assert await credits_used(market) == 0
    out = await market.send("alice", f"/join {wid}")
    assert "was cancelled" in out, out


async def test_only_the_host_or_an_admin_cancels_or_marks_attendance(
    market: Harness, clock: FakeClock
) -> None:
    """Another mentor and a learner are refused cancelling and marking attendance, and change
    nothing; an admin may."""
    await buy(market, "alice")
    wid = await new_workshop(market, seats=2, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    before = await snapshot(market, every_table=True)
    for who in ("linus", "alice"):
        out = await market.send(who, f"/workshop cancel {wid}")
        assert "Only the host of workshop" in out, out
    clock.advance(timedelta(days=4))
    for who in ("linus", "alice"):
        out = await market.send(who, f"/workshop attendance {wid} all")
        assert "Only the host of workshop" in out, out
    assert await snapshot(market, every_table=True) == before
    out = await market.send("admin", f"/workshop attendance {wid} all")
    assert "1 of 1 came" in out, out


async def test_only_attendees_see_the_link(market: Harness) -> None:
    """/workshops shows the meeting link to the seated learner and the host, to nobody else."""
    await buy(market, "alice")
    wid = await new_workshop(market)
    await market.send("alice", f"/join {wid}")
    assert LINK in await market.send("alice", "/workshops")
    assert LINK in await market.send("ada", "/workshops")
    other = await market.send("bob", "/workshops")
    assert f"#{wid}" in other and LINK not in other, other
    assert "1 of 2 seats left" in other, other


async def test_attendance_then_ratings_feed_the_hosts_average(
    market: Harness, clock: FakeClock
) -> None:
    """After it, the host marks who came; only those who came may rate, and their stars count
    in the host's average like a one-on-one session's."""
    for who in ("alice", "bob"):
        await buy(market, who)
    wid = await new_workshop(market, seats=2)
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    out = await market.send("alice", f"/workshop rate {wid} 5")
    assert "Only those who came" in out, out
    clock.advance(timedelta(days=3, hours=11))
    out = await market.tick()
    assert "Mark attendance" in out or "Who came?" in out, out
    out = await market.send("ada", f"/workshop attendance {wid}")
    seat = int(out.split("seat #", 1)[1].split(":", 1)[0])  # alice's
    out = await market.send("ada", f"/workshop attendance {wid} {seat}")
    assert "1 of 2 came" in out and "Rate it from 1 to 5" in out, out
    assert "Only those who came" in await market.send("bob", f"/workshop rate {wid} 1")
    out = await market.send("alice", f"/workshop rate {wid} 4")
    assert "You rated workshop" in out, out
    async with market.app.new_uow() as uow:
        ada = (
            (await uow.session.execute(select(MentorProfile).order_by(MentorProfile.id)))
            .scalars()
            .first()
        )
        assert ada is not None and ada.rating_count == 1 and ada.rating_sum == 4


async def test_reminders_reach_every_attendee_with_the_link(
    market: Harness, clock: FakeClock
) -> None:
    """The day before, every attendee and the host get a reminder with the link; a learner
    who is not in it gets none."""
    await buy(market, "alice")
    await buy(market, "bob")
    wid = await new_workshop(market, seats=3)
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    await market.send("carol", "/workshops")
    clock.advance(timedelta(days=2, hours=11))
    out = await market.tick()
    assert out.count(f"Reminder: workshop #{wid}") == 3, out
    assert LINK in out
    assert "carol" not in out.lower() or "Reminder" not in out.split("carol")[0][-5:]


async def test_a_seated_learner_cannot_be_booked_one_on_one_for_that_hour(
    market: Harness,
) -> None:
    """One person in one place: alice's workshop hour is not offered by /book with her mentor,
    and a workshop over a booked session is refused."""
    from tests.support import matched_pair

    request_id = await matched_pair(market)  # alice with ada
    out = await market.send("linus", '/workshop new title="Git" start="2026-03-03 20:00" seats=3')
    wid = int(out.split("#", 1)[1].split(" ", 1)[0])  # 18:00 UTC (Helsinki is UTC+2)
    await market.send("alice", f"/join {wid}")
    out = await market.send("alice", f"/book {request_id} 2026-03-03 18:00")
    assert "Booked" not in out, out
    out = await market.send("alice", f"/book {request_id} 2026-03-03 20:00")
    assert "Booked" in out, out
    out = await market.send(
        "mei", '/workshop new title="Data" start="2026-03-04 04:00" seats=3'
    )  # 20:00 UTC on the 3rd
    wid2 = int(out.split("#", 1)[1].split(" ", 1)[0])
    out = await market.send("alice", f"/join {wid2}")
    assert "already in a session or workshop" in out, out
    async with market.app.new_uow() as uow:
        n = await uow.session.execute(
            select(func.count(WorkshopSeat.id)).where(WorkshopSeat.workshop_id == wid2)
        )
        assert n.scalar_one() == 0


async def test_a_weekly_series_across_a_dst_change_reads_right_everywhere(
    market: Harness,
) -> None:
    """A weekly workshop at 18:00 in New York, across the US spring-forward (8 March 2026),
    stays at 18:00 for its host and moves an hour earlier for readers in London, Shanghai and
    Sydney, whose clocks did not change."""
    out = await market.send("ada", "/timezone America/New_York")
    out = await market.send("ada", "1")  # her weekly hours keep their local times
    out = await market.send(
        "ada", '/workshop new title="Weekly" start="2026-03-05 18:00" seats=5 weekly=2'
    )
    assert "2 weekly workshops created" in out, out
    assert "Thu 5 Mar 2026, 18:00 (America/New_York)" in out, out
    assert "Thu 12 Mar 2026, 18:00 (America/New_York)" in out, out
    expected = {
        "Europe/London": ("Thu 5 Mar 2026, 23:00", "Thu 12 Mar 2026, 22:00"),
        "Asia/Shanghai": ("2026年3月6日 周五 07:00", "2026年3月13日 周五 06:00"),
        "Australia/Sydney": ("Fri 6 Mar 2026, 10:00", "Fri 13 Mar 2026, 09:00"),
    }
    for who, (zone, (first, second)) in zip(("bob", "lin", "carol"), expected.items(), strict=True):
        if who == "lin":
            await market.send(who, "/language zh")
        await market.send(who, f"/timezone {zone}")
        out = await market.send(who, "/workshops")
        assert f"{first} ({zone})" in out and f"{second} ({zone})" in out, out


async def test_admin_stats_show_attendance_and_revenue_per_workshop(
    market: Harness, clock: FakeClock
) -> None:
    """/admin stats workshops shows each workshop's seats, who came and what its credits were
    worth (a card-paid credit of a 49.00 USD, four-session course is 12.25; demo ones count
    for nothing), and /admin workshops lists them for admins only."""
    from sqlalchemy import update

    from storage.models import Order

    for who in ("alice", "bob"):
        await buy(market, who)
    async with market.app.new_uow() as uow:  # alice paid by card, bob with the demo button
        await uow.session.execute(update(Order).where(Order.id == 1).values(provider="stripe"))
        await uow.commit()
    wid = await new_workshop(market, seats=3, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    clock.advance(timedelta(days=4))
    out = await market.send("ada", f"/workshop attendance {wid}")
    seat = int(out.split("seat #", 1)[1].split(":", 1)[0])
    await market.send("ada", f"/workshop attendance {wid} {seat}")
    out = await market.send("admin", "/admin stats workshops")
    assert "2 of 3 seated, 1 came, 1 absent · 2 credits · revenue $12.25" in out, out
    out = await market.send("admin", "/admin workshops")
    assert f"#{wid} Testing with pytest" in out and "2 of 3 seats, 0 waiting, 1 came" in out, out
    assert "Only marketplace admins" in await market.send("alice", "/admin workshops")


async def test_a_refund_cancels_the_seats_it_paid_and_the_line_moves_up(market: Harness) -> None:
    """Refunding the course a seat was paid with cancels that seat (the learner is told) and
    the next sweep offers it to the first in line."""
    for who in ("alice", "bob"):
        await buy(market, who)
    wid = await new_workshop(market, seats=1, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    out = await market.send("admin", "/admin refund 1")  # a credit spent on a seat is used
    assert "outside the refund policy" in out, out
    out = await market.send("admin", "/admin refund 1 force")
    assert "Order #1 refunded" in out, out
    assert "the course it was paid with was refunded" in out, out
    out = await market.tick()
    assert "message for bob" in out and "A seat is free for you" in out, out


async def test_deleteme_gives_up_seats_and_cancels_hosted_workshops(market: Harness) -> None:
    """A learner erasing their account frees their seat for the next in line; a host erasing
    theirs cancels their workshops and every attendee is credited back."""
    for who in ("alice", "bob", "carol"):
        await buy(market, who)
    wid = await new_workshop(market, seats=1, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    replies = await market.app.handle(Incoming("console", "alice", "alice", "/mydata"))
    exported = json.loads(replies[0].attachments[0].data)
    assert [s["workshop_id"] for s in exported["workshop_seats"]] == [wid]
    await market.send("alice", "/deleteme")
    await market.send("alice", "1")  # Yes, continue
    out = await market.send("alice", "delete")
    assert "message for bob" in out and "A seat is free for you" in out, out
    await market.send("bob", f"/join {wid}")
    await market.send(
        "linus", '/workshop new title="Git" start="2026-03-06 18:00" seats=2 course=python-basics'
    )
    await market.send("carol", "/join 2")
    await market.send("linus", "/deleteme")
    await market.send("linus", "1")
    out = await market.send("linus", "delete")
    assert "cancelled by its host. Your 1 session credit is back" in out, out


async def test_leaving_inside_the_window_asks_once_and_uses_the_credit(
    market: Harness, clock: FakeClock
) -> None:
    """Leaving less than sessions.cancel_window_hours before the start asks first, and then
    keeps the credit used, as a late one-on-one cancellation does; the seat still frees up."""
    await buy(market, "alice")
    wid = await new_workshop(market, seats=1, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    clock.advance(timedelta(days=3))  # 10 h before it
    out = await market.send("alice", f"/leave {wid}")
    assert "Leave anyway?" in out, out
    assert await credits_used(market) == 1
    out = await market.send("alice", f"/leave {wid} yes")
    assert out.strip() == f"You left workshop #{wid}.", out
    assert await credits_used(market) == 1
    assert "0 of 1 seats left" not in await market.send("bob", "/workshops")


async def test_a_workshop_sold_alone_is_paid_through_the_order_flow(market: Harness) -> None:
    """A workshop with a price of its own is ordered like a course (demo payment here; Stripe
    and Stars take the same order), the payment is in the ledger and takes the seat itself,
    with no second Join; it never appears in the catalogue."""
    wid = await new_workshop(market, seats=2, extra="price=15.00 currency=USD")
    assert "$15.00" not in await market.send("alice", "/courses")
    out = await market.send("alice", f"/join {wid}")
    assert f"A seat in workshop #{wid} costs $15.00" in out, out
    out = await market.send("alice", f"/pay {order_of(out)}")
    assert "is paid and yours" in out and LINK in out, out
    assert "Find a mentor" not in out and "mentor session" not in out, out
    out = await market.send("alice", f"/join {wid}")
    assert "You already have a seat" in out, out
    async with market.app.new_uow() as uow:
        paid = await uow.session.execute(
            select(LedgerEntry.amount_minor).where(LedgerEntry.kind == "order_paid")
        )
        assert list(paid.scalars()) == [1500]
    assert await credits_used(market) == 1
    out = await market.send(
        "bob", '/workshop new title=X start="2026-03-05 18:00" seats=2 price=abc'
    )
    assert "price must be an amount in USD" in out, out


def order_of(out: str) -> int:
    return int(out.split("Order #", 1)[1].split(":", 1)[0])


async def earnings(h: Harness) -> dict[str, int]:
    """The ledger's earnings and fees by kind, net of nothing, and what the check finds."""
    async with h.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(LedgerEntry.kind, func.sum(LedgerEntry.amount_minor))
            .where(LedgerEntry.seat_id.is_not(None))
            .group_by(LedgerEntry.kind)
        )
        assert await violations(uow) == []
        return {str(k): int(a) for k, a in rows}


async def test_a_paid_seat_waits_when_the_workshop_filled_meanwhile_then_is_refunded(
    market: Harness, clock: FakeClock
) -> None:
    """Two learners ordering the last seat: the first payment takes it, the second puts its
    payer on the waitlist (told so); when no seat frees up by the start, the sweep refunds
    the second payment through the order's provider."""
    wid = await new_workshop(market, seats=1, extra="price=15.00 currency=USD")
    alice = order_of(await market.send("alice", f"/join {wid}"))
    bob = order_of(await market.send("bob", f"/join {wid}"))
    assert "is paid and yours" in await market.send("alice", f"/pay {alice}")
    out = await market.send("bob", f"/pay {bob}")
    assert "filled up while you paid. You are number 1 on its waitlist" in out, out
    assert "your payment is refunded" in out and LINK not in out, out
    assert "is refunded" not in await market.tick()  # still in line before the start
    clock.advance(timedelta(days=3, hours=11))
    out = await market.tick()
    assert f"Order #{bob} is refunded ($15.00)" in out, out
    assert f"Order #{alice} is refunded" not in out, out
    async with market.app.new_uow() as uow:
        refunded = await uow.session.execute(
            select(LedgerEntry.order_id).where(LedgerEntry.kind == "order_refunded")
        )
        assert list(refunded.scalars()) == [bob]
        assert await violations(uow) == []
    assert f"Order #{bob} is refunded" not in await market.tick()  # once


async def test_the_host_earns_for_attended_paid_seats_and_a_refund_reverses_it(
    market: Harness, clock: FakeClock
) -> None:
    """A seat paid with a course credit earns the host one session's earning, less the
    platform fee, when the host marks it attended (not at joining); correcting it to absent
    reverses it; a refund of the order after the workshop reverses the earning it paid;
    /admin earnings counts seats as sessions, and the ledger's checks hold throughout."""
    from bot.sessions.earnings import session_earning, session_fee

    for who in ("alice", "bob"):
        await buy(market, who)
    wid = await new_workshop(market, seats=2, extra="course=python-basics")
    await market.send("alice", f"/join {wid}")
    await market.send("bob", f"/join {wid}")
    assert await earnings(market) == {}
    async with market.app.new_uow() as uow:
        order = (await uow.session.execute(select(Order).order_by(Order.id))).scalars().first()
        assert order is not None
        fee = market.app.config.payments.platform_fee_percent
        earn, cut = session_earning(order, fee), session_fee(order, fee)
    clock.advance(timedelta(days=4))
    out = await market.send("ada", f"/workshop attendance {wid}")
    alice_seat = int(out.split("seat #", 1)[1].split(":", 1)[0])
    await market.send("ada", f"/workshop attendance {wid} {alice_seat}")
    assert await earnings(market) == {"mentor_earning": earn, "platform_fee": cut}
    out = await market.send("admin", "/admin earnings")
    assert "from 1 session" in out, out
    await market.send("ada", f"/workshop attendance {wid} all")
    assert await earnings(market) == {"mentor_earning": 2 * earn, "platform_fee": 2 * cut}
    bob_seat = alice_seat + 1
    await market.send("ada", f"/workshop attendance {wid} {bob_seat}")  # alice did not come
    assert await earnings(market) == {
        "mentor_earning": 2 * earn,
        "platform_fee": 2 * cut,
        "earning_reversed": -earn,
        "fee_reversed": -cut,
    }
    await market.send("ada", f"/workshop attendance {wid} all")  # she did after all
    assert (await earnings(market))["mentor_earning"] == 3 * earn
    out = await market.send("admin", "/admin refund 2 force")  # bob's course
    assert "Order #2 refunded" in out, out
    found = await earnings(market)
    assert found["mentor_earning"] + found["earning_reversed"] == earn, found
    assert "from 1 session" in await market.send("admin", "/admin earnings")
    csv = await market.app.handle(Incoming("console", "admin", "admin", "/admin earnings csv"))
    data = csv[0].attachments[0].data.decode()
    assert data.splitlines()[0].endswith("workshop_seat_id") and f",{bob_seat}" in data, data


async def test_a_sold_alone_seat_earns_its_host_and_a_cancel_gives_the_money_back(
    market: Harness, clock: FakeClock
) -> None:
    """A seat bought alone earns the host its price less the fee once attended; a workshop the
    host cancels earns nothing and its paid seats are refunded through their provider."""
    held = await new_workshop(market, seats=2, extra="price=15.00 currency=USD")
    await market.send("alice", f"/pay {order_of(await market.send('alice', f'/join {held}'))}")
    out = await market.send(
        "ada", '/workshop new title="Later" start="2026-03-06 18:00" seats=2 price=20.00'
    )
    later = int(out.split("#", 1)[1].split(" ", 1)[0])
    bob = order_of(await market.send("bob", f"/join {later}"))
    await market.send("bob", f"/pay {bob}")
    out = await market.send("ada", f"/workshop cancel {later}")
    assert "is cancelled by its host" in out, out
    out = await market.tick()
    assert f"Order #{bob} is refunded ($20.00)" in out, out
    clock.advance(timedelta(days=4))
    await market.send("ada", f"/workshop attendance {held} all")
    fee = market.app.config.payments.platform_fee_percent
    found = await earnings(market)
    assert found == {"mentor_earning": 1500 * (100 - fee) // 100, "platform_fee": 1500 * fee // 100}


async def test_a_card_payment_for_a_seat_takes_it_from_the_webhook(world: StripeWorld) -> None:
    """Paying a seat by card: the signed checkout.session.completed takes the seat through the
    one fulfilment, and the learner is told the seat is theirs (not "find a mentor")."""
    out = await world.h.send(
        "ada", '/workshop new title="Cards" start="2026-03-05 18:00" seats=1 price=15.00'
    )
    wid = int(out.split("#", 1)[1].split(" ", 1)[0])
    out = await world.h.send("alice", f"/join {wid}")
    session_id = re.search(r"checkout\.stripe\.com/c/pay/(\S+)", out)
    assert session_id, out
    paid = world.fake.pay(session_id.group(1))
    status, body = await world.send(world.fake.event("checkout.session.completed", paid))
    assert (status, body["outcome"]) == (200, "fulfilled")
    output = await world.delivered()
    assert f"Your seat in workshop #{wid} Cards" in output and "is paid and yours" in output
    assert "Payment received for order" not in output
    assert await world.count(WorkshopSeat, WorkshopSeat.status == "seated") == 1


async def test_bad_workshop_lines_are_refused_politely_and_change_nothing(market: Harness) -> None:
    """A start in the past, years ahead or in a daylight-saving gap, an unknown field, zero
    seats, a learner hosting: each refused with what was wrong, nothing stored."""
    await market.send("alice", "/workshops")
    before = await snapshot(market, every_table=True)
    cases = {
        'start="2026-03-01 18:00" seats=2': "That time has passed",
        'start="9999-12-31 23:59" seats=2 weekly=12': "at most a year ahead",
        'start="2026-03-29 01:30" seats=2': "does not exist in Europe/London",
        'start="2026-03-05 18:00" seats=0': "Seats must be from 1",
        'start="2026-03-05 18:00" seats=2 colour=red': "Unknown workshop field 'colour'",
        'start="tomorrow" seats=2': "YYYY-MM-DD HH:MM",
        'start="2026-03-05 18:00" seats=2 course=python-basics price=5': "not both",
    }
    for line, expected in cases.items():
        out = await market.send("ada", f'/workshop new title="T" {line}')
        assert expected in out, (line, out)
    out = await market.send("alice", '/workshop new title="T" start="2026-03-05 18:00" seats=2')
    assert "Only approved mentors" in out, out
    assert await snapshot(market, every_table=True) == before


@pytest.mark.parametrize(
    ("lang", "field", "expected"),
    [
        ("en", "title", "A workshop title can be at most 100 characters; yours has 101."),
        ("zh", "title_zh", "研讨会标题最多 100 个字符，你的有 101 个。未保存任何内容"),
    ],
)
async def test_a_workshop_title_longer_than_an_event_name_is_refused_not_cut(
    market: Harness, lang: str, field: str, expected: str
) -> None:
    """A title (English or Chinese) of 101 characters, one more than a Discord event's name
    takes, is refused naming the limit and creates nothing; one of 100 is kept whole."""
    await market.send("ada", f"/language {lang}")
    long = "工" * 101 if field == "title_zh" else "t" * 101
    line = f'/workshop new title="T" start="2026-03-05 18:00" seats=2 {field}="{{}}"'
    sent = await attempt(market, "ada", line.format(long))
    assert sent.outcome == "refused" and sent.unchanged, sent.output
    assert expected in sent.output and long[:41] not in sent.output
    await market.send("ada", line.format(long[:100]))
    async with market.app.new_uow() as uow:
        found = await uow.session.execute(select(Workshop.title_en, Workshop.title_zh))
        assert long[:100] in found.one()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "A comment can be at most 1000 characters; yours has 1001. Nothing was saved"),
        ("zh", "评语最多 1000 个字符，你的有 1001 个。未保存任何内容"),
    ],
)
async def test_a_workshop_comment_over_the_limit_is_refused_not_cut(
    market: Harness, clock: FakeClock, lang: str, expected: str
) -> None:
    """A workshop rating whose comment is 1,001 characters is refused naming the limit and
    changes nothing (no stars either); a comment of 1,000 is kept whole."""
    await buy(market, "alice")
    wid = await new_workshop(market, seats=2)
    await market.send("alice", f"/join {wid}")
    clock.advance(timedelta(days=4))
    await market.send("ada", f"/workshop attendance {wid} all")
    await market.send("alice", f"/language {lang}")
    sent = await attempt(market, "alice", f"/workshop rate {wid} 4 " + "c" * 1001)
    assert sent.outcome == "refused" and sent.unchanged, sent.output
    assert expected in sent.output and "c" * 41 not in sent.output
    await market.send("alice", f"/workshop rate {wid} 4 " + "c" * 1000)
    async with market.app.new_uow() as uow:
        found = await uow.session.execute(select(WorkshopSeat.stars, WorkshopSeat.comment))
        assert found.one() == (4, "c" * 1000)


async def test_a_bare_or_mistyped_workshop_command_shows_what_each_action_does(
    market: Harness,
) -> None:
    """`/workshop` alone, or with an action it does not know, lists every action with how it
    is typed and what it does (in Chinese, with the Chinese words), and changes nothing."""
    before = await snapshot(market)
    out = await market.send("ada", "/workshop")
    assert out.startswith("What would you like to do with workshops?")
    assert "/workshop cancel WORKSHOP — Cancel a workshop: everyone is credited back" in out
    assert "/workshop rate WORKSHOP STARS [COMMENT…] — Rate a workshop you attended" in out
    assert "Missing argument" not in out
    out = await market.send("ada", "/workshop fly")
    assert out.startswith("Unknown action 'fly'. Usage:\n/workshop new title=… start=…"), out
    await market.send("ada", "/language zh")
    out = await market.send("ada", "/workshop")
    moved = "/workshop move WORKSHOP START… — 把研讨会改到其他时间"
    assert f"{moved}\n    也可输入中文：改期（move）" in out
    assert await snapshot(market) == before
