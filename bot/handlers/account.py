"""One account across platforms (`/link`, `/unlink`) and data rights (`/mydata`, `/deleteme`).

The rules live in `bot/accounts/linking.py` (linking) and `bot/accounts/data_rights.py`
(export, erasure). A
wrong `/link` code is answered rather than raised, so that its failure is committed and counts
against guessing; refusals that change nothing (the accounts cannot merge) are raised as usual.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import delete, select

from bot.accounts.data_rights import erase_user, export_user
from bot.accounts.linking import (
    check_mergeable,
    find_code,
    merge_accounts,
    merges_to_undo,
    new_link_code,
    part_accounts,
    platforms_of,
    recent_failures,
)
from bot.context import Ctx
from bot.core import conversations, words
from bot.core.errors import BadInput, NotFound
from bot.core.i18n import Lines, Msg, When, _
from bot.core.replies import Attachment, Choice
from bot.core.users import settle_admin
from bot.handlers.args import need_int
from bot.handlers.registry import command, flow, number, text
from bot.handlers.subscriptions import stop_renewals_after_commit
from storage.models import (
    ButtonPayload,
    Conversation,
    Identity,
    LinkFailure,
    Order,
    Subscription,
    User,
)

# Answers, not commands: a command would end the conversation before it could reply.
YES = "yes"
NO = "no"
DELETE = "delete"


@command(
    "link",
    _("Join your accounts on other platforms: /link, then /link CODE there"),
    args=(
        text("code", _("The code from your other platform; leave out to get one"), required=False),
    ),
    section="account",
)
async def link(ctx: Ctx, args: list[str]) -> None:
    settings = ctx.config.accounts
    now = ctx.now()
    if not args:
        code = await new_link_code(ctx.uow, ctx.actor.id, now, settings.link_code_minutes)
        ctx.say(
            _(
                "Your link code: {code}\nOn your other platform, send /link {code} within "
                "{minutes} minutes (it works once). Your courses, sessions and ratings on both "
                "will then be one account.",
                code=code,
                minutes=settings.link_code_minutes,
            )
        )
        return
    window = timedelta(minutes=settings.link_failure_window_minutes)
    failures = await recent_failures(ctx.uow, ctx.actor.id, now - window)
    if len(failures) >= settings.link_max_failures:
        ctx.say(
            _(
                "Too many wrong codes. Try again after {when}.",
                when=When(failures[-settings.link_max_failures] + window),
            )
        )
        return
    confirmed = len(args) > 1 and words.is_yes(args[-1])
    code = "".join(args[:-1] if confirmed else args)
    found = await find_code(ctx.uow, code)
    refusal: Msg | None = None
    if found is None:
        refusal = _("That code is not valid. Check it, or ask for a new one with /link.")
    elif found.used_at is not None:
        refusal = _("That code was used already. Ask for a new one with /link.")
    elif found.expires_at <= now:
        refusal = _("That code has expired. Ask for a new one with /link.")
    if refusal is not None:
        ctx.uow.add(LinkFailure(user_id=ctx.actor.id, attempted_at=now))
        ctx.say(refusal)
        return
    assert found is not None
    if found.user_id == ctx.actor.id:
        raise BadInput(
            _("That code belongs to this account. Send it from your other platform instead.")
        )
    other = await ctx.uow.lock(User, found.user_id)
    found = await find_code(ctx.uow, code, lock=True)
    if other is None or found is None or found.used_at is not None:  # someone was quicker
        raise BadInput(_("That code was used already. Ask for a new one with /link."))
    await check_mergeable(ctx.uow, ctx.actor.id, other.id)
    platforms = await platforms_of(ctx.uow, other.id)
    if not confirmed:
        ctx.say(
            _(
                "This code belongs to {name} on {platforms}, an account made {when}. Joining "
                "makes that account and this one a single account: its courses, sessions and "
                "messages and yours will be shared, and either side can see them. Join only if "
                "that account is yours; otherwise ignore this message.",
                name=other.display_name,
                platforms=Lines(platforms, ", "),
                when=When(other.created_at),
            ),
            [Choice(_("Join {name}'s account", name=other.display_name), f"/link {code} {YES}")],
        )
        return
    found.used_at = now
    await ctx.uow.flush()  # used before the merge tidies the other side's unused codes
    await merge_accounts(ctx.uow, ctx.actor.user, other, now)
    await settle_admin(ctx.uow, ctx.config, ctx.actor.id)
    ctx.say(
        _(
            "Linked: your account on {platforms} is now part of this one. Your courses, "
            "sessions and ratings from both are here, and notices reach you where you last "
            "wrote. /unlink parts them again, each with what it brought.",
            platforms=Lines(platforms, ", "),
        )
    )


@command(
    "unlink",
    _("Separate a platform from your account: /unlink [ID]"),
    args=(
        number("identity", _("The number /unlink lists; leave out to see them"), required=False),
    ),
    section="account",
)
async def unlink(ctx: Ctx, args: list[str]) -> None:
    identities = list(
        (
            await ctx.uow.session.execute(
                select(Identity)
                .where(Identity.user_id == ctx.actor.id)
                .order_by(Identity.created_at, Identity.id)
            )
        ).scalars()
    )
    if not args:
        if len(identities) < 2:
            ctx.say(
                _(
                    "Your account is on {platform} only; there is nothing to unlink.",
                    platform=ctx.actor.platform,
                )
            )
            return
        lines = [
            _(
                "#{id} {platform} {external_id}, last used {when}",
                id=i.id,
                platform=i.platform,
                external_id=i.external_id,
                when=When(i.last_seen_at),
            )
            for i in identities
        ]
        ctx.say(
            _("Your account is on:\n{list}\nUnlink one with /unlink ID.", list=Lines(lines)),
            [Choice(_("Unlink #{id}", id=i.id), f"/unlink {i.id}") for i in identities],
        )
        return
    identity_id = need_int(args, 0, "/unlink ID")
    identity = next((i for i in identities if i.id == identity_id), None)
    if identity is None:
        raise NotFound(_("Your account has no platform #{id}. See /unlink.", id=identity_id))
    if len(identities) < 2:
        raise BadInput(_("This is the only platform on your account; it cannot be unlinked."))
    await ctx.uow.session.execute(
        delete(ButtonPayload)
        .where(ButtonPayload.platform == identity.platform)
        .where(ButtonPayload.external_id == identity.external_id)
    )
    merges = await merges_to_undo(ctx.uow, identity)
    if not merges:  # joined before merges were recorded: the platform leaves with nothing
        await ctx.uow.session.delete(identity)
        await ctx.uow.flush()
        await settle_admin(ctx.uow, ctx.config, ctx.actor.id)
        ctx.say(
            _(
                "{platform} {external_id} is unlinked. Writing from there starts a new, empty "
                "account; everything you had stays with this one.",
                platform=identity.platform,
                external_id=identity.external_id,
            )
        )
        return
    survivor = merges[0].survivor_id
    parted = [await part_accounts(ctx.uow, merge, ctx.now()) for merge in merges]
    for user_id in (survivor, *(user.id for user in parted)):
        await settle_admin(ctx.uow, ctx.config, user_id)
    kept = Lines(await platforms_of(ctx.uow, survivor), ", ")
    for user in parted:
        left = Lines(await platforms_of(ctx.uow, user.id), ", ")
        ctx.say(
            _(
                "Unlinked: {kept} and {left} are separate accounts again. {left} has the "
                "courses, sessions and messages it brought; {kept} keeps what it brought and "
                "what was bought while linked.",
                kept=kept,
                left=left,
            )
        )


@command("mydata", _("Get a copy of everything stored about you (JSON)"), section="account")
async def my_data(ctx: Ctx, args: list[str]) -> None:
    data = await export_user(ctx.uow, ctx.actor.user)
    data["exported_at"] = ctx.now().isoformat()
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    ctx.say(
        _("Here is everything stored about you, as JSON."),
        attachments=(Attachment("mydata.json", "application/json", body),),
    )


@command("deleteme", _("Erase your personal data and close your account"), section="account")
async def delete_me(ctx: Ctx, args: list[str]) -> None:
    await conversations.begin(ctx.uow, ctx.actor.id, "deleteme", "first", {}, ctx.now())
    ctx.say(
        _(
            "This erases your name, your accounts on every platform, your comments, goals and "
            "settings, and cancels your upcoming sessions and open requests. Paid orders and "
            "the stars of your ratings stay, anonymised, for the books and mentors' averages. "
            "It cannot be undone. Continue? Reply yes; anything else keeps your data."
        ),
        [Choice(_("Yes, continue"), YES), Choice(_("Cancel"), NO)],
    )


@flow("deleteme")
async def delete_me_step(ctx: Ctx, conv: Conversation, text: str) -> None:
    answer = words.normal(text)
    if conv.step == "first" and words.is_yes(answer):
        await conversations.move(ctx.uow, conv, "second", ctx.now())
        ctx.say(
            _("Last check: reply delete to erase your data now; anything else keeps it."),
            [Choice(_("Delete my data now"), DELETE), Choice(_("Cancel"), NO)],
        )
        return
    await conversations.end(ctx.uow, ctx.actor.id)
    if conv.step != "second" or answer not in words.DELETE_WORDS:
        ctx.say(_("Nothing was deleted."))
        return
    await stop_renewals_after_commit(ctx, ctx.actor.id)
    await close_checkouts_after_commit(ctx, ctx.actor.id)
    await erase_user(ctx.uow, ctx.actor.user, ctx.now(), ctx.config)
    ctx.say(_("Your personal data is erased and your account is closed. Goodbye!"))


async def close_checkouts_after_commit(ctx: Ctx, user_id: int) -> None:
    """For `/deleteme`: after its transaction (which cancels the pending orders and ends the
    subscriptions waiting for their first payment), close every payment page those opened
    (Stripe: the Checkout Session is expired), so the erased account cannot be charged from a
    page still open in a browser. A page Stripe could not close is logged; if it is paid
    anyway, the webhook refunds the payment in full (`bot.providers.stripe.settle`,
    `bot.providers.stripe.billing`)."""
    run = ctx.uow.session.execute
    orders = await run(
        select(Order.checkout_ref)
        .where(Order.user_id == user_id, Order.status == "pending")
        .where(Order.checkout_ref.is_not(None))
    )
    subs = await run(
        select(Subscription.checkout_ref)
        .where(Subscription.user_id == user_id, Subscription.status == "incomplete")
        .where(Subscription.provider == "stripe", Subscription.checkout_ref.is_not(None))
    )
    for ref in [*orders.scalars(), *subs.scalars()]:
        ctx.close_checkout_after_commit(ref)
