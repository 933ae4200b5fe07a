"""A fake Stripe API on 127.0.0.1 for the routes mentorbot uses, driven by the real stripe-python.

localstripe has no Checkout Sessions, so this implements, as Stripe documents them:
Checkout Sessions create / retrieve / list (filters `created[gte]`, `status`, `payment_intent`,
cursor `starting_after`, newest first) / expire (only an open one: any other gets Stripe's 400),
Refunds create, and Subscriptions cancel (`DELETE`; one cancelled already is one Stripe no
longer finds, 404 `resource_missing`). Idempotency keys behave
like Stripe's: the same key with the same parameters replays the first response
(`Idempotent-Replayed: true`), with other parameters it is a 400 `idempotency_error`, and while
the first request is still being processed it is a 409 `idempotency_error`.
Requests need the configured secret key (401 otherwise).

A slow Stripe: set `hold` to an `asyncio.Event` and Checkout Session creates and refunds wait
for it (`held` is set when one does) until the test sets it.

Tests play the customer and Stripe's dashboard with `pay()`, `refund_charge()` and
`expire()` (a session that is not open cannot be paid: `pay()` and `complete_subscription()`
raise `CheckoutClosed`, as Stripe's page refuses it), build the matching events with
`event()`, and sign them with `stripe.WebhookSignature.generate_signature_header` (see
`StripeWorld.send`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import stripe
from aiohttp import web
from sqlalchemy import func, select

from bot.app import Marketplace
from bot.config import Config
from bot.core.clock import FakeClock
from bot.core.web import WebServer
from bot.providers.stripe.checkout import StripePayments
from bot.providers.stripe.service import StripeService
from bot.runtime.bootstrap import payment_providers
from bot.runtime.demo_data import seed_demo
from storage.migrate import upgrade
from storage.models import Order, OutboxMessage
from tests.support import STRIPE_WEBHOOK_SECRET, Database, Harness, harness_for, make_config

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class StripeApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {"type": type_, "message": message, **({"code": code} if code else {})}
        }


class CheckoutClosed(StripeApiError):
    """The customer tries to pay a Checkout Session that is no longer open (expired through
    the API or by its time, or paid already): Stripe's page refuses and nothing is charged."""

    def __init__(self, session: dict[str, Any]) -> None:
        super().__init__(
            400,
            "invalid_request_error",
            f"This Checkout Session is no longer active: its status is `{session['status']}`.",
        )


def payable(session: dict[str, Any]) -> dict[str, Any]:
    if session["status"] != "open":
        raise CheckoutClosed(session)
    return session


