"""Subscriptions paid in Telegram Stars against the fake Bot API: a 30-day invoice link,
recurring charges granted once per charge id, cancel and resume with editUserStarSubscription,
and a lapse when no renewal came by the expiration date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.core.ledger import violations
from storage.models import Enrollment, Subscription, SubscriptionPeriod
from tests.fakes.fake_telegram import StartBot
from tests.test_subscriptions import MONTH

ADD = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 stars=500"
)


async def status(h: object, app: object) -> tuple[str, int]:
    async with app.new_uow() as uow:  # type: ignore[attr-defined]
        sub = (await uow.session.execute(select(Subscription))).scalar_one()
        left = 0
        if sub.enrollment_id is not None:
            enrollment = await uow.get(Enrollment, sub.enrollment_id)
            left = enrollment.credits_remaining
        return sub.status, left


async def first_month_paid(start_bot: StartBot, clock: FakeClock) -> tuple[Any, Any, Any, Any]:
    """tina subscribed in Stars, her first charge granted, and the clock at its renewal:
    the bot, the harness, tina, and when the first period expired."""
    bot, h = await start_bot()
    assert "added" in await h.send("admin", ADD)
    tina = bot.user("tina")
    await tina.send("/subscribe monthly")
    expires = clock.now() + timedelta(days=30)
    await tina.deliver(
        bot.fake.subscription_payment_update(
            tina.user, "sub:1:500", 500, "stxFIRST", int(expires.timestamp()), first=True
        )
    )
    clock.advance(timedelta(days=30))
    return bot, h, tina, expires


async def test_stars_subscription_renews_once_per_charge_cancels_resumes_and_lapses(
    start_bot: StartBot, clock: FakeClock
) -> None:
    """The invoice link has Telegram's 30-day period; each recurring charge grants one period
    (a redelivered update nothing); cancel and resume reach Telegram; no renewal lapses it."""
    bot, h = await start_bot()
    assert "added" in await h.send("admin", ADD)
    tina = bot.user("tina")
    await tina.send("/subscribe monthly")
    ((link, made),) = bot.fake.invoice_links.items()
    assert made["subscription_period"] == 2592000 and made["currency"] == "XTR"
    assert made["prices"][0]["amount"] == 500 and made["payload"] == "sub:1:500"
    assert any(link in str(c.params.get("reply_markup")) for c in tina.received())
    await tina.deliver(bot.fake.pre_checkout_update(tina.user, "sub:1:500", 500))
    assert bot.fake.calls_of("answerPreCheckoutQuery")[-1].params["ok"] is True
    expires = clock.now() + timedelta(days=30)
    first = bot.fake.subscription_payment_update(
        tina.user, "sub:1:500", 500, "stxFIRST", int(expires.timestamp()), first=True
    )
    await tina.deliver(first)
    await tina.deliver(first)  # Telegram delivering it again
    assert await status(h, bot.app) == ("active", 2)
    clock.advance(timedelta(days=30))
    expires += timedelta(days=30)
    renewal = bot.fake.subscription_payment_update(
        tina.user, "sub:1:500", 500, "stxRENEW1", int(expires.timestamp()), first=False
    )
    await tina.deliver(renewal)
    assert await status(h, bot.app) == ("active", 2)  # no rollover on this plan
    await tina.send("/subscription cancel 1")
    edit = bot.fake.calls_of("editUserStarSubscription")[-1]
    assert edit.params["telegram_payment_charge_id"] == "stxFIRST"
    assert edit.params["is_canceled"] is True
    assert (await status(h, bot.app))[0] == "cancelling"
    await tina.send("/subscription resume 1")
    assert bot.fake.calls_of("editUserStarSubscription")[-1].params["is_canceled"] is False
    assert (await status(h, bot.app))[0] == "active"
    clock.advance(timedelta(days=30, hours=2))
    await h.tick()
    assert (await status(h, bot.app))[0] == "active"  # a renewal may still come
    clock.advance(timedelta(days=1))
    await h.tick()
    assert await status(h, bot.app) == ("lapsed", 0)
    async with bot.app.new_uow() as uow:
        assert await violations(uow) == []


async def test_a_stars_checkout_for_someone_elses_subscription_is_refused(
    start_bot: StartBot,
) -> None:
    """Pre-checkout refuses an invoice naming another learner's subscription or price."""
    bot, h = await start_bot()
    await h.send("admin", ADD)
    tina, uma = bot.user("tina"), bot.user("uma")
    await tina.send("/subscribe monthly")
    await uma.send("/start")
    await uma.deliver(bot.fake.pre_checkout_update(uma.user, "sub:1:500", 500))
    assert bot.fake.calls_of("answerPreCheckoutQuery")[-1].params["ok"] is False
    await tina.deliver(bot.fake.pre_checkout_update(tina.user, "sub:1:400", 400))
    assert bot.fake.calls_of("answerPreCheckoutQuery")[-1].params["ok"] is False


