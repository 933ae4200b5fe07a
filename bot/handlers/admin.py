"""Running the marketplace: courses, mentors, orders, refunds, stats and the waitlist.

Every subcommand checks the admin role in the core, whatever the platform showed or hid.
"""

from __future__ import annotations

import re
import typing

from sqlalchemy import func, select

from bot.context import Ctx
from bot.core import ledger
from bot.core.clock import real_span
from bot.core.errors import STATUS_NAMES, BadInput
from bot.core.i18n import Lines, Localized, Money, Msg, When, _, ngettext
from bot.core.states import OrderStatus, advance
from bot.handlers.args import clip, need, need_int, priced, within
from bot.handlers.mentor_review import rating_text
from bot.handlers.registry import (
    ADMIN_SUBCOMMANDS,
    ADMIN_SUBS,
    Sub,
    admin_line,
    admin_subcommand,
    choice,
    command,
    no_sub_chosen,
    number,
    text,
)
from bot.handlers.stats import DETAILS, stats_detail, stats_summary
from bot.handlers.subscription_refunds import refund_subscription_period
from bot.handlers.subscriptions import subscription_stats
from bot.learning.courses import course_by_slug, course_title
from bot.payments import REFUND_LEASE, check_refund, provider_name, refund_order
from bot.providers.stars.payment import MAX_STARS
from bot.subscriptions.plans import SUBSCRIPTION_PROVIDER
from bot.subscriptions.refunds import PeriodsAt
from storage.models import (
    Course,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    Rating,
    SubscriptionPeriod,
    User,
)

COURSE_FIELDS = (
    "title",
    "title_zh",
    "description",
    "description_zh",
    "price",
    "currency",
    "sessions",
    "topics",
    "stars",
)


def admin_usage(chinese: bool) -> Lines:
    """Every `/admin` sub-command as the table describes it, help in the reader's language;
    for a Chinese reader each with the Chinese words it may be typed as, as /help shows them."""
    return Lines(admin_line(s, chinese) for s in ADMIN_SUBS.values())


# How a price is typed, in each kind of currency's own digits (`PRICE_EXAMPLES`): the hint
# wherever one is asked. Platforms show hints without parameters, so the amounts are written
# out; tests/test_hostile_input.py holds them to `typed_amount`.
PRICE_HINT = _("e.g. price=49.00 for USD, price=5000 for XOF, price=12.500 for KWD")

# A course slug as it appears in links and deep links: ASCII letters, digits, inner dashes.
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@command(
    "admin", _("Run the marketplace (admins only)"), role="admin", subs=ADMIN_SUBS, section="admin"
)
async def admin(ctx: Ctx, args: list[str]) -> None:
    ctx.require_admin()
    chinese = ctx.actor.user.language == "zh"
    if not args:
        ctx.say(_("Admin commands:\n{usage}", usage=admin_usage(chinese)))
        return
    sub, rest = args[0].lower(), args[1:]
    handler = ADMIN_SUBCOMMANDS.get(sub)
    if handler is None:
        raise BadInput(
            _(
                "Unknown admin command '{value}'. Usage:\n{usage}",
                value=clip(sub),
                usage=admin_usage(chinese),
            )
        )
    own = ADMIN_SUBS[sub].subs  # `/admin plan` alone or `/admin plan fly`: its actions
    asking = _("What would you like to do?")
    asked = no_sub_chosen(f"admin {sub}", own, rest, chinese, asking) if own else None
    if asked is not None:
        ctx.say(asked)
        return
    await handler(ctx, rest)


