"""The model-based test of money and trust: a Hypothesis state machine that drives the whole
marketplace (chat commands through `Marketplace.handle`, signed Stripe webhooks over loopback
HTTP, Telegram Stars payments through the front door) with random sequences of actions, and
after every step checks what must hold whatever happened before:

- for every order, refunds ≤ paid, and an order is paid (or refunded) exactly when the ledger
  holds its payment;
- what Stripe and Telegram gave back is what the ledger says was refunded (once Stripe's
  reports were delivered);
- credits granted = the sessions the order bought; credits left = the ledger's sum = the
  enrollment's balance, never below zero, and left + sessions holding a credit ≤ bought; a
  revoked course has no sessions to come;
- each session earns its mentor at most once, only when completed, only from a paid and
  unrefunded order; a refund after earnings reverses them;
- nobody is in two sessions at the same time, as mentor or learner; an enrollment has at most
  one request in play;
- a user holds the admin role exactly when their platforms and the config give it now;
- an identity belongs to exactly one live user;
- nobody is ever answered "something went wrong", and no webhook is answered 500;
- `bot.core.ledger.violations` finds nothing, and the all-time totals `/admin stats` reads
  from the kept sums of the settled past equal every entry summed.

`tests/test_model_money.py` runs it briefly on SQLite and PostgreSQL; `bench/model_money.py`
runs it long. Both build a `Rig` (one event loop, one migrated database, emptied before each
example) and the machine class `machine_for(rig)` returns.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import stripe
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import func, select

from bot.app import Marketplace
from bot.core import ledger
from bot.core.clock import FakeClock
from bot.core.errors import BadInput
from bot.core.i18n import _
from bot.core.replies import Reply
from bot.core.states import LIVE_REQUEST_STATES
from bot.core.users import Incoming
from bot.core.web import WebServer
from bot.providers.stars.payment import (
    StarsPayments,
    check_checkout,
    invoice_payload,
    record_payment,
)
from bot.providers.stripe.checkout import StripePayments
from bot.providers.stripe.webhook import StripeWebhook
from bot.runtime.bootstrap import payment_providers
from bot.runtime.demo_data import seed_demo
from bot.subscriptions.lifecycle import SUBSCRIPTION_PROVIDER
from storage.migrate import upgrade
from storage.models import (
    Base,
    Course,
    Enrollment,
    Identity,
    LedgerEntry,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    RequestOffer,
    User,
    UserRole,
)
from tests.fakes.fake_stripe import (
    SECRET_KEY,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    FakeStripe,
    stripe_section,
)
from tests.model_subscriptions import PLAN_LINES, SubscriptionSteps, subscriptions_broken
from tests.support import START, Database, make_config

T = TypeVar("T")

ADMIN = ("console", "admin")
DISCORD_ADMIN_ROLE = "999"
LEARNERS = [("console", "alice"), ("console", "bob"), ("telegram", "501"), ("discord", "601")]
MENTORS = [("console", "ada"), ("console", "linus"), ("console", "mei")]
PEOPLE = [*LEARNERS, *MENTORS, ADMIN]
COURSES = ["python-basics", "git-teamwork"]
SIDES = ["learner", "mentor", "other"]
# How a session can end: who says what, in that order ("mentor" sends /complete or /noshow,
# "learner" /outcome …); a side that says nothing leaves it to the other or to an admin.
ENDINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "agreed": (("mentor", "/complete"), ("learner", "/outcome {} completed")),
    "learner first": (("learner", "/outcome {} completed"), ("mentor", "/complete")),
    "mentor only": (("mentor", "/complete"),),
    "late claim": (("mentor", "/complete"), ("learner", "/outcome {} noshow")),
    "disputed": (("learner", "/outcome {} noshow"), ("mentor", "/complete")),
    "disputed the other way": (("learner", "/outcome {} completed"), ("mentor", "/noshow")),
    "no-show": (("mentor", "/noshow"),),
    "learner says no-show": (("learner", "/outcome {} noshow"),),
}
SORRY = "something went wrong"
# What a jump of the clock can be: within the hour an order lives, past the 1 h lead and the
# 24 h cancellation window, past the 14-day refund window; March 2026 holds the US (8th) and
# EU (29th) daylight-saving changes, so a few jumps cross them.
JUMPS = [
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=25),
    timedelta(days=3),
    timedelta(days=15),
]
EU_SUMMER_TIME_EVE = datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # the change is 29 March, 01:00 UTC
EDITS = [
    "price=59.00",
    "sessions=3",
    "sessions=1",
    "currency=EUR price=45.00",
    "stars=250",
    "stars=0",
]


def config(stripe_api: str) -> Any:
    """Every way to pay at once: demo, Stripe (the fake), Telegram Stars; Discord admin roles."""
    return make_config(
        payments={"demo": True},
        stripe=stripe_section(stripe_api),
        telegram={"token": "123:fake", "stars": True},
        discord={"admin_role_ids": [int(DISCORD_ADMIN_ROLE)]},
    )


class Rig:
    """What examples share: an event loop and a migrated database, emptied per example."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.runner = asyncio.Runner()
        self.engine: Any = None
        self.http: aiohttp.ClientSession | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(work)

    async def open(self) -> None:
        self.engine = self.database.engine()
        await upgrade(self.engine)
        self.http = aiohttp.ClientSession()

    async def empty(self) -> None:
        """Delete every row (children first); ids go on counting, which nothing relies on, and
        on PostgreSQL this is much quicker than TRUNCATE on tables this small."""
        async with self.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())

    def close(self) -> None:
        async def shut() -> None:
            if self.http is not None:
                await self.http.close()
            if self.engine is not None:
                await self.engine.dispose()

        self.run(shut())
        self.runner.close()