async def test_a_renewal_charged_at_another_price_is_returned_and_grants_nothing(
    start_bot: StartBot, clock: FakeClock
) -> None:
    """A recurring charge is only reported, never pre-checked: one for 501 ⭐ on a 500 ⭐
    subscription is refunded, grants no period, and the admins are told (the model-based
    money test found it granting a period at whatever was paid)."""
    bot, h, tina, expires = await first_month_paid(start_bot, clock)
    await tina.deliver(
        bot.fake.subscription_payment_update(
            tina.user, "sub:1:500", 501, "stxODD", int((expires + MONTH).timestamp()), first=False
        )
    )
    refunds = bot.fake.calls_of("refundStarPayment")
    assert [c.params["telegram_payment_charge_id"] for c in refunds] == ["stxODD"]
    async with bot.app.new_uow() as uow:
        periods = (await uow.session.execute(select(SubscriptionPeriod))).scalars().all()
        assert [p.provider_ref for p in periods] == ["stxFIRST"]
        assert await violations(uow) == []
    assert "did not match its price" in await h.tick() + "\n".join(h.output)


async def test_a_renewal_whose_update_was_lost_is_granted_by_reconciliation_once(
    start_bot: StartBot, clock: FakeClock
) -> None:
    """Telegram renewed the subscription, but the process died before handling the update:
    the next reconciliation pass finds the charge in getStarTransactions and grants that period
    once, through the update's own path (30 days from the charge), and tells the learner; a
    second pass, and the update itself arriving late, grant nothing more. Without it the
    subscription would lapse although it was paid."""
    bot, h, tina, expires = await first_month_paid(start_bot, clock)
    renewed_at = clock.now()
    bot.fake.star_payment(
        tina.user, "sub:1:500", 500, "stxRENEW1", int(renewed_at.timestamp()), 2592000
    )
    assert bot.service.reconciler is not None
    await bot.service.reconciler.reconcile_once()
    await bot.service.reconciler.reconcile_once()
    paid = [t for t in tina.texts() if "period paid (500 ⭐)" in t]
    assert len(paid) == 2 and "until Fri 1 May 2026" in paid[-1], tina.texts()
    late = bot.fake.subscription_payment_update(
        tina.user, "sub:1:500", 500, "stxRENEW1", int(expires.timestamp()) + 2592000, first=False
    )
    await tina.deliver(late)
    async with bot.app.new_uow() as uow:
        periods = (
            await uow.session.execute(
                select(SubscriptionPeriod.provider_ref, SubscriptionPeriod.ends_at).order_by(
                    SubscriptionPeriod.id
                )
            )
        ).all()
        assert await violations(uow) == []
    assert [ref for ref, _end in periods] == ["stxFIRST", "stxRENEW1"]
    assert periods[1][1].replace(tzinfo=None) == (renewed_at + timedelta(days=30)).replace(
        tzinfo=None
    )
    assert await status(h, bot.app) == ("active", 2)
    clock.advance(timedelta(days=29))
    await h.tick()
    assert (await status(h, bot.app))[0] == "active"  # the reconciled period holds


async def test_a_first_period_promo_code_is_refused_for_a_stars_subscription(
    start_bot: StartBot,
) -> None:
    """Telegram charges a Stars subscription the same every period, so a first-period code is
    refused there, saying where it works, and nothing is started or used up; an every-period
    code lowers the Stars price."""
    bot, h = await start_bot()
    assert "added" in await h.send("admin", ADD)
    await h.send("admin", "/admin promo add FIRST20 percent=20")
    await h.send("admin", "/admin promo add ALWAYS10 percent=10 duration=forever")
    tina = bot.user("tina")
    await tina.send("/subscribe monthly FIRST20")
    assert "which a Telegram Stars subscription cannot do" in tina.texts()[-1], tina.texts()
    assert "subscriptions paid by card" in tina.texts()[-1]
    async with bot.app.new_uow() as uow:
        assert (await uow.session.execute(select(Subscription))).first() is None
    await tina.send("/subscribe monthly ALWAYS10")
    ((_link, made),) = bot.fake.invoice_links.items()
    assert made["prices"][0]["amount"] == 450


async def test_an_admin_refunds_one_stars_period_with_refund_star_payment(
    start_bot: StartBot, clock: FakeClock
) -> None:
    """`/admin refund ORDER period=2` gives that renewal's Stars back to the account that paid
    them (refundStarPayment of its charge), takes its sessions back and tells the learner in
    Telegram; the subscription goes on, and Telegram is not told to stop renewing."""
    bot, h = await start_bot()
    await h.send("admin", ADD)
    tina = bot.user("tina")
    await tina.send("/subscribe monthly")
    expires = clock.now() + timedelta(days=30)
    for charge, first in (("stxFIRST", True), ("stxRENEW1", False)):
        await tina.deliver(
            bot.fake.subscription_payment_update(
                tina.user, "sub:1:500", 500, charge, int(expires.timestamp()), first=first
            )
        )
        clock.advance(timedelta(days=1))
        expires += MONTH
    async with bot.app.new_uow() as uow:
        order = (await uow.session.execute(select(Subscription.order_id))).scalar_one()
    out = await h.send("admin", f"/admin refund {order} period=2")
    assert "Period 2 of subscription #1 refunded (500 ⭐); 2 sessions taken back." in out, out
    refunds = bot.fake.calls_of("refundStarPayment")
    assert [(c.params["user_id"], c.params["telegram_payment_charge_id"]) for c in refunds] == [
        (tina.user["id"], "stxRENEW1")
    ]
    assert await status(h, bot.app) == ("active", 0)
    assert bot.fake.calls_of("editUserStarSubscription") == []
    assert any("was refunded (500 ⭐)" in str(c.params.get("text")) for c in tina.received())
    async with bot.app.new_uow() as uow:
        assert await violations(uow) == []
