"""The pages Stripe Checkout sends the learner back to, served by the bot's own web server.

Fetched with a plain aiohttp client from the real server, with the real webhook flipping an
order (or a subscription) to paid in between; tests/test_stripe_landing_browser.py does the
same in headless Chromium.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.config import ConfigError, config_from_mapping
from bot.providers.stripe.landing import MAX_REFRESHES
from tests.fakes.fake_stripe import StripeWorld
from tests.fakes.fake_telegram import BOT_LINK, FakeTelegram, StartBot
from tests.support import STRIPE_WEBHOOK_SECRET

PUBLIC = "https://bot.example.com"
SUB = (
    '/admin plan add monthly course=python-basics name="Monthly Python" price=29.00 '
    "sessions=2 rollover=1"
)
TRIAL = SUB.replace("monthly", "tryout").replace("rollover=1", "rollover=1 trial=7")


async def page(w: StripeWorld, path: str, **headers: str) -> tuple[int, str]:
    async with w.http.get(f"http://127.0.0.1:{w.web.port}{path}", headers=headers) as r:
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Referrer-Policy"] == "no-referrer"  # the session id stays here
        return r.status, await r.text()


def heading(body: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", body)
    assert match, body
    return match.group(1)


async def test_checkout_returns_to_the_bots_own_pages(landing: StripeWorld) -> None:
    """With [web] public_url, Checkout's success URL is our page (Stripe fills in the session)
    and its cancel URL our cancel page."""
    await landing.buy("alice")
    [create] = landing.fake.calls_to("POST", "/v1/checkout/sessions")
    assert create.params["success_url"] == (
        f"{PUBLIC}/pay/success?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert create.params["cancel_url"] == f"{PUBLIC}/pay/cancel"


async def test_success_page_confirms_until_the_webhook_has_paid_the_order(
    landing: StripeWorld,
) -> None:
    """Back from Checkout before the webhook: "confirming", refreshing itself; once the webhook
    paid the order: "payment received" with the Telegram link, no longer refreshing."""
    _order, cs = await landing.buy("alice")
    status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert status == 200
    assert heading(body) == "Confirming your payment"
    assert "the bot tells you in the chat as soon as the payment is confirmed" in body
    assert 'http-equiv="refresh"' in body and f"session_id={cs}&amp;n=1" in body
    assert "Payment received" not in body

    await landing.pay(cs)
    status, body = await page(landing, f"/pay/success?session_id={cs}&n=3")
    assert heading(body) == "Payment received"
    assert "Payment received: back to the chat." in body
    assert f'<a href="{BOT_LINK}" rel="noreferrer">Open Telegram</a>' in body
    assert "refresh" not in body


async def test_a_payment_slow_to_confirm_stops_refreshing_and_points_to_the_chat(
    landing: StripeWorld,
) -> None:
    """After its last refresh the page stops, says the chat will tell, and offers Check again."""
    _order, cs = await landing.buy("alice")
    _status, body = await page(landing, f"/pay/success?session_id={cs}&n={MAX_REFRESHES}")
    assert "This is taking longer than usual." in body
    assert 'http-equiv="refresh"' not in body
    assert f'<a href="/pay/success?session_id={cs}">Check again</a>' in body


async def test_cancel_page_says_nothing_was_charged_and_how_to_go_back(
    landing: StripeWorld,
) -> None:
    """The cancel page: nothing charged, press the payment button again in the chat; in the
    browser's language, or the one asked for."""
    status, body = await page(landing, "/pay/cancel")
    assert status == 200 and heading(body) == "Payment cancelled"
    assert "Nothing was charged." in body and "press the payment button again" in body
    assert f'href="{BOT_LINK}"' in body
    _status, body = await page(
        landing, "/pay/cancel", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    )
    assert heading(body) == "付款已取消" and '<html lang="zh-Hans">' in body
    assert "没有扣款" in body and "打开 Telegram" in body
    _status, body = await page(landing, "/pay/cancel?lang=en", **{"Accept-Language": "zh-CN"})
    assert heading(body) == "Payment cancelled"


@pytest.mark.parametrize(
    "session_id",
    ["cs_test_999999", "", "pi_123", '"><script>alert(1)</script>', "cs_" + "a" * 300],
)
async def test_an_unknown_session_shows_a_neutral_page(
    landing: StripeWorld, session_id: str
) -> None:
    """An unknown, foreign or malformed id: a page that says it cannot show the payment, the
    same for every id, echoing nothing the visitor typed."""
    await landing.buy("alice")
    status, body = await page(landing, f"/pay/success?session_id={session_id}")
    _status, reference = await page(landing, "/pay/success?session_id=cs_test_000000")
    assert status == 200 and body == reference
    assert heading(body) == "Nothing to show here"
    assert "<script>" not in body and "alert" not in body


