"""The subscription steps of the money machine (tests/model_money.py) and what must hold for
subscriptions after every step, whatever came before:

- each paid period (a Stripe invoice, a Telegram Stars charge, a demo renewal) is one period
  row, with one payment entry of its amount and its sessions granted once; the invoices and
  charges the machine delivered (once, twice or out of order) or reconciliation found are
  exactly the periods recorded, and a Stars charge that was returned is none;
- a period's refund never exceeds its payment, and a period is refunded exactly when Stripe
  refunded its invoice's charge in full (once that report was delivered), or Telegram gave
  its Stars charge back; an admin's refund of one period (`/admin refund ORDER period=N`,
  pressed once or twice, with or without `force`) keeps all of this;
- sessions held on a plan's enrollment plus credits left never exceed the credits its periods
  granted; a newer period starts with at most the plan's rollover carried over;
- a subscription with access holds an active enrollment in each other course its plan covers
  (the starter plan covers python-basics too), with no credits ever, and none once it ended,
  whatever the learner bought besides;
- an ended subscription (lapsed or cancelled) leaves no credit to book with, and none is
  ever granted to it; a subscription whose grace ran out, or whose Stars renewal never came,
  or that was set to cancel and is past its period's end (demo, Stars), has ended once the
  clock was swept;
- an erased account has no live subscription, and each one that a provider renews was told
  to stop (unless the provider could not be reached when told); a card invoice paid for it
  afterwards (its Checkout page left open) is no period: the bot refunded it in full, and
  only such invoices were given back that way;
- the periods' money and the sessions' earnings of each anchor order are checked by
  `bot.core.ledger.violations` (earnings and fees never exceed what it brought in).

`SubscriptionSteps` is a base of the money machine: its rules use the machine's plumbing
(`send`, `run`, `ids`, `actor`, `events`, `_deliver`, `_record_stars`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from sqlalchemy import select

from bot.core.users import Incoming
from bot.providers.stars.payment import check_checkout
from bot.providers.stars.subscriptions import subscription_payload
from bot.providers.stripe.billing import reconcile_subscriptions
from bot.subscriptions.lifecycle import SUBSCRIPTION_PROVIDER
from storage.models import (
    Enrollment,
    Identity,
    LedgerEntry,
    MentorSession,
    Order,
    Plan,
    PlanCourse,
    Subscription,
    SubscriptionPeriod,
    User,
)

# A plan with a Stars price and a rollover (Telegram: Stars; console and Discord: card), and
# one with a free trial and no Stars price (Telegram: demo; elsewhere: card with a trial) that
# covers a second course, which learners may also buy on its own.
PLAN_LINES = [
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 rollover=1 stars=500",
    "/admin plan add starter course=git-teamwork,python-basics "
    'name="Git starter" price=19.00 sessions=1 trial=7',
]
PLANS = {"monthly": "python-basics", "starter": "git-teamwork"}  # each plan's primary course
TELEGRAM = ("telegram", "501")
PAY = ["now", "now", "later", "never"]
LIVE = ("trialing", "active", "past_due", "cancelling")
STARS_LAPSE = timedelta(hours=24)  # [subscriptions] stars_lapse_hours, the default
ADMIN = ("console", "admin")  # tests/model_money.py's admin


class SubscriptionSteps(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Stripe invoices and Stars charges that must each be exactly one period.
        self.expected_periods: set[tuple[str, str]] = set()

    # -- plumbing -------------------------------------------------------------------------

    def _user_of(self, who: tuple[str, str]) -> int | None:
        async def load() -> int | None:
            async with self.world.app.new_uow() as uow:
                found = await uow.session.execute(
                    select(Identity.user_id)
                    .where(Identity.platform == who[0])
                    .where(Identity.external_id == who[1])
                )
                return found.scalar_one_or_none()

        return self.run(load())

    async def _subscription(self, sub_id: int) -> Subscription | None:
        async with self.world.app.new_uow() as uow:
            sub = await uow.get(Subscription, sub_id)
            if sub is not None:
                uow.session.expunge(sub)
            return sub

    def _waiting(self, who: tuple[str, str], plan: str) -> Subscription | None:
        """The learner's subscription to `plan` that waits for its first payment."""
        user_id = self._user_of(who)

        async def load() -> Subscription | None:
            async with self.world.app.new_uow() as uow:
                found = (
                    await uow.session.execute(
                        select(Subscription)
                        .join(Plan, Plan.id == Subscription.plan_id)
                        .where(Subscription.user_id == user_id)
                        .where(Plan.slug == plan)
                        .where(Subscription.status == "incomplete")
                        .order_by(Subscription.id.desc())
                    )
                ).scalar()
                if found is not None:
                    uow.session.expunge(found)
                return found

        return None if user_id is None else self.run(load())

    def _post_event(self, type_: str, obj: dict[str, Any], now: bool) -> None:
        event = self.world.stripe.event(type_, obj)
        if now:
            self._deliver(event)
        else:
            self.events.append(event)

    def _delivered_subscription_event(self, event: dict[str, Any]) -> None:
        """Called for every webhook answered 200: a paid invoice is now a period."""
        obj = event["data"]["object"]
        if event["type"] == "invoice.paid" and obj.get("amount_paid"):
            self.expected_periods.add(("stripe", obj["id"]))

    def _stars_recorded(self, charge_id: str, outcome: Any) -> None:
        if not outcome.duplicate and not outcome.refund:
            self.expected_periods.add(("stars", charge_id))

    # -- subscribing ----------------------------------------------------------------------

    @rule(
        who=st.sampled_from([("console", "alice"), ("discord", "601"), TELEGRAM]),
        plan=st.sampled_from(list(PLANS)),
        pay=st.sampled_from(PAY),
    )
    def subscribe(self, who: tuple[str, str], plan: str, pay: str) -> None:
        """A learner subscribes: card (Checkout then webhooks, now or later), Stars
        (pre-checkout then the first charge) or demo (the Pay button); or never pays."""
        self.send(who, f"/subscribe {plan}")
        sub = self._waiting(who, plan)
        if sub is None or pay == "never":
            return
        if sub.provider == "demo":
            self.send(who, f"/subscription pay {sub.id}")
        elif sub.provider == "stars":
            self._first_stars_charge(sub)
        elif sub.provider == "stripe" and sub.checkout_ref is not None:
            self._complete_checkout(sub.checkout_ref, now=pay == "now")

    def _complete_checkout(self, session_id: str, now: bool) -> None:
        session = self.world.stripe.sessions.get(session_id)
        if session is None or session["status"] != "open":
            return
        done, _sub, invoice = self.world.stripe.complete_subscription(session_id)
        self._post_event("checkout.session.completed", done, now)
        self._post_event("invoice.paid", invoice, now)

    @rule(index=st.integers(0, 7), now=st.booleans())
    def stripe_subscription_checkout(self, index: int, now: bool) -> None:
        """Someone pays on a subscription's Checkout page they left open, maybe much later
        (after cancelling, or erasing their account)."""
        open_pages = [
            s
            for s in self.world.stripe.sessions.values()
            if s["mode"] == "subscription" and s["status"] == "open"
        ]
        if open_pages:
            self._complete_checkout(open_pages[index % len(open_pages)]["id"], now)

    def _first_stars_charge(self, sub: Subscription, wrong_amount: bool = False) -> None:
        payload = subscription_payload(sub.id, sub.amount_minor)
        payer = Incoming(*TELEGRAM, TELEGRAM[1], "", "en")
        app = self.world.app
        refusal = self.run(
            app.front.dispatch(
                "stars_pre_checkout",
                lambda: check_checkout(app, payer, payload, "XTR", sub.amount_minor),
            )
        )
        if refusal is None:
            expires = self.world.clock.now() + timedelta(days=30)
            self._charge_stars(payload, sub.amount_minor + (1 if wrong_amount else 0), expires)

    def _charge_stars(self, payload: str, stars: int, expires: datetime) -> None:
        self.charges += 1
        paid = (payload, stars, f"stars-charge-{self.charges}", expires)
        self.stars_paid.append(paid)
        self._record_stars(*paid)

    # -- periods ending: renewals, failures, lapses -----------------------------------------

    def _live(self, index: int) -> Subscription | None:
        found = self.ids(
            Subscription,
            Subscription.ended_at.is_(None),
            Subscription.current_period_end.is_not(None),
        )
        return self.run(self._subscription(found[index % len(found)])) if found else None

    @rule(
        index=st.integers(0, 7),
        paid=st.sampled_from([True, True, False]),
        now=st.booleans(),
        wrong_amount=st.sampled_from([False, False, False, True]),
    )
    def period_ends(self, index: int, paid: bool, now: bool, wrong_amount: bool) -> None:
        """The clock reaches a live subscription's period end and its provider renews it: the
        demo one itself; Stripe bills the card (paid or declined) or, set to cancel, ends it;
        Telegram charges the Stars unless the learner cancelled there."""
        sub = self._live(index)
        if sub is None or sub.current_period_end is None:
            return
        clock = self.world.clock
        ends = sub.current_period_end
        if sub.provider == "stars":
            ends -= timedelta(hours=1)  # Telegram charges just before the expiry
        if ends > clock.now():
            clock.set(ends)
        self.run(self.world.app.run_due())
        if sub.provider == "stripe" and sub.provider_ref in self.world.stripe.subscriptions:
            remote = self.world.stripe.subscriptions[sub.provider_ref]
            if remote["status"] == "canceled":
                return
            if remote["cancel_at_period_end"]:
                ended = self.world.stripe.cancel_now(remote["id"])
                self._post_event("customer.subscription.deleted", ended, now)
                return
            invoice, remote = self.world.stripe.renew(remote["id"], paid=paid)
            kind = "invoice.paid" if paid else "invoice.payment_failed"
            self._post_event(kind, invoice, now)
            self._post_event("customer.subscription.updated", remote, now)
        elif sub.provider == "stars" and sub.provider_ref is not None and paid:
            if self.world.stars_cancelled.get(sub.provider_ref, False):
                return
            payload = subscription_payload(sub.id, sub.amount_minor)
            stars = sub.amount_minor + (1 if wrong_amount else 0)
            self._charge_stars(payload, stars, sub.current_period_end + timedelta(days=30))

    @rule(index=st.integers(0, 7), now=st.booleans())
    def stripe_retries_invoice(self, index: int, now: bool) -> None:
        """Smart Retries charge a fixed card for an open invoice."""
        unpaid = [
            i
            for i in self.world.stripe.invoices.values()
            if i["status"] == "open"
            and self.world.stripe.subscriptions[i["subscription"]]["status"] != "canceled"
        ]
        if unpaid:
            invoice, _sub = self.world.stripe.retry(unpaid[index % len(unpaid)]["id"])
            self._post_event("invoice.paid", invoice, now)

    @rule(index=st.integers(0, 7), now=st.booleans())
    def stripe_gives_up(self, index: int, now: bool) -> None:
        """The retries failed: Stripe cancels an overdue subscription."""
        overdue = [s for s in self.world.stripe.subscriptions.values() if s["status"] == "past_due"]
        if overdue:
            ended = self.world.stripe.cancel_now(
                overdue[index % len(overdue)]["id"], reason="payment_failed"
            )
            self._post_event("customer.subscription.deleted", ended, now)

    @rule()
    def stripe_reconciliation(self) -> None:
        """The periodic pass lists Stripe's subscriptions and paid invoices and applies what
        no webhook brought."""
        fake = self.world.stripe
        if fake.fail_next:
            return
        for invoice in fake.invoices.values():
            if invoice["status"] == "paid" and invoice["amount_paid"]:
                self.expected_periods.add(("stripe", invoice["id"]))
        app = self.world.app

        def work() -> Any:
            return reconcile_subscriptions(
                self.world.payments, app.new_uow, app.config, app.clock.now
            )

        self.run(work())

    # -- an admin's refund of one period ----------------------------------------------------

    @rule(index=st.integers(0, 7), force=st.booleans(), presses=st.integers(1, 2))
    def admin_refunds_period(self, index: int, force: bool, presses: int) -> None:
        """An admin refunds one paid period (a card invoice, a Stars charge, a demo renewal)
        with `/admin refund ORDER period=N [force]`, maybe pressing twice; Stripe's report of
        a card refund follows, to be delivered in any order."""
        found = self.ids(SubscriptionPeriod)
        if found:
            self._admin_refund(found[index % len(found)], force, presses)

    def _admin_refund(self, period_id: int, force: bool, presses: int) -> None:
        async def load() -> tuple[int | None, SubscriptionPeriod | None]:
            async with self.world.app.new_uow() as uow:
                period = await uow.get(SubscriptionPeriod, period_id)
                paid = await uow.session.execute(
                    select(LedgerEntry.order_id).where(
                        LedgerEntry.key == f"paid:period:{period_id}"
                    )
                )
                if period is not None:
                    uow.session.expunge(period)
                return paid.scalar_one_or_none(), period

        order_id, period = self.run(load())
        if order_id is None or period is None:
            return
        line = f"/admin refund {order_id} period={period.number}" + (" force" if force else "")
        for _press in range(presses):
            self.send(ADMIN, line)
        if period.provider == "stripe" and period.payment_ref:
            charges = self.world.stripe.charges.values()
            refunded = [c for c in charges if c["payment_intent"] == period.payment_ref]
            if refunded and refunded[0]["refunded"] and period.refunded_at is None:
                self.events.append(self.world.stripe.event("charge.refunded", dict(refunded[0])))

    # -- the learner's own controls ---------------------------------------------------------

    @rule(
        index=st.integers(0, 7),
        action=st.sampled_from(["cancel", "cancel", "resume"]),
        side=st.sampled_from(["owner", "owner", "other"]),
        now=st.booleans(),
    )
    def cancel_or_resume(self, index: int, action: str, side: str, now: bool) -> None:
        """The learner (or someone else) cancels at the period's end, or resumes; Stripe's
        echo of the change follows, now or later."""
        found = self.ids(Subscription)
        if not found:
            return
        sub = self.run(self._subscription(found[index % len(found)]))
        assert sub is not None
        owner = self.actor(sub.user_id)
        who = owner if side == "owner" and owner is not None else ("console", "bob")
        self.send(who, f"/subscription {action} {sub.id}")
        remote = self.world.stripe.subscriptions.get(sub.provider_ref or "")
        if remote is not None and remote["status"] != "canceled":
            self._post_event("customer.subscription.updated", dict(remote), now)

    @rule(who=st.sampled_from([("console", "alice"), ("discord", "601"), TELEGRAM]))
    def my_subscriptions(self, who: tuple[str, str]) -> None:
        """`/subscription`: its Cancel / Resume / Pay buttons may be pressed next."""
        self.send(who, "/subscription")

    @rule(
        who=st.sampled_from([("console", "alice"), ("discord", "601"), TELEGRAM]),
        plan=st.sampled_from(list(PLANS)),
        slot=st.integers(0, 9),
        then=st.sampled_from([None, "agreed", "mentor only", "disputed", "no-show"]),
        mentor=st.integers(0, 2),
        refund=st.sampled_from([None, None, "policy", "force"]),
    )
    def plan_journey(
        self,
        who: tuple[str, str],
        plan: str,
        slot: int,
        then: str | None,
        mentor: int,
        refund: str | None,
    ) -> None:
        """Subscribe and pay at once, ask for a mentor of the plan's primary course, who
        accepts; book with a plan credit; maybe the session ends; and maybe an admin refunds
        the newest period (within the policy, which a booked session is not, or with `force`).
        (`ask_for_mentor` asks for the course a plan covers besides, python-basics.)"""
        self.subscribe(who, plan, "now")
        self._mentored_session(who, PLANS[plan], slot, then, mentor)
        found = self.ids(SubscriptionPeriod)
        if refund is not None and found:
            self._admin_refund(found[-1], refund == "force", 1)


