"""Monthly plans in chat: `/plans`, `/subscribe PLAN`, `/subscription` (status, cancel,
resume), and the admins' `/admin plan`, `/admin plans`, `/admin subscriptions`.

The rules live in bot/subscriptions/; these parse, call them and say what happened.
"""

from __future__ import annotations

import functools
import logging
import re
import typing
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.context import Ctx
from bot.core import words
from bot.core.errors import STATUS_NAMES, BadInput, NotAllowed, NotFound
from bot.core.i18n import Lines, Money, Msg, When, _, ngettext
from bot.core.money import STARS, AmountError, example_amount, parse_amount
from bot.core.outbox import tell_admins
from bot.core.replies import Choice, Say
from bot.core.states import SUBSCRIPTION_LIVE, ShelfStatus, SubscriptionStatus
from bot.handlers.args import clip, currency_arg, need, need_int, priced, within
from bot.handlers.profile import own_profile
from bot.handlers.registry import Sub, admin_subcommand, choice, command, number, text
from bot.learning.courses import course_by_slug
from bot.providers.stars.payment import StarsPayments
from bot.providers.stars.subscriptions import MAX_SUBSCRIPTION_STARS, subscription_invoice
from bot.recommending.log import FROM_SUGGESTION, mark_opened

if TYPE_CHECKING:
    from bot.providers.stripe.checkout import StripePayments
from bot.subscriptions.coverage import follow_plan_courses, sessions_left
from bot.subscriptions.lifecycle import (
    own_subscription,
    set_cancel_at_period_end,
    start,
    trial_allowed,
)
from bot.subscriptions.plans import (
    courses_named,
    plan_by_slug,
    plan_courses,
    plan_line,
    plan_name,
    set_plan_courses,
)
from bot.subscriptions.promo import describe, discounted, normal_code, redeem
from bot.subscriptions.stats import by_month
from bot.subscriptions.sweep import activate_demo
from storage.models import (
    Course,
    MentorProfile,
    Order,
    Plan,
    PromoCode,
    Subscription,
    SubscriptionPeriod,
    User,
)

PLAN = text("plan", _("The plan's short name, e.g. monthly-python"))
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_STARS_PRICE = 10000  # Telegram's cap on a subscription's price in Stars

log = logging.getLogger(__name__)


@command("plans", _("Monthly mentoring plans"), section="plans")
async def plans(ctx: Ctx, args: list[str]) -> None:
    """Each plan with every course it covers (its primary one first), and its mentor where
    the plan is sold with one (only that mentor is offered its subscribers' requests,
    `RequestNeeds.only`)."""
    rows = (
        await ctx.uow.session.execute(
            select(Plan, User.display_name)
            .outerjoin(MentorProfile, MentorProfile.id == Plan.mentor_id)
            .outerjoin(User, User.id == MentorProfile.user_id)
            .where(Plan.status == "active")
            .order_by(Plan.id)
        )
    ).all()
    if not rows:
        ctx.say(_("No plans are on offer yet. See /courses for one-off courses."))
        return
    lines = []
    for p, mentor in rows:
        courses = courses_named(await plan_courses(ctx.uow, p))
        lines.append(
            _(
                "{plan} ({course}) — /subscribe {slug}",
                plan=plan_line(p),
                course=courses
                if mentor is None
                else _("{course}, with mentor {mentor}", course=courses, mentor=mentor),
                slug=p.slug,
            )
        )
    ctx.say(
        _("Monthly plans:\n{list}", list=Lines(lines)),
        [
            Choice(_("Subscribe: {name}", name=plan_name(p)), f"/subscribe {p.slug}")
            for p, _mentor in rows
        ],
    )


async def offer_promo(ctx: Ctx, text: str) -> None:
    """`/start promo_CODE` (a t.me deep link): the plans, each with the code filled in."""
    code = normal_code(text)
    found = (
        await ctx.uow.session.execute(select(PromoCode).where(PromoCode.code == code))
    ).scalar_one_or_none()
    if found is None:
        raise BadInput(_("There is no promo code '{code}'.", code=code))
    rows = (
        await ctx.uow.session.execute(select(Plan).where(Plan.status == "active").order_by(Plan.id))
    ).scalars()
    plans = [p for p in rows if found.plan_id in (None, p.id)]
    ctx.say(
        _("Promo code {code}: {what}. Pick a plan:", code=code, what=describe(found)),
        [Choice(plan_line(p), f"/subscribe {p.slug} {code}") for p in plans],
    )


async def promo_on_order(
    ctx: Ctx, order: Order, course: Course, text: str, *, reused: bool
) -> None:
    """`/buy SLUG CODE`: the code lowers the new order's price (an open order keeps its own).
    Telegram Stars invoices keep the course's Stars price: codes lower card and demo prices."""
    if reused:
        raise BadInput(
            _(
                "Order #{id} is already open at its price. Cancel it (/cancelorder {id}) to "
                "buy with a promo code.",
                id=order.id,
            )
        )
    used = await redeem(
        ctx.uow,
        ctx.actor.id,
        text,
        order.amount_minor,
        order.currency,
        ctx.now(),
        course_id=course.id,
        order_id=order.id,
    )
    order.amount_minor = used.price_minor