async def test_the_page_of_an_order_that_is_not_paid_by_this_card_says_nothing_of_it(
    landing: StripeWorld,
) -> None:
    """A cancelled order's session shows exactly the unknown-session page: no course, no
    price, not even its buyer's language."""
    order_id, cs = await landing.buy("alice")
    await landing.h.send("alice", "/language zh")
    await landing.h.send("alice", f"/cancelorder {order_id}")
    assert (await landing.order(order_id)).status == "cancelled"
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    _status, unknown = await page(landing, "/pay/success?session_id=cs_test_424242")
    assert body == unknown and heading(body) == "Nothing to show here"
    assert "Python" not in body and "49" not in body


async def test_success_page_speaks_the_learners_language(landing: StripeWorld) -> None:
    """A learner who reads Chinese gets the page in Chinese; ?lang= switches it."""
    _order, cs = await landing.buy("alice")  # /buy in English: its reply is parsed here
    await landing.h.send("alice", "/language zh")
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert '<html lang="zh-Hans">' in body and heading(body) == "正在确认你的付款"
    await landing.pay(cs)
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert heading(body) == "已收到付款" and "已收到付款：请回到聊天" in body
    assert f'<a href="{BOT_LINK}" rel="noreferrer">打开 Telegram</a>' in body
    assert f'href="/pay/success?session_id={cs}&amp;lang=en"' in body  # the switch
    _status, body = await page(landing, f"/pay/success?session_id={cs}&lang=en")
    assert heading(body) == "Payment received" and '<html lang="en">' in body


async def test_subscription_checkout_confirms_then_shows_the_first_paid_period(
    landing: StripeWorld,
) -> None:
    """A subscription's page waits for its first paid invoice; a trial's says it started."""
    assert "added" in await landing.h.send("admin", SUB)
    cs = await landing.subscribe("alice", "monthly")
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert heading(body) == "Confirming your payment"
    session, _sub, invoice = landing.fake.complete_subscription(cs)
    await landing.send(landing.fake.event("checkout.session.completed", session))
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert heading(body) == "Confirming your payment"  # linked, but nothing paid yet
    await landing.send(landing.fake.event("invoice.paid", invoice))
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert heading(body) == "Payment received" and f'href="{BOT_LINK}"' in body


async def test_a_trial_checkout_says_the_trial_started(landing: StripeWorld) -> None:
    """A free trial collects no money: the page says the trial started, not "payment received"."""
    assert "added" in await landing.h.send("admin", TRIAL)
    cs = await landing.subscribed("bob", "tryout")
    _status, body = await page(landing, f"/pay/success?session_id={cs}")
    assert heading(body) == "Free trial started" and "Payment received" not in body
    assert "You can close this page and go back to the chat." in body  # bob: console only


async def test_the_customer_portal_returns_to_the_bots_page(landing: StripeWorld) -> None:
    """ "Manage billing" opens the portal with its return link on our "back to the chat" page,
    which links to the chats in the language asked for."""
    assert "added" in await landing.h.send("admin", SUB)
    await landing.subscribed("alice", "monthly")
    assert "https://billing.stripe.com/p/session/" in await landing.h.send(
        "alice", "/subscription billing 1"
    )
    [portal] = landing.fake.portal_sessions.values()
    assert portal["return_url"] == f"{PUBLIC}/pay/back"
    _status, body = await page(landing, "/pay/back?lang=zh")
    assert heading(body) == "回到聊天" and f'href="{BOT_LINK}"' in body


async def test_telegram_registers_its_deep_link_when_connected(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    """The landing pages link to t.me/<the bot's username from getMe> while Telegram runs."""
    bot, _h = await start_bot()
    [link] = bot.app.chat_links.for_anyone()
    assert (link.platform, link.url) == ("telegram", BOT_LINK)


def _stripe(**stripe: Any) -> dict[str, Any]:
    return {"secret_key": "sk_test_x", "webhook_secret": STRIPE_WEBHOOK_SECRET, **stripe}


def test_explicit_urls_are_kept_and_missing_ones_need_a_public_url() -> None:
    """Configured success/cancel URLs win over public_url; without either, start-up names both
    ways out; a public_url that is not an address is refused."""
    config = config_from_mapping(
        {"web": {"public_url": PUBLIC + "/"}, "stripe": _stripe(success_url="https://x.example/ok")}
    )
    assert config.stripe.success_url == "https://x.example/ok"
    assert config.stripe.cancel_url == f"{PUBLIC}/pay/cancel"
    assert config.stripe.portal_return_url == f"{PUBLIC}/pay/back"
    own = config_from_mapping({"stripe": _stripe(success_url="https://x.example/ok",
                                                 cancel_url="https://x.example/no")})  # fmt: skip
    assert own.stripe.portal_return_url == "https://x.example/no"  # as before public_url
    with pytest.raises(ConfigError, match=r"\[stripe\] success_url .*\[web\] public_url"):
        config_from_mapping({"stripe": _stripe()})
    with pytest.raises(ConfigError, match=r"\[web\] public_url must be"):
        config_from_mapping({"web": {"public_url": "bot.example.com"}, "stripe": _stripe()})