def _parse_fields(pairs: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in COURSE_FIELDS:
            raise BadInput(
                _(
                    "Unknown course field '{value}'. Fields: {fields}.",
                    value=clip(key or pair),
                    fields=Lines(COURSE_FIELDS, ", "),
                )
            )
        fields[key] = value.strip()
    return fields


def _apply_fields(course: Course, fields: dict[str, str]) -> None:
    priced(course, fields)
    if "sessions" in fields:
        try:
            sessions = int(fields["sessions"])
        except ValueError:
            sessions = 0
        if not 1 <= sessions <= 100:
            raise BadInput(
                _(
                    "sessions must be a whole number from 1 to 100, got '{value}'.",
                    value=clip(fields["sessions"]),
                )
            )
        course.sessions_included = sessions
    if "title" in fields:
        course.title_en = within(fields["title"], "title", _("A title"))
    if "title_zh" in fields:
        course.title_zh = within(fields["title_zh"], "title", _("A title"))
    if "description" in fields:
        course.description_en = within(fields["description"], "description", _("A description"))
    if "description_zh" in fields:
        course.description_zh = within(fields["description_zh"], "description", _("A description"))
    if "topics" in fields:
        course.topics = [
            within(t.strip().lower(), "topic", _("A topic"))
            for t in fields["topics"].split(",")
            if t.strip()
        ]
    if "stars" in fields:
        stars = int(fields["stars"]) if fields["stars"].isdigit() else -1
        if not 0 <= stars <= MAX_STARS:
            raise BadInput(
                _(
                    "stars must be a whole number of Telegram Stars up to {max} (0: not sold "
                    "for Stars), got '{value}'.",
                    max=MAX_STARS,
                    value=clip(fields["stars"]),
                )
            )
        course.price_stars = stars or None


async def _course(ctx: Ctx, args: list[str]) -> None:
    usage = "/admin course add|edit|archive|restore SLUG …"
    action = need(args, 0, usage).lower()
    slug = need(args, 1, usage).lower()
    if action == "add":
        if not SLUG.fullmatch(slug):
            raise BadInput(
                _("A slug uses letters, digits and dashes, got '{value}'.", value=clip(slug))
            )
        within(slug, "slug", _("A slug"))
        exists = (
            await ctx.uow.session.execute(select(Course).where(Course.slug == slug))
        ).scalar_one_or_none()
        if exists is not None:
            raise BadInput(_("A course called '{slug}' already exists.", slug=clip(slug)))
        fields = _parse_fields(args[2:])
        missing = [k for k in ("title", "price", "sessions") if k not in fields]
        if missing:
            raise BadInput(
                _(
                    "Missing course fields: {fields}. A price is typed in its currency's own "
                    "digits, {examples}.",
                    fields=Lines(missing, ", "),
                    examples=PRICE_HINT,
                )
                if "price" in missing
                else _("Missing course fields: {fields}.", fields=Lines(missing, ", "))
            )
        course = Course(
            slug=slug,
            title_en="",
            title_zh="",
            description_en="",
            description_zh="",
            price_minor=0,
            currency="USD",
            sessions_included=1,
            topics=[],
            status="active",
            created_at=ctx.now(),
        )
        fields.setdefault("currency", "USD")
        _apply_fields(course, {"currency": fields.pop("currency"), **fields})
        ctx.uow.add(course)
        await ctx.uow.flush()
        ctx.say(
            _(
                "Course '{slug}' added: {title}, {price}.",
                slug=slug,
                title=course_title(course),
                price=Money(course.price_minor, course.currency),
            )
        )
        return
    course = await course_by_slug(ctx.uow, slug, active_only=False)
    if action == "edit":
        fields = _parse_fields(args[2:])
        if not fields:
            raise BadInput(_("Nothing to change. Give key=value pairs."))
        _apply_fields(course, fields)
        ctx.say(_("Course '{slug}' updated.", slug=slug))
    elif action == "archive":
        advance("course", course, "archived")
        ctx.say(
            _(
                "Course '{slug}' is archived: no longer on sale. Learners keep what they bought.",
                slug=slug,
            )
        )
    elif action == "restore":
        advance("course", course, "active")
        ctx.say(_("Course '{slug}' is on sale again.", slug=slug))
    else:
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(action), usage=usage)
        )


async def _orders(ctx: Ctx, args: list[str]) -> None:
    stmt = (
        select(Order, User, Course)
        .join(User, User.id == Order.user_id)
        .join(Course, Course.id == Order.course_id)
        .order_by(Order.id.desc())
        .limit(50)
    )
    if args:  # one of ORDER_STATUSES: the front door refuses any other word
        stmt = stmt.where(Order.status == args[0])
    rows = (await ctx.uow.session.execute(stmt)).all()
    if not rows:
        ctx.say(_("No orders."))
        return
    lines = [
        _(
            "#{id} {when} {name}: {course} {price} — {status} ({provider})",
            id=o.id,
            when=When(o.created_at),
            name=u.display_name,
            course=course_title(c),
            price=Money(o.amount_minor, o.currency),
            status=STATUS_NAMES[o.status],
            provider=provider_name(o.provider),
        )
        for o, u, c in rows
    ]
    ctx.say(_("Orders (newest first):\n{list}", list=Lines(lines)))