def _provider(ctx: Ctx, plan: Plan) -> str:
    """Which provider a new subscription uses on the sender's platform: Telegram Stars inside
    Telegram when the plan has a Stars price, else Stripe where it takes cards, else demo."""
    names = [p.name for p in ctx.payments if p.available_on(ctx.actor.platform)]
    if ctx.actor.platform == "telegram" and plan.price_stars and "stars" in names:
        return "stars"
    if "stripe" in names:
        return "stripe"
    if "demo" in names:
        return "demo"
    raise BadInput(
        _("Subscriptions cannot be paid here yet. Tell the admins with /support."),
        [Choice(_("Write to the admins"), "/support")],
    )


@command(
    "subscribe",
    _("Subscribe to a monthly plan: /subscribe PLAN [PROMO]"),
    args=(PLAN, text("promo", _("A promo code, if you have one"), required=False)),
    section="plans",
)
async def subscribe(ctx: Ctx, args: list[str]) -> None:
    """A suggestion's Subscribe button adds `FROM_SUGGESTION` (lower case; no promo code is
    spelt so, `_promo`), which counts as opening the suggestion."""
    suggested = len(args) > 1 and args[-1] == FROM_SUGGESTION
    if suggested:
        args = args[:-1]
    plan = await plan_by_slug(ctx.uow, need(args, 0, "/subscribe PLAN [PROMO]"))
    if suggested:
        await mark_opened(ctx.uow, ctx.actor.id, "plan", plan.id, ctx.now())
    provider = _provider(ctx, plan)
    amount, currency = plan.price_minor, plan.currency
    if provider == "stars":
        amount, currency = plan.price_stars or 0, STARS
    promo = None
    if len(args) > 1:
        promo = await redeem(
            ctx.uow,
            ctx.actor.id,
            args[1],
            amount,
            currency,
            ctx.now(),
            plan_id=plan.id,
            course_id=plan.course_id,
        )
        if promo.promo.duration == "once" and provider == "stars":
            raise BadInput(
                _(
                    "Promo code {code} takes off the first period only, which a Telegram Stars "
                    "subscription cannot do (each period costs the same Stars). It works for "
                    "one-off courses (/buy) and for subscriptions paid by card.",
                    code=promo.promo.code,
                )
            )
        if promo.promo.duration == "forever":
            amount = promo.price_minor
    sub, _created = await start(
        ctx.uow,
        ctx.actor.id,
        plan,
        provider,
        ctx.now(),
        amount_minor=amount,
        currency=currency,
        promo_id=None if promo is None else promo.promo.id,
    )
    if promo is not None:
        promo.use.subscription_id = sub.id
    summary = _(
        "Subscription #{id}: {plan}, {price} a month.",
        id=sub.id,
        plan=plan_name(plan),
        price=Money(amount, currency),
    )
    if provider == "stars":
        if amount > MAX_SUBSCRIPTION_STARS:
            raise BadInput(
                _(
                    "This plan costs more Stars than Telegram allows for a subscription "
                    "({max} ⭐). Tell the admins with /support.",
                    max=MAX_SUBSCRIPTION_STARS,
                )
            )
        ctx.says.append(Say(summary, invoice=subscription_invoice(sub, plan)))
        return
    if provider == "stripe":
        sub_id, plan_id = sub.id, plan.id
        ctx.after_commit(lambda: _card_checkout(ctx, sub_id, plan_id, summary))
        return
    if provider == "demo":
        label = (
            _("Start the free trial (demo — no money moved)")
            if plan.trial_days
            else _("Pay (demo — no money moved)")
        )
        ctx.say(summary, [Choice(label, f"/subscription pay {sub.id}")])
        return
    ctx.say(summary)


def _stripe(ctx: Ctx) -> StripePayments:
    # Imported here: stripe-python is loaded only where card payments are configured.
    from bot.providers.stripe.checkout import StripePayments

    provider = ctx.provider("stripe")
    assert isinstance(provider, StripePayments)
    return provider


async def _card_checkout(ctx: Ctx, sub_id: int, plan_id: int, summary: Msg) -> None:
    """Outside any transaction: the plan's Price and the subscription's Checkout Session,
    kept on the subscription (pressing Subscribe again shows the same page)."""
    from bot.providers.stripe.billing import (
        BillingUnavailable,
        ensure_coupon,
        ensure_price,
        open_checkout,
    )

    stripe = _stripe(ctx)
    async with ctx.new_uow() as uow:
        sub = await uow.get(Subscription, sub_id)
        plan = await uow.get(Plan, plan_id)
        assert sub is not None and plan is not None
        trial = plan.trial_days if await trial_allowed(uow, sub, plan) else 0
        promo = await uow.get(PromoCode, sub.promo_id) if sub.promo_id else None
        if promo is not None and promo.duration != "once":
            promo = None  # a `forever` code is in the subscription's own price already
        uow.session.expunge(sub)  # read on after this short transaction
        uow.session.expunge(plan)
        if promo is not None:
            uow.session.expunge(promo)
    if sub.checkout_url:
        url = sub.checkout_url
    else:
        try:
            price_id = plan.stripe_price_id
            if price_id is None or sub.amount_minor != plan.price_minor:
                price_id = await ensure_price(stripe, plan, sub.amount_minor, sub.currency)
            coupon = None if promo is None else await ensure_coupon(stripe, promo, sub.currency)
            ref, url = await open_checkout(
                stripe, sub, plan, price_id, trial, ctx.actor.user.language, coupon
            )
        except BillingUnavailable:
            raise BadInput(
                _(
                    "Card payments are not available right now. Try /subscribe again in a few "
                    "minutes."
                )
            ) from None
        async with ctx.new_uow() as uow:
            row = await uow.lock(Subscription, sub_id)
            kept = await uow.lock(Plan, plan_id)
            assert row is not None and kept is not None
            if kept.stripe_price_id is None and sub.amount_minor == kept.price_minor:
                kept.stripe_price_id = price_id
            if row.checkout_url:
                url = row.checkout_url
            else:
                row.checkout_ref, row.checkout_url = ref, url
            await uow.commit()
    price = Money(sub.amount_minor, sub.currency)
    label = _("Subscribe by card: {price} a month", price=price)
    if promo is not None:
        label = _(
            "Subscribe by card: {first} the first month, then {price}",
            first=Money(discounted(sub.amount_minor, promo), sub.currency),
            price=price,
        )
    ctx.say(summary, [Choice(label, url, url=True)])


