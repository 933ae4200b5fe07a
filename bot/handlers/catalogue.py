"""Browsing and buying courses."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from bot.context import Ctx
from bot.core.errors import BadInput, NotFound, TransitionRefused
from bot.core.i18n import Lines, Localized, Money, Msg, When, _, ngettext
from bot.core.replies import Choice, write_to_admins
from bot.core.states import advance
from bot.handlers.args import need, need_int
from bot.handlers.recommend import suggestion_block
from bot.handlers.registry import (
    COMMANDS,
    SECTIONS,
    Command,
    chinese_words,
    command,
    help_line,
    in_menu_order,
    number,
    text,
)
from bot.handlers.subscriptions import offer_promo, promo_on_order
from bot.learning.courses import CATALOGUE, course_by_slug, course_price, course_title
from bot.payments import (
    Checkout,
    PaymentProvider,
    PaymentUnavailable,
    fulfil_order,
    place_order,
)
from bot.recommending.log import FROM_SUGGESTION, mark_opened
from bot.recommending.signals import versions
from bot.subscriptions.coverage import plan_covers
from bot.subscriptions.plans import plan_name
from storage.models import Course, Enrollment, Order

SLUG = text("slug", _("The course's short name, e.g. python-basics"))
ORDER = number("order", _("The order number"))


@command("start", _("Welcome and what you can do here"), section="start")
async def start(ctx: Ctx, args: list[str]) -> None:
    welcome = _(
        "Welcome to mentorbot, {name}! Buy a course, meet a mentor, book sessions and get "
        "reminded. Start with /courses, or /help for everything.",
        name=ctx.actor.user.display_name,
    )
    choices = [Choice(_("Browse courses"), "/courses")]
    found = await suggestion_block(ctx, "start", returning_only=True)  # what to take next
    lines = found.lines()
    if lines is not None:
        welcome = Lines([welcome, lines]).as_msg()
        choices += found.choices()
    ctx.say(welcome, choices)
    if args and args[0].startswith("course_"):
        await show_course(ctx, [args[0].removeprefix("course_")])
    if args and args[0].startswith("promo_"):  # subscriptions: t.me/<bot>?start=promo_CODE
        await offer_promo(ctx, args[0].removeprefix("promo_"))


@command("help", _("List the commands"), section="start")
async def help_(ctx: Ctx, args: list[str]) -> None:
    """The commands this reader may use here, under the headings of `SECTIONS`."""
    visible = [
        c
        for c in in_menu_order(COMMANDS.values())
        if (c.role is None or c.role in ctx.actor.roles) and c.on(ctx.actor.platform)
    ]
    chinese = ctx.actor.user.language == "zh"
    parts = [
        _(
            "{heading}:\n{list}",
            heading=heading,
            list=Lines(_help_line(c, chinese) for c in visible if c.section == section),
        )
        for section, heading, _lead in SECTIONS
        if any(c.section == section for c in visible)
    ]
    ctx.say(_("Commands:\n\n{list}", list=Lines(parts, "\n\n")))


def _help_line(command: Command, chinese: bool) -> Msg:
    return help_line(command.name, command.help, chinese_words(command) if chinese else [])


@command("courses", _("Browse the course catalogue"), section="courses")
async def list_courses(ctx: Ctx, args: list[str]) -> None:
    """The catalogue, then the learner's suggestions, whose courses are among its buttons: a
    suggested course's button says so (`FROM_SUGGESTION`), so pressing it counts as opening
    the suggestion. One read of the recommender's versions serves both: the courses are kept
    per process while those versions stand (`Catalogue`)."""
    known = await versions(ctx.uow, ctx.actor.id, ctx.now())
    courses = await CATALOGUE.active(ctx.uow, known.model)
    if not courses:
        ctx.say(_("No courses are on offer yet. Please check back soon."))
        return
    found = await suggestion_block(ctx, "courses", known=known)
    suggested = {s.course.id for s in found.items}
    choices = [
        Choice(
            ngettext(
                "{title} — {price}, {n} session",
                "{title} — {price}, {n} sessions",
                c.sessions_included,
                title=course_title(c),
                price=course_price(c),
            ),
            f"/course {c.slug} {FROM_SUGGESTION}" if c.id in suggested else f"/course {c.slug}",
        )
        for c in courses
    ]
    heading = _("Courses on offer — pick one to see details:")
    lines = found.lines()
    ctx.say(heading if lines is None else Lines([heading, lines]).as_msg(), choices)


@command("course", _("Show one course: /course SLUG"), args=(SLUG,), section="courses")
async def show_course(ctx: Ctx, args: list[str]) -> None:
    course = await course_by_slug(ctx.uow, need(args, 0, "/course SLUG"))
    if args[1:2] == [FROM_SUGGESTION]:  # the suggestion's button
        await mark_opened(ctx.uow, ctx.actor.id, "course", course.id, ctx.now())
    detail = ngettext(
        "{title}\n{description}\nPrice: {price} · {n} mentor session · topics: {topics}",
        "{title}\n{description}\nPrice: {price} · {n} mentor sessions · topics: {topics}",
        course.sessions_included,
        title=course_title(course),
        description=Localized(course.description_en, course.description_zh),
        price=course_price(course),
        topics=Lines(course.topics, ", ") if course.topics else "—",
    )
    ctx.say(
        Lines([detail, refund_policy(ctx)]).as_msg(),
        [Choice(_("Buy"), f"/buy {course.slug}")],
    )


def refund_policy(ctx: Ctx) -> Msg:
    return _(
        "Refunds: in full within {days} days of payment if no session has been used.",
        days=ctx.config.payments.refund_window_days,
    )


@command(
    "buy",
    _("Buy a course: /buy SLUG [PROMO]"),
    args=(SLUG, text("promo", _("A promo code, if you have one"), required=False)),
    section="courses",
)
async def buy(ctx: Ctx, args: list[str]) -> None:
    """Place the order (`place_order`: the learner's pending one, or a new one) and commit it;
    the ways to pay come after the commit (`offer_checkout`), as Stripe's may take seconds."""
    course = await course_by_slug(ctx.uow, need(args, 0, "/buy SLUG"))
    providers = [p for p in ctx.payments if p.available_on(ctx.actor.platform)]
    if not providers and ctx.actor.platform == "console":
        raise BadInput(
            _(
                "No way to pay is set up. For a try-out, start the console with `mentorbot "
                "shell --demo`, or set demo = true under [payments] in the config: demo "
                "payments move no money."
            )
        )
    if not providers:
        raise BadInput(
            _(
                "Payments are not set up on this marketplace yet. Tell the admins with "
                "/support, and buy again once they have set them up."
            ),
            [write_to_admins()],
        )
    placed = await place_order(ctx.uow, ctx.actor.id, course.id, ctx.now(), ctx.config)
    if len(args) > 1:  # a promo code (bot.subscriptions.promo) lowers a new order's price
        await promo_on_order(ctx, placed.order, course, args[1], reused=placed.reused)
    ctx.after_commit(lambda: offer_checkout(ctx, providers, placed.order, course))


async def offer_checkout(
    ctx: Ctx, providers: list[PaymentProvider], order: Order, course: Course
) -> None:
    """The committed order's message with each provider's way to pay it.

    Runs outside any transaction: Stripe opens the order's Checkout Session here, with an
    idempotency key derived from the order, so a double tap or a retry gets the same session.
    A provider that cannot take the payment now (`PaymentUnavailable`) leaves its note instead
    of its button; the order stays pending, and Try again (`/buy`) asks that provider again.
    """
    choices = []
    notes: list[Msg] = []
    for provider in providers:
        try:
            checkout = await provider.start_checkout(order, course)
        except PaymentUnavailable as unavailable:
            notes.append(unavailable.message)
            continue
        if checkout.ref and checkout.ref != order.checkout_ref:
            kept = await keep_checkout(ctx, order.id, checkout)
            if kept is None:  # closed while the page opened: /cancelorder, /deleteme
                await provider.close_checkout(checkout.ref)
                ctx.say(
                    _(
                        "Order #{id} was closed while its payment page was opening, so the "
                        "page was closed too and nothing can be charged. /courses to start "
                        "again.",
                        id=order.id,
                    )
                )
                return
            checkout = kept
        if checkout.url:
            choices.append(Choice(checkout.label, checkout.url, url=True))
        elif checkout.pay_command:
            choices.append(Choice(checkout.label, checkout.pay_command))
    if notes:
        choices.append(Choice(_("Try again"), f"/buy {course.slug}"))
    choices.append(Choice(_("Cancel order"), f"/cancelorder {order.id}"))
    summary = _(
        "Order #{id}: {title} for {price}. It stays open until {expires}.",
        id=order.id,
        title=course_title(course),
        price=Money(order.amount_minor, order.currency),  # after a promo code, if any
        expires=When(order.expires_at),
    )
    ctx.say(Lines([summary, *notes]).as_msg() if notes else summary, choices)


async def keep_checkout(ctx: Ctx, order_id: int, checkout: Checkout) -> Checkout | None:
    """Keep the payment page a provider opened on the order, in a short transaction of its own,
    unless the order has one already (a double tap's other half): that one is shown, as it is
    the only one a payment is accepted for. None when the order closed meanwhile (cancelled, or
    its account erased, while Stripe was opening the page): nobody else knows of that page,
    so the caller closes it."""
    async with ctx.new_uow() as uow:
        order = await uow.lock(Order, order_id)
        if order is None or order.status != "pending":
            return None
        if order.checkout_ref is not None:
            return replace(checkout, url=order.checkout_url, ref=order.checkout_ref)
        order.checkout_ref, order.checkout_url = checkout.ref, checkout.url
        await uow.commit()
    return checkout


async def _own_order(ctx: Ctx, order_id: int) -> Order:
    order = await ctx.uow.lock(Order, order_id)
    if order is None or order.user_id != ctx.actor.id:
        raise NotFound(_("You have no order #{id}.", id=order_id))
    return order


@command(
    "pay", _("Pay a pending order (demo payments): /pay ORDER"), args=(ORDER,), section="courses"
)
async def pay(ctx: Ctx, args: list[str]) -> None:
    order_id = need_int(args, 0, "/pay ORDER")
    if ctx.provider("demo") is None:
        raise BadInput(_("/pay is only for demo payments; use the payment button you were sent."))
    order = await _own_order(ctx, order_id)
    now = ctx.now()
    if order.status == "paid":
        raise BadInput(_("Order #{id} is already paid. See /mycourses.", id=order.id))
    if order.status == "pending" and order.expires_at <= now:
        advance("order", order, "expired")
        await ctx.uow.flush()
        ctx.say(_("Order #{id} has expired. Buy again with /courses.", id=order.id))
        return
    if order.status != "pending":
        raise TransitionRefused("order", order.id, order.status, "paid")
    paid = await fulfil_order(ctx.uow, ctx.config, order, now, "demo")
    enrollment = paid.enrollment
    course = await ctx.uow.get(Course, order.course_id)
    assert course is not None
    if paid.seat:  # the seat's own notice says the rest
        ctx.say(_("Paid (demo — no money moved)."))
        return
    ctx.say(
        ngettext(
            "Paid (demo — no money moved). {title} is yours, with {n} mentor session.",
            "Paid (demo — no money moved). {title} is yours, with {n} mentor sessions.",
            enrollment.credits_remaining,
            title=course_title(course),
        ),
        [Choice(_("Find a mentor"), f"/mentor {course.slug}")],
    )


@command(
    "cancelorder", _("Cancel a pending order: /cancelorder ORDER"), args=(ORDER,), section="courses"
)
async def cancel_order(ctx: Ctx, args: list[str]) -> None:
    order = await _own_order(ctx, need_int(args, 0, "/cancelorder ORDER"))
    advance("order", order, "cancelled")
    ctx.close_checkout_after_commit(order.checkout_ref)
    ctx.say(_("Order #{id} is cancelled. Nothing was charged.", id=order.id))


async def my_enrollments(ctx: Ctx) -> list[tuple[Enrollment, Course]]:
    """The actor's active enrollments with their courses; says so when there are none."""
    rows = (
        await ctx.uow.session.execute(
            select(Enrollment, Course)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.user_id == ctx.actor.id)
            .where(Enrollment.status == "active")
            .order_by(Enrollment.id)
        )
    ).all()
    if not rows:
        ctx.say(_("You have no courses yet."), [Choice(_("Browse courses"), "/courses")])
    return [(e, c) for e, c in rows]


