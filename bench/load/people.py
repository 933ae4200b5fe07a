"""The simulated people: learners who buy, ask for a mentor, book, meet and rate, and mentors who
answer offers and confirm sessions. Each acts through Telegram updates posted to the load
balancer and reads the bot's messages as a person would, by the buttons they carry: a message
that offers `/accept 12` is an offer of request 12, one that offers `/outcome 7 completed` is
session 7's follow-up. A reply without buttons is taken as the answer to the update that was
being handled when it was sent."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.load.chat import (
    IndexedTelegram,
    StepFailed,
    argument,
    button,
    command_of,
    is_message,
    offers,
    text_of,
)
from bench.load.processes import Balancer, BotProcess
from bench.load.report import Settings
from bench.load.world import (
    COURSES,
    DURATION_MINUTES,
    MENTOR_BASE,
    NOTICE_WAIT,
    SECRET_HEADER,
    STRIPE_PATH,
    STRIPE_WEBHOOK_SECRET,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
)
from bot.core.clock import Clock
from bot.mentoring.offers import TIME_NAMES
from storage.models import MentorSession
from tests.fakes.fake_stripe import FakeStripe
from tests.fakes.fake_telegram import Call

# The one reply a mentor reads the words of: an Accept refused because they are full carries no
# button to tell it by, and a person who reads it declines from then on.
AT_CAPACITY = "You are at your capacity"

Expect = Callable[[Call], bool] | None


@dataclass
class LearnerState:
    index: int
    tg_id: int
    stripe: bool
    request_id: int | None = None
    accepted_at: int = 0  # chat index of the notice that a mentor accepted
    sessions: list[int] = field(default_factory=list)
    slot_starts: dict[int, datetime] = field(default_factory=dict)
    rated: bool = False
    failed: str = ""


def plain_reply(c: Call) -> bool:
    """A message without buttons: the reply to an update when nothing else tells it."""
    return is_message(c) and not c.buttons


class People:
    """Everyone's updates, and what the checks later need to know about them."""

    def __init__(
        self,
        s: Settings,
        rng: random.Random,
        tg: IndexedTelegram,
        fake_stripe: FakeStripe,
        clock: Clock,
        lb: Balancer,
        notes: list[str],
    ) -> None:
        self.s = s
        self.rng = rng
        self.tg = tg
        self.stripe = fake_stripe
        self.clock = clock
        self.lb = lb
        self.notes = notes
        self.engine: AsyncEngine | None = None  # the run's database, once it is seeded
        self.learners: list[LearnerState] = []
        self.mentor_ids = [MENTOR_BASE + j for j in range(s.mentors)]
        # every update delivered: update_id → answered?
        self.answered: dict[int, bool] = {}
        self.update_kind: dict[int, str] = {}
        self.stripe_outcomes: Counter[str] = Counter()
        self.booked = 0
        self.on_booked: Callable[[int], None] = lambda _booked: None
        self.book_refusals = 0
        self.accept_outcomes: Counter[str] = Counter()
        self.stop_mentors = asyncio.Event()
        self.mentor_seen: dict[int, int] = {}  # mentor → how much of their chat they read
        self.mentor_busy: set[asyncio.Task[None]] = set()  # answers being given
        self.mentor_failures: list[str] = []

    # ── delivering updates ────────────────────────────────────────────────────────────────

    async def deliver(
        self, update: dict[str, Any], dup: float | None = None, kind: str = "?"
    ) -> None:
        """One Telegram update through the balancer; maybe delivered twice on purpose."""
        body = json.dumps(update).encode()
        update_id = update["update_id"]
        self.answered.setdefault(update_id, False)
        self.update_kind[update_id] = kind

        def headers() -> dict[str, str]:
            return {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}

        rate = self.s.dup_rate if dup is None else dup
        if self.rng.random() >= rate:
            status, _p, _b = await self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind)
            _expect_ok(status, update_id)
            return
        if self.rng.random() < 0.5:  # at once, to two processes
            first = self.lb.pick()
            results = await asyncio.gather(
                self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind),
                self.lb.post(WEBHOOK_PATH, body, headers, update_id, avoid=first, kind=kind),
            )
            for status, _p, _b in results:
                _expect_ok(status, update_id)
            return
        status, proc, _b = await self.lb.post(WEBHOOK_PATH, body, headers, update_id, kind=kind)
        _expect_ok(status, update_id)
        status, _p, _b = await self.lb.post(
            WEBHOOK_PATH, body, headers, update_id, avoid=proc, kind=kind
        )
        _expect_ok(status, update_id)

    async def act(
        self,
        who: dict[str, Any],
        update: dict[str, Any],
        expect: Expect,
        what: str,
        dup: float | None = None,
        wait: float = 10.0,
    ) -> tuple[int, Call]:
        """Deliver an update from `who` and find the reply it must have produced: the first
        message matching `expect`; with None, the first message sent while the update was
        handled, preferring one without buttons (or, kept for later, the next such one)."""
        chat = who["id"]
        if self.s.think:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.s.think)
        before = len(self.tg.chat(chat))
        await self.deliver(update, dup, what)
        # The reply is sent before the webhook is answered, so it is there by now.
        after = len(self.tg.chat(chat))
        window = [(i, c) for i, (_t, c) in enumerate(self.tg.chat(chat)[before:after], before)]
        found: tuple[int, Call] | None
        replies = [(i, c) for i, c in window if is_message(c)]
        if expect is None and replies:
            # Notices sent meanwhile (a new offer to a mentor) have buttons; most replies don't.
            found = next(((i, c) for i, c in replies if plain_reply(c)), replies[0])
        else:
            found = await self.tg.wait_chat(chat, before, expect or plain_reply, wait)
        if "callback_query" in update:
            qid = update["callback_query"]["id"]
            answered = any(c.method == "answerCallbackQuery" for c in self.tg.by_query[qid])
        else:
            answered = found is not None or any(is_message(c) for _i, c in window)
        self.answered[update["update_id"]] = self.answered[update["update_id"]] or answered
        if found is None:
            seen = [text_of(c)[:70] for _t, c in self.tg.chat(chat)[before:]]
            raise StepFailed(f"unexpected answer to {what}: saw {seen}")
        return found

    def user(self, tg_id: int, name: str) -> dict[str, Any]:
        return {"id": tg_id, "is_bot": False, "first_name": name, "language_code": "en"}

    async def press(
        self, who: dict[str, Any], on: Call, command: str, expect: Expect, what: str
    ) -> tuple[int, Call]:
        """Press the button on `on` whose command starts with `command`."""
        data = button(on, command)["callback_data"]
        return await self.act(who, self.tg.button_update(who, data), expect, what)

    async def say(
        self,
        who: dict[str, Any],
        text_: str,
        expect: Expect,
        what: str,
        dup: float | None = None,
    ) -> tuple[int, Call]:
        return await self.act(who, self.tg.text_update(who, text_), expect, what, dup)

    # ── learners ──────────────────────────────────────────────────────────────────────────

    async def learner_front(self, me: LearnerState) -> None:
        """Buy a course and get a mentor."""
        who = self.user(me.tg_id, f"Learner{me.index}")
        await self.say(who, "/start", offers("/courses"), "/start")
        slug = self.rng.choice(COURSES)[0]
        _i, order_msg = await self.say(who, f"/buy {slug}", offers("/cancelorder "), "/buy")
        order_id = argument(order_msg, "/cancelorder ")
        if me.stripe:
            links = [b["url"] for b in order_msg.buttons if "url" in b]
            if not links:
                raise StepFailed(f"no checkout link for order {order_id}")
            paid_msg = await self._pay_by_card(who, slug, order_id, links[0].rsplit("/", 1)[1])
        else:
            paid_msg = await self._pay_with_stars(who, slug, order_msg)
        await self.press(who, paid_msg, f"/mentor {slug}", None, "mentor")
        _i, level_msg = await self.say(
            who, f"I want to write real Python programs ({me.index})", offers("beginner"), "goals"
        )
        _i, times_msg = await self.press(
            who, level_msg, "beginner", offers(next(iter(TIME_NAMES))), "level"
        )
        before = len(self.tg.chat(me.tg_id))
        await self.press(who, times_msg, self.rng.choice(list(TIME_NAMES)), None, "times")
        found = await self.tg.wait_chat(me.tg_id, before, offers("/book "), 360.0)
        if found is None:
            raise StepFailed("no mentor accepted within 360 s")
        me.accepted_at = found[0]
        me.request_id = argument(found[1], "/book ")

    async def _pay_with_stars(self, who: dict[str, Any], slug: str, order_msg: Call) -> Call:
        _i, invoice = await self.press(
            who,
            order_msg,
            "/paystars ",
            lambda c: c.method.lower() == "sendinvoice",
            "pay with Stars",
        )
        payload = invoice.params["payload"]
        amount = invoice.params["prices"][0]["amount"]
        pcq = self.tg.pre_checkout_update(who, payload, amount)
        await self.deliver(pcq, kind="pre-checkout")
        qid = pcq["pre_checkout_query"]["id"]
        answers = self.tg.by_query.get(qid, [])
        self.answered[pcq["update_id"]] = bool(answers)
        if not answers or not answers[0].params.get("ok"):
            raise StepFailed(f"pre-checkout not approved: {[a.params for a in answers]}")
        charge = f"stars-charge-{who['id']}-{uuid.uuid4().hex[:8]}"
        _i, paid = await self.act(
            who,
            self.tg.payment_update(who, payload, amount, charge),
            offers(f"/mentor {slug}"),
            "successful_payment",
            dup=0.5,
        )
        return paid

    async def _pay_by_card(
        self, who: dict[str, Any], slug: str, order_id: int, session_id: str
    ) -> Call:
        before = len(self.tg.chat(who["id"]))
        session = self.stripe.pay(session_id)
        event = self.stripe.event("checkout.session.completed", session)
        body = json.dumps(event)

        def headers() -> dict[str, str]:
            signature = stripe.WebhookSignature.generate_signature_header(
                body, STRIPE_WEBHOOK_SECRET, int(self.clock.now().timestamp())
            )
            return {"Content-Type": "application/json", "Stripe-Signature": signature}

        posts = [self.lb.post(STRIPE_PATH, body.encode(), headers, event["id"], kind="stripe")]
        results: Sequence[tuple[int, BotProcess, bytes]]
        if self.rng.random() < 0.5:  # the duplicate at once, to another process
            results = await asyncio.gather(
                posts[0],
                self.lb.post(
                    STRIPE_PATH,
                    body.encode(),
                    headers,
                    event["id"],
                    avoid=self.lb.pick(),
                    kind="stripe",
                ),
            )
        else:
            first = await posts[0]
            results = [
                first,
                await self.lb.post(
                    STRIPE_PATH, body.encode(), headers, event["id"], avoid=first[1], kind="stripe"
                ),
            ]
        for status, _p, answer in results:
            if status != 200:
                raise StepFailed(f"stripe webhook answered {status}: {answer[:200]!r}")
            self.stripe_outcomes[json.loads(answer).get("outcome", "?")] += 1
        found = await self.tg.wait_chat(who["id"], before, offers(f"/mentor {slug}"), NOTICE_WAIT)
        if found is None:
            raise StepFailed(f"no card payment confirmation for order {order_id}")
        return found[1]

    async def learner_book(self, me: LearnerState) -> None:
        """Book a session with the mentor who accepted, again when the time was taken."""
        who = self.user(me.tg_id, f"Learner{me.index}")
        good_news = self.tg.chat(me.tg_id)[me.accepted_at][1]
        times = f"/book {me.request_id} "  # the buttons of a time to book
        slots: list[dict[str, Any]] = []
        for _attempt in range(12):
            if not slots:
                _i, menu = await self.press(
                    who, good_news, "/book ", lambda c: offers(times)(c) or plain_reply(c), "book"
                )
                slots = _time_buttons(menu.buttons, times)
            if not slots:
                raise StepFailed("the mentor had no free times")
            # Not the soonest time: at ×300 it falls inside the minimum lead seconds after it
            # is shown (a person at ×1 would have half an hour), and with flood control on a
            # round trip takes that long.
            slot = self.rng.choice(slots[1:5] or slots)
            data = slot["callback_data"]
            i, reply = await self.act(
                who,
                self.tg.button_update(who, data),
                lambda c: offers("/reschedule ")(c) or offers(times)(c) or plain_reply(c),
                "pick a slot",
            )
            # A duplicate delivery may answer first ("not free"); the booking is in the window.
            booked = [c for _t, c in self.tg.chat(me.tg_id)[i:] if offers("/reschedule ")(c)]
            if booked:
                sid = argument(booked[0], "/reschedule ")
                me.sessions.append(sid)
                assert self.engine is not None
                async with self.engine.connect() as conn:
                    me.slot_starts[sid] = (
                        await conn.execute(
                            select(MentorSession.start_at).where(MentorSession.id == sid)
                        )
                    ).scalar_one()
                self.booked += 1
                self.on_booked(self.booked)
                return
            self.book_refusals += 1  # taken or gone: the refusal shows the times free now
            slots = _time_buttons(reply.buttons, times)
        raise StepFailed("could not book a slot in 12 attempts")

    async def learner_meet(self, me: LearnerState) -> None:
        """Answer the follow-up after the session, rate it and leave a comment."""
        who = self.user(me.tg_id, f"Learner{me.index}")
        sid = me.sessions[0]
        end = me.slot_starts[sid] + timedelta(minutes=DURATION_MINUTES)
        wait = max(0.0, (end - self.clock.now()).total_seconds() / self.s.speed) + NOTICE_WAIT
        outcome = f"/outcome {sid} completed"
        found = await self.tg.wait_chat(me.tg_id, 0, offers(outcome), wait)
        if found is None:
            raise StepFailed(f"no follow-up for session {sid}")
        await self.press(who, found[1], outcome, None, "took place")
        rate_prompt = await self.tg.wait_chat(
            me.tg_id,
            0,
            offers(f"/rate {sid} "),
            # The mentor confirms first, behind their other messages; with flood control on,
            # a much-offered mentor's chat gets one message a second.
            NOTICE_WAIT * (3 if self.s.flood_control else 1) + 30,
        )
        if rate_prompt is None:
            raise StepFailed(f"no rating prompt for session {sid}")
        stars_ = self.rng.choice([3, 4, 5])
        await self.press(who, rate_prompt[1], f"/rate {sid} {stars_}", None, "rate")
        await self.say(who, "Clear explanations, thank you!", None, "comment")
        me.rated = True

    # ── mentors ───────────────────────────────────────────────────────────────────────────

    async def mentor(self, tg_id: int) -> None:
        """A mentor reads their chat and answers what needs an answer, a few at a time (one
        can tap Accept on several messages in a row)."""
        who = self.user(tg_id, f"Mentor{tg_id - MENTOR_BASE}")
        seen = 0
        calls = self.tg.chat(tg_id)
        hands = asyncio.Semaphore(3)
        busy: set[asyncio.Task[None]] = set()
        full = [False]  # told "at your capacity": declines from then on

        async def answer(call: Call) -> None:
            try:
                async with hands:
                    if offers("/accept ")(call):
                        await self._answer_offer(who, call, full)
                    elif offers("/outcome ")(call):
                        await self._confirm_session(who, call)
            except StepFailed as exc:
                self.mentor_failures.append(f"mentor {tg_id}: {exc}")
            except Exception as exc:  # a bug here must show, not silently stall offers
                self.mentor_failures.append(f"mentor {tg_id} crashed: {exc!r}")

        try:
            while not self.stop_mentors.is_set():
                if seen >= len(calls):
                    await self.tg.wait_chat(tg_id, seen, lambda c: True, 1.0)
                    continue
                task = asyncio.create_task(answer(calls[seen][1]))
                for tasks in (busy, self.mentor_busy):
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                seen += 1
                self.mentor_seen[tg_id] = seen
        finally:
            for task in list(busy):
                task.cancel()
            await asyncio.gather(*busy, return_exceptions=True)

    async def mentors_done(self, within: float = NOTICE_WAIT) -> None:
        """Wait until every mentor has read their whole chat and finished answering (bounded):
        an answer cut off when they are told to stop would look unanswered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.mentor_busy or any(
            self.mentor_seen.get(m, 0) < len(self.tg.chat(m)) for m in self.mentor_ids
        ):
            left = deadline - loop.time()
            if left <= 0:
                self.notes.append(f"mentors still busy {within:.0f} s after the end")
                return
            if self.mentor_busy:
                await asyncio.wait(set(self.mentor_busy), timeout=left)
            else:
                await asyncio.sleep(0.05)  # a new message: the mentor picks it up at once

    async def _answer_offer(self, who: dict[str, Any], offer: Call, full: list[bool]) -> None:
        decline = full[0] or self.rng.random() < self.s.decline_rate
        command = "/decline " if decline else "/accept "
        _i, reply = await self.press(who, offer, command, None, command.strip()[1:])
        self.accept_outcomes[_gist(reply, 4)] += 1
        if text_of(reply).startswith(AT_CAPACITY):
            full[0] = True  # as a person would: decline, so the request moves on
            _i, reply = await self.press(who, offer, "/decline ", None, "decline")
            self.accept_outcomes["(full) " + _gist(reply, 3)] += 1

    async def _confirm_session(self, who: dict[str, Any], followup: Call) -> None:
        sid = argument(followup, "/outcome ")
        rate = f"/rate {sid} "
        i, _reply = await self.press(
            who,
            followup,
            f"/outcome {sid} completed",
            lambda c: offers(rate)(c) or plain_reply(c),
            "completed",
        )
        # A notice without buttons may come first; the reply to rate the learner is in the chat.
        prompt = next((c for _t, c in self.tg.chat(who["id"])[i:] if offers(rate)(c)), None)
        if prompt is None:  # answered before (a redelivered update)
            return
        await self.press(who, prompt, f"{rate}4", None, "rate learner")
        await self.say(who, "/skip", None, "skip comment")


def _expect_ok(status: int, update_id: int) -> None:
    if status != 200:
        raise StepFailed(f"update {update_id} answered {status}")


def _gist(reply: Call, words: int) -> str:
    """The first words of a reply, numbers masked: how mentors' answers are tallied."""
    return re.sub(r"#\d+", "#N", " ".join(text_of(reply).split()[:words]))


def _time_buttons(buttons: list[dict[str, Any]], times: str) -> list[dict[str, Any]]:
    """The buttons that book a time (`/book REQ 202612071830`), not the day view's
    « Earlier / Later » and week buttons (`/book REQ 2026-12-09`): pressing those walked
    the booking days ahead, and at the clock's speed a session days away outlasted the run."""
    return [
        b
        for b in buttons
        if command_of(b).startswith(times) and command_of(b)[len(times) :].strip().isdigit()
    ]
