"""The admins' side of a subscription's money: `/admin refund ORDER [period=N] [force]` on a
subscription's anchor order, or `/admin refund sub=ID [period=N] [force]` on the subscription
itself, which also reaches a period paid while it had no order (bot/handlers/admin.py hands
both here), and `/admin unsubscribe`, which ends a learner's subscription at its period's end
when the admin asks.

The rules live in bot/subscriptions/refunds.py; these parse, call them and say what happened.
"""

from __future__ import annotations

from datetime import datetime

from bot.context import Ctx
from bot.core.errors import STATUS_NAMES, BadInput, NotFound
from bot.core.i18n import Lines, Money, Msg, When, _, ngettext
from bot.core.outbox import tell
from bot.core.replies import Choice
from bot.core.states import SUBSCRIPTION_LIVE
from bot.handlers.args import need_int
from bot.handlers.registry import admin_subcommand, number
from bot.handlers.subscriptions import stop_renewals
from bot.payments import provider_name
from bot.subscriptions.lifecycle import lock_subscription, set_cancel_at_period_end
from bot.subscriptions.plans import plan_name
from bot.subscriptions.refunds import (
    PeriodRefund,
    PeriodsAt,
    check_period_refund,
    refund_paid_period,
)
from storage.models import Plan, Subscription

SHOWN_PERIODS = 12  # the latest periods `/admin refund ORDER` lists
PERIOD_BUTTONS = 3  # and offers a button for, newest first


async def refund_subscription_period(
    ctx: Ctx, at: PeriodsAt, number: int | None, forced: bool
) -> None:
    """`/admin refund ORDER` on an anchor order, or `/admin refund sub=ID`: without `period=`,
    the periods paid there to choose from; with it, that one period refunded (checked now,
    the money moved after commit), through the one rule whichever way it was named."""
    if (
        at.subscription_id is not None
        and await ctx.uow.get(Subscription, at.subscription_id) is None
    ):
        raise NotFound(_("There is no subscription #{id}.", id=at.subscription_id))
    if number is None:
        await _list_periods(ctx, at)
        return
    checked = await check_period_refund(
        ctx.uow, ctx.config, ctx.payments, at, number, ctx.now(), force=forced
    )

    async def give_back() -> None:
        done = await refund_paid_period(ctx.new_uow, ctx.payments, checked, ctx.now())
        ctx.say(*_refunded(checked, done.already, done.taken, done.live, done.renews_at))

    ctx.after_commit(give_back)


def _refunded(
    checked: PeriodRefund, already: bool, taken: int, live: bool, renews_at: datetime | None
) -> tuple[Msg, list[Choice]]:
    said = {
        "period": checked.number,
        "sub": checked.subscription_id,
        "price": Money(checked.refund.amount_minor, checked.refund.currency),
    }
    if already:  # another refund of it (Stripe's report, a second press) recorded it first
        head = _("Period {period} of subscription #{sub} is refunded ({price}).", **said)
    else:
        head = ngettext(
            "Period {period} of subscription #{sub} refunded ({price}); {n} session taken back.",
            "Period {period} of subscription #{sub} refunded ({price}); {n} sessions taken back.",
            taken,
            **said,
        )
    if not live or renews_at is None:
        return head, []
    goes_on = _(
        "The subscription itself goes on and renews on {when}. To end it as well: "
        "/admin unsubscribe {sub}",
        sub=checked.subscription_id,
        when=When(renews_at),
    )
    end = Choice(
        _("End subscription #{id}", id=checked.subscription_id),
        f"/admin unsubscribe {checked.subscription_id}",
    )
    return Lines([head, goes_on]).as_msg(), [end]


async def _list_periods(ctx: Ctx, at: PeriodsAt) -> None:
    periods = await at.periods(ctx.uow)
    if not periods:
        raise BadInput(
            _("Order #{id} holds a subscription, but none of its periods is paid.", id=at.order_id)
            if at.subscription_id is None
            else _("Subscription #{id} has no paid period.", id=at.subscription_id)
        )
    shown = periods[-SHOWN_PERIODS:]
    lines = []
    for p in shown:
        said = {
            "period": p.number,
            "start": When(p.starts_at),
            "price": Money(p.amount_minor, p.currency),
            "provider": provider_name(p.provider),
        }
        if p.refunded_at is None:
            lines.append(_("Period {period} from {start}: {price} ({provider})", **said))
        else:
            lines.append(
                _(
                    "Period {period} from {start}: {price} ({provider}), refunded on {when}",
                    when=When(p.refunded_at),
                    **said,
                )
            )
    open_ = [p for p in reversed(shown) if p.refunded_at is None][:PERIOD_BUTTONS]
    ctx.say(
        _(
            "Order #{id} holds the payments of subscription #{sub}; each period is refunded "
            "on its own, with /admin refund {id} period=N:\n{list}",
            id=at.order_id,
            sub=periods[-1].subscription_id,
            list=Lines(lines),
        )
        if at.subscription_id is None
        else _(
            "The payments of subscription #{sub}; each period is refunded on its own, with "
            "{command} period=N:\n{list}",
            sub=at.subscription_id,
            command=at.command(),
            list=Lines(lines),
        ),
        [
            Choice(
                _("Refund period {period}", period=p.number),
                f"{at.command()} period={p.number}",
            )
            for p in open_
        ],
    )


async def _unsubscribe(ctx: Ctx, args: list[str]) -> None:
    """Stop the renewals at the provider after commit (no transaction open while it answers),
    then set the subscription to end at its period's end and tell its learner."""
    sub = await lock_subscription(ctx.uow, need_int(args, 0, "/admin unsubscribe SUBSCRIPTION"))
    if sub.status not in SUBSCRIPTION_LIVE:
        raise BadInput(
            _(
                "Subscription #{id} is {status}, so it cannot be changed.",
                id=sub.id,
                status=STATUS_NAMES.get(sub.status, Msg(sub.status)),
            )
        )
    if sub.status == "cancelling":
        until = sub.current_period_end or ctx.now()
        ctx.say(
            _("Subscription #{id} is already set to end on {when}.", id=sub.id, when=When(until))
        )
        return
    sub_id, provider = sub.id, sub.provider
    ref, payer = sub.provider_ref or "", sub.customer_ref or ""

    async def stop() -> None:
        await stop_renewals(ctx, provider, ref, payer, cancel=True)
        async with ctx.new_uow() as uow:
            row = await lock_subscription(uow, sub_id)
            changed = row.ended_at is None and await set_cancel_at_period_end(
                uow, row, True, ctx.now()
            )
            until = row.current_period_end or ctx.now()
            plan = await uow.get(Plan, row.plan_id)
            assert plan is not None
            if changed:
                await tell(
                    uow,
                    row.user_id,
                    _(
                        "An admin has ended your subscription to {plan}: it does not renew, "
                        "and ends on {when}. Questions? Write to /support.",
                        plan=plan_name(plan),
                        when=When(until),
                    ),
                    ctx.now(),
                )
            await uow.commit()
        ctx.say(
            _(
                "Subscription #{id} ends on {when} and does not renew; its learner is told.",
                id=sub_id,
                when=When(until),
            )
        )

    ctx.after_commit(stop)


admin_subcommand(
    "unsubscribe",
    _("End a learner's subscription at its period's end: no more renewals"),
    args=(number("subscription", _("The subscription number")),),
)(_unsubscribe)