@dataclass
class World:
    """One example's marketplace: its clock, fake Stripe, webhook server and Stars refunds."""

    app: Marketplace
    clock: FakeClock
    stripe: FakeStripe
    payments: StripePayments
    stars: StarsPayments
    web: WebServer
    stars_refunds: list[tuple[str, str]] = field(default_factory=list)
    stars_refusing: bool = False  # the Telegram refund call fails (as the adapter's would)
    # editUserStarSubscription as Telegram last heard it: first charge id -> is_canceled.
    stars_cancelled: dict[str, bool] = field(default_factory=dict)
    stripe_trouble: bool = False  # Stripe's API was made to fail at least once


async def open_world(rig: Rig) -> World:
    await rig.empty()
    clock = FakeClock(START)
    fake = FakeStripe(clock.now, api_key=SECRET_KEY)
    await fake.start()
    cfg = config(fake.url)
    providers = payment_providers(cfg, clock)
    app = Marketplace(cfg, rig.engine, clock, providers)
    payments = next(p for p in providers if isinstance(p, StripePayments))
    stars = next(p for p in providers if isinstance(p, StarsPayments))
    web = WebServer("127.0.0.1", 0)
    web.add_route("POST", WEBHOOK_PATH, StripeWebhook(app, payments).handle)
    await web.start()
    world = World(app, clock, fake, payments, stars, web)

    async def refund_stars(payer: str, charge_id: str) -> None:
        if world.stars_refusing:
            raise BadInput(
                _(
                    "Telegram refused the refund: {reason}. Nothing was changed.",
                    reason="CHARGE_NOT_FOUND",
                )
            )
        world.stars_refunds.append((payer, charge_id))

    async def edit_stars(payer: str, charge_id: str, canceled: bool) -> None:
        world.stars_cancelled[charge_id] = canceled

    stars.connect(refund_stars, edit_stars)
    await seed_demo(app)
    for slug, stars in (("python-basics", 250), ("git-teamwork", 100)):
        await app.handle(Incoming(*ADMIN, "admin", f"/admin course edit {slug} stars={stars}"))
    for line in PLAN_LINES:
        await app.handle(Incoming(*ADMIN, "admin", line))
    return world


async def close_world(world: World) -> None:
    await world.web.stop()
    await world.payments.close()
    await world.stripe.stop()