@dataclass
class Call:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass
class FakeStripe:
    clock: Callable[[], datetime]
    api_key: str = "sk_test_fake"
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Subscriptions (tests/fakes/fake_stripe.py's second half): Prices with `recurring`,
    # Customers, Subscriptions, Invoices and Customer Portal sessions.
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # Status codes to answer the next requests with (a 5xx is retried by stripe-python).
    fail_next: list[int] = field(default_factory=list)
    # While an unset Event, Checkout Session creates and refunds wait for it to be set; `held`:
    # one waits.
    hold: asyncio.Event | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    _in_progress: set[str] = field(default_factory=set)
    _idempotency: dict[str, tuple[Any, int, dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create_session)
        app.router.add_get("/v1/checkout/sessions", self._list_sessions)
        app.router.add_get("/v1/checkout/sessions/{id}", self._get_session)
        app.router.add_post("/v1/checkout/sessions/{id}/expire", self._expire_session)
        app.router.add_post("/v1/refunds", self._create_refund)
        app.router.add_post("/v1/prices", self._route(self._do_create_price))
        app.router.add_get("/v1/prices", self._route(self._do_list_prices))
        app.router.add_post("/v1/coupons", self._route(self._do_create_coupon))
        app.router.add_get("/v1/coupons/{id}", self._route(self._do_get_coupon))
        app.router.add_get("/v1/subscriptions", self._route(self._do_list_subscriptions))
        app.router.add_get("/v1/subscriptions/{id}", self._route(self._do_get_subscription))
        app.router.add_post("/v1/subscriptions/{id}", self._route(self._do_update_subscription))
        app.router.add_delete("/v1/subscriptions/{id}", self._route(self._do_cancel_subscription))
        app.router.add_get("/v1/invoices", self._route(self._do_list_invoices))
        app.router.add_post("/v1/billing_portal/sessions", self._route(self._do_portal))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    # -- what customers and the dashboard do -----------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):06d}"

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def pay(self, session_id: str, *, paid: bool = True) -> dict[str, Any]:
        """The customer completes Checkout (paid now, or `paid=False`: a delayed method)."""
        session = payable(self.sessions[session_id])
        intent = self._id("pi")
        session.update(status="complete", payment_intent=intent)
        session["payment_status"] = "paid" if paid else "unpaid"
        if paid:
            self._charge(session)
        return dict(session)

    def settle_delayed(self, session_id: str, *, succeeded: bool) -> dict[str, Any]:
        """A delayed payment clears (or fails) days later."""
        session = self.sessions[session_id]
        session["payment_status"] = "paid" if succeeded else "unpaid"
        if succeeded:
            self._charge(session)
        return dict(session)

    def _charge(self, session: dict[str, Any]) -> None:
        charge_id = self._id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "currency": session["currency"],
            "payment_intent": session["payment_intent"],
            "refunded": False,
            "metadata": {},
        }

    def expire(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        assert session["status"] == "open"
        session["status"] = "expired"
        return dict(session)

    def charge_for(self, payment_intent: str) -> dict[str, Any]:
        return next(c for c in self.charges.values() if c["payment_intent"] == payment_intent)

    def refund_charge(self, payment_intent: str, amount: int | None = None) -> dict[str, Any]:
        """A refund made in Stripe's dashboard; returns the charge for `charge.refunded`."""
        charge = self.charge_for(payment_intent)
        self._refund(charge, amount)
        return dict(charge)

    def _refund(self, charge: dict[str, Any], amount: int | None) -> dict[str, Any]:
        left = charge["amount"] - charge["amount_refunded"]
        amount = left if amount is None else amount
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refund_id = self._id("re")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "currency": charge["currency"],
            "status": "succeeded",
            "metadata": {},
        }
        self.refunds[refund_id] = refund
        return refund

    def event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A webhook event as Stripe sends it (snapshot of `obj`)."""
        return {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2025-01-01",
            "created": self._now(),
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }

    # -- the HTTP API ------------------------------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        handler: Callable[[dict[str, Any]], tuple[int, Any]],
        *,
        slow: bool = False,
    ) -> web.Response:
        if request.method == "POST":
            params = parse_form(list((await request.post()).items()))  # type: ignore[arg-type]
        else:
            params = parse_form(list(request.query.items()))
        key = request.headers.get("Idempotency-Key")
        self.calls.append(Call(request.method, request.path, key, params))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
                status=401,
            )
        if self.fail_next:
            return web.json_response(
                {"error": {"type": "api_error", "message": "injected failure"}},
                status=self.fail_next.pop(0),
            )
        fingerprint = (request.method, request.path, params)
        if request.method == "POST" and key is not None and key in self._idempotency:
            first, status, body = self._idempotency[key]
            if first != fingerprint:
                return web.json_response(
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with.",
                        }
                    },
                    status=400,
                )
            return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
        if key is not None and key in self._in_progress:
            return web.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "code": "idempotency_key_in_use",
                        "message": "There is currently another in-progress request using this "
                        f"Idempotent Key: {key}. Please try again later.",
                    }
                },
                status=409,
            )
        if slow and self.hold is not None:
            if key is not None:
                self._in_progress.add(key)
            self.held.set()
            try:
                await self.hold.wait()
            finally:
                self._in_progress.discard(key or "")
        try:
            status, body = handler({**params, **request.match_info})
        except StripeApiError as exc:
            status, body = exc.status, exc.body
        if request.method == "POST" and key is not None and status < 500:
            self._idempotency[key] = (fingerprint, status, body)
        return web.json_response(body, status=status)

    async def _create_session(self, request: web.Request) -> web.Response:
        return await self._serve(request, self._do_create_session, slow=True)

    def _do_create_session(self, p: dict[str, Any]) -> tuple[int, Any]:
        for required in ("mode", "line_items", "success_url"):
            if required not in p:
                raise StripeApiError(400, "invalid_request_error", f"Missing {required}")
        if p["mode"] == "subscription":
            return self._create_subscription_session(p)
        if p["mode"] != "payment":
            raise StripeApiError(400, "invalid_request_error", "only payment mode is faked")
        amount, currency = 0, None
        for item in p["line_items"]:
            price = item["price_data"]
            if currency not in (None, price["currency"]):
                raise StripeApiError(400, "invalid_request_error", "mixed currencies")
            currency = price["currency"]
            amount += int(price["unit_amount"]) * int(item["quantity"])
        # Stripe's special cases (docs.stripe.com/currencies): three-decimal amounts must end in
        # 0; ISK and HUF are sent as two-decimal and must be whole krónur / forints.
        if currency in ("bhd", "jod", "kwd", "omr", "tnd") and amount % 10:
            raise StripeApiError(400, "invalid_request_error", "Invalid amount: must end in 0")
        if currency in ("isk", "huf") and amount % 100:
            raise StripeApiError(400, "invalid_request_error", "Invalid amount: must be whole")
        now = self._now()
        expires_at = int(p.get("expires_at", now + 86400))
        if not now + 1800 <= expires_at <= now + 86400:
            raise StripeApiError(
                400,
                "invalid_request_error",
                "expires_at must be between 30 minutes and 24 hours from now",
            )
        session_id = self._id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}),
            "payment_intent": None,
            "success_url": p["success_url"],
            "cancel_url": p.get("cancel_url"),
            "created": now,
            "expires_at": expires_at,
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return 200, session

    async def _get_session(self, request: web.Request) -> web.Response:
        return await self._serve(request, lambda p: (200, self._session(p["id"])))

    def _session(self, session_id: str) -> dict[str, Any]:
        if session_id not in self.sessions:
            raise StripeApiError(
                404, "invalid_request_error", f"No such checkout.session: {session_id}"
            )
        return self.sessions[session_id]

    async def _list_sessions(self, request: web.Request) -> web.Response:
        return await self._serve(request, self._do_list_sessions)

    def _do_list_sessions(self, p: dict[str, Any]) -> tuple[int, Any]:
        found = sorted(self.sessions.values(), key=lambda s: (s["created"], s["id"]), reverse=True)
        if "created" in p and "gte" in p["created"]:
            found = [s for s in found if s["created"] >= int(p["created"]["gte"])]
        if "status" in p:
            found = [s for s in found if s["status"] == p["status"]]
        if "payment_intent" in p:
            found = [s for s in found if s["payment_intent"] == p["payment_intent"]]
        if "starting_after" in p:
            ids = [s["id"] for s in found]
            found = found[ids.index(p["starting_after"]) + 1 :]
        limit = int(p.get("limit", 10))
        return 200, {
            "object": "list",
            "url": "/v1/checkout/sessions",
            "has_more": len(found) > limit,
            "data": found[:limit],
        }

    async def _expire_session(self, request: web.Request) -> web.Response:
        def expire(p: dict[str, Any]) -> tuple[int, Any]:
            session = self._session(p["id"])
            if session["status"] != "open":
                raise StripeApiError(
                    400,
                    "invalid_request_error",
                    'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f"Checkout Session has a status of `{session['status']}`.",
                )
            session["status"] = "expired"
            return 200, session

        return await self._serve(request, expire)

    async def _create_refund(self, request: web.Request) -> web.Response:
        return await self._serve(request, self._do_create_refund, slow=True)

    def _do_create_refund(self, p: dict[str, Any]) -> tuple[int, Any]:
        if "payment_intent" in p:
            matches = [
                c for c in self.charges.values() if c["payment_intent"] == p["payment_intent"]
            ]
        else:
            matches = [c for c in self.charges.values() if c["id"] == p.get("charge")]
        if not matches:
            raise StripeApiError(
                404, "invalid_request_error", "No such payment", "resource_missing"
            )
        charge = matches[0]
        if charge["refunded"]:
            raise StripeApiError(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                "charge_already_refunded",
            )
        refund = self._refund(charge, int(p["amount"]) if "amount" in p else None)
        refund["metadata"] = p.get("metadata", {})
        return 200, refund

    # -- subscriptions: the HTTP API -------------------------------------------------------

    def _route(self, handler: Callable[[dict[str, Any]], tuple[int, Any]]) -> Any:
        async def serve(request: web.Request) -> web.Response:
            return await self._serve(request, handler)

        return serve

    def _do_create_price(self, p: dict[str, Any]) -> tuple[int, Any]:
        for required in ("currency", "unit_amount"):
            if required not in p:
                raise StripeApiError(400, "invalid_request_error", f"Missing {required}")
        if "product" not in p and "product_data" not in p:
            raise StripeApiError(400, "invalid_request_error", "Missing product")
        key = p.get("lookup_key")
        if key and any(x.get("lookup_key") == key for x in self.prices.values()):
            raise StripeApiError(
                400, "invalid_request_error", f"A price with lookup_key {key} already exists."
            )
        price_id = self._id("price")
        recurring = p.get("recurring")
        price = {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": p["currency"],
            "unit_amount": int(p["unit_amount"]),
            "lookup_key": key,
            "product": p.get("product") or self._id("prod"),
            "recurring": None
            if recurring is None
            else {
                "interval": recurring["interval"],
                "interval_count": int(recurring.get("interval_count", 1)),
            },
            "type": "recurring" if recurring else "one_time",
            "metadata": p.get("metadata", {}),
            "created": self._now(),
        }
        self.prices[price_id] = price
        return 200, price

    def _do_list_prices(self, p: dict[str, Any]) -> tuple[int, Any]:
        found = list(self.prices.values())
        keys = p.get("lookup_keys")
        if keys is not None:
            wanted = set(keys if isinstance(keys, list) else [keys])
            found = [x for x in found if x["lookup_key"] in wanted]
        return 200, {"object": "list", "url": "/v1/prices", "has_more": False, "data": found}

    def _do_create_coupon(self, p: dict[str, Any]) -> tuple[int, Any]:
        """Stripe's Coupon: `percent_off`, or `amount_off` with its `currency`; `duration`
        once, repeating or forever; an `id` of one's own, refused if taken."""
        if p.get("duration", "once") not in ("once", "repeating", "forever"):
            raise StripeApiError(400, "invalid_request_error", "Invalid duration")
        if ("percent_off" in p) == ("amount_off" in p):
            raise StripeApiError(
                400, "invalid_request_error", "Provide exactly one of percent_off or amount_off"
            )
        if "amount_off" in p and "currency" not in p:
            raise StripeApiError(400, "invalid_request_error", "amount_off requires a currency")
        coupon_id = p.get("id") or self._id("coupon")
        if coupon_id in self.coupons:
            raise StripeApiError(
                400, "invalid_request_error", "Coupon already exists.", "resource_already_exists"
            )
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "duration": p.get("duration", "once"),
            "percent_off": float(p["percent_off"]) if "percent_off" in p else None,
            "amount_off": int(p["amount_off"]) if "amount_off" in p else None,
            "currency": p.get("currency"),
            "name": p.get("name"),
            "metadata": p.get("metadata", {}),
            "valid": True,
            "created": self._now(),
        }
        self.coupons[coupon_id] = coupon
        return 200, coupon

    def _do_get_coupon(self, p: dict[str, Any]) -> tuple[int, Any]:
        coupon = self.coupons.get(p["id"])
        if coupon is None:
            raise StripeApiError(
                404, "invalid_request_error", f"No such coupon: '{p['id']}'", "resource_missing"
            )
        return 200, coupon

    def _discounted(self, amount: int, coupon: dict[str, Any] | None) -> int:
        """A first invoice after its coupon: Stripe rounds a percentage's discount to the
        nearest minor unit, and never goes below zero."""
        if coupon is None:
            return amount
        if coupon["percent_off"] is not None:
            off = int(Decimal(amount * coupon["percent_off"] / 100).quantize(0, ROUND_HALF_UP))
        else:
            off = int(coupon["amount_off"])
        return max(0, amount - off)

    def _create_subscription_session(self, p: dict[str, Any]) -> tuple[int, Any]:
        items = p["line_items"]
        if len(items) != 1 or "price" not in items[0]:
            raise StripeApiError(400, "invalid_request_error", "one line item with a price")
        price = self.prices.get(items[0]["price"])
        if price is None or price["recurring"] is None:
            raise StripeApiError(
                400,
                "invalid_request_error",
                "You must provide at least one recurring price in `subscription` mode.",
            )
        if "expires_at" in p or "payment_intent_data" in p:
            raise StripeApiError(
                400, "invalid_request_error", "payment_intent_data is not allowed in this mode"
            )
        discounts = p.get("discounts") or []
        for discount in discounts:
            coupon = self.coupons.get(discount.get("coupon", ""))
            if coupon is None:
                raise StripeApiError(
                    400,
                    "invalid_request_error",
                    f"No such coupon: '{discount.get('coupon')}'",
                    "resource_missing",
                )
            if coupon["amount_off"] is not None and coupon["currency"] != price["currency"]:
                raise StripeApiError(
                    400, "invalid_request_error", "The coupon's currency is not the price's"
                )
        session_id = self._id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": price["unit_amount"],
            "currency": price["currency"],
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}),
            "payment_intent": None,
            "customer": None,
            "subscription": None,
            "line_price": price["id"],
            "subscription_data": p.get("subscription_data", {}),
            "discounts": list(discounts),
            "success_url": p["success_url"],
            "cancel_url": p.get("cancel_url"),
            "locale": p.get("locale"),
            "created": self._now(),
            "expires_at": self._now() + 86400,
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return 200, session

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        if sub_id not in self.subscriptions:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such subscription: '{sub_id}'",
                "resource_missing",
            )
        return self.subscriptions[sub_id]

    def _do_get_subscription(self, p: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._subscription(p["id"])

    def _do_update_subscription(self, p: dict[str, Any]) -> tuple[int, Any]:
        sub = self._subscription(p["id"])
        if sub["status"] == "canceled":
            raise StripeApiError(
                400,
                "invalid_request_error",
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
        if "items" in p:
            for item in p["items"]:
                sub["items"]["data"][0]["price"] = self.prices[item["price"]]
        return 200, sub

    def _do_cancel_subscription(self, p: dict[str, Any]) -> tuple[int, Any]:
        sub = self._subscription(p["id"])
        if sub["status"] == "canceled":
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such subscription: '{p['id']}'",
                "resource_missing",
            )
        sub.update(status="canceled", canceled_at=self._now(), cancel_at_period_end=False)
        sub["cancellation_details"] = {"reason": "cancellation_requested"}
        return 200, sub

    def _do_list_subscriptions(self, p: dict[str, Any]) -> tuple[int, Any]:
        found = sorted(self.subscriptions.values(), key=lambda x: x["created"], reverse=True)
        status = p.get("status")
        if status != "all":
            found = [x for x in found if x["status"] not in ("canceled", "incomplete_expired")]
            if status:
                found = [x for x in found if x["status"] == status]
        if "created" in p and "gte" in p["created"]:
            found = [x for x in found if x["created"] >= int(p["created"]["gte"])]
        return 200, self._page("/v1/subscriptions", found, p)

    def _do_list_invoices(self, p: dict[str, Any]) -> tuple[int, Any]:
        found = sorted(self.invoices.values(), key=lambda x: x["created"], reverse=True)
        if "subscription" in p:
            found = [x for x in found if x["subscription"] == p["subscription"]]
        if "status" in p:
            found = [x for x in found if x["status"] == p["status"]]
        return 200, self._page("/v1/invoices", found, p)

    def _page(self, url: str, found: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
        if "starting_after" in p:
            ids = [x["id"] for x in found]
            found = found[ids.index(p["starting_after"]) + 1 :]
        limit = int(p.get("limit", 10))
        return {"object": "list", "url": url, "has_more": len(found) > limit, "data": found[:limit]}

    def _do_portal(self, p: dict[str, Any]) -> tuple[int, Any]:
        if p.get("customer") not in self.customers:
            raise StripeApiError(400, "invalid_request_error", "No such customer")
        portal_id = self._id("bps")
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": p["customer"],
            "locale": p.get("locale"),
            "return_url": p.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{portal_id}",
            "created": self._now(),
        }
        self.portal_sessions[portal_id] = portal
        return 200, portal

    # -- subscriptions: what customers, Smart Retries and the clock do ---------------------

    MONTH = 30 * 86400

    def complete_subscription(self, session_id: str) -> tuple[dict[str, Any], ...]:
        """The customer completes a subscription Checkout: a customer, the subscription
        (trialing with `trial_period_days`) and its first invoice, paid ($0 in a trial).
        Returns the session, the subscription and the invoice, as the events carry them."""
        session = payable(self.sessions[session_id])
        assert session["mode"] == "subscription"
        customer = self._id("cus")
        self.customers[customer] = {"id": customer, "object": "customer"}
        price = self.prices[session["line_price"]]
        data = session["subscription_data"] or {}
        trial_days = int(data.get("trial_period_days", 0) or 0)
        now = self._now()
        end = now + (trial_days * 86400 if trial_days else self.MONTH)
        sub_id = self._id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": "trialing" if trial_days else "active",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"reason": None},
            "created": now,
            "current_period_start": now,
            "current_period_end": end,
            "trial_end": end if trial_days else None,
            "metadata": data.get("metadata", {}),
            "items": {
                "object": "list",
                "data": [{"id": self._id("si"), "object": "subscription_item", "price": price}],
            },
            "latest_invoice": None,
        }
        self.subscriptions[sub_id] = sub
        coupons = [self.coupons[d["coupon"]] for d in session.get("discounts") or []]
        first = self._discounted(price["unit_amount"], coupons[0] if coupons else None)
        invoice = self._invoice(sub, now, end, 0 if trial_days else first, True,
                                "subscription_create")  # fmt: skip
        session.update(
            status="complete",
            customer=customer,
            subscription=sub_id,
            payment_status="no_payment_required" if trial_days else "paid",
        )
        return dict(session), dict(sub), dict(invoice)

    def _invoice(
        self, sub: dict[str, Any], start: int, end: int, amount: int, paid: bool, reason: str
    ) -> dict[str, Any]:
        price = sub["items"]["data"][0]["price"]
        invoice_id = self._id("in")
        intent = self._id("pi") if amount else None
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": sub["customer"],
            "subscription": sub["id"],
            "subscription_details": {"metadata": dict(sub["metadata"])},
            "billing_reason": reason,
            "status": "paid" if paid else "open",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "currency": price["currency"],
            "payment_intent": intent,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}",
            "attempt_count": 1,
            "created": self._now(),
            # An invoice's own period is the one before it for renewals (Stripe's quirk); the
            # line's period is the one paid for.
            "period_start": sub["current_period_start"],
            "period_end": sub["current_period_start"],
            "lines": {
                "object": "list",
                "data": [{"period": {"start": start, "end": end}, "price": price}],
            },
        }
        self.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
        if paid and amount:
            self._charge_invoice(invoice)
        return invoice

    def _charge_invoice(self, invoice: dict[str, Any]) -> None:
        charge_id = self._id("ch")
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": invoice["amount_due"],
            "amount_refunded": 0,
            "currency": invoice["currency"],
            "payment_intent": invoice["payment_intent"],
            "refunded": False,
            "metadata": {},
        }

    def renew(self, sub_id: str, *, paid: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """The period ends and Stripe bills the next: paid, or declined (the subscription
        goes `past_due`). Returns the invoice and the subscription."""
        sub = self.subscriptions[sub_id]
        start = sub["current_period_end"]
        end = start + self.MONTH
        price = sub["items"]["data"][0]["price"]
        sub["current_period_start"], sub["current_period_end"] = start, end
        if sub["trial_end"] and sub["status"] == "trialing":
            sub["status"] = "active"
        invoice = self._invoice(sub, start, end, price["unit_amount"], paid, "subscription_cycle")
        sub["status"] = "active" if paid else "past_due"
        return dict(invoice), dict(sub)

    def retry(self, invoice_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Smart Retries charge the fixed card: the open invoice is paid."""
        invoice = self.invoices[invoice_id]
        invoice.update(status="paid", amount_paid=invoice["amount_due"])
        invoice["attempt_count"] += 1
        self._charge_invoice(invoice)
        sub = self.subscriptions[invoice["subscription"]]
        sub["status"] = "active"
        return dict(invoice), dict(sub)

    def cancel_now(self, sub_id: str, reason: str = "cancellation_requested") -> dict[str, Any]:
        """The subscription ends (at its period's end after a cancel, or after the retries
        failed: `payment_failed`); Stripe sends customer.subscription.deleted."""
        sub = self.subscriptions[sub_id]
        sub.update(status="canceled", canceled_at=self._now())
        sub["cancellation_details"] = {"reason": reason}
        return dict(sub)


# -- a marketplace wired to the fake ------------------------------------------------------------

SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
WEBHOOK_PATH = "/stripe/webhook"


def stripe_section(api_base: str, **stripe: Any) -> dict[str, Any]:
    """The `[stripe]` settings that reach the fake at `api_base`."""
    return {
        "secret_key": SECRET_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "api_base": api_base,
        "success_url": "https://mentorbot.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://mentorbot.example/cancelled",
        "max_network_retries": 0,
        "timeout_seconds": 5,
        **stripe,
    }


def stripe_config(api_base: str, web: dict[str, Any] | None = None, **stripe: Any) -> Config:
    """`web`: [web] keys, e.g. the slow-client limits."""
    return make_config(
        web=web or {}, payments={"demo": False}, stripe=stripe_section(api_base, **stripe)
    )


class StripeWorld:
    """One bot process with Stripe against the fake: console harness, web server, service.

    `restart()` stops it and boots another on the same database and the same fake Stripe.
    """

    app: Marketplace
    h: Harness
    payments: StripePayments
    web: WebServer
    service: StripeService
    http: aiohttp.ClientSession

    def __init__(self, database: Database, clock: FakeClock, fake: FakeStripe, config: Config):
        self.database = database
        self.clock = clock
        self.fake = fake
        self.config = config

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        database: Database,
        clock: FakeClock,
        web: dict[str, Any] | None = None,
        **stripe: Any,
    ) -> AsyncIterator[StripeWorld]:
        fake = FakeStripe(clock.now, api_key=SECRET_KEY)
        await fake.start()
        world = cls(database, clock, fake, stripe_config(fake.url, web, **stripe))
        await world.boot()
        try:
            yield world
        finally:
            await world.shutdown()
            await fake.stop()

    async def boot(self, pool_size: int = 5) -> None:
        engine = self.database.engine(pool_size=pool_size)
        await upgrade(engine)
        providers = payment_providers(self.config, self.clock)
        self.app = Marketplace(self.config, engine, self.clock, providers)
        self.h = harness_for(self.app)
        self.payments = next(p for p in providers if isinstance(p, StripePayments))
        self.web = WebServer("127.0.0.1", 0, self.config.web)
        self.service = StripeService(self.app, self.payments, self.web)
        await seed_demo(self.app)
        await self.web.start()
        await self.service.start()
        await asyncio.wait_for(self.service.reconciled.wait(), 10)
        self.http = aiohttp.ClientSession()

    async def shutdown(self) -> None:
        await self.http.close()
        await self.service.stop()
        await self.web.stop()
        await self.app.engine.dispose()

    async def restart(self) -> None:
        await self.shutdown()
        await self.boot()

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}{WEBHOOK_PATH}"

    def sign(
        self, payload: str, *, secret: str = WEBHOOK_SECRET, at: datetime | None = None
    ) -> str:
        timestamp = int((at or self.clock.now()).timestamp())
        return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)

    async def send(
        self,
        event: dict[str, Any],
        *,
        secret: str = WEBHOOK_SECRET,
        at: datetime | None = None,
        header: str | None = None,
        signed: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """POST an event to the bot's real endpoint, signed like Stripe signs it."""
        payload = json.dumps(event)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signed:
            headers["Stripe-Signature"] = header or self.sign(payload, secret=secret, at=at)
        async with self.http.post(self.webhook_url, data=payload.encode(), headers=headers) as r:
            return r.status, await r.json()

    async def pay(self, session_id: str) -> None:
        """The customer pays the session and Stripe's webhook fulfils its order."""
        event = self.fake.event("checkout.session.completed", self.fake.pay(session_id))
        status, body = await self.send(event)
        assert (status, body["outcome"]) == (200, "fulfilled"), body

    async def buy(self, who: str = "alice", slug: str = "python-basics") -> tuple[int, str]:
        """`/buy` in the console; returns the order id and its Checkout Session id."""
        out = await self.h.send(who, f"/buy {slug}")
        order_id = int(out.split("Order #", 1)[1].split(":", 1)[0])
        match = re.search(r"→ https://checkout\.stripe\.com/c/pay/(\S+)", out)
        assert match, out
        return order_id, match.group(1)

    async def subscribe(self, who: str = "alice", plan: str = "monthly") -> str:
        """`/subscribe` by card in the console; returns the Checkout Session id behind the
        link."""
        out = await self.h.send(who, f"/subscribe {plan}")
        match = re.search(r"→ https://checkout\.stripe\.com/c/pay/(\S+)", out)
        assert match, out
        return match.group(1)

    async def subscribed(self, who: str = "alice", plan: str = "monthly") -> str:
        """`subscribe`, then Checkout completed and the first invoice paid, both delivered."""
        cs = await self.subscribe(who, plan)
        session, _subscription, invoice = self.fake.complete_subscription(cs)
        await self.send(self.fake.event("checkout.session.completed", session))
        await self.send(self.fake.event("invoice.paid", invoice))
        return cs

    async def delivered(self) -> str:
        """Wait until the outbox is empty; returns everything printed so far."""
        for _ in range(500):
            async with self.app.new_uow() as uow:
                left = (
                    await uow.session.execute(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.sent_at.is_(None))
                    )
                ).scalar_one()
            if not left:
                return "\n".join(self.h.output)
            await asyncio.sleep(0.01)
        raise AssertionError("notices were not delivered")

    async def order(self, order_id: int) -> Order:
        async with self.app.new_uow() as uow:
            order = await uow.get(Order, order_id)
            assert order is not None
            uow.session.expunge(order)  # readable after the transaction ends
            return order

    async def count(self, model: Any, *where: Any) -> int:
        async with self.app.new_uow() as uow:
            stmt = select(func.count()).select_from(model)
            for clause in where:
                stmt = stmt.where(clause)
            return int((await uow.session.execute(stmt)).scalar_one())