async def stop_renewals(ctx: Ctx, provider: str, ref: str, payer: str, *, cancel: bool) -> None:
    """Outside any transaction: tell the provider to stop (or resume) renewing a subscription,
    Stripe by `cancel_at_period_end`, Telegram by editUserStarSubscription; the demo provider
    renews by our own clock, so nothing is sent. Raises `BadInput` when it cannot."""
    if provider == "stripe" and ref:
        from bot.providers.stripe.billing import BillingUnavailable, set_cancel

        try:
            await set_cancel(_stripe(ctx), ref, cancel)
        except BillingUnavailable:
            raise BadInput(
                _("The card provider could not be reached; nothing was changed. Please try again.")
            ) from None
    elif provider == "stars" and ref and payer:
        stars = ctx.provider("stars")
        assert isinstance(stars, StarsPayments)
        await stars.edit_subscription(payer, ref, cancel)


async def _card_cancel(ctx: Ctx, sub_id: int, ref: str, cancel: bool) -> None:
    """Outside any transaction: tell Stripe, then follow it here (the webhook agrees)."""
    await stop_renewals(ctx, "stripe", ref, "", cancel=cancel)
    await _follow_cancel(ctx, sub_id, cancel)


async def _follow_cancel(ctx: Ctx, sub_id: int, cancel: bool) -> None:
    async with ctx.new_uow() as uow:
        sub = await uow.lock(Subscription, sub_id)
        assert sub is not None
        if sub.ended_at is None:
            await set_cancel_at_period_end(uow, sub, cancel, ctx.now())
        until = sub.current_period_end or ctx.now()
        await uow.commit()
    ctx.say(
        _(
            "Subscription #{id} ends on {when}; your sessions stay yours until then.",
            id=sub_id,
            when=When(until),
        )
        if cancel
        else _("Subscription #{id} goes on: it renews on {when}.", id=sub_id, when=When(until)),
        [Choice(_("My subscription"), "/subscription")],
    )


async def _stars_cancel(ctx: Ctx, sub_id: int, payer: str, ref: str, cancel: bool) -> None:
    """Outside any transaction: editUserStarSubscription, then follow it here."""
    await stop_renewals(ctx, "stars", ref, payer, cancel=cancel)
    await _follow_cancel(ctx, sub_id, cancel)


async def _card_portal(ctx: Ctx, customer: str) -> None:
    from bot.providers.stripe.billing import (
        BillingUnavailable,
        portal_url,
    )

    try:
        url = await portal_url(_stripe(ctx), customer, ctx.actor.user.language)
    except BillingUnavailable:
        raise BadInput(
            _("The card provider could not be reached. Please try again in a few minutes.")
        ) from None
    ctx.say(_("Manage your card and invoices here:"), [Choice(_("Manage billing"), url, url=True)])


def _status_line(sub: Subscription, plan: Plan, courses: list[Course], left: int) -> Msg:
    status = STATUS_NAMES.get(sub.status, Msg(sub.status))
    head = _(
        "#{id} {plan} ({courses}) — {status}",
        id=sub.id,
        plan=plan_name(plan),
        courses=courses_named(courses),
        status=status,
    )
    parts: list[Msg] = [head]
    if sub.current_period_end is not None:
        if sub.status in ("cancelling",):
            parts.append(_("access until {when}", when=When(sub.current_period_end)))
        elif sub.status == "past_due" and sub.grace_until is not None:
            parts.append(_("access until {when} unless paid", when=When(sub.grace_until)))
        elif sub.status in ("active", "trialing"):
            parts.append(
                _(
                    "renews on {when} for {price}",
                    when=When(sub.current_period_end),
                    price=Money(sub.amount_minor, sub.currency),
                )
            )
    if sub.status in SUBSCRIPTION_LIVE:
        parts.append(
            ngettext("{n} session left this period", "{n} sessions left this period", left)
        )
    return Lines(parts, " · ").as_msg()


SUB_ACTIONS = ("cancel", "resume", "pay", "billing")