def machine_for(rig: Rig) -> type[RuleBasedStateMachine]:
    """The state machine class, its examples run on `rig`."""

    class MoneyMachine(SubscriptionSteps):
        def __init__(self) -> None:
            super().__init__()
            self.world = rig.run(open_world(rig))
            self.last: dict[tuple[str, str], list[Reply]] = {}
            self.events: list[dict[str, Any]] = []
            self.charges = 0
            # Invoice payload, stars, charge id, a subscription's expiration date.
            self.stars_paid: list[tuple[str, int, str, datetime | None]] = []
            # The last roles a Discord message said its sender has (True: an admin role).
            self.discord_says: dict[str, bool] = {}
            self.problems: list[str] = []

        def teardown(self) -> None:
            rig.run(close_world(self.world))

        # -- plumbing -------------------------------------------------------------------------

        def run(self, work: Awaitable[T]) -> T:
            async def wrapped() -> T:
                return await work

            return rig.run(wrapped())

        def send(self, who: tuple[str, str], line: str, roles: frozenset[str] | None = None) -> str:
            platform, external = who
            msg = Incoming(platform, external, external, line, "en", roles)
            replies = self.run(self.world.app.handle(msg))
            self.last[who] = replies
            out = "\n".join(r.text for r in replies)
            if SORRY in out.lower():
                self.problems.append(f"{who} {line!r} answered: {out}")
            if platform == "discord" and roles is not None:
                self.discord_says[external] = DISCORD_ADMIN_ROLE in roles
            return out

        def press(self, who: tuple[str, str], index: int) -> str:
            choices = [c for r in self.last.get(who, []) for c in r.choices if c.payload]
            if not choices:
                return ""
            return self.send(who, choices[index % len(choices)].payload)

        def ids(self, model: Any, *where: Any) -> list[int]:
            async def load() -> list[int]:
                async with self.world.app.new_uow() as uow:
                    stmt = select(model.id).order_by(model.id)
                    for clause in where:
                        stmt = stmt.where(clause)
                    return [int(i) for i in (await uow.session.execute(stmt)).scalars()]

            return self.run(load())

        def pick(self, model: Any, index: int, *where: Any) -> int:
            found = self.ids(model, *where)
            return found[index % len(found)] if found else index + 1

        async def _order(self, order_id: int) -> Order | None:
            async with self.world.app.new_uow() as uow:
                order = await uow.get(Order, order_id)
                if order is not None:
                    uow.session.expunge(order)
                return order

        async def _post(self, event: dict[str, Any]) -> int:
            payload = json.dumps(event)
            timestamp = int(self.world.clock.now().timestamp())
            header = stripe.WebhookSignature.generate_signature_header(
                payload, WEBHOOK_SECRET, timestamp
            )
            headers = {"Content-Type": "application/json", "Stripe-Signature": header}
            url = f"http://127.0.0.1:{self.world.web.port}{WEBHOOK_PATH}"
            assert rig.http is not None
            async with rig.http.post(url, data=payload.encode(), headers=headers) as r:
                await r.read()
                return r.status

        # -- who is who -----------------------------------------------------------------------

        def actor(self, user_id: int | None) -> tuple[str, str] | None:
            """A platform identity of the user, to write as them (None: they have none)."""

            async def load() -> tuple[str, str] | None:
                async with self.world.app.new_uow() as uow:
                    row = (
                        await uow.session.execute(
                            select(Identity.platform, Identity.external_id)
                            .where(Identity.user_id == user_id)
                            .order_by(Identity.id)
                        )
                    ).first()
                    return (str(row[0]), str(row[1])) if row else None

            return self.run(load())

        def session_side(self, session_id: int, side: str) -> tuple[str, str] | None:
            async def load() -> tuple[int | None, int | None]:
                async with self.world.app.new_uow() as uow:
                    s = await uow.get(MentorSession, session_id)
                    if s is None:
                        return None, None
                    mentor = await uow.get(MentorProfile, s.mentor_id)
                    return s.learner_id, mentor.user_id if mentor else None

            learner, mentor = self.run(load())
            return self.actor(learner if side == "learner" else mentor)

        def order_owner(self, order_id: int) -> tuple[str, str] | None:
            found = self.run(self._order(order_id))
            return self.actor(found.user_id) if found else None

        def as_side(
            self, side: str, other: tuple[str, str], right: tuple[str, str] | None
        ) -> tuple[str, str]:
            """The right person for `side` ("other": anyone, usually refused)."""
            return right if side != "other" and right is not None else other

        # -- buying and paying ----------------------------------------------------------------

        @rule(who=st.sampled_from(PEOPLE), course=st.sampled_from(COURSES))
        def buy(self, who: tuple[str, str], course: str) -> None:
            self.send(who, f"/buy {course}")

        @rule(
            who=st.sampled_from(LEARNERS),
            course=st.sampled_from(COURSES),
            how=st.sampled_from(["demo", "stripe", "stars"]),
        )
        def buy_and_pay(self, who: tuple[str, str], course: str, how: str) -> None:
            """A learner buys a course and pays at once: demo, by card or in Stars."""
            before = set(self.ids(Order))
            self.send(who, f"/buy {course}")
            new = sorted(set(self.ids(Order)) - before)
            if not new:
                return
            if how == "demo":
                self.send(who, f"/pay {new[0]}")
            elif how == "stripe":
                event = self._checkout_completed(new[0], paid=True)
                if event is not None:
                    self._deliver(event)
            else:
                self._pay_stars(new[0], wrong_amount=False)

        @rule(
            who=st.sampled_from(PEOPLE),
            order=st.integers(0, 7),
            side=st.sampled_from(["owner", "owner", "other"]),
        )
        def pay_demo(self, who: tuple[str, str], order: int, side: str) -> None:
            order_id = self.pick(Order, order)
            self.send(self.as_side(side, who, self.order_owner(order_id)), f"/pay {order_id}")

        @rule(
            who=st.sampled_from(PEOPLE),
            order=st.integers(0, 7),
            side=st.sampled_from(["owner", "other"]),
        )
        def cancel_order(self, who: tuple[str, str], order: int, side: str) -> None:
            order_id = self.pick(Order, order)
            who = self.as_side(side, who, self.order_owner(order_id))
            self.send(who, f"/cancelorder {order_id}")

        def _checkout_completed(self, order_id: int, paid: bool) -> dict[str, Any] | None:
            found = self.run(self._order(order_id))
            if found is None or found.checkout_ref is None:
                return None
            session = self.world.stripe.sessions.get(found.checkout_ref)
            if session is None or session["status"] != "open":
                return None
            done = self.world.stripe.pay(found.checkout_ref, paid=paid)
            return self.world.stripe.event("checkout.session.completed", done)

        @rule(order=st.integers(0, 7), paid=st.booleans(), now=st.booleans())
        def stripe_checkout_completed(self, order: int, paid: bool, now: bool) -> None:
            """The learner pays by card (or a delayed method); Stripe tells us now or later."""
            order_id = self.pick(Order, order, Order.checkout_ref.isnot(None))
            event = self._checkout_completed(order_id, paid)
            if event is not None:
                self.events.append(event)
                if now:
                    self._deliver(event)

        @rule(event=st.integers(0, 20), succeeded=st.booleans())
        def stripe_delayed_payment(self, event: int, succeeded: bool) -> None:
            unpaid = [
                s
                for s in self.world.stripe.sessions.values()
                if s["status"] == "complete" and s["payment_status"] == "unpaid"
            ]
            if not unpaid:
                return
            session = unpaid[event % len(unpaid)]
            done = self.world.stripe.settle_delayed(session["id"], succeeded=succeeded)
            kind = "succeeded" if succeeded else "failed"
            self.events.append(
                self.world.stripe.event(f"checkout.session.async_payment_{kind}", done)
            )

        @rule(order=st.integers(0, 7))
        def stripe_session_expired(self, order: int) -> None:
            order_id = self.pick(Order, order, Order.checkout_ref.isnot(None))
            found = self.run(self._order(order_id))
            if found is None or found.checkout_ref is None:
                return
            session = self.world.stripe.sessions.get(found.checkout_ref)
            if session is None or session["status"] != "open":
                return
            done = self.world.stripe.expire(found.checkout_ref)
            self.events.append(self.world.stripe.event("checkout.session.expired", done))

        @rule(charge=st.integers(0, 7), partial=st.booleans())
        def stripe_dashboard_refund(self, charge: int, partial: bool) -> None:
            """Someone refunds a card payment in Stripe's dashboard."""
            open_charges = [c for c in self.world.stripe.charges.values() if not c["refunded"]]
            if not open_charges:
                return
            found = open_charges[charge % len(open_charges)]
            left = found["amount"] - found["amount_refunded"]
            amount = max(1, left // 2) if partial else None
            done = self.world.stripe.refund_charge(found["payment_intent"], amount)
            self.events.append(self.world.stripe.event("charge.refunded", done))

        @rule(event=st.integers(0, 20), again=st.booleans())
        def stripe_webhook(self, event: int, again: bool) -> None:
            """Stripe delivers one waiting event, in any order; `again`: it will redeliver."""
            if not self.events:
                return
            chosen = self.events[event % len(self.events)]
            if not again:
                self.events.remove(chosen)
            self._deliver(chosen)

        def _deliver(self, event: dict[str, Any]) -> None:
            status = self.run(self._post(event))
            if status != 200:
                self.problems.append(f"webhook {event['type']} answered {status}")
            else:
                self._delivered_subscription_event(event)

        @rule(status=st.sampled_from([500, 503, 429, 400]))
        def stripe_fails_next(self, status: int) -> None:
            """Stripe's API answers the bot's next call (checkout, refund) with an error."""
            self.world.stripe.fail_next.append(status)
            self.world.stripe_trouble = True

        @rule(fails=st.booleans())
        def telegram_refunds_fail(self, fails: bool) -> None:
            """Telegram refuses (or accepts again) the bot's Stars refunds."""
            self.world.stars_refusing = fails

        @rule(order=st.integers(0, 7), wrong_amount=st.booleans())
        def stars_payment(self, order: int, wrong_amount: bool) -> None:
            """The Telegram learner pays an invoice in Stars (pre-checkout, then payment)."""
            self._pay_stars(self.pick(Order, order), wrong_amount)

        def _pay_stars(self, order_id: int, wrong_amount: bool) -> None:
            found = self.run(self._order(order_id))
            if found is None:
                return
            course = self.run(self._course(found.course_id))
            if course is None or not course.price_stars:
                return
            stars = course.price_stars
            payload = invoice_payload(order_id, stars)
            payer = Incoming("telegram", "501", "501", "", "en")
            app = self.world.app
            refusal = self.run(
                app.front.dispatch(
                    "stars_pre_checkout", lambda: check_checkout(app, payer, payload, "XTR", stars)
                )
            )
            if refusal is not None:
                return
            self.charges += 1
            paid = (
                payload,
                stars + (1 if wrong_amount else 0),
                f"stars-charge-{self.charges}",
                None,
            )
            self.stars_paid.append(paid)
            self._record_stars(*paid)

        @rule(paid=st.integers(0, 7))
        def stars_payment_again(self, paid: int) -> None:
            """Telegram reports a Stars payment a second time, possibly much later."""
            if self.stars_paid:
                self._record_stars(*self.stars_paid[paid % len(self.stars_paid)])

        def _record_stars(
            self, payload: str, amount: int, charge_id: str, expires: datetime | None
        ) -> None:
            payer = Incoming("telegram", "501", "501", "", "en")
            app = self.world.app
            outcome = self.run(
                app.front.dispatch(
                    "stars_payment",
                    lambda: record_payment(
                        app, payer, payload, "XTR", amount, charge_id, expires=expires
                    ),
                    on_error=lambda: None,
                )
            )
            if outcome is None:
                self.problems.append(f"stars payment {charge_id} ({payload}) failed")
                return
            if outcome.refund and not self.world.stars_refusing:
                self.world.stars_refunds.append(("501", charge_id))
            if payload.startswith("sub:"):
                self._stars_recorded(charge_id, outcome)

        async def _course(self, course_id: int) -> Course | None:
            async with self.world.app.new_uow() as uow:
                course = await uow.get(Course, course_id)
                if course is not None:
                    uow.session.expunge(course)
                return course

        @rule(order=st.integers(0, 7), force=st.booleans())
        def admin_refund(self, order: int, force: bool) -> None:
            line = f"/admin refund {self.pick(Order, order)}" + (" force" if force else "")
            self.send(ADMIN, line)

        @rule(course=st.sampled_from(COURSES), edit=st.sampled_from(EDITS))
        def edit_course(self, course: str, edit: str) -> None:
            self.send(ADMIN, f"/admin course edit {course} {edit}")

        # -- mentoring and sessions -----------------------------------------------------------

        @rule(who=st.sampled_from(LEARNERS), course=st.sampled_from(COURSES))
        def ask_for_mentor(self, who: tuple[str, str], course: str) -> None:
            self.send(who, f"/mentor {course}")
            self.send(who, "Learn to write tested code")
            self.send(who, "beginner")
            self.send(who, "any")

        @rule(offer=st.integers(0, 7), accept=st.booleans())
        def mentor_answers_offer(self, offer: int, accept: bool) -> None:
            """A mentor an open request was offered to accepts (or declines) it."""

            async def offers() -> list[tuple[int, int]]:
                async with self.world.app.new_uow() as uow:
                    rows = await uow.session.execute(
                        select(RequestOffer.request_id, MentorProfile.user_id)
                        .join(MentorProfile, MentorProfile.id == RequestOffer.mentor_id)
                        .where(RequestOffer.status == "offered")
                        .order_by(RequestOffer.request_id, RequestOffer.mentor_id)
                    )
                    return [(int(r), int(u)) for r, u in rows]

            found = self.run(offers())
            if not found:
                return
            request_id, user_id = found[offer % len(found)]
            mentor = self.actor(user_id)
            if mentor is not None:
                self.send(mentor, f"/{'accept' if accept else 'decline'} {request_id}")

        @rule(
            who=st.sampled_from(LEARNERS),
            course=st.sampled_from(COURSES),
            slot=st.integers(0, 9),
            how=st.sampled_from(["demo", "stripe", "stars"]),
            then=st.sampled_from([None, *ENDINGS]),
            mentor=st.integers(0, 2),
        )
        def journey(
            self,
            who: tuple[str, str],
            course: str,
            slot: int,
            how: str,
            then: str | None,
            mentor: int = 0,
        ) -> None:
            """The usual way through: buy and pay, ask for a mentor, who accepts; book; and
            maybe the session ends with both sides agreeing, disagreeing or a no-show."""
            self.buy_and_pay(who, course, how)
            self._mentored_session(who, course, slot, then, mentor)

        def _mentored_session(
            self, who: tuple[str, str], course: str, slot: int, then: str | None, mentor: int
        ) -> None:
            """Ask for a mentor of `course`, who accepts; book; maybe the session ends."""
            before = set(self.ids(MentorshipRequest))
            self.ask_for_mentor(who, course)
            for request_id in sorted(set(self.ids(MentorshipRequest)) - before):
                self._offered_mentor_accepts(request_id, mentor)
                booked = set(self.ids(MentorSession))
                self.send(who, f"/book {request_id}")
                self.press(who, slot)
                for session_id in sorted(set(self.ids(MentorSession)) - booked):
                    if then is not None:
                        self._session_ends(session_id, then)

        def _offered_mentor_accepts(self, request_id: int, which: int) -> None:
            async def offered() -> list[int]:
                async with self.world.app.new_uow() as uow:
                    rows = await uow.session.execute(
                        select(MentorProfile.user_id)
                        .join(RequestOffer, MentorProfile.id == RequestOffer.mentor_id)
                        .where(RequestOffer.request_id == request_id)
                        .where(RequestOffer.status == "offered")
                        .order_by(RequestOffer.mentor_id)
                    )
                    return [int(u) for u in rows.scalars()]

            mentors = self.run(offered())
            mentor = self.actor(mentors[which % len(mentors)]) if mentors else None
            if mentor is not None:
                self.send(mentor, f"/accept {request_id}")

        @rule(who=st.sampled_from(MENTORS), request=st.integers(0, 7))
        def accept_any(self, who: tuple[str, str], request: int) -> None:
            self.send(who, f"/accept {self.pick(MentorshipRequest, request)}")

        @rule(
            who=st.sampled_from(PEOPLE),
            request=st.integers(0, 7),
            slot=st.integers(0, 9),
            side=st.sampled_from(["learner", "learner", "other"]),
        )
        def book(self, who: tuple[str, str], request: int, slot: int, side: str) -> None:
            request_id = self.pick(
                MentorshipRequest, request, MentorshipRequest.status == "accepted"
            )

            async def learner() -> int | None:
                async with self.world.app.new_uow() as uow:
                    found = await uow.get(MentorshipRequest, request_id)
                    return found.learner_id if found else None

            who = self.as_side(side, who, self.actor(self.run(learner())))
            self.send(who, f"/book {request_id}")
            self.press(who, slot)

        @rule(
            who=st.sampled_from(PEOPLE),
            session=st.integers(0, 7),
            slot=st.integers(0, 9),
            side=st.sampled_from(SIDES),
        )
        def move(self, who: tuple[str, str], session: int, slot: int, side: str) -> None:
            session_id = self.pick(MentorSession, session, MentorSession.status == "scheduled")
            who = self.as_side(side, who, self.session_side(session_id, side))
            self.send(who, f"/reschedule {session_id}")
            self.press(who, slot)

        @rule(
            who=st.sampled_from(PEOPLE),
            session=st.integers(0, 7),
            confirm=st.booleans(),
            side=st.sampled_from(SIDES),
        )
        def cancel_session(
            self, who: tuple[str, str], session: int, confirm: bool, side: str
        ) -> None:
            session_id = self.pick(MentorSession, session, MentorSession.status == "scheduled")
            who = self.as_side(side, who, self.session_side(session_id, side))
            self.send(who, f"/cancelsession {session_id}")
            if confirm:
                self.press(who, 0)

        @rule(
            who=st.sampled_from(PEOPLE),
            session=st.integers(0, 7),
            verdict=st.sampled_from(["completed", "noshow"]),
            side=st.sampled_from(SIDES),
        )
        def outcome_claim(
            self, who: tuple[str, str], session: int, verdict: str, side: str
        ) -> None:
            session_id = self.pick(MentorSession, session)
            who = self.as_side(side, who, self.session_side(session_id, side))
            self.send(who, f"/outcome {session_id} {verdict}")

        @rule(
            who=st.sampled_from(PEOPLE),
            session=st.integers(0, 7),
            command=st.sampled_from(["complete", "noshow"]),
            side=st.sampled_from(["mentor", "mentor", "other"]),
        )
        def mentor_closes(
            self, who: tuple[str, str], session: int, command: str, side: str
        ) -> None:
            session_id = self.pick(MentorSession, session)
            who = self.as_side(side, who, self.session_side(session_id, side))
            self.send(who, f"/{command} {session_id}")

        @rule(session=st.integers(0, 7), ending=st.sampled_from(list(ENDINGS)))
        def session_ends(self, session: int, ending: str) -> None:
            """The clock passes a booked session's end; each side says what happened, or not."""
            session_id = self.pick(MentorSession, session, MentorSession.status == "scheduled")
            self._session_ends(session_id, ending)

        def _session_ends(self, session_id: int, ending: str) -> None:
            async def end() -> datetime | None:
                async with self.world.app.new_uow() as uow:
                    found = await uow.get(MentorSession, session_id)
                    if found is None:
                        return None
                    return found.start_at + timedelta(minutes=found.duration_minutes)

            ends = self.run(end())
            if ends is not None and ends > self.world.clock.now():
                self.world.clock.set(ends + timedelta(minutes=5))
                self.run(self.world.app.run_due())
            for side, command in ENDINGS[ending]:
                said = self.session_side(session_id, side)
                if said is not None:
                    line = command.format(session_id)
                    self.send(said, line if "{}" in command else f"{line} {session_id}")

        @rule(
            who=st.sampled_from([ADMIN, ADMIN, ("discord", "601")]),
            session=st.integers(0, 7),
            verdict=st.sampled_from(["completed", "noshow", "refund-credit"]),
        )
        def settle(self, who: tuple[str, str], session: int, verdict: str) -> None:
            session_id = self.pick(MentorSession, session, MentorSession.status == "disputed")
            self.send(who, f"/admin settle {session_id} {verdict}")

        # -- accounts and roles ---------------------------------------------------------------

        @rule(a=st.sampled_from(PEOPLE), b=st.sampled_from(PEOPLE), confirm=st.booleans())
        def link(self, a: tuple[str, str], b: tuple[str, str], confirm: bool) -> None:
            found = re.search(r"/link ([2-9A-Z]{4}-[2-9A-Z]{4})", self.send(a, "/link"))
            if found is None:
                return
            self.send(b, f"/link {found.group(1)}")
            if confirm:
                self.send(b, f"/link {found.group(1)} yes")

        @rule(who=st.sampled_from(PEOPLE), choice=st.integers(0, 3))
        def unlink(self, who: tuple[str, str], choice: int) -> None:
            self.send(who, "/unlink")
            self.press(who, choice)

        @rule(who=st.sampled_from(PEOPLE), first=st.integers(0, 1), second=st.integers(0, 1))
        def delete_me(self, who: tuple[str, str], first: int, second: int) -> None:
            self.send(who, "/deleteme")
            self.press(who, first)
            self.press(who, second)
            if not self.ids(Identity, Identity.platform == "discord"):
                self.discord_says.clear()  # a new account starts with no roles said

        @rule(admin=st.booleans())
        def discord_roles(self, admin: bool) -> None:
            """The Discord member writes in the guild, holding the admin role or not."""
            self.send(
                ("discord", "601"),
                "/help",
                frozenset({DISCORD_ADMIN_ROLE}) if admin else frozenset({"1"}),
            )

        @rule(who=st.sampled_from(PEOPLE), choice=st.integers(0, 5))
        def press_a_button(self, who: tuple[str, str], choice: int) -> None:
            self.press(who, choice)

        # -- time -----------------------------------------------------------------------------

        @rule(jump=st.sampled_from(JUMPS))
        def time_passes(self, jump: timedelta) -> None:
            self.world.clock.advance(jump)
            self.run(self.world.app.run_due())

        @rule()
        def eve_of_the_summer_time_change(self) -> None:
            """The clock jumps to the day before Europe moves its clocks (ada in London and
            linus in Helsinki keep their local windows; their UTC times shift by an hour)."""
            if self.world.clock.now() < EU_SUMMER_TIME_EVE:
                self.world.clock.set(EU_SUMMER_TIME_EVE)
                self.run(self.world.app.run_due())

        # The long ways through are drawn more often than any one short step, so that most
        # examples reach paid, booked and finished sessions.
        journey_again = journey
        session_ends_again = session_ends
        plan_journey_again = SubscriptionSteps.plan_journey
        subscribe_again = SubscriptionSteps.subscribe
        period_ends_again = SubscriptionSteps.period_ends

        # -- what must hold -------------------------------------------------------------------

        @invariant()
        def nothing_went_wrong(self) -> None:
            assert not self.problems, self.problems

        @invariant()
        def money_and_trust_hold(self) -> None:
            found = self.run(broken_invariants(self.world, self.discord_says))
            assert not found, found

        @invariant()
        def subscriptions_hold(self) -> None:
            found = self.run(subscriptions_broken(self.world, self.expected_periods, self.events))
            assert not found, found

        @invariant()
        def the_books_match_the_providers(self) -> None:
            """What Stripe and Telegram gave back is what the ledger says was refunded, once
            Stripe's reports of it were delivered."""
            found = self.run(providers_disagree(self.world, self.events))
            assert not found, found

    return MoneyMachine


async def broken_invariants(world: World, discord_says: dict[str, bool]) -> list[str]:
    """Every invariant the database breaks now, as sentences (none: empty)."""
    found: list[str] = []
    async with world.app.new_uow() as uow:
        found += await ledger.violations(uow)
        entries = list((await uow.session.execute(select(LedgerEntry))).scalars())
        orders = {o.id: o for o in (await uow.session.execute(select(Order))).scalars()}
        enrollments = list((await uow.session.execute(select(Enrollment))).scalars())
        sessions = list((await uow.session.execute(select(MentorSession))).scalars())
        mentors = {
            m.id: m.user_id for m in (await uow.session.execute(select(MentorProfile))).scalars()
        }
        identities = list((await uow.session.execute(select(Identity))).scalars())
        users = {u.id: u for u in (await uow.session.execute(select(User))).scalars()}
        admins = set(
            (
                await uow.session.execute(select(UserRole.user_id).where(UserRole.role == "admin"))
            ).scalars()
        )
        found += _orders_broken(orders, entries)
        found += await _credits_broken(
            uow, orders, enrollments, sessions, entries, world.clock.now()
        )
        found += _earnings_broken(orders, sessions, entries)
        found += _double_booked(sessions, mentors)
        found += _identities_broken(identities, users)
        found += _roles_broken(world, identities, users, admins, discord_says)
        doubled = await uow.session.execute(
            select(MentorshipRequest.enrollment_id)
            .where(MentorshipRequest.status.in_(LIVE_REQUEST_STATES))
            .group_by(MentorshipRequest.enrollment_id)
            .having(func.count() > 1)
        )
        found += [f"enrollment {e}: two requests in play" for e in doubled.scalars()]
    async with world.app.new_uow() as uow:  # committed: the next check adds to the kept sums
        groups = (ledger.REVENUE_KINDS, ledger.EARNING_KINDS, ledger.FEE_KINDS)
        kept_totals = await ledger.totals_by_currency(uow, world.clock.now(), *groups)
        for kinds, kept in zip(groups, kept_totals, strict=True):
            every = await ledger.sums_by_currency(uow, kinds)
            if kept != every:
                found.append(f"{kinds[0]}: kept totals {kept}, every entry summed {every}")
        await uow.commit()
    return found


async def providers_disagree(world: World, waiting: list[dict[str, Any]]) -> list[str]:
    """Orders whose refunds in the ledger differ from what the provider refunded."""
    found = []
    unreported = {e["data"]["object"].get("payment_intent") for e in waiting}
    async with world.app.new_uow() as uow:
        orders = list((await uow.session.execute(select(Order))).scalars())
        for order in orders:
            _paid, refunded = await ledger.order_balance(uow, order.id)
            if order.provider == "stripe" and order.provider_ref not in unreported:
                charges = [
                    c
                    for c in world.stripe.charges.values()
                    if c["payment_intent"] == order.provider_ref
                ]
                back = sum(c["amount_refunded"] for c in charges)
                if back != refunded:
                    found.append(f"order {order.id}: Stripe refunded {back}, the ledger {refunded}")
            if order.provider == "stars":
                back = (
                    order.amount_minor if ("501", order.provider_ref) in world.stars_refunds else 0
                )
                if back != refunded:
                    found.append(
                        f"order {order.id}: Telegram gave back {back}, the ledger {refunded}"
                    )
    return found


def _orders_broken(orders: dict[int, Order], entries: list[LedgerEntry]) -> list[str]:
    found = []
    paid: dict[int, int] = {}
    refunded: dict[int, int] = {}
    for e in entries:
        if e.order_id is None:
            continue
        if e.kind == ledger.Kind.ORDER_PAID:
            paid[e.order_id] = paid.get(e.order_id, 0) + e.amount_minor
        elif e.kind == ledger.Kind.ORDER_REFUNDED:
            refunded[e.order_id] = refunded.get(e.order_id, 0) - e.amount_minor
    for order in orders.values():
        if order.provider == SUBSCRIPTION_PROVIDER:
            continue  # its money is its periods' (tests/model_subscriptions.py)
        got, back = paid.get(order.id, 0), refunded.get(order.id, 0)
        if back > got:
            found.append(f"order {order.id}: refunded {back} of {got}")
        if order.status in ("paid", "refunded") and got != order.amount_minor:
            found.append(f"order {order.id} is {order.status} but the ledger took {got}")
        if order.status not in ("paid", "refunded") and got:
            found.append(f"order {order.id} is {order.status} yet the ledger took {got}")
        if order.status == "refunded" and back != got:
            found.append(f"order {order.id} is refunded but only {back} of {got} went back")
    return found


async def _credits_broken(
    uow: Any,
    orders: dict[int, Order],
    enrollments: list[Enrollment],
    sessions: list[MentorSession],
    entries: list[LedgerEntry],
    now: datetime,
) -> list[str]:
    found = []
    left = await ledger.credits_by_enrollment(uow, [e.id for e in enrollments])
    for enrollment in enrollments:
        if orders[enrollment.order_id].provider == SUBSCRIPTION_PROVIDER:
            continue  # a plan's credits come from its periods (tests/model_subscriptions.py)
        mine = [e for e in entries if e.enrollment_id == enrollment.id]
        granted = sum(e.credits for e in mine if e.kind == ledger.Kind.CREDIT_GRANTED)
        bought = orders[enrollment.order_id].sessions_included
        if granted != bought:
            found.append(f"enrollment {enrollment.id}: {granted} credits granted, {bought} bought")
        if left[enrollment.id] != enrollment.credits_remaining:
            found.append(
                f"enrollment {enrollment.id}: balance {enrollment.credits_remaining}, "
                f"ledger {left[enrollment.id]}"
            )
        holding = sum(
            1
            for s in sessions
            if s.enrollment_id == enrollment.id and s.status in ("scheduled", "completed")
        )
        upcoming = [
            s.id
            for s in sessions
            if s.enrollment_id == enrollment.id and s.status == "scheduled" and s.start_at > now
        ]
        # (An erased account's revoked enrollment keeps its credits until a refund: the
        # refund policy counts them as unused.)
        if enrollment.status == "revoked" and upcoming:
            found.append(f"enrollment {enrollment.id} is revoked yet has sessions {upcoming}")
        if enrollment.status == "active" and left[enrollment.id] + holding > bought:
            found.append(
                f"enrollment {enrollment.id}: {left[enrollment.id]} left + {holding} sessions "
                f"of {bought} bought"
            )
    return found


def _earnings_broken(
    orders: dict[int, Order], sessions: list[MentorSession], entries: list[LedgerEntry]
) -> list[str]:
    found = []
    enrollment_order = {e.enrollment_id: e.order_id for e in entries if e.enrollment_id}
    for s in sessions:
        mine = [e for e in entries if e.session_id == s.id and e.kind in ledger.EARNING_KINDS]
        credited = [e for e in mine if e.kind == ledger.Kind.MENTOR_EARNING]
        net = sum(e.amount_minor for e in mine)
        if len(credited) > 1:
            found.append(f"session {s.id} credited its mentor {len(credited)} times")
        if net and credited and net != credited[0].amount_minor:
            found.append(f"session {s.id}: net earnings {net}")
        order = orders.get(enrollment_order.get(s.enrollment_id, -1))
        if net > 0 and s.status != "completed":
            found.append(f"session {s.id} is {s.status} yet earns {net}")
        if net > 0 and (order is None or order.status != "paid"):
            status = order.status if order else "missing"
            found.append(f"session {s.id} earns {net} from an order that is {status}")
    return found


def _double_booked(sessions: list[MentorSession], mentors: dict[int, int]) -> list[str]:
    found = []
    taken: dict[int, list[tuple[datetime, datetime, int]]] = {}
    for s in sessions:
        if s.status != "scheduled":
            continue
        span = (s.start_at, s.start_at + timedelta(minutes=s.duration_minutes), s.id)
        for person in {s.learner_id, mentors.get(s.mentor_id, -1)}:
            taken.setdefault(person, []).append(span)
    for person, spans in taken.items():
        spans.sort()
        for (_s1, end1, id1), (start2, _e2, id2) in itertools.pairwise(spans):
            if start2 < end1:
                found.append(f"user {person} is in sessions {id1} and {id2} at once")
    return found


def _identities_broken(identities: list[Identity], users: dict[int, User]) -> list[str]:
    found = []
    seen: dict[tuple[str, str], int] = {}
    for i in identities:
        key = (i.platform, i.external_id)
        if key in seen:
            found.append(f"{key} belongs to users {seen[key]} and {i.user_id}")
        seen[key] = i.user_id
        user = users.get(i.user_id)
        if user is None or user.deleted_at is not None:
            found.append(f"{key} belongs to a deleted user {i.user_id}")
    return found


def _roles_broken(
    world: World,
    identities: list[Identity],
    users: dict[int, User],
    admins: set[int],
    discord_says: dict[str, bool],
) -> list[str]:
    """Admin exactly when a listed identity or a Discord admin role gives it."""
    found = []
    listed = set(world.app.config.bot.admins)
    given: dict[int, bool] = {}
    for i in identities:
        gives = f"{i.platform}:{i.external_id}" in listed or (
            i.platform == "discord" and discord_says.get(i.external_id, False)
        )
        given[i.user_id] = given.get(i.user_id, False) or gives
    for user_id, user in users.items():
        if user.deleted_at is not None:
            continue
        should = given.get(user_id, False)
        if should != (user_id in admins):
            has = "is" if user_id in admins else "is not"
            found.append(f"user {user_id} ({user.display_name}) {has} an admin")
    return found