# -- what must hold ---------------------------------------------------------------------------


async def subscriptions_broken(
    world: Any, expected: set[tuple[str, str]], waiting: list[dict[str, Any]]
) -> list[str]:
    """Every subscription invariant the database breaks now, as sentences (none: empty)."""
    found: list[str] = []
    now = world.clock.now()
    async with world.app.new_uow() as uow:

        async def every(model: Any) -> list[Any]:
            return list((await uow.session.execute(select(model).order_by(model.id))).scalars())

        subs = {s.id: s for s in await every(Subscription)}
        if not subs:
            return found
        plans = {p.id: p for p in await every(Plan)}
        periods = await every(SubscriptionPeriod)
        entries = await every(LedgerEntry)
        orders = {o.id: o for o in await every(Order)}
        enrollments = {e.id: e for e in await every(Enrollment)}
        sessions = await every(MentorSession)
        users = {u.id: u for u in await every(User)}
        by_key = {e.key: e for e in entries}
        given_back = _given_back(world, subs, users, periods)
        found += given_back[1]
        found += _periods_broken(subs, plans, periods, by_key, expected - given_back[0])
        found += _refunds_broken(world, periods, waiting)
        anchors = {
            o.id: int(o.provider_ref.split(":")[1])
            for o in orders.values()
            if o.provider == SUBSCRIPTION_PROVIDER and o.provider_ref
        }
        covering = {o.id for o in orders.values() if ":covers:" in (o.provider_ref or "")}
        covers = [(c.plan_id, c.course_id) for c in await every(PlanCourse)]
        found += _plan_credits_broken(subs, plans, periods, entries, enrollments, sessions, anchors)
        found += _ends_broken(world, subs, enrollments, entries, anchors, users, now, covering)
        found += _coverage_broken(subs, enrollments, entries, anchors, covering, covers)
    return found