@command(
    "subscription",
    _("Your subscriptions: status, renewal, cancel or resume"),
    args=(
        choice("action", _("What to do"), *SUB_ACTIONS),
        number("subscription", _("The subscription number"), required=False),
    ),
    section="plans",
)
async def subscription(ctx: Ctx, args: list[str]) -> None:
    if not args:
        await _show(ctx)
        return
    usage = "/subscription cancel|resume|pay|billing SUBSCRIPTION"
    action = args[0].lower()
    if action not in SUB_ACTIONS:
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(args[0]), usage=usage)
        )
    sub = await own_subscription(ctx.uow, ctx.actor.id, need_int(args, 1, usage))
    plan = await ctx.uow.get(Plan, sub.plan_id)
    assert plan is not None
    if action == "pay":
        if sub.provider != "demo" or ctx.provider("demo") is None:
            raise BadInput(
                _(
                    "Only demo subscriptions are started this way; use the payment "
                    "button you were sent."
                )
            )
        if sub.status != "incomplete":
            raise BadInput(_("Subscription #{id} has started already.", id=sub.id))
        await activate_demo(ctx.uow, sub, plan, ctx.now())
        ctx.say(_("Subscription #{id} has started. See /subscription.", id=sub.id))
        return
    if action == "billing":
        if sub.provider != "stripe" or not sub.customer_ref:
            raise BadInput(_("Subscription #{id} is not paid by card.", id=sub.id))
        customer = sub.customer_ref
        ctx.after_commit(lambda: _card_portal(ctx, customer))
        return
    if sub.status not in SUBSCRIPTION_LIVE:
        raise BadInput(
            _(
                "Subscription #{id} is {status}, so it cannot be changed.",
                id=sub.id,
                status=STATUS_NAMES.get(sub.status, Msg(sub.status)),
            )
        )
    cancel = action == "cancel"
    if sub.provider == "stripe" and sub.provider_ref:
        sub_id, ref = sub.id, sub.provider_ref
        ctx.after_commit(lambda: _card_cancel(ctx, sub_id, ref, cancel))
        return
    if sub.provider == "stars" and sub.provider_ref and sub.customer_ref:
        sub_id, ref, payer = sub.id, sub.provider_ref, sub.customer_ref
        ctx.after_commit(lambda: _stars_cancel(ctx, sub_id, payer, ref, cancel))
        return
    changed = await set_cancel_at_period_end(ctx.uow, sub, cancel, ctx.now())
    until = sub.current_period_end or ctx.now()
    if cancel:
        ctx.say(
            _(
                "Subscription #{id} ends on {when}; your sessions stay yours until then.",
                id=sub.id,
                when=When(until),
            )
            if changed
            else _(
                "Subscription #{id} is already set to end on {when}.", id=sub.id, when=When(until)
            ),
            [Choice(_("Resume"), f"/subscription resume {sub.id}")],
        )
    else:
        ctx.say(
            _("Subscription #{id} goes on: it renews on {when}.", id=sub.id, when=When(until))
            if changed
            else _("Subscription #{id} is not set to end; nothing to resume.", id=sub.id)
        )


async def _show(ctx: Ctx) -> None:
    rows = (
        await ctx.uow.session.execute(
            select(Subscription, Plan)
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(Subscription.user_id == ctx.actor.id)
            .where(Subscription.status.in_([*SUBSCRIPTION_LIVE, "incomplete"]))
            .order_by(Subscription.id)
        )
    ).all()
    if not rows:
        ctx.say(_("You have no subscription. See /plans."), [Choice(_("Plans"), "/plans")])
        return
    lines: list[Msg] = []
    choices: list[Choice] = []
    for sub, plan in rows:
        left = await sessions_left(ctx.uow, sub)
        lines.append(_status_line(sub, plan, await plan_courses(ctx.uow, plan), left))
        if sub.status == "cancelling":
            choices.append(Choice(_("Resume #{id}", id=sub.id), f"/subscription resume {sub.id}"))
        elif sub.status in SUBSCRIPTION_LIVE:
            choices.append(Choice(_("Cancel #{id}", id=sub.id), f"/subscription cancel {sub.id}"))
        if sub.provider == "stripe" and sub.customer_ref and sub.status in SUBSCRIPTION_LIVE:
            choices.append(Choice(_("Manage billing"), f"/subscription billing {sub.id}"))
        elif sub.status == "incomplete" and sub.provider == "demo":
            choices.append(Choice(_("Pay #{id}", id=sub.id), f"/subscription pay {sub.id}"))
    ctx.say(_("Your subscriptions:\n{list}", list=Lines(lines)), choices)


# --- admins -----------------------------------------------------------------------------

PLAN_FIELDS = (
    "course",
    "name",
    "name_zh",
    "price",
    "currency",
    "stars",
    "sessions",
    "rollover",
    "trial",
    "mentor",
    "intro",
)
PRICE_HINT = _("e.g. price=49.00 for USD, price=5000 for XOF, price=12.500 for KWD")


