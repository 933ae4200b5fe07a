"""A fake Telegram Bot API on 127.0.0.1 for the real python-telegram-bot to talk to.

It answers `POST /bot{token}/{method}` like Telegram: parameters arrive form-encoded (nested
objects such as reply_markup and prices as JSON strings, files as multipart) and the answer is
`{"ok": true, "result": …}`. Tests queue updates (messages, button presses, pre-checkout
queries, successful payments); getUpdates hands them out by long polling and forgets those
confirmed by a later offset, as Telegram does. A payment (and a refund) is also kept in the
bot's Star transactions, which getStarTransactions lists newest first, whether or not its update
ever reached the bot. Every call is recorded, and a test can make the next calls of a method
fail (e.g. 429 with retry_after). `TelegramUser` plays one person: it types, presses buttons by
label and pays invoices, the way a Telegram client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy import select

from bot.adapters.telegram import TelegramService
from bot.adapters.telegram.flow_control import configured_flood_control
from bot.app import Marketplace
from bot.config import Config
from bot.core.web import WebServer
from bot.runtime.demo_data import seed_demo
from storage.models import Enrollment, Order
from tests.support import AppFactory, Harness, harness_for, make_config

TOKEN = "123456:TEST-token"
BOT_USER = {
    "id": 777000,
    "is_bot": True,
    "first_name": "Mentorbot",
    "username": "mentorbot_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
BOT_LINK = f"https://t.me/{BOT_USER['username']}"  # the deep link back to the chat
JSON_FIELDS = {
    "reply_markup",
    "prices",
    "commands",
    "scope",
    "allowed_updates",
    "entities",
    "link_preview_options",
    "reply_parameters",
}
INT_FIELDS = {
    "chat_id",
    "user_id",
    "offset",
    "timeout",
    "limit",
    "message_id",
    "max_connections",
    "member_limit",
    "expire_date",
    "until_date",
    "subscription_period",
    "message_thread_id",
    "icon_color",
}
BOOL_FIELDS = {
    "ok",
    "show_alert",
    "drop_pending_updates",
    "only_if_banned",
    "creates_join_request",
    "revoke_messages",
    "is_canceled",
}
WAIT_SECONDS = 10
DATE = 1_772_438_400  # 2026-03-02, matching the tests' FakeClock


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200  # what the fake answered
    at: float = field(default_factory=time.perf_counter)  # when it arrived (benchmarks)
    result: Any = None  # what the fake answered on success (a sent message, an invite link)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard's buttons, row by row, flattened."""
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    times: int


# createForumTopic's icon colours (telegram.constants.ForumIconColor); the first by default.
ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)


@dataclass
class FakeGroup:
    """A supergroup the bot administers: its members, who is banned, its invite links (with
    how often each was used) and the join requests waiting for the bot's answer. A forum
    (`is_forum`, topics on) also has topics by message_thread_id and what was posted in each;
    the bot may create topics only with `can_manage_topics`."""

    id: int
    title: str = "Course community"
    members: set[int] = field(default_factory=set)
    banned: set[int] = field(default_factory=set)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)
    join_requests: set[int] = field(default_factory=set)
    requesters: dict[int, dict[str, Any]] = field(default_factory=dict)  # who asked, by id
    is_forum: bool = False
    can_manage_topics: bool = True
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)  # thread id → ForumTopic
    posts: dict[int, list[str]] = field(default_factory=dict)  # thread id → texts posted

    def chat(self) -> dict[str, Any]:
        found = {"id": self.id, "type": "supergroup", "title": self.title}
        return found | ({"is_forum": True} if self.is_forum else {})

    def topic_named(self, name: str) -> list[int]:
        """The thread ids of the topics called `name` (Telegram allows duplicates)."""
        return [thread for thread, topic in self.topics.items() if topic["name"] == name]


_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}")