async def _refund(ctx: Ctx, args: list[str]) -> None:
    """Checked in this update's transaction; the money moves after it commits (`after_commit`),
    so the order's row is not held while the provider answers. A subscription's anchor order
    is refunded one paid period at a time, and so is a subscription named by `sub=ID`, which
    reaches a period paid while it had no order too (bot/handlers/subscription_refunds.py)."""
    usage = "/admin refund ORDER|sub=SUBSCRIPTION [force] [period=N]"
    forced = any(a.lower() == "force" for a in args)
    periods = [a.split("=", 1)[1] for a in args if a.lower().startswith("period=")]
    period = need_int(periods, 0, usage) if periods else None
    subs = [a.split("=", 1)[1] for a in args if a.lower().startswith("sub=")]
    if subs:
        at = PeriodsAt(subscription_id=need_int(subs, 0, usage))
        await refund_subscription_period(ctx, at, period, forced)
        return
    order_id = need_int(args, 0, usage)
    order = await ctx.uow.get(Order, order_id)
    if order is not None and order.provider == SUBSCRIPTION_PROVIDER:
        await refund_subscription_period(ctx, PeriodsAt(order_id=order_id), period, forced)
        return
    if period is not None and order is not None:
        raise BadInput(
            _(
                "Order #{id} is a course order, not a subscription's, so it has no periods: "
                "/admin refund {id} refunds it whole.",
                id=order_id,
            )
        )
    refund = await check_refund(
        ctx.uow, ctx.config, ctx.payments, order_id, ctx.now(), force=forced
    )

    async def give_back() -> None:
        lease = real_span(ctx.clock, REFUND_LEASE)
        revoked = await refund_order(ctx.new_uow, ctx.payments, refund, ctx.now(), lease)
        if revoked.already:  # the provider's report of the refund revoked it meanwhile
            ctx.say(
                _(
                    "Order #{id} is refunded ({price}). Its sessions are cancelled.",
                    id=order_id,
                    price=Money(refund.amount_minor, refund.currency),
                )
            )
            return
        ctx.say(
            ngettext(
                "Order #{id} refunded; {n} future session cancelled.",
                "Order #{id} refunded; {n} future sessions cancelled.",
                revoked.cancelled,
                id=order_id,
            )
        )

    ctx.after_commit(give_back)


async def _stats(ctx: Ctx, args: list[str]) -> None:
    if args:  # courses | mentors | csv
        await stats_detail(ctx, args)
        return

    async def count(stmt: object) -> int:
        return int((await ctx.uow.session.execute(stmt)).scalar_one() or 0)  # type: ignore[call-overload]

    # Course orders apart from subscriptions' anchor orders, whose payments are their periods
    # (paid and not refunded, as a refunded order is no longer paid).
    paid_orders = select(func.count(Order.id)).where(Order.status == "paid")
    paid_orders = paid_orders.where(Order.provider != SUBSCRIPTION_PROVIDER)
    paid = await count(paid_orders)
    demo = await count(paid_orders.where(Order.provider == "demo"))
    periods: dict[str, int] = {
        str(provider): int(n)
        for provider, n in await ctx.uow.session.execute(
            select(SubscriptionPeriod.provider, func.count(SubscriptionPeriod.id))
            .where(SubscriptionPeriod.refunded_at.is_(None))
            .group_by(SubscriptionPeriod.provider)
        )
    }
    taken, earned, fees = await ledger.totals_by_currency(
        ctx.uow, ctx.now(), ledger.REVENUE_KINDS, ledger.EARNING_KINDS, ledger.FEE_KINDS
    )

    def money(sums: dict[str, int]) -> Lines | Msg:
        shown = [Money(total, cur) for cur, total in sorted(sums.items()) if total]
        return Lines(shown, ", ") if shown else _("none yet")

    async def ratings(by_learners: bool) -> Msg:
        by_learner = Rating.rater_id == MentorSession.learner_id
        total, n = (
            await ctx.uow.session.execute(
                select(func.sum(Rating.stars), func.count(Rating.id))
                .join(MentorSession, MentorSession.id == Rating.session_id)
                .where(by_learner if by_learners else ~by_learner)
            )
        ).one()
        return rating_text(int(total or 0), int(n or 0))

    ctx.say(
        _(
            "Marketplace stats\nUsers: {users}\nPaid orders: {orders} · subscription payments: "
            "{periods}\n"
            "Revenue, paid minus refunded, per currency (the demo orders left out): "
            "{revenue}\nOf that, earned by mentors: {earned} · platform fees: {fees}\n"
            "Mentors approved: {mentors}\nOpen requests: {open} · "
            "waitlisted: {waitlisted}\nSessions completed: {completed} · no-shows: {noshow}\n"
            "Learners rating their mentors: {mentor_ratings}\nMentors rating their learners: "
            "{learner_ratings}",
            users=await count(select(func.count(User.id))),
            orders=ngettext(
                "{n} course order, of which {demo} paid with demo payments (no money moved)",
                "{n} course orders, of which {demo} paid with demo payments (no money moved)",
                paid,
                demo=demo,
            ),
            periods=ngettext(
                "{n} paid period, of which {demo} demo",
                "{n} paid periods, of which {demo} demo",
                sum(periods.values()),
                demo=periods.get("demo", 0),
            ),
            revenue=money(taken),
            earned=money(earned),
            fees=money(fees),
            mentors=await count(
                select(func.count(MentorProfile.id)).where(MentorProfile.status == "approved")
            ),
            open=await count(
                select(func.count(MentorshipRequest.id)).where(
                    MentorshipRequest.status.in_(("open", "offered"))
                )
            ),
            waitlisted=await count(
                select(func.count(MentorshipRequest.id)).where(
                    MentorshipRequest.status == "waitlisted"
                )
            ),
            completed=await count(
                select(func.count(MentorSession.id)).where(MentorSession.status == "completed")
            ),
            noshow=await count(
                select(func.count(MentorSession.id)).where(MentorSession.status == "no_show")
            ),
            mentor_ratings=await ratings(by_learners=True),
            learner_ratings=await ratings(by_learners=False),
        )
    )
    await stats_summary(ctx)  # the satisfaction model and the 12-week chart
    await subscription_stats(ctx)  # MRR and churn by month (bot/subscriptions/stats.py)