def _fields(pairs: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in PLAN_FIELDS:
            raise BadInput(
                _(
                    "Unknown plan field '{value}'. Fields: {fields}.",
                    value=clip(key or pair),
                    fields=", ".join(PLAN_FIELDS),
                )
            )
        fields[key] = value.strip()
    return fields


def _whole(fields: dict[str, str], key: str, low: int, high: int) -> int | None:
    if key not in fields:
        return None
    raw = fields[key]
    value = int(raw) if raw.isascii() and raw.isdigit() else -1
    if not low <= value <= high:
        raise BadInput(
            _(
                "{key} must be a whole number from {low} to {high}, got '{value}'.",
                key=key,
                low=low,
                high=high,
                value=clip(raw),
            )
        )
    return value


async def _courses(ctx: Ctx, typed: str) -> list[Course]:
    """`course=`: one course's short name, or several separated by commas, the first being
    the primary course (where the sessions land). Each must be a course on sale; the first
    unknown one is named, and nothing changes."""
    slugs = list(dict.fromkeys(s.strip().lower() for s in typed.split(",") if s.strip()))
    if not slugs:
        raise BadInput(
            _(
                "course= needs a course's short name, or several separated by commas, e.g. "
                "course=python-basics,git-teamwork."
            )
        )
    return [await course_by_slug(ctx.uow, slug) for slug in slugs]


async def _apply(ctx: Ctx, plan: Plan, fields: dict[str, str]) -> list[Course] | None:
    """Apply the typed fields to the plan; returns the courses `course=` named (the caller
    stores them once the plan has its id), or None when it was not given."""
    courses = None
    if "course" in fields:
        courses = await _courses(ctx, fields["course"])
        plan.course_id = courses[0].id
    priced(plan, fields)
    if "name" in fields:
        plan.name_en = within(fields["name"], "title", _("A title"))
    if "name_zh" in fields:
        plan.name_zh = within(fields["name_zh"], "title", _("A title"))
    stars = _whole(fields, "stars", 0, MAX_STARS_PRICE)
    if stars is not None:
        plan.price_stars = stars or None
    sessions = _whole(fields, "sessions", 1, 100)
    if sessions is not None:
        plan.sessions_per_period = sessions
    rollover = _whole(fields, "rollover", 0, 100)
    if rollover is not None:
        plan.rollover_max = rollover
    trial = _whole(fields, "trial", 0, 90)
    if trial is not None:
        plan.trial_days = trial
    if "intro" in fields:
        said = words.lookup(words.YES_NO, fields["intro"])
        if said is None:
            raise BadInput(_("intro takes yes or no, got '{value}'.", value=clip(fields["intro"])))
        plan.intro_session = said == "yes"
    if "mentor" in fields:
        mentor_id = _whole(fields, "mentor", 0, 2_147_483_647) or None
        if mentor_id is not None and await ctx.uow.get(MentorProfile, mentor_id) is None:
            raise NotFound(_("There is no mentor #{id}.", id=mentor_id))
        plan.mentor_id = mentor_id
    return courses


async def _plan(ctx: Ctx, args: list[str]) -> None:
    await plan_action(ctx, args, "/admin plan add|edit|archive|restore SLUG …", None)


async def plan_action(ctx: Ctx, args: list[str], usage: str, owner: MentorProfile | None) -> None:
    """Add, edit, archive or restore a plan: an admin's (`owner` None, any plan) or a mentor's
    own (`/myplans`: sold with them, `mentor=` theirs alone, only their own plans)."""
    action = need(args, 0, usage).lower()
    slug = need(args, 1, usage).lower()
    fields = _fields(args[2:]) if action in ("add", "edit") else {}
    if owner is not None and "mentor" in fields:
        raise BadInput(_("A plan of yours is always sold with you; leave out mentor=."))
    if action == "add":
        if not SLUG.fullmatch(slug):
            raise BadInput(
                _("A slug uses letters, digits and dashes, got '{value}'.", value=clip(slug))
            )
        within(slug, "slug", _("A slug"))
        exists = (await ctx.uow.session.execute(select(Plan.id).where(Plan.slug == slug))).first()
        if exists is not None:
            raise BadInput(_("A plan called '{slug}' already exists.", slug=clip(slug)))
        missing = [k for k in ("course", "name", "price", "sessions") if k not in fields]
        if missing:
            raise BadInput(
                _(
                    "Missing plan fields: {fields}. A price is typed in its currency's own "
                    "digits, {examples}.",
                    fields=", ".join(missing),
                    examples=PRICE_HINT,
                )
            )
        plan = Plan(
            slug=slug,
            name_en="",
            name_zh="",
            course_id=0,
            currency="USD",
            price_minor=0,
            sessions_per_period=1,
            rollover_max=0,
            trial_days=0,
            intro_session=False,
            status="active",
            created_at=ctx.now(),
        )
        fields.setdefault("currency", "USD")
        courses = await _apply(ctx, plan, {"currency": fields.pop("currency"), **fields})
        assert courses is not None  # course= is required above
        if owner is not None:
            plan.mentor_id = owner.id
        ctx.uow.add(plan)
        await ctx.uow.flush()
        await set_plan_courses(ctx.uow, plan, courses)
        ctx.say(_("Plan '{slug}' added: {line}.", slug=slug, line=plan_line(plan)))
        if owner is not None:
            await tell_admins(
                ctx.uow,
                _(
                    "Mentor {mentor} added the plan '{slug}': {line}. Archive it with "
                    "/admin plan archive {slug} if it should not be on offer.",
                    mentor=ctx.actor.user.display_name,
                    slug=slug,
                    line=plan_line(plan),
                ),
                ctx.now(),
            )
        return
    plan = await plan_by_slug(ctx.uow, slug, active_only=False)
    if owner is not None and plan.mentor_id != owner.id:
        raise NotFound(_("You have no plan called '{slug}'. See /myplans.", slug=clip(slug)))
    if action == "edit":
        if not fields:
            raise BadInput(_("Nothing to change. Give key=value pairs."))
        courses = await _apply(ctx, plan, fields)
        ctx.say(
            _(
                "Plan '{slug}' updated: {line}. Running subscriptions keep the price they "
                "started with.",
                slug=slug,
                line=plan_line(plan),
            )
        )
        if courses is not None:
            await set_plan_courses(ctx.uow, plan, courses)
            followed = await follow_plan_courses(ctx.uow, plan, ctx.now())
            ctx.say(
                ngettext(
                    "It covers {courses}; the courses of {n} running subscription changed with it.",
                    "It covers {courses}; the courses of {n} running subscriptions changed "
                    "with it.",
                    followed,
                    courses=courses_named(courses),
                )
            )
    elif action == "archive":
        _shelve(plan, "archived")
        ctx.say(
            _(
                "Plan '{slug}' is archived: nobody new can subscribe. Subscribers keep it.",
                slug=slug,
            )
        )
    elif action == "restore":
        _shelve(plan, "active")
        ctx.say(_("Plan '{slug}' is on offer again.", slug=slug))
    else:
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(action), usage=usage)
        )


