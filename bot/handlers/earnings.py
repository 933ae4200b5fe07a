"""`/admin earnings [csv]`: what completed sessions and attended workshop seats earned each
mentor, net of reversals, from the ledger (a seat's rows name it in `workshop_seat_id`); and
`/earnings [csv]`: the same for the mentor asking, about themself alone."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from bot.context import Ctx
from bot.core.errors import NotAllowed
from bot.core.i18n import Lines, Money, Msg, _, ngettext, render_value
from bot.core.replies import Attachment, Choice
from bot.core.users import mentor_profile_of
from bot.handlers.registry import admin_subcommand, choice, command
from bot.payments import provider_name
from bot.reporting.files import csv_file, csv_header
from bot.sessions.earnings import (
    Earned,
    LedgerRow,
    Statement,
    ledger,
    mentor_statement,
    mentor_totals,
)
from bot.sessions.scheduling import skipped_to


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


def _csv(rows: Sequence[LedgerRow], lang: str, name: str = "mentor-earnings.csv") -> Attachment:
    """The ledger's earnings one row each, headed in the reader's language (`csv_header`), the
    provider by its name as the orders list shows it (`demo payment`, `演示支付`); every cell
    made safe to open by `csv_file`."""
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
    return Attachment(name, "text/csv", data)


@command(
    "earnings",
    _("What your sessions and workshops have earned you: /earnings [csv]"),
    role="mentor",
    args=(choice("format", _("csv: your ledger rows as a spreadsheet file"), "csv"),),
    section="mentors",
)
async def my_earnings(ctx: Ctx, args: list[str]) -> None:
    """A mentor's own earnings (anyone with a mentor profile: a suspended mentor still sees
    what they earned): this month in their timezone and all time, per currency, sessions and
    workshop seats apart, net of reversals, and the platform fee taken. Nobody else's rows are
    ever read: everything is filtered by the asker's own profile."""
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    if profile is None and ctx.actor.is_admin:
        raise NotAllowed(
            _(
                "/earnings shows a mentor their own earnings, and you have no mentor profile. "
                "Every mentor's earnings are in /admin earnings."
            ),
            [Choice(_("Mentor earnings"), "/admin earnings")],
        )
    if profile is None:
        raise NotAllowed(
            _(
                "/earnings is for mentors: it shows what your sessions and workshops have "
                "earned you. To mentor on this marketplace, apply with /becomementor; an admin "
                "reviews your profile."
            ),
            [Choice(_("Apply to mentor"), "/becomementor")],
        )
    user = ctx.actor.user
    local = ctx.now().astimezone(ZoneInfo(user.timezone)).date()
    statements = await mentor_statement(
        ctx.uow, profile.id, skipped_to(local.replace(day=1), 0, user.timezone)
    )
    if not statements:
        ctx.say(
            _(
                "No earnings yet. After your first completed session (or a workshop seat you "
                "mark attended), what it earned you appears here: this month and all time, "
                "net of refunds and the platform fee."
            ),
            [Choice(_("My sessions"), "/sessions")],
        )
        return
    attachments: tuple[Attachment, ...] = ()
    choices = [Choice(_("Download as CSV"), "/earnings csv")]
    if args and args[0].lower() == "csv":
        rows = await ledger(ctx.uow, profile.id)
        attachments = (_csv(rows, user.language, "my-earnings.csv"),)
        choices = []
    month = [_earned_line(s.currency, s.month) for s in statements if _shows(s.month)]
    fees = [_fee_part(s) for s in statements]
    ctx.say(
        _(
            "Your earnings, net of refunds and the platform fee:\nThis month:\n{month}\n"
            "All time:\n{all}\nPlatform fee taken: {fees}",
            month=Lines(month) if month else _("• nothing yet"),
            all=Lines(_earned_line(s.currency, s.all_time) for s in statements),
            fees=Lines(fees, ", "),
        ),
        choices,
        attachments,
    )


def _shows(earned: Earned) -> bool:
    return bool(earned.sessions or earned.seats or earned.reversals or earned.total_minor)


def _earned_line(currency: str, earned: Earned) -> Msg:
    """`• $19.60 — 1 one-on-one session ($9.80), 1 workshop seat ($9.80)`, one currency."""
    parts: list[Msg] = []
    if earned.sessions or earned.sessions_minor:
        parts.append(
            ngettext(
                "{n} one-on-one session ({amount})",
                "{n} one-on-one sessions ({amount})",
                earned.sessions,
                amount=Money(earned.sessions_minor, currency),
            )
        )
    if earned.seats or earned.seats_minor:
        parts.append(
            ngettext(
                "{n} workshop seat ({amount})",
                "{n} workshop seats ({amount})",
                earned.seats,
                amount=Money(earned.seats_minor, currency),
            )
        )
    if earned.reversals:
        parts.append(
            ngettext(
                "net of {n} reversal ({amount})",
                "net of {n} reversals ({amount})",
                earned.reversals,
                amount=Money(earned.reversals_minor, currency),
            )
        )
    return _(
        "• {total} — {parts}",
        total=Money(earned.total_minor, currency),
        parts=Lines(parts, ", ") if parts else "—",
    )


def _fee_part(statement: Statement) -> Money | Msg:
    """The fee in one currency, with its share of what the work brought in once any stands."""
    if statement.fee_percent is None:
        return Money(statement.fee_minor, statement.currency)
    return _(
        "{amount} ({percent}%)",
        amount=Money(statement.fee_minor, statement.currency),
        percent=statement.fee_percent,
    )
