"""`/admin earnings [csv]`: what completed sessions and attended workshop seats earned each
mentor, net of reversals, from the ledger (a seat's rows name it in `workshop_seat_id`)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.context import Ctx
from bot.core.i18n import Lines, Money, _, ngettext, render_value
from bot.core.replies import Attachment
from bot.handlers.registry import admin_subcommand, choice
from bot.payments import provider_name
from bot.reporting.files import csv_file, csv_header
from bot.sessions.earnings import LedgerRow, ledger, mentor_totals


@admin_subcommand(
    "earnings",
    _("What each mentor has earned"),
    args=(choice("format", _("csv: as a spreadsheet file"), "csv"),),
)
async def earnings(ctx: Ctx, args: list[str]) -> None:
    totals = await mentor_totals(ctx.uow)
    if not totals:
        ctx.say(_("No completed sessions have earned anything yet."))
        return
    lines = [
        ngettext(
            "#{id} {name}: {amount} from {n} session",
            "#{id} {name}: {amount} from {n} sessions",
            t.sessions,
            id=t.mentor_id,
            name=t.name,
            amount=Money(t.amount_minor, t.currency),
        )
        for t in totals
    ]
    attachments: tuple[Attachment, ...] = ()
    if args and args[0].lower() == "csv":
        attachments = (_csv(await ledger(ctx.uow), ctx.actor.user.language),)
    ctx.say(
        _(
            "Mentor earnings (platform fee {fee}%):\n{list}",
            fee=ctx.config.payments.platform_fee_percent,
            list=Lines(lines),
        ),
        attachments=attachments,
    )


def _csv(rows: Sequence[LedgerRow], lang: str) -> Attachment:
    """The ledger's earnings one row each, headed in the admin's language (`csv_header`), the
    provider by its name as the orders list shows it (`demo payment`, `演示支付`)."""
    header = [
        _("mentor_id"),
        _("mentor"),
        _("session_id"),
        _("session_start_utc"),
        _("order_id"),
        _("provider"),
        _("amount_minor"),
        _("currency"),
        _("workshop_seat_id"),
    ]
    data = csv_file(
        csv_header(header, lang),
        (
            [
                row.entry.mentor_id,
                row.mentor,
                row.entry.session_id,
                row.session_start.isoformat(),
                row.entry.order_id,
                render_value(provider_name(row.provider), lang, "UTC"),
                row.entry.amount_minor,
                row.entry.currency,
                row.entry.seat_id,
            ]
            for row in rows
        ),
    )
    return Attachment("mentor-earnings.csv", "text/csv", data)