def _given_back(
    world: Any,
    subs: dict[int, Subscription],
    users: dict[int, User],
    periods: list[SubscriptionPeriod],
) -> tuple[set[tuple[str, str]], list[str]]:
    """The card invoices the bot refunded itself (an erased account's, by the refund's
    metadata), and what is wrong with them: each is no period, of an erased account, and
    refunded in full."""
    found = []
    invoices = {
        r["metadata"]["invoice"]: r
        for r in world.stripe.refunds.values()
        if r["metadata"].get("invoice")
    }
    periods_of = {p.provider_ref for p in periods if p.provider == "stripe"}
    for invoice_id, refund in sorted(invoices.items()):
        sub = subs.get(int(refund["metadata"]["subscription_id"]))
        user = users.get(sub.user_id) if sub is not None else None
        if user is None or user.deleted_at is None:
            found.append(f"invoice {invoice_id} was given back, yet its account is not erased")
        if invoice_id in periods_of:
            found.append(f"invoice {invoice_id} was given back and is a period too")
        charge = world.stripe.charges[refund["charge"]]
        if not charge["refunded"]:
            found.append(f"invoice {invoice_id} was given back only in part")
    return {("stripe", i) for i in invoices}, found


def _periods_broken(
    subs: dict[int, Subscription],
    plans: dict[int, Plan],
    periods: list[SubscriptionPeriod],
    by_key: dict[str, LedgerEntry],
    expected: set[tuple[str, str]],
) -> list[str]:
    found = []
    recorded = {(p.provider, p.provider_ref) for p in periods if p.provider != "demo"}
    for provider, ref in sorted(expected - recorded):
        found.append(f"{provider} payment {ref} was delivered but is no period")
    for provider, ref in sorted(recorded - expected):
        found.append(f"{provider} payment {ref} is a period nobody paid (or one returned)")
    for p in periods:
        sub = subs[p.subscription_id]
        paid = by_key.get(f"paid:period:{p.id}")
        if paid is None or paid.amount_minor != p.amount_minor or paid.currency != p.currency:
            found.append(f"period {p.id}: payment entry {paid and paid.amount_minor}")
        granted = by_key.get(f"credits:period:{p.id}")
        credits = 0 if granted is None else granted.credits
        if credits != p.credits:
            found.append(f"period {p.id}: {credits} credits posted, the period says {p.credits}")
        if credits not in (0, plans[sub.plan_id].sessions_per_period):
            found.append(f"period {p.id} granted {credits} sessions")
        if p.provider == "stars" and p.amount_minor != sub.amount_minor:
            found.append(f"period {p.id}: paid {p.amount_minor} ⭐ of {sub.amount_minor}")
        back = by_key.get(f"refunded:period:{p.id}")
        if (back is not None) != (p.refunded_at is not None):
            found.append(f"period {p.id}: refunded_at {p.refunded_at}, entry {back}")
        # Paid after the end: a later period, or one starting at that instant whose payment
        # was posted after the end revoked the credits (a learner who paid, then erased their
        # account at once, keeps the period like a paid order).
        ended = by_key.get(f"ended:enrollment:{sub.enrollment_id}")
        paid_later = paid is not None and (ended is None or paid.id > ended.id)
        after_end = sub.status == "cancelled" and (
            p.starts_at > (sub.ended_at or p.starts_at)
            or (p.starts_at == sub.ended_at and paid_later)
        )
        if after_end and p.refunded_at is None and p.provider != "demo":
            found.append(
                f"period {p.id} of subscription {sub.id} paid after it ended "
                f"({p.starts_at:%d %b} ≥ {sub.ended_at:%d %b}), never refunded"
            )
    return found