@command("mycourses", _("Your courses and the sessions left"), section="courses")
async def my_courses(ctx: Ctx, args: list[str]) -> None:
    """Each course with its sessions left: a bought one's own, a course a plan covers its
    plan's pool this period (`plan_covers`), with a button to find a mentor while any are left
    (`/mentor SLUG` books a covered course on the plan's sessions)."""
    rows = await my_enrollments(ctx)
    if not rows:
        return
    covers = await plan_covers(ctx.uow, ctx.actor.id)
    lines = []
    choices: list[Choice] = []
    for enrollment, course in rows:
        cover = covers.get(enrollment.id)
        left = enrollment.credits_remaining if cover is None else cover.left
        if cover is None:
            lines.append(
                ngettext(
                    "{title}: {n} session left",
                    "{title}: {n} sessions left",
                    left,
                    title=course_title(course),
                )
            )
        else:
            lines.append(
                ngettext(
                    "{title}: covered by your plan {plan}, {n} session left this period",
                    "{title}: covered by your plan {plan}, {n} sessions left this period",
                    left,
                    title=course_title(course),
                    plan=plan_name(cover.plan),
                )
            )
        mentor = Choice(
            _("Find a mentor for {title}", title=course_title(course)), f"/mentor {course.slug}"
        )
        if left > 0 and all(c.payload != mentor.payload for c in choices):
            choices.append(mentor)
    ctx.say(_("Your courses:\n{list}", list=Lines(lines)), choices)