def _shelve(plan: Plan, target: ShelfStatus) -> None:
    if plan.status == target:
        raise BadInput(
            _("Plan '{slug}' is already {status}.", slug=plan.slug, status=STATUS_NAMES[target])
        )
    plan.status = target


async def _plans(ctx: Ctx, args: list[str]) -> None:
    """`/admin plans`: every plan, archived ones too, with every course it covers (its primary
    one first, as `/plans` lists them) and its live subscribers."""
    rows = (await ctx.uow.session.execute(select(Plan).order_by(Plan.id))).scalars().all()
    if not rows:
        ctx.say(_("No plans yet. Add one with /admin plan add."))
        return
    lines = []
    for p in rows:
        count = await ctx.uow.session.execute(
            select(Subscription.id)
            .where(Subscription.plan_id == p.id)
            .where(Subscription.status.in_(list(SUBSCRIPTION_LIVE)))
        )
        lines.append(
            ngettext(
                "{slug}: {line} ({courses}) — {status}, {n} subscriber",
                "{slug}: {line} ({courses}) — {status}, {n} subscribers",
                len(count.all()),
                slug=p.slug,
                line=plan_line(p),
                courses=courses_named(await plan_courses(ctx.uow, p)),
                status=STATUS_NAMES[p.status],
            )
        )
    ctx.say(_("Plans:\n{list}", list=Lines(lines)))


SUB_STATUSES = typing.get_args(SubscriptionStatus)
# What an admin types for each status: words, never the code's spelling (past_due: overdue).
STATUS_WORDS: dict[str, SubscriptionStatus] = {
    ("overdue" if s == "past_due" else s): s for s in SUB_STATUSES
}


async def _subscriptions(ctx: Ctx, args: list[str]) -> None:
    stmt = (
        select(Subscription, Plan, User)
        .join(Plan, Plan.id == Subscription.plan_id)
        .join(User, User.id == Subscription.user_id)
        .order_by(Subscription.id.desc())
        .limit(50)
    )
    if args:  # one of STATUS_WORDS: the front door refuses any other word
        status = STATUS_WORDS[args[0]]
        stmt = stmt.where(Subscription.status == status)
    rows = (await ctx.uow.session.execute(stmt)).all()
    if not rows:
        ctx.say(_("No subscriptions."))
        return
    paid = await ctx.uow.session.execute(
        select(SubscriptionPeriod.subscription_id)
        .where(SubscriptionPeriod.subscription_id.in_([s.id for s, _p, _u in rows]))
        .distinct()
    )
    with_periods = set(paid.scalars())
    lines = [_subscription_line(s, p, u, s.id in with_periods) for s, p, u in rows]
    ctx.say(_("Subscriptions (newest first):\n{list}", list=Lines(lines)))


def _subscription_line(s: Subscription, p: Plan, u: User, has_periods: bool) -> Msg:
    """One subscription for `/admin subscriptions`, with its anchor order once it has one (the
    order `/admin refund` takes to refund one of its periods); one with paid periods but no
    order (it never got access) is refunded by its own number (`/admin refund sub=ID`)."""
    line = _(
        "#{id} {name}: {plan} {price} — {status} (since {when})",
        id=s.id,
        name=u.display_name,
        plan=plan_name(p),
        price=Money(s.amount_minor, s.currency),
        status=STATUS_NAMES[s.status],
        when=When(s.created_at),
    )
    if s.order_id is None:
        if not has_periods:
            return line
        refund = _("/admin refund sub={id} refunds a period", id=s.id)
        return Lines([line, refund], " · ").as_msg()
    refund = _("order #{order}: /admin refund {order} refunds a period", order=s.order_id)
    return Lines([line, refund], " · ").as_msg()