def _refunds_broken(
    world: Any, periods: list[SubscriptionPeriod], waiting: list[dict[str, Any]]
) -> list[str]:
    """A card period is refunded exactly when Stripe gave its charge back in full (once
    Stripe's report of it was delivered); a partial refund changes nothing. A Stars period is
    refunded exactly when Telegram gave its charge back."""
    found = []
    unreported = {e["data"]["object"].get("payment_intent") for e in waiting}
    stars_back = {charge for _payer, charge in world.stars_refunds}
    for p in periods:
        if p.provider == "stars" and (p.provider_ref in stars_back) != (p.refunded_at is not None):
            found.append(f"Stars period {p.id}: Telegram gave back {p.provider_ref in stars_back}")
        if p.provider != "stripe" or not p.payment_ref or p.payment_ref in unreported:
            continue
        charges = [c for c in world.stripe.charges.values() if c["payment_intent"] == p.payment_ref]
        full = any(c["refunded"] for c in charges)
        if full != (p.refunded_at is not None):
            found.append(f"period {p.id}: Stripe refunded in full {full}, ledger {p.refunded_at}")
    return found


def _plan_credits_broken(
    subs: dict[int, Subscription],
    plans: dict[int, Plan],
    periods: list[SubscriptionPeriod],
    entries: list[LedgerEntry],
    enrollments: dict[int, Enrollment],
    sessions: list[MentorSession],
    anchors: dict[int, int],
) -> list[str]:
    """On a plan's enrollment: held + left ≤ granted by periods, nothing granted otherwise,
    and a newer period starts with at most the rollover left over."""
    found = []
    newest: dict[str, bool] = {}
    latest_end: dict[int, datetime] = {}
    for p in periods:  # in id order: was each period newer than all before it?
        last = latest_end.get(p.subscription_id)
        newest[f"credits:period:{p.id}"] = last is None or p.ends_at > last
        latest_end[p.subscription_id] = max(p.ends_at, last or p.ends_at)
    for enrollment in enrollments.values():
        sub_id = anchors.get(enrollment.order_id)
        if sub_id is None:
            continue
        plan = plans[subs[sub_id].plan_id]
        mine = [e for e in entries if e.enrollment_id == enrollment.id and e.credits]
        if any(e.kind == "credit_granted" for e in mine):
            found.append(f"enrollment {enrollment.id} of a plan got credits outside a period")
        granted = sum(e.credits for e in mine if e.kind == "period_credits")
        left = sum(e.credits for e in mine)
        holding = sum(
            1
            for s in sessions
            if s.enrollment_id == enrollment.id and s.status in ("scheduled", "completed")
        )
        if left + holding > granted:
            found.append(
                f"enrollment {enrollment.id}: {left} left + {holding} sessions of {granted} "
                "granted by paid periods"
            )
        balance = 0
        for e in mine:
            if e.kind == "period_credits" and newest.get(e.key) and balance > plan.rollover_max:
                found.append(
                    f"enrollment {enrollment.id}: {balance} credits carried into a new period, "
                    f"rollover {plan.rollover_max}"
                )
            balance += e.credits
    return found


