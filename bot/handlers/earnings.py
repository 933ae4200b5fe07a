"""`/admin earnings [csv]`: what completed sessions earned each mentor."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from bot.context import Ctx
from bot.core.i18n import Lines, Money, _
from bot.core.replies import Attachment
from bot.handlers.registry import admin_subcommand, choice
from storage.models import MentorEarning, MentorProfile, MentorSession, Order, User


@admin_subcommand(
    "earnings",
    _("What each mentor has earned"),
    args=(choice("format", _("csv: as a spreadsheet file"), "csv"),),
)
async def earnings(ctx: Ctx, args: list[str]) -> None:
    totals = (
        await ctx.uow.session.execute(
            select(
                MentorProfile.id,
                User.display_name,
                MentorEarning.currency,
                func.count(MentorEarning.id),
                func.sum(MentorEarning.amount_minor),
            )
            .join(MentorProfile, MentorProfile.id == MentorEarning.mentor_id)
            .join(User, User.id == MentorProfile.user_id)
            .group_by(MentorProfile.id, User.display_name, MentorEarning.currency)
            .order_by(MentorProfile.id, MentorEarning.currency)
        )
    ).all()
    if not totals:
        ctx.say(_("No completed sessions have earned anything yet."))
        return
    lines = [
        _(
            "#{id} {name}: {amount} from {n} sessions",
            id=mentor_id,
            name=name,
            amount=Money(int(total), currency),
            n=count,
        )
        for mentor_id, name, currency, count, total in totals
    ]
    attachments: tuple[Attachment, ...] = ()
    if args and args[0].lower() == "csv":
        attachments = (await _csv(ctx),)
    ctx.say(
        _(
            "Mentor earnings (platform fee {fee}%):\n{list}",
            fee=ctx.config.payments.platform_fee_percent,
            list=Lines(lines),
        ),
        attachments=attachments,
    )


async def _csv(ctx: Ctx) -> Attachment:
    rows = (
        await ctx.uow.session.execute(
            select(MentorEarning, MentorSession.start_at, Order.provider, User.display_name)
            .join(MentorSession, MentorSession.id == MentorEarning.session_id)
            .join(Order, Order.id == MentorEarning.order_id)
            .join(MentorProfile, MentorProfile.id == MentorEarning.mentor_id)
            .join(User, User.id == MentorProfile.user_id)
            .order_by(MentorEarning.id)
        )
    ).all()
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(
        [
            "mentor_id",
            "mentor",
            "session_id",
            "session_start_utc",
            "order_id",
            "provider",
            "amount_minor",
            "currency",
        ]
    )
    for earning, start, provider, name in rows:
        out.writerow(
            [
                earning.mentor_id,
                name,
                earning.session_id,
                start.isoformat(),
                earning.order_id,
                provider,
                earning.amount_minor,
                earning.currency,
            ]
        )
    return Attachment("mentor-earnings.csv", "text/csv", buf.getvalue().encode())