async def subscription_stats(ctx: Ctx) -> None:
    """`/admin stats`: MRR and churn by month, once there are subscriptions."""
    if (await ctx.uow.session.execute(select(Subscription.id).limit(1))).first() is None:
        return

    def mrr(sums: dict[str, int]) -> Lines | str:
        shown = [Money(a, c) for c, a in sorted(sums.items()) if a]
        return Lines(shown, ", ") if shown else "—"

    lines = [
        _(
            "{month}: MRR {mrr} · churn {churn} ({ended} of {live} ended)",
            month=m.label,
            mrr=mrr(m.mrr),
            churn="—" if m.churn_percent is None else f"{m.churn_percent:.0f}%",
            ended=m.ended,
            live=m.live_at_start,
        )
        for m in await by_month(ctx.uow, ctx.now())
    ]
    ctx.say(
        _(
            "Subscriptions by month (MRR: periods paid minus refunded, demo left out):\n{list}",
            list=Lines(lines),
        )
    )


PROMO_FIELDS = ("percent", "amount", "currency", "duration", "max", "expires", "plan", "course")


async def _promo(ctx: Ctx, args: list[str]) -> None:
    usage = "/admin promo add CODE percent=N|amount=X [duration=once|forever] [max=N] …"
    if need(args, 0, usage).lower() != "add":
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(args[0]), usage=usage)
        )
    code = normal_code(need(args, 1, usage))
    if code == FROM_SUGGESTION.upper():
        raise BadInput(
            _(
                "Promo code {code} cannot be made: the word is kept for the suggestions' "
                "Subscribe buttons. Please pick another code.",
                code=code,
            )
        )
    fields: dict[str, str] = {}
    for pair in args[2:]:
        key, sep, value = pair.partition("=")
        if not sep or key.lower() not in PROMO_FIELDS:
            raise BadInput(
                _(
                    "Unknown promo field '{value}'. Fields: {fields}.",
                    value=clip(key or pair),
                    fields=", ".join(PROMO_FIELDS),
                )
            )
        fields[key.lower()] = value.strip()
    exists = await ctx.uow.session.execute(select(PromoCode.id).where(PromoCode.code == code))
    if exists.first() is not None:
        raise BadInput(_("A promo code {code} already exists.", code=code))
    if ("percent" in fields) == ("amount" in fields):
        raise BadInput(_("Give either percent=N (1 to 100) or amount=X (with currency=)."))
    promo = PromoCode(
        code=code, kind="percent", value=0, duration="once", uses=0, created_at=ctx.now()
    )
    if "percent" in fields:
        promo.value = _whole(fields, "percent", 1, 100) or 0
    else:
        currency = currency_arg(fields.get("currency", "USD"), stars=True)
        try:
            promo.value = parse_amount(fields["amount"], currency)
        except AmountError:
            raise BadInput(
                _(
                    "amount must be an amount in {currency} like {example}, got '{value}'.",
                    currency=currency,
                    example=example_amount(currency),
                    value=clip(fields["amount"]),
                )
            ) from None
        promo.kind, promo.currency = "amount", currency
    duration = fields.get("duration", "once").lower()
    if duration not in ("once", "forever"):
        raise BadInput(_("duration must be once or forever, got '{value}'.", value=clip(duration)))
    promo.duration = duration
    promo.max_uses = _whole(fields, "max", 1, 1_000_000)
    if "expires" in fields:
        try:
            day = date.fromisoformat(fields["expires"])
        except ValueError:
            raise BadInput(
                _(
                    "expires must be a date like 2026-12-31, got '{value}'.",
                    value=clip(fields["expires"]),
                )
            ) from None
        promo.expires_at = datetime.combine(day + timedelta(days=1), time(), UTC)
    if "plan" in fields:
        promo.plan_id = (await plan_by_slug(ctx.uow, fields["plan"], active_only=False)).id
    if "course" in fields:
        promo.course_id = (await course_by_slug(ctx.uow, fields["course"])).id
    ctx.uow.add(promo)
    await ctx.uow.flush()
    ctx.say(_("Promo code {code} added: {what}.", code=code, what=describe(promo)))


async def _promos(ctx: Ctx, args: list[str]) -> None:
    rows = (await ctx.uow.session.execute(select(PromoCode).order_by(PromoCode.id))).scalars()
    lines = [
        _(
            "{code}: {what}, used {uses} of {max}",
            code=p.code,
            what=describe(p),
            uses=p.uses,
            max=p.max_uses if p.max_uses is not None else "∞",
        )
        for p in rows
    ]
    if not lines:
        ctx.say(_("No promo codes yet. Add one with /admin promo add."))
        return
    ctx.say(_("Promo codes:\n{list}", list=Lines(lines)))


PLAN_SLUG = text("slug", _("The plan's short name"))
PLAN_SUB_ARGS = (
    text("slug", _("Short name: letters, digits and dashes")),
    text(
        "course",
        _(
            "The course it covers (its short name), or several separated by commas; the "
            "first gets the sessions"
        ),
        keyed=True,
    ),
    text("name", _("The name in English"), keyed=True),
    text("price", PRICE_HINT, keyed=True),
    number("sessions", _("Mentor sessions per month"), high=100, keyed=True),
    text("currency", _("3-letter code, e.g. USD"), required=False, keyed=True),
    text("stars", _("The price in Telegram Stars"), required=False, keyed=True),
    text("rollover", _("Unused sessions that carry over"), required=False, keyed=True),
    text("trial", _("Free trial days"), required=False, keyed=True),
    text("mentor", _("Sold with this mentor alone (their number)"), required=False, keyed=True),
    text("intro", _("yes: a free intro session per learner"), required=False, keyed=True),
    text("name_zh", _("The name in Chinese"), required=False, keyed=True),
)
admin_subcommand(
    "plan",
    _("Add, edit, archive or restore a monthly plan"),
    subs=(
        Sub("add", _("Add a monthly plan"), PLAN_SUB_ARGS),
        Sub(
            "edit",
            _("Change a plan"),
            (PLAN_SLUG, text("changes", _("key=value pairs, e.g. price=59.00"), words=True)),
        ),
        Sub("archive", _("Take a plan off offer"), (PLAN_SLUG,)),
        Sub("restore", _("Offer an archived plan again"), (PLAN_SLUG,)),
    ),
)(_plan)
admin_subcommand("plans", _("The monthly plans and their subscribers"))(_plans)