def found_mentions(text: str) -> list[dict[str, Any]]:
    """The "mention" entities Telegram finds by itself in a plain-text message (it pings
    the member named); offsets in UTF-16 code units, as the Bot API counts."""

    def units(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    return [
        {"type": "mention", "offset": units(text[: m.start()]), "length": units(m.group())}
        for m in _MENTION.finditer(text)
    ]


def _bad_request(description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"},
        status=400,
    )


@dataclass
class FakeTelegram:
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    refunded: set[str] = field(default_factory=set)
    button_presses: list[str] = field(default_factory=list)  # callback query ids handed out
    star_transactions: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    groups: dict[int, FakeGroup] = field(default_factory=dict)  # supergroups the bot runs
    # createInvoiceLink's links and what each was made with; editUserStarSubscription's
    # is_canceled by the subscription's charge id.
    invoice_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    star_subscriptions_canceled: dict[str, bool] = field(default_factory=dict)
    # What the bot last asked for in getUpdates/setWebhook (None: Telegram's default, which
    # leaves chat_member out: it is sent only to bots that ask for it).
    allowed_updates: list[str] | None = None

    def __post_init__(self) -> None:
        self._queue: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._query_ids = itertools.count(1)
        self._failures: dict[str, list[Failure]] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._wakes: set[asyncio.Task[None]] = set()
        self.url = ""

    # ── server ───────────────────────────────────────────────────────────────────────────

    def routes(self, app: web.Application) -> None:
        """The Bot API's one route: `POST /bot{token}/{method}`."""
        app.router.add_post("/bot{token}/{method}", self._endpoint)

    async def start(self) -> str:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        async with self._changed:
            self._closing = True  # ends any long poll still waiting
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _endpoint(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params)
        await self._record(call)
        held = self._holds.get(method.lower())
        if held is not None:
            await held.wait()
        failures = self._failures.get(method.lower())
        if failures:
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
            call.status = failure.status
            return web.json_response(failure.body, status=failure.status)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        result = await handler(params)
        if isinstance(result, web.Response):
            call.status = result.status
            return result
        call.result = result
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # ── Bot API methods ──────────────────────────────────────────────────────────────────

    async def _m_getme(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_deletewebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {}
        return True

    async def _m_setwebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = p
        if p.get("allowed_updates") is not None:
            self.allowed_updates = p["allowed_updates"]
        return True

    async def _m_setmycommands(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_answercallbackquery(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_answerprecheckoutquery(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_refundstarpayment(self, p: dict[str, Any]) -> Any:
        charge = p["telegram_payment_charge_id"]
        if charge in self.refunded:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: CHARGE_ALREADY_REFUNDED",
                },
                status=400,
            )
        self.star_refund(p["user_id"], charge)
        return True

    async def _m_getstartransactions(self, p: dict[str, Any]) -> Any:
        offset, limit = p.get("offset") or 0, p.get("limit") or 100
        newest_first = self.star_transactions[::-1]
        return {"transactions": newest_first[offset : offset + limit]}

    def _bot_message(self, p: dict[str, Any], **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": DATE,
            "chat": {"id": p["chat_id"], "type": "private"},
            "from": BOT_USER,
            **content,
        }

    async def _m_sendmessage(self, p: dict[str, Any]) -> Any:
        extra = {"reply_markup": p["reply_markup"]} if p.get("reply_markup") else {}
        group = self.groups.get(p["chat_id"])
        if group is None and p["chat_id"] < 0:
            return _bad_request("chat not found")
        if group is None:
            return self._bot_message(p, text=p["text"], **extra)
        thread = p.get("message_thread_id")
        if thread is not None and thread not in group.topics:
            return _bad_request("message thread not found")
        message = self._bot_message(p, text=p["text"], **extra) | {"chat": group.chat()}
        if p.get("parse_mode") is None and p.get("entities") is None:
            message["entities"] = found_mentions(p["text"])
        if thread is not None:
            message |= {"message_thread_id": thread, "is_topic_message": True}
        group.posts.setdefault(thread or 0, []).append(p["text"])
        return message

    async def _m_senddocument(self, p: dict[str, Any]) -> Any:
        name = p["document"]["filename"]
        return self._bot_message(
            p, document={"file_id": f"doc-{name}", "file_unique_id": name, "file_name": name}
        )

    async def _m_sendinvoice(self, p: dict[str, Any]) -> Any:
        invoice = {
            "title": p["title"],
            "description": p["description"],
            "start_parameter": "",
            "currency": p["currency"],
            "total_amount": sum(price["amount"] for price in p["prices"]),
        }
        return self._bot_message(p, invoice=invoice)

    async def _m_createinvoicelink(self, p: dict[str, Any]) -> Any:
        """Bot API createInvoiceLink: Stars (XTR, one price, no provider token); with
        `subscription_period` only 2592000 (30 days) and at most 10000 Stars."""
        prices = p["prices"]
        period = p.get("subscription_period")
        error = None
        if p["currency"] == "XTR" and (len(prices) != 1 or p.get("provider_token")):
            error = "Bad Request: STARS_INVOICE_INVALID"
        elif period is not None and (int(period) != 2592000 or p["currency"] != "XTR"):
            error = "Bad Request: SUBSCRIPTION_PERIOD_INVALID"
        elif period is not None and prices[0]["amount"] > 10000:
            error = "Bad Request: STARS_AMOUNT_INVALID"
        if error:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": error}, status=400
            )
        link = f"https://t.me/$invoice-{len(self.invoice_links) + 1}"
        self.invoice_links[link] = p
        return link

    async def _m_edituserstarsubscription(self, p: dict[str, Any]) -> Any:
        """Bot API editUserStarSubscription: the charge must be one of the user's payments."""
        charge = p["telegram_payment_charge_id"]
        known = any(
            t["id"] == charge and t["source"]["user"]["id"] == int(p["user_id"])
            for t in self.star_transactions
        )
        if not known:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_ID_INVALID"},
                status=400,
            )
        self.star_subscriptions_canceled[charge] = bool(p["is_canceled"])
        return True

    def subscription_payment_update(
        self,
        user: dict[str, Any],
        payload: str,
        amount: int,
        charge_id: str,
        expires: int,
        *,
        first: bool,
    ) -> dict[str, Any]:
        """A subscription's charge (the first one, or a renewal Telegram made by itself)."""
        self.star_payment(user, payload, amount, charge_id, subscription_period=2592000)
        paid = {
            "currency": "XTR",
            "total_amount": amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
            "subscription_expiration_date": expires,
            "is_recurring": True,
            "is_first_recurring": first,
        }
        return self.new_update(message=self.message(user, successful_payment=paid))

    async def _m_getupdates(self, p: dict[str, Any]) -> Any:
        if p.get("allowed_updates") is not None:
            self.allowed_updates = p["allowed_updates"]
        offset = p.get("offset") or 0
        timeout = float(p.get("timeout") or 0)
        async with self._changed:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
            self._changed.notify_all()
            if not self._queue and timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._queue) or self._closing),
                        timeout,
                    )
            return self._queue[: p.get("limit") or 100]

    # ── supergroups: invite links, join requests, members ────────────────────────────────

    def add_group(self, chat_id: int, *, forum: bool = False) -> FakeGroup:
        """A supergroup in which the bot is an admin allowed to invite and ban users (and, in
        a forum, to manage topics)."""
        group = self.groups[chat_id] = FakeGroup(chat_id, is_forum=forum)
        return group

    def _group(self, p: dict[str, Any]) -> FakeGroup | web.Response:
        group = self.groups.get(p.get("chat_id"))  # type: ignore[arg-type]
        return group if group is not None else _bad_request("chat not found")

    async def _m_createchatinvitelink(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        limit = p.get("member_limit")
        if limit is not None and p.get("creates_join_request"):
            return _bad_request("MEMBER_LIMIT_WITH_JOIN_REQUEST")  # Telegram refuses both
        if limit is not None and not 1 <= limit <= 99999:
            return _bad_request("USAGE_LIMIT_INVALID")
        link = f"https://t.me/+fake{len(self.calls)}x{group.id}"
        invite = {
            "invite_link": link,
            "creator": BOT_USER,
            "creates_join_request": bool(p.get("creates_join_request")),
            "is_primary": False,
            "is_revoked": False,
        }
        for key in ("name", "expire_date", "member_limit"):
            if p.get(key) is not None:
                invite[key] = p[key]
        group.links[link] = invite
        group.uses[link] = 0
        return invite

    async def _m_createforumtopic(self, p: dict[str, Any]) -> Any:
        """Bot API createForumTopic: only in a forum supergroup, only with can_manage_topics;
        a name of 1-128 characters; returns the ForumTopic, whose message_thread_id is the id
        of the topic's first (service) message. Two topics may share a name."""
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        if not group.is_forum:
            return _bad_request("the chat is not a forum")
        if not group.can_manage_topics:
            return _bad_request("not enough rights to create a topic")
        if not 1 <= len(p.get("name", "")) <= 128:
            return _bad_request("TOPIC_TITLE_INVALID")
        color = p.get("icon_color", ICON_COLORS[0])
        if color not in ICON_COLORS:
            return _bad_request("TOPIC_ICON_COLOR_INVALID")
        thread = next(self._message_ids)
        topic = {"message_thread_id": thread, "name": p["name"], "icon_color": color}
        group.topics[thread] = topic
        return topic

    async def _m_revokechatinvitelink(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        invite = group.links.get(p.get("invite_link", ""))
        if invite is None:
            return _bad_request("INVITE_HASH_EXPIRED")
        invite["is_revoked"] = True
        return invite

    async def _m_banchatmember(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        group.members.discard(p["user_id"])
        group.banned.add(p["user_id"])
        return True

    async def _m_unbanchatmember(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        user = p["user_id"]
        if user in group.banned:
            group.banned.discard(user)
        elif not p.get("only_if_banned"):
            group.members.discard(user)  # unbanning a member removes them, as Telegram does
        return True

    async def _m_approvechatjoinrequest(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        if p["user_id"] not in group.join_requests:
            return _bad_request("HIDE_REQUESTER_MISSING")
        group.join_requests.discard(p["user_id"])
        group.members.add(p["user_id"])
        self._member_joined(group, group.requesters[p["user_id"]], approved=True)
        return True

    async def _m_declinechatjoinrequest(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        if p["user_id"] not in group.join_requests:
            return _bad_request("HIDE_REQUESTER_MISSING")
        group.join_requests.discard(p["user_id"])
        return True

    async def _m_getchatmember(self, p: dict[str, Any]) -> Any:
        group = self._group(p)
        if isinstance(group, web.Response):
            return group
        user = {"id": p["user_id"], "is_bot": False, "first_name": str(p["user_id"])}
        if p["user_id"] in group.banned:
            return {"status": "kicked", "user": user, "until_date": 0}
        if p["user_id"] in group.members:
            return {"status": "member", "user": user}
        return {"status": "left", "user": user}

    def use_link(self, user: dict[str, Any], link: str, now: int = DATE) -> bool:
        """`user` opens an invite link: joins if it is valid (not revoked, not expired at
        `now`, uses left, not banned), as Telegram lets them. Returns whether they joined."""
        group = next((g for g in self.groups.values() if link in g.links), None)
        if group is None:
            return False
        invite = group.links[link]
        expired = invite.get("expire_date") is not None and invite["expire_date"] <= now
        full = invite.get("member_limit") is not None and group.uses[link] >= invite["member_limit"]
        if invite["is_revoked"] or expired or full or user["id"] in group.banned:
            return False
        group.uses[link] += 1
        group.members.add(user["id"])
        self._member_joined(group, user, invite=invite)
        return True

    def _member_joined(
        self,
        group: FakeGroup,
        user: dict[str, Any],
        invite: dict[str, Any] | None = None,
        *,
        approved: bool = False,
    ) -> None:
        """The chat_member update Telegram sends an admin bot that asked for chat_member
        updates when someone joins: by `invite`, or approved by the bot (`from` the bot)."""
        if "chat_member" not in (self.allowed_updates or ()):
            return
        changed: dict[str, Any] = {
            "chat": group.chat(),
            "from": BOT_USER if approved else user,
            "date": DATE,
            "old_chat_member": {"status": "left", "user": user},
            "new_chat_member": {"status": "member", "user": user},
        }
        if invite is not None:
            changed["invite_link"] = invite
        if approved:
            changed["via_join_request"] = True
        self._queue.append(self.new_update(chat_member=changed))
        wake = asyncio.get_running_loop().create_task(self._wake())
        self._wakes.add(wake)  # held until done, as asyncio asks
        wake.add_done_callback(self._wakes.discard)

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def join_request_update(self, user: dict[str, Any], chat_id: int) -> dict[str, Any]:
        """`user` asks to join a group through a link that needs the bot's approval."""
        group = self.groups[chat_id]
        group.join_requests.add(user["id"])
        group.requesters[user["id"]] = user
        return self.new_update(
            chat_join_request={
                "chat": group.chat(),
                "from": user,
                "user_chat_id": user["id"],
                "date": DATE,
            }
        )

    # ── failures ─────────────────────────────────────────────────────────────────────────

    def fail(
        self,
        method: str,
        *,
        retry_after: int | None = None,
        status: int = 429,
        description: str = "Too Many Requests",
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with an error (by default 429)."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["description"] = f"Too Many Requests: retry after {retry_after}"
            body["parameters"] = {"retry_after": retry_after}
        self._failures.setdefault(method.lower(), []).append(Failure(status, body, times))

    def hold(self, method: str) -> asyncio.Event:
        """Calls of `method` are recorded at once but answered only once the event is set
        (a slow Telegram, so that two processes' calls overlap)."""
        self._holds[method.lower()] = event = asyncio.Event()
        return event

    # ── updates ──────────────────────────────────────────────────────────────────────────

    def new_update(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **content}

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        async with self._changed:
            self._queue.append(update)
            self._changed.notify_all()
        return update

    def message(self, user: dict[str, Any], **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": DATE,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": user,
            **content,
        }

    def text_update(
        self, user: dict[str, Any], text: str, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.new_update(message=self.message(user, **content))

    def button_update(
        self, user: dict[str, Any], data: str, message: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        message = message or self.message(BOT_USER, text="…") | {
            "chat": {"id": user["id"], "type": "private"}
        }
        query_id = f"cq{next(self._query_ids)}"
        self.button_presses.append(query_id)
        return self.new_update(
            callback_query={
                "id": query_id,
                "from": user,
                "chat_instance": f"ci{user['id']}",
                "data": data,
                "message": message,
            }
        )

    def pre_checkout_update(
        self, user: dict[str, Any], payload: str, amount: int, currency: str = "XTR"
    ) -> dict[str, Any]:
        return self.new_update(
            pre_checkout_query={
                "id": f"pcq{next(self._query_ids)}",
                "from": user,
                "currency": currency,
                "total_amount": amount,
                "invoice_payload": payload,
            }
        )

    def payment_update(
        self, user: dict[str, Any], payload: str, amount: int, charge_id: str
    ) -> dict[str, Any]:
        paid = {
            "currency": "XTR",
            "total_amount": amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        return self.new_update(message=self.message(user, successful_payment=paid))

    def star_payment(
        self,
        user: dict[str, Any],
        payload: str,
        amount: int,
        charge_id: str,
        date: int = DATE,
        subscription_period: int | None = None,
    ) -> None:
        """Telegram took `amount` Stars from `user` for the invoice with `payload`: the
        transaction getStarTransactions lists (the update is a separate matter); a
        subscription's charge carries its `subscription_period`."""
        source: dict[str, Any] = {
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": user,
            "invoice_payload": payload,
        }
        if subscription_period is not None:
            source["subscription_period"] = subscription_period
        self.star_transactions.append(
            {"id": charge_id, "amount": amount, "date": date, "source": source}
        )

    def star_refund(self, user_id: int, charge_id: str) -> None:
        """The Stars of payment `charge_id` went back to the payer (refundStarPayment, or
        done elsewhere): a transaction to the user, with the payment's id."""
        self.refunded.add(charge_id)
        paid = next(
            (t for t in self.star_transactions if t["id"] == charge_id and "source" in t), None
        )
        unknown = {"id": user_id, "is_bot": False, "first_name": "?"}
        self.star_transactions.append(
            {
                "id": charge_id,
                "amount": paid["amount"] if paid else 0,
                "date": DATE,
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": paid["source"]["user"] if paid else unknown,
                },
            }
        )

    # ── waiting and looking ──────────────────────────────────────────────────────────────

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        """Wait until `predicate()` is truthy (re-checked on every call the bot makes); a
        guard of WAIT_SECONDS turns a hang into a failure."""
        async with asyncio.timeout(WAIT_SECONDS), self._changed:
            return await self._changed.wait_for(predicate)

    async def drained(self) -> None:
        """Wait until the bot has fetched and confirmed every queued update."""
        await self.wait_for(lambda: not self._queue)

    def calls_of(self, method: str, **where: Any) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method.lower() == method.lower()
            and all(c.params.get(k) == v for k, v in where.items())
        ]

    def sent_to(self, chat_id: int) -> list[Call]:
        """Messages, documents and invoices a chat received (refused attempts left out)."""
        kinds = {"sendmessage", "senddocument", "sendinvoice"}
        return [
            c
            for c in self.calls
            if c.method.lower() in kinds and c.params.get("chat_id") == chat_id and c.status == 200
        ]


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = {"filename": value.filename, "data": value.file.read()}
        elif key in JSON_FIELDS:
            params[key] = json.loads(str(value))
        elif key in INT_FIELDS and str(value).lstrip("-").isdigit():
            params[key] = int(str(value))
        elif key in BOOL_FIELDS:
            params[key] = json.loads(str(value))
        else:
            params[key] = str(value)
    return params


Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class TelegramUser:
    """One person in a Telegram client: types, presses buttons and pays invoices."""

    _ids = itertools.count(5001)

    def __init__(
        self,
        fake: FakeTelegram,
        deliver: Deliver,
        name: str,
        language_code: str = "en",
        user_id: int | None = None,
    ) -> None:
        self.fake = fake
        self.deliver = deliver  # hands an update to the bot and waits until it is handled
        self.id = user_id or next(self._ids)
        self.user = {
            "id": self.id,
            "is_bot": False,
            "first_name": name,
            "language_code": language_code,
        }

    def received(self) -> list[Call]:
        return self.fake.sent_to(self.id)

    def texts(self) -> list[str]:
        return [c.params.get("text", "") for c in self.received()]

    async def _deliver(self, update: dict[str, Any]) -> list[Call]:
        before = len(self.received())
        await self.deliver(update)
        return self.received()[before:]

    async def send(self, text: str) -> str:
        """Type a message; returns the text of everything the bot sent this chat meanwhile."""
        new = await self._deliver(self.fake.text_update(self.user, text))
        return "\n".join(c.params.get("text", "") for c in new)

    async def reply(self, to: Call | dict[str, Any], text: str) -> str:
        """Reply to a message (one the bot sent, or any message as a forged target)."""
        target = to.result if isinstance(to, Call) else to
        new = await self._deliver(self.fake.text_update(self.user, text, reply_to=target))
        return "\n".join(c.params.get("text", "") for c in new)

    def last_with_buttons(self) -> Call:
        return next(c for c in reversed(self.received()) if c.buttons)

    async def press(self, label: str, *, message: Call | None = None) -> str:
        """Press the button labelled `label` (a prefix) on the latest message that has one."""
        message = message or next(
            c
            for c in reversed(self.received())
            if any(b["text"].startswith(label) for b in c.buttons)
        )
        button = next(b for b in message.buttons if b["text"].startswith(label))
        return await self.press_data(button["callback_data"])

    async def press_data(self, data: str) -> str:
        new = await self._deliver(self.fake.button_update(self.user, data))
        return "\n".join(c.params.get("text", "") for c in new)

    def last_answer(self) -> Call:
        return self.fake.calls_of("answerCallbackQuery")[-1]

    async def pay(
        self,
        invoice: Call,
        charge_id: str,
        amount: int | None = None,
        *,
        deliver_update: bool = True,
    ) -> bool:
        """What the Telegram client does on Pay: pre-checkout, then (if allowed) the payment.
        `deliver_update=False`: the Stars are taken but the successful_payment update never
        reaches the bot (fetched by a process that died before handling it)."""
        amount = amount if amount is not None else invoice.params["prices"][0]["amount"]
        payload = invoice.params["payload"]
        answered = len(self.fake.calls_of("answerPreCheckoutQuery"))
        await self._deliver(self.fake.pre_checkout_update(self.user, payload, amount))
        answer = self.fake.calls_of("answerPreCheckoutQuery")[answered]
        if not answer.params["ok"]:
            return False
        self.fake.star_payment(self.user, payload, amount, charge_id)
        if deliver_update:
            await self._deliver(self.fake.payment_update(self.user, payload, amount, charge_id))
        return True


class BotUnderTest:
    """The real TelegramService (python-telegram-bot inside) on a marketplace, against the fake.

    In polling mode an update is queued at the fake and handed out by getUpdates; in webhook
    mode it is posted to the project's web server with the secret. Either way `deliver` returns
    once the bot has handled it.
    """

    def __init__(
        self, fake: FakeTelegram, app: Marketplace, service: TelegramService, web: WebServer | None
    ) -> None:
        self.fake = fake
        self.app = app
        self.service = service
        self.web = web

    @classmethod
    async def start(cls, fake: FakeTelegram, app: Marketplace) -> BotUnderTest:
        web = None
        if app.config.telegram.mode == "webhook":
            web = WebServer("127.0.0.1", 0, app.config.web)
        # Production flood control, with the per-chat pace (1/s) lifted so tests run quickly.
        limiter = configured_flood_control(app.config.telegram, per_chat_burst=1000)
        service = TelegramService(app.config, app, web, rate_limiter=limiter)
        if web is not None:
            await web.start()
        await service.start()
        return cls(fake, app, service, web)

    async def stop(self) -> None:
        await self.service.stop()
        if self.web is not None:
            await self.web.stop()

    def user(
        self, name: str, language_code: str = "en", user_id: int | None = None
    ) -> TelegramUser:
        return TelegramUser(self.fake, self.deliver, name, language_code, user_id)

    async def deliver(self, update: dict[str, Any]) -> None:
        if self.web is None:
            await self.fake.push(update)
            await self.fake.drained()
            await self.service.application.update_queue.join()
            return
        status = await self.post(update, self.app.config.telegram.webhook_secret.reveal())
        assert status == 200, status

    async def post(self, update: dict[str, Any], secret: str | None) -> int:
        """POST an update to the webhook route as Telegram would; returns the status."""
        assert self.web is not None
        path = urlsplit(self.app.config.telegram.webhook_url).path
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{self.web.port}{path}", json=update, headers=headers
            ) as resp,
        ):
            return resp.status


def telegram_config(fake: FakeTelegram, **sections: dict[str, Any]) -> Config:
    """The tests' config with Telegram pointed at the fake and Stars as the way to pay."""
    telegram = {"token": fake.token, "base_url": fake.url, **sections.pop("telegram", {})}
    payments = {"demo": False, **sections.pop("payments", {})}
    return make_config(telegram=telegram, payments=payments, **sections)


STARS = 250  # the Stars price the fixtures give the first demo course

StartBot = Callable[..., Awaitable[tuple[BotUnderTest, Harness]]]


@contextlib.asynccontextmanager
async def serving_fake() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def bots(make_app: AppFactory, fake: FakeTelegram) -> AsyncIterator[StartBot]:
    """`start(**config_sections)` runs the Telegram service on a seeded marketplace (the first
    course priced in Stars by the console admin) and returns it with a console harness; every
    bot started is stopped on leaving."""
    running: list[BotUnderTest] = []

    async def start(**sections: Any) -> tuple[BotUnderTest, Harness]:
        app = await make_app(telegram_config(fake, **sections))
        h = harness_for(app)
        if await seed_demo(app):
            out = await h.send("admin", f"/admin course edit python-basics stars={STARS}")
            assert "updated" in out, out
        bot = await BotUnderTest.start(fake, app)
        running.append(bot)
        return bot, h

    try:
        yield start
    finally:
        for bot in reversed(running):
            await bot.stop()


# ── what a test checks after paying ────────────────────────────────────────────────────────


async def invoice_for(user: TelegramUser, slug: str = "python-basics") -> Call:
    """/buy SLUG, then the Stars button (whatever its language): the sendInvoice call."""
    await user.send(f"/buy {slug}")
    pay = next(b for b in user.last_with_buttons().buttons if "⭐" in b["text"])
    await user.press_data(pay["callback_data"])
    invoice = user.received()[-1]
    assert invoice.method == "sendInvoice", invoice
    return invoice


async def orders(bot: BotUnderTest) -> list[tuple[Any, ...]]:
    """(id, status, provider, provider_ref) of every order."""
    async with bot.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(Order.id, Order.status, Order.provider, Order.provider_ref).order_by(Order.id)
        )
        return [tuple(r) for r in rows]


async def enrollments(bot: BotUnderTest) -> list[tuple[Any, ...]]:
    """(order_id, status, credits_remaining) of every enrollment."""
    async with bot.app.new_uow() as uow:
        rows = await uow.session.execute(
            select(Enrollment.order_id, Enrollment.status, Enrollment.credits_remaining)
        )
        return [tuple(r) for r in rows]