async def _waitlist(ctx: Ctx, args: list[str]) -> None:
    rows = (
        await ctx.uow.session.execute(
            select(MentorshipRequest, User)
            .join(User, User.id == MentorshipRequest.learner_id)
            .where(MentorshipRequest.status == "waitlisted")
            .order_by(MentorshipRequest.created_at)
        )
    ).all()
    if not rows:
        ctx.say(_("The waitlist is empty."))
        return
    ctx.say(
        _(
            "Waitlist (oldest first):\n{list}",
            list=Lines(
                _(
                    "#{id} {name} since {when}: {topic}",
                    id=r.id,
                    name=u.display_name,
                    when=When(r.created_at),
                    topic=Localized(r.topic),
                )
                for r, u in rows
            ),
        )
    )


ORDER_STATUSES: tuple[OrderStatus, ...] = typing.get_args(OrderStatus)
COURSE_SLUG = text("slug", _("The course's short name"))
admin_subcommand(
    "course",
    _("Add, edit, archive or restore a course"),
    subs=(
        Sub(
            "add",
            _("Add a course to the catalogue"),
            (
                text("slug", _("Short name: letters, digits and dashes")),
                text("title", _("The title in English"), keyed=True),
                text("price", PRICE_HINT, keyed=True),
                number("sessions", _("Mentor sessions included"), high=100, keyed=True),
                text("currency", _("3-letter code, e.g. USD"), required=False, keyed=True),
                text(
                    "topics",
                    _("Comma-separated, e.g. python,testing"),
                    required=False,
                    keyed=True,
                ),
                text("title_zh", _("The title in Chinese"), required=False, keyed=True),
            ),
        ),
        Sub(
            "edit",
            _("Change a course"),
            (
                COURSE_SLUG,
                text(
                    "changes", _('key=value pairs, e.g. price=59.00 title="New title"'), words=True
                ),
            ),
        ),
        Sub("archive", _("Take a course off sale"), (COURSE_SLUG,)),
        Sub("restore", _("Put an archived course on sale again"), (COURSE_SLUG,)),
    ),
)(_course)
admin_subcommand(
    "orders",
    _("The latest orders"),
    args=(choice("status", _("Only orders in this state"), *ORDER_STATUSES),),
)(_orders)
admin_subcommand(
    "refund",
    _("Refund an order and cancel its sessions, or one period of a subscription"),
    args=(
        number("order", _("The order number"), required=False),
        choice("force", _("force: refund even outside the refund policy"), "force"),
        number(
            "period",
            _("For a subscription's order: the paid period to refund"),
            required=False,
            keyed=True,
        ),
        number(
            "sub",
            _("Instead of an order: the subscription whose paid periods to refund"),
            required=False,
            keyed=True,
        ),
    ),
)(_refund)
admin_subcommand(
    "stats",
    _("Marketplace numbers"),
    args=(choice("detail", _("Leave out for the summary"), *DETAILS),),
)(_stats)
admin_subcommand("waitlist", _("Requests no mentor could take yet"))(_waitlist)