MY_PLAN_SUBS = {
    "add": Sub(
        "add",
        _("Sell a monthly plan with you as its mentor"),
        tuple(a for a in PLAN_SUB_ARGS if a.name != "mentor"),
    ),
    "edit": Sub(
        "edit",
        _("Change one of your plans"),
        (PLAN_SLUG, text("changes", _("key=value pairs, e.g. price=59.00"), words=True)),
    ),
    "archive": Sub("archive", _("Take one of your plans off offer"), (PLAN_SLUG,)),
    "restore": Sub("restore", _("Offer one of your archived plans again"), (PLAN_SLUG,)),
}


@command(
    "myplans",
    _("Monthly plans you sell as a mentor, where the marketplace allows it"),
    role="mentor",
    subs=MY_PLAN_SUBS,
    section="mentors",
)
async def my_plans(ctx: Ctx, args: list[str]) -> None:
    """A mentor's own plans (`[subscriptions] mentor_plans`): each is sold with them alone
    (`RequestNeeds.only`), they change only their own, and the admins are told of each new one
    (an admin can archive it like any plan)."""
    mentor = await own_profile(ctx)
    if not ctx.config.subscriptions.mentor_plans:
        raise NotAllowed(
            _(
                "Plans are set by the admins on this marketplace. Ask one with /support if "
                "you would like a plan of your own."
            )
        )
    if args:
        await plan_action(ctx, args, "/myplans add|edit|archive|restore SLUG …", mentor)
        return
    rows = (
        await ctx.uow.session.execute(
            select(Plan).where(Plan.mentor_id == mentor.id).order_by(Plan.id)
        )
    ).scalars()
    lines = [
        _(
            "{slug}: {line} — {status}",
            slug=p.slug,
            line=plan_line(p),
            status=STATUS_NAMES[p.status],
        )
        for p in rows
    ]
    if not lines:
        ctx.say(
            _(
                "You sell no plans yet. Add one: /myplans add SLUG course=SLUG name=… "
                "price=29.00 sessions=2 (trial=, intro=yes, rollover=, stars= optional)."
            )
        )
        return
    ctx.say(_("Your plans:\n{list}", list=Lines(lines)))


admin_subcommand(
    "subscriptions",
    _("The latest subscriptions"),
    args=(choice("status", _("Only subscriptions in this state"), *STATUS_WORDS),),
)(_subscriptions)
admin_subcommand(
    "promo",
    _("Add a promo code"),
    subs=(
        Sub(
            "add",
            _("Add a promo code"),
            (
                text("code", _("Letters, digits, dashes")),
                text("percent", _("Percent off, 1 to 100"), required=False, keyed=True),
                text("amount", _("An amount off, e.g. 5.00"), required=False, keyed=True),
                text("currency", _("3-letter code, e.g. USD"), required=False, keyed=True),
                text("duration", _("once or forever"), required=False, keyed=True),
                text("max", _("How many learners may use it"), required=False, keyed=True),
                text("expires", _("Last day, e.g. 2026-12-31"), required=False, keyed=True),
                text("plan", _("Only for this plan"), required=False, keyed=True),
                text("course", _("Only for this course"), required=False, keyed=True),
            ),
        ),
    ),
)(_promo)
admin_subcommand("promos", _("The promo codes and their uses"))(_promos)


async def stop_renewals_after_commit(ctx: Ctx, user_id: int) -> None:
    """For `/deleteme`: after its transaction (which ends every live subscription here), tell
    Stripe and Telegram to stop renewing the user's card and Stars subscriptions, so an erased
    account is never charged again. A provider that cannot be reached is logged; the
    subscription has ended here either way, and a later renewal's payment finds it ended."""
    live = (
        await ctx.uow.session.execute(
            select(Subscription)
            .where(Subscription.user_id == user_id, Subscription.ended_at.is_(None))
            .where(Subscription.provider.in_(("stripe", "stars")))
            .where(Subscription.provider_ref.is_not(None))
        )
    ).scalars()
    for sub in live:
        provider, ref, payer = sub.provider, sub.provider_ref or "", sub.customer_ref or ""
        ctx.after_commit(functools.partial(_stop_at_provider, ctx, provider, ref, payer))


async def _stop_at_provider(ctx: Ctx, provider: str, ref: str, payer: str) -> None:
    try:
        await stop_renewals(ctx, provider, ref, payer, cancel=True)
    except Exception:
        log.warning(
            "could not stop a subscription's renewals at its provider",
            extra={"provider": provider, "subscription": ref},
            exc_info=True,
        )
