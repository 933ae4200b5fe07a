"""`/admin spaces`: community access per space (who is in, out, waiting for the platform) and
the latest grants and revokes; `/admin spaces repair` runs the sweep now, checking every grant
against the platforms. The rule is `bot.community.access`."""

from __future__ import annotations

from bot.community.access import all_spaces, my_spaces, recent_log, state_by_space
from bot.context import Ctx
from bot.core.errors import BadInput
from bot.core.i18n import Lines, When, _, ngettext
from bot.handlers.registry import admin_subcommand, choice, command

ACTIONS = {
    "grant": _("grant asked"),
    "revoke": _("revoke asked"),
    "done": _("done on the platform"),
    "failed": _("failed, retried later"),
    "drift": _("differed on the platform"),
    "joined": _("join request approved"),
    "reissue": _("new invite link asked"),
    "shared": _("settled without the platform: another course gives the same place"),
}
PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord"}


@command(
    "community",
    _("Your courses' community spaces; a fresh Telegram invite link"),
    section="together",
)
async def community(ctx: Ctx, args: list[str]) -> None:
    mine = await my_spaces(ctx.uow, ctx.actor.id, ctx.now())
    if not mine:
        ctx.say(
            _(
                "You have no community spaces. Courses that have one open it to you while "
                "you are enrolled."
            )
        )
        return
    lines = []
    for space in mine:
        where = PLATFORM_NAMES.get(space.platform, space.platform)
        if space.reissued:
            lines.append(
                _(
                    "{course} on {where}: a new invite link is on its way.",
                    course=space.course,
                    where=where,
                )
            )
        elif space.wait_until is not None:
            lines.append(
                _(
                    "{course} on {where}: a link was sent just now; ask again after {when}.",
                    course=space.course,
                    where=where,
                    when=When(space.wait_until),
                )
            )
        else:
            lines.append(_("{course} on {where}: you are in.", course=space.course, where=where))
    if any(space.reissued for space in mine):
        ctx.wake_at.append(ctx.now())  # the sweep makes the link now, not at its next tick
    ctx.say(_("Your community spaces:\n{spaces}", spaces=Lines(lines)))


@admin_subcommand(
    "spaces",
    _("Community access per space; repair runs the sweep now"),
    args=(choice("action", _("repair: check every grant and fix it now"), "repair"),),
)
async def admin_spaces(ctx: Ctx, args: list[str]) -> None:
    if args:
        community = ctx.community
        if community is None or not community.platforms:
            raise BadInput(_("No platform with community spaces is connected in this process."))

        async def repair() -> None:
            report = await community.sweep(check=True)
            ctx.say(
                ngettext(
                    "Repair done: {n} change made on the platforms; {drift} found differing, "
                    "{failed} failed (retried later).",
                    "Repair done: {n} changes made on the platforms; {drift} found differing, "
                    "{failed} failed (retried later).",
                    report.done,
                    drift=report.drift,
                    failed=report.failed,
                )
            )

        ctx.after_commit(repair)
        return
    counts = await state_by_space(ctx.uow)
    keys = [s.key for s in all_spaces(ctx.config)]
    keys += [k for k in counts if k not in keys]
    if not keys:
        ctx.say(_("No community spaces are configured ([community] spaces)."))
        return
    lines = [
        _(
            "{space}: {inside} in, {out} out, {pending} waiting",
            space=key,
            inside=counts.get(key, {}).get("in", 0),
            out=counts.get(key, {}).get("out", 0),
            pending=counts.get(key, {}).get("pending", 0),
        )
        for key in keys
    ]
    latest = [
        _(
            "{when} user #{user} {space}: {action} ({reason})",
            when=When(e.at),
            user=e.user_id,
            space=e.space,
            action=ACTIONS.get(e.action, e.action),
            reason=e.reason,
        )
        for e in await recent_log(ctx.uow)
    ]
    ctx.say(
        _(
            "Community spaces:\n{spaces}\n\nLatest changes:\n{latest}",
            spaces=Lines(lines),
            latest=Lines(latest or [_("none yet")]),
        )
    )
