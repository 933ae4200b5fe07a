"""Paying an order with Telegram Stars: the Pay button asks for an invoice.

The payment itself arrives from Telegram, not as a command; see `bot.providers.stars.payment`.
"""

from __future__ import annotations

from bot.context import Ctx
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import When, _
from bot.core.replies import Say
from bot.handlers.args import need_int
from bot.handlers.registry import command, number
from bot.learning.courses import course_title
from bot.providers.stars.payment import PROVIDER, stars_invoice
from bot.sessions.workshops import on_sale
from storage.models import Course, Order


@command(
    "paystars",
    _("Pay an order with Telegram Stars (in Telegram): /paystars ORDER"),
    args=(number("order", _("The order number")),),
    platforms=("telegram",),
    section="courses",
)
async def pay_stars(ctx: Ctx, args: list[str]) -> None:
    order_id = need_int(args, 0, "/paystars ORDER")
    provider = ctx.provider(PROVIDER)
    if provider is None or not provider.available_on(ctx.actor.platform):
        raise BadInput(_("Telegram Stars payments work only inside Telegram."))
    order = await ctx.uow.get(Order, order_id)
    if order is None or order.user_id != ctx.actor.id:
        raise NotFound(_("You have no order #{id}.", id=order_id))
    if order.status == "paid":
        raise BadInput(_("Order #{id} is already paid. See /mycourses.", id=order.id))
    if order.status != "pending" or order.expires_at <= ctx.now():
        raise BadInput(_("Order #{id} is no longer open. Buy again with /courses.", id=order.id))
    course = await ctx.uow.get(Course, order.course_id)
    assert course is not None
    if not await on_sale(ctx.uow, course, ctx.now()):
        raise BadInput(
            _("{title} is no longer on sale; nothing was charged.", title=course_title(course))
        )
    if not course.price_stars:
        raise BadInput(_("{title} is not sold for Telegram Stars.", title=course_title(course)))
    ctx.says.append(
        Say(
            _(
                "Here is the invoice for order #{id}: {stars} ⭐. It can be paid until {expires}.",
                id=order.id,
                stars=course.price_stars,
                expires=When(order.expires_at),
            ),
            invoice=stars_invoice(order, course),
        )
    )