def _ends_broken(
    world: Any,
    subs: dict[int, Subscription],
    enrollments: dict[int, Enrollment],
    entries: list[LedgerEntry],
    anchors: dict[int, int],
    users: dict[int, User],
    now: datetime,
    covering: set[int],
) -> list[str]:
    found = []
    left: dict[int, int] = {}
    for e in entries:
        if e.enrollment_id is not None:
            left[e.enrollment_id] = left.get(e.enrollment_id, 0) + e.credits
    for enrollment in enrollments.values():
        sub = subs.get(anchors.get(enrollment.order_id, -1))
        if sub is None:
            continue
        primary = enrollments.get(sub.enrollment_id or -1)
        current = sub.status in LIVE and (
            enrollment.id == sub.enrollment_id
            or (
                enrollment.order_id in covering
                and primary is not None
                and primary.status == "active"
            )
        )
        if not current and (enrollment.status == "active" or left.get(enrollment.id, 0)):
            found.append(
                f"enrollment {enrollment.id} of subscription {sub.id} ({sub.status}) is "
                f"{enrollment.status} with {left.get(enrollment.id, 0)} credits"
            )
    for sub in subs.values():
        if sub.ended_at is not None:
            continue
        end = sub.current_period_end
        if sub.status == "past_due" and sub.grace_until is not None and sub.grace_until <= now:
            found.append(f"subscription {sub.id} is overdue past its grace period")
        if end is not None and end <= now and sub.provider != "stripe":
            if sub.status == "cancelling":
                found.append(f"subscription {sub.id} was cancelled yet goes on past {end}")
            if sub.provider == "stars" and end + STARS_LAPSE <= now:
                found.append(f"Stars subscription {sub.id} goes on with no renewal since {end}")
        user = users.get(sub.user_id)
        if user is not None and user.deleted_at is not None:
            found.append(f"subscription {sub.id} of an erased account is {sub.status}")
    for sub in subs.values():
        user = users.get(sub.user_id)
        if user is None or user.deleted_at is None or not sub.provider_ref:
            continue
        if sub.provider == "stripe" and not world.stripe_trouble:
            remote = world.stripe.subscriptions.get(sub.provider_ref)
            if remote and remote["status"] != "canceled" and not remote["cancel_at_period_end"]:
                found.append(f"Stripe goes on charging erased subscription {sub.id}")
        if sub.provider == "stars" and not world.stars_cancelled.get(sub.provider_ref, False):
            found.append(f"Telegram goes on charging erased subscription {sub.id}")
    return found


