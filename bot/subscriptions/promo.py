"""Promo codes: percent or amount off, on the first period (`once`) or every one (`forever`),
with an optional cap on uses, expiry, plan or course.

Redeeming locks the code's row (FOR NO KEY UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
holds the whole database) before counting, so the cap holds however many learners race for
the last use; `(promo, user)` is unique, so each learner uses a code once. Every use posts a
ledger entry (Kind.PROMO_USED, `promo:use:N`) with the discount given, in its currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.core.errors import BadInput
from bot.core.i18n import Money, Msg, When, _, clip
from bot.core.ledger import Kind, post
from storage.models import PromoCode, PromoUse
from storage.uow import UnitOfWork

CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_CODE = 32


def normal_code(text: str) -> str:
    """A code as stored: upper case, letters, digits, dashes and underscores."""
    code = text.strip().upper()
    if not code or len(code) > MAX_CODE or not set(code) <= CODE_CHARS:
        raise BadInput(
            _(
                "A promo code is up to {n} letters, digits, dashes or underscores, got '{value}'.",
                n=MAX_CODE,
                value=clip(text),
            )
        )
    return code


def discounted(price_minor: int, promo: PromoCode) -> int:
    """The price after the code, never below zero."""
    if promo.kind == "percent":
        return price_minor * (100 - promo.value) // 100
    return max(0, price_minor - promo.value)


def describe(promo: PromoCode) -> Msg:
    off: Money | str
    if promo.kind == "percent":
        off = f"{promo.value}%"
    else:
        off = Money(promo.value, promo.currency or "USD")
    if promo.duration == "forever":
        return _("{off} off every period", off=off)
    return _("{off} off the first period", off=off)


@dataclass(frozen=True)
class Redeemed:
    promo: PromoCode
    use: PromoUse
    price_minor: int  # what the learner pays after the code


async def redeem(
    uow: UnitOfWork,
    user_id: int,
    text: str,
    price_minor: int,
    currency: str,
    now: datetime,
    *,
    plan_id: int | None = None,
    course_id: int | None = None,
    subscription_id: int | None = None,
    order_id: int | None = None,
) -> Redeemed:
    """Use the code `text` for this learner on this price, or refuse saying why."""
    code = normal_code(text)
    found = await uow.session.execute(select(PromoCode.id).where(PromoCode.code == code))
    promo_id = found.scalar_one_or_none()
    promo = None if promo_id is None else await uow.lock(PromoCode, promo_id)
    if promo is None:
        raise BadInput(_("There is no promo code '{code}'.", code=code))
    if promo.expires_at is not None and promo.expires_at <= now:
        raise BadInput(
            _("Promo code {code} expired on {when}.", code=code, when=When(promo.expires_at))
        )
    if promo.plan_id is not None and promo.plan_id != plan_id:
        raise BadInput(_("Promo code {code} is for another plan.", code=code))
    if promo.course_id is not None and promo.course_id != course_id:
        raise BadInput(_("Promo code {code} is for another course.", code=code))
    if promo.kind == "amount" and promo.currency != currency:
        raise BadInput(
            _("Promo code {code} takes off {currency} only.", code=code, currency=promo.currency)
        )
    used = await uow.session.execute(
        select(PromoUse.id).where(PromoUse.promo_id == promo.id).where(PromoUse.user_id == user_id)
    )
    if used.first() is not None:
        raise BadInput(_("You have used promo code {code} already.", code=code))
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise BadInput(_("Promo code {code} has been used up.", code=code))
    promo.uses += 1
    use = PromoUse(
        promo_id=promo.id,
        user_id=user_id,
        subscription_id=subscription_id,
        order_id=order_id,
        used_at=now,
    )
    uow.add(use)
    await uow.flush()
    price = discounted(price_minor, promo)
    await post(
        uow,
        f"promo:use:{use.id}",
        Kind.PROMO_USED,
        now,
        user_id=user_id,
        order_id=order_id,
        currency=currency,
        amount_minor=price - price_minor,
    )
    return Redeemed(promo, use, price)
