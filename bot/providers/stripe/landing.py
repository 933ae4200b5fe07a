"""The pages Stripe Checkout returns the learner to: `GET /pay/success` and `GET /pay/cancel`.

Stripe redirects the browser to the success URL as soon as the card is accepted, usually
before its webhook reaches us, and only the webhook fulfils (bot/providers/stripe/settle.py).
So the success page claims nothing the database does not show: it finds the order or
subscription by the Checkout Session id Stripe puts in the URL and says

- "we are confirming your payment", refreshing itself every few seconds (a plain meta
  refresh, no script), while the order is pending or the subscription has no paid period yet;
  after `MAX_REFRESHES` it stops and says the chat will tell them, with a "Check again" link;
- "payment received: back to the chat" once the order is paid by card, or the subscription has
  a paid period ("your free trial has started" for a trial), with links to the learner's
  chats (`ChatLinks`: Telegram's t.me/<bot>, Discord's DM channel);
- a neutral page for anything else: an unknown or malformed id, a session not opened by this
  bot, an order that expired, was cancelled, refunded or paid another way. It says the same
  for all of them and names no course, price or person, so a guessed or shared id learns
  nothing about anyone's order.

The cancel page says nothing was charged and how to go back. Stripe fills in the session id
in the success URL only, so the cancel page knows no order and shows every connected chat; so
does `GET /pay/back`, where the Customer Portal ("Manage billing") returns the learner.

Both pages are in the learner's language: `?lang=` if given (the language switch on the
page), else the order's user's, else the browser's Accept-Language, else the bot's default.
Every text comes from the catalogs and every value is HTML-escaped; responses are not cached
and send no Referer, so the session id in the URL does not leak to the chat links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from bot.config import LANDING_CANCEL_PATH, LANDING_RETURN_PATH, LANDING_SUCCESS_PATH
from bot.core.chat_links import ChatLink
from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, Msg, _, normalize_language
from bot.core.web import WebServer
from bot.providers.stripe.checkout import PROVIDER
from storage.models import Identity, Order, Subscription, SubscriptionPeriod, User
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.front_door import Ports

State = Literal["confirming", "slow", "paid", "trial", "unknown", "cancelled", "back", "error"]

# Stripe's Checkout Session ids ("cs_test_…", "cs_live_…"); anything else is not looked up.
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
REFRESH_SECONDS = 3
MAX_REFRESHES = 40  # about two minutes of "confirming", then "the chat will tell you"

TITLES: dict[State, Msg] = {
    "confirming": _("Confirming your payment"),
    "slow": _("Confirming your payment"),
    "paid": _("Payment received"),
    "trial": _("Free trial started"),
    "unknown": _("Nothing to show here"),
    "cancelled": _("Payment cancelled"),
    "back": _("Back to the chat"),
    "error": _("Something went wrong"),
}
TEXTS: dict[State, Msg] = {
    "confirming": _(
        "We are confirming your payment with Stripe. This page updates by itself; you can also "
        "close it: the bot tells you in the chat as soon as the payment is confirmed."
    ),
    "slow": _(
        "This is taking longer than usual. Nothing more is needed from you: the bot tells you "
        "in the chat as soon as the payment is confirmed."
    ),
    "paid": _("Payment received: back to the chat. Your confirmation is waiting for you there."),
    "trial": _("Your free trial has started: back to the chat. The details are waiting there."),
    "unknown": _(
        "This page cannot show that payment. If you paid, the bot confirms it in the chat."
    ),
    "cancelled": _(
        "Nothing was charged. When you are ready, go back to the chat and press the payment "
        "button again."
    ),
    "back": _("You are done here: go back to the chat to carry on."),
    "error": _(
        "Sorry, something went wrong on our side. Please reload this page in a moment; your "
        "payment is not affected."
    ),
}
OPEN_CHAT: dict[str, Msg] = {"telegram": _("Open Telegram"), "discord": _("Open Discord")}
OPEN_ANY_CHAT = _("Open the chat")
NO_LINK = _("You can close this page and go back to the chat.")
CHECK_AGAIN = _("Check again")

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}h1{font-size:1.5rem}.links a{display:inline-block;margin:"
    ".25rem .5rem .25rem 0;padding:.6rem 1rem;border-radius:.4rem;background:#2563eb;color:#fff;"
    "text-decoration:none}nav{margin-top:2rem;font-size:.9rem}nav a{margin-right:1rem}"
)


@dataclass(frozen=True)
class Found:
    """What the success page may say about one Checkout Session, and for whom."""

    state: State
    language: str | None = None
    identities: tuple[tuple[str, str], ...] = ()


async def find_session(uow: UnitOfWork, session_id: str) -> Found:
    """The state of the order or subscription that opened this Checkout Session."""
    order = (
        await uow.session.execute(select(Order).where(Order.checkout_ref == session_id))
    ).scalar_one_or_none()
    if order is not None:
        state: State = "unknown"
        if order.status == "pending":
            state = "confirming"
        elif order.status == "paid" and order.provider == PROVIDER:
            state = "paid"
        return await _for_user(uow, state, order.user_id)
    sub = (
        await uow.session.execute(
            select(Subscription)
            .where(Subscription.checkout_ref == session_id)
            .where(Subscription.provider == PROVIDER)
        )
    ).scalar_one_or_none()
    if sub is None:
        return Found("unknown")
    paid = (
        await uow.session.execute(
            select(SubscriptionPeriod.id)
            .where(SubscriptionPeriod.subscription_id == sub.id)
            .where(SubscriptionPeriod.amount_minor > 0)
            .limit(1)
        )
    ).scalar_one_or_none()
    if paid is not None:
        state = "paid"
    elif sub.trial_end is not None:
        state = "trial"
    elif sub.status == "incomplete":
        state = "confirming"
    else:
        state = "unknown"
    return await _for_user(uow, state, sub.user_id)


async def _for_user(uow: UnitOfWork, state: State, user_id: int) -> Found:
    if state == "unknown":
        return Found("unknown")  # names no one: not even the user's language
    user = await uow.get(User, user_id)
    rows = await uow.session.execute(
        select(Identity.platform, Identity.external_id)
        .where(Identity.user_id == user_id)
        .order_by(Identity.last_seen_at.desc(), Identity.id)
    )
    language = user.language if user is not None and user.deleted_at is None else None
    return Found(state, language, tuple((p, e) for p, e in rows))


class LandingPages:
    """Adds the success and cancel pages to the web server (with Stripe configured)."""

    def __init__(self, app: Ports, refresh_seconds: int = REFRESH_SECONDS) -> None:
        """`refresh_seconds`: how often the "confirming" page reloads itself."""
        self.app = app
        self.refresh_seconds = refresh_seconds

    def add_routes(self, web_server: WebServer) -> None:
        web_server.add_route("GET", LANDING_SUCCESS_PATH, self.success)
        web_server.add_route("GET", LANDING_CANCEL_PATH, self.cancel)
        web_server.add_route("GET", LANDING_RETURN_PATH, self.back)

    async def success(self, request: web.Request) -> web.Response:
        return await self.app.front.dispatch(
            "landing_page",
            lambda: self._success(request),
            on_error=lambda: self._page(request, "error", self._language(request), [], 500),
        )

    async def cancel(self, request: web.Request) -> web.Response:
        links = self.app.chat_links.for_anyone()
        return self._page(request, "cancelled", self._language(request), links)

    async def back(self, request: web.Request) -> web.Response:
        links = self.app.chat_links.for_anyone()
        return self._page(request, "back", self._language(request), links)

    async def _success(self, request: web.Request) -> web.Response:
        session_id = request.query.get("session_id", "")
        found = Found("unknown")
        if SESSION_ID.fullmatch(session_id):
            async with self.app.new_uow() as uow:
                found = await find_session(uow, session_id)
        language = self._language(request, found.language)
        if found.state == "unknown":
            return self._page(request, "unknown", language, self.app.chat_links.for_anyone())
        links = self.app.chat_links.for_identities(found.identities)
        if found.state != "confirming":
            return self._page(request, found.state, language, links)
        refreshes = _count(request.query.get("n", ""))
        if refreshes >= MAX_REFRESHES:
            return self._page(request, "slow", language, links)
        again = _url(request, n=str(refreshes + 1))
        return self._page(request, "confirming", language, links, refresh=again)

    def _language(self, request: web.Request, user_language: str | None = None) -> str:
        asked = request.query.get("lang", "")
        if asked in LANGUAGES:
            return asked
        if user_language in LANGUAGES:
            return str(user_language)
        default = self.app.config.bot.default_language
        return _accepted(request.headers.get("Accept-Language", ""), default)

    def _page(
        self,
        request: web.Request,
        state: State,
        lang: str,
        links: Sequence[ChatLink],
        status: int = 200,
        refresh: str | None = None,
    ) -> web.Response:
        text = _render_for(lang)
        title = text(TITLES[state])
        head = [
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="robots" content="noindex">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
        ]
        if refresh is not None:
            head.append(
                f'<meta http-equiv="refresh" content="{self.refresh_seconds};url={_e(refresh)}">'
            )
        body = [f"<h1>{_e(title)}</h1>", f"<p>{_e(text(TEXTS[state]))}</p>"]
        body.append(_links_html(links, text))
        if state == "slow":
            body.append(f'<p><a href="{_e(_url(request, n=None))}">{_e(text(CHECK_AGAIN))}</a></p>')
        # The unknown page is the same for every id: its switch does not repeat the id.
        forget: dict[str, None] = {"session_id": None} if state == "unknown" else {}
        switch = " ".join(
            f'<a href="{_e(_url(request, lang=code, n=None, **forget))}" '
            f'lang="{_html_lang(code)}">'
            f"{_e(LANGUAGE_NAMES[code])}</a>"
            for code in LANGUAGES
            if code != lang
        )
        body.append(f"<nav>{switch}</nav>")
        page = (
            f'<!doctype html>\n<html lang="{_html_lang(lang)}"><head>{"".join(head)}</head>'
            f"<body><main>{''.join(body)}</main></body></html>\n"
        )
        return web.Response(
            text=page, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )


def _links_html(links: Sequence[ChatLink], text: Callable[[Msg], str]) -> str:
    if not links:
        return f"<p>{_e(text(NO_LINK))}</p>"
    anchors = "".join(
        f'<a href="{_e(link.url)}" rel="noreferrer">'
        f"{_e(text(OPEN_CHAT.get(link.platform, OPEN_ANY_CHAT)))}</a>"
        for link in links
    )
    return f'<p class="links">{anchors}</p>'


def _render_for(lang: str) -> Callable[[Msg], str]:
    return lambda msg: msg.render(lang)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_lang(lang: str) -> str:
    return "zh-Hans" if lang == "zh" else lang


def _count(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 6 else 0


def _url(request: web.Request, **changes: str | None) -> str:
    """This page's path and query with `changes` (None removes a key); only the keys the page
    reads are kept, so nothing a visitor added is echoed back into links."""
    query = {k: request.query[k] for k in ("session_id", "lang", "n") if k in request.query}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"{request.path}?{urlencode(query)}" if query else request.path


def _accepted(header: str, default: str) -> str:
    """The first of the browser's Accept-Language choices that we have a catalog for."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-weight, i, tag.strip()))
    for weight, _i, tag in sorted(ranked):
        code = normalize_language(tag, "")
        if code and weight < 0:
            return code
    return default