def _coverage_broken(
    subs: dict[int, Subscription],
    enrollments: dict[int, Enrollment],
    entries: list[LedgerEntry],
    anchors: dict[int, int],
    covering: set[int],
    covers: list[tuple[int, int]],
) -> list[str]:
    """A subscription with access (live, its enrollment active) holds one active enrollment
    in each other course its plan covers; no covered enrollment is ever credited."""
    found = []
    credited = {e.enrollment_id for e in entries if e.enrollment_id is not None and e.credits}
    held: dict[int, list[int]] = {}
    for enrollment in enrollments.values():
        if enrollment.order_id not in covering:
            continue
        if enrollment.id in credited:
            found.append(f"covered enrollment {enrollment.id} was credited")
        if enrollment.status == "active":
            held.setdefault(anchors[enrollment.order_id], []).append(enrollment.course_id)
    for sub in subs.values():
        primary = enrollments.get(sub.enrollment_id or -1)
        if sub.status not in LIVE or primary is None or primary.status != "active":
            continue
        wanted = sorted({c for p, c in covers if p == sub.plan_id} - {primary.course_id})
        if sorted(held.get(sub.id, [])) != wanted:
            found.append(
                f"subscription {sub.id} holds covered courses {held.get(sub.id)}, "
                f"its plan covers {wanted}"
            )
    return found
