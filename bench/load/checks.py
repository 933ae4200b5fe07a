"""The invariants a load run is judged by, checked against the database, the fake Bot API's
record of every call and the processes' logs once everyone is through: every learner finished,
the faults were injected, every payment fulfilled once, no double booking, every outbox row and
due reminder delivered exactly once (but for the killed process's at-least-once), every update
answered, no ERROR logged."""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from bench.load.chat import offers, text_of
from bench.load.report import Check
from bench.load.world import SESSIONS_INCLUDED, SORRY, USER_FACING
from bench.timing import cuts
from storage.models import (
    Enrollment,
    Identity,
    MentorProfile,
    MentorSession,
    MentorshipRequest,
    Order,
    OutboxMessage,
    PaymentEvent,
    Rating,
    Reminder,
    RequestOffer,
)

if TYPE_CHECKING:
    from bench.load.run import LoadRun


class Checks:
    """Appends one `Check` per invariant (and notes) to the run's report."""

    def __init__(self, run: LoadRun) -> None:
        self.run = run
        self.r = run.report
        self.s = run.s
        self.people = run.people
        # (chat, text) → copies of an outbox notice sent again after the kill -9 (the killed
        # process had sent them but not recorded it); filled by `notices`
        self.resent: Counter[tuple[int, str]] = Counter()

    async def all(self) -> None:
        r = self.r
        learners = self.people.learners
        failed = [learner for learner in learners if learner.failed]
        r.checks.append(
            Check(
                "every learner finished the journey",
                not failed and all(learner.rated for learner in learners),
                f"{sum(learner.rated for learner in learners)}/{len(learners)} bought, met and "
                f"rated"
                + (
                    f"; first failures: {[learner.failed for learner in failed[:3]]}"
                    if failed
                    else ""
                ),
            )
        )
        if self.s.kill and self.s.processes > 1:
            planned = "a kill -9 and restart" + (", a SIGTERM restart" if self.s.sigterm else "")
            graceful = not self.s.sigterm or self.run.sigterm_info.get("exit") == 0
            r.checks.append(
                Check(
                    "faults injected as planned",
                    bool(self.run.kill_info) and graceful,
                    f"planned: {planned}; done: kill -9 {'yes' if self.run.kill_info else 'NO'}"
                    + (
                        f", SIGTERM exit status {self.run.sigterm_info.get('exit', 'not sent')}"
                        if self.s.sigterm
                        else ""
                    ),
                )
            )
        r.checks.append(
            Check(
                "every mentor's answer got its reply",
                not self.people.mentor_failures,
                f"{len(self.people.mentor_failures)} mentor steps failed"
                + (
                    f", e.g. {self.people.mentor_failures[:3]}"
                    if self.people.mentor_failures
                    else ""
                ),
            )
        )
        await self.payments()
        await self.bookings()
        await self.notices()
        await self.reminders()
        unanswered = [uid for uid, ok in self.people.answered.items() if not ok]
        kinds = [f"{self.people.update_kind.get(uid, '?')} (update {uid})" for uid in unanswered]
        r.checks.append(
            Check(
                "every update answered",
                not unanswered,
                f"{len(self.people.answered) - len(unanswered)}/{len(self.people.answered)} "
                f"distinct updates answered" + (f"; e.g. {kinds[:2]}" if kinds else ""),
            )
        )
        await self.errors()

    async def notices(self) -> None:
        """Every outbox row (notices, reminders, follow-ups, replies kept for later) reached its
        chat, and exactly once: the messages the fake got for a chat with a row's text number
        the rows with that text. The one exception is delivery's at-least-once across a crash:
        a process killed after sending a batch but before recording it leaves the rows claimed,
        and another sends them again when the lease runs out. A copy beyond the rows counts as
        that only if the killed process itself sent a copy and a row with that text was
        claimed more than once; anything else is a bug."""
        chat_of_user = dict(
            await self._rows(
                select(Identity.user_id, Identity.external_id).where(
                    Identity.platform == "telegram"
                )
            )
        )
        rows = await self._rows(
            select(OutboxMessage.user_id, OutboxMessage.body, OutboxMessage.attempts)
        )
        expected: Counter[tuple[int, str]] = Counter()
        retaken: Counter[tuple[int, str]] = Counter()
        for user_id, body, attempts in rows:
            key = (int(chat_of_user[user_id]), body["text"])
            expected[key] += 1
            if attempts > 1:
                retaken[key] += 1
        seen: Counter[tuple[int, str]] = Counter()
        by_killed: Counter[tuple[int, str]] = Counter()
        for chat in {chat for chat, _text in expected}:
            for _t, c in self.run.tg.chat(chat):
                key = (chat, text_of(c))
                if c.status == 200 and c.method.lower() == "sendmessage" and key in expected:
                    seen[key] += 1
                    if self.run.killed_tag and self.run.tg.sender(c) == self.run.killed_tag:
                        by_killed[key] += 1
        missing: list[str] = []
        doubled: list[str] = []
        for key, n in expected.items():
            got = seen[key]
            if got < n:
                missing.append(f"{key[1][:50]!r} to {key[0]}: {got} of {n}")
            elif got > n:
                if got - n <= min(by_killed[key], retaken[key]):
                    self.resent[key] = got - n
                else:
                    doubled.append(
                        f"{key[1][:50]!r} to {key[0]}: {got} for {n} row(s), "
                        f"{by_killed[key]} by {self.run.killed_tag or 'a killed process'}, "
                        f"{retaken[key]} claimed twice"
                    )
        self.r.checks.append(
            Check(
                "every notice delivered exactly once (but what the killed process had sent "
                "and not recorded)",
                not missing and not doubled,
                f"{sum(expected.values())} outbox rows; not delivered: {len(missing)}; sent "
                f"again after the kill -9: {sum(self.resent.values())}; other duplicates: "
                f"{len(doubled)}"
                + (f"; e.g. {(missing + doubled)[:3]}" if missing or doubled else ""),
            )
        )

    async def _scalar(self, stmt: Any) -> Any:
        async with self.run.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one()

    async def _rows(self, stmt: Any) -> list[Any]:
        async with self.run.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def payments(self) -> None:
        r = self.r
        learner_ids = [str(learner.tg_id) for learner in self.people.learners]
        paid_per_user = await self._rows(
            select(Identity.external_id, func.count(Order.id))
            .join(Order, Order.user_id == Identity.user_id)
            .where(Identity.platform == "telegram")
            .where(Identity.external_id.in_(learner_ids))
            .where(Order.status == "paid")
            .group_by(Identity.external_id)
        )
        counts = {ext: n for ext, n in paid_per_user}
        wrong = [ext for ext in learner_ids if counts.get(ext, 0) != 1]
        enrollments_per_order = await self._rows(
            select(Enrollment.order_id, func.count()).group_by(Enrollment.order_id)
        )
        doubled = [oid for oid, n in enrollments_per_order if n != 1]
        unpaid_enrolled = await self._scalar(
            select(func.count())
            .select_from(Enrollment)
            .join(Order, Order.id == Enrollment.order_id)
            .where(Order.status != "paid")
        )
        by_provider = dict(
            await self._rows(
                select(Order.provider, func.count())
                .where(Order.status == "paid")
                .group_by(Order.provider)
            )
        )
        # The confirmation of a payment, Stars or card, is the message offering the next step.
        paid = offers("/mentor ")
        confirmations: Counter[int] = Counter()
        for learner in self.people.learners:
            confirmations[learner.tg_id] = sum(
                1 for _t, c in self.run.tg.chat(learner.tg_id) if paid(c)
            )
        bad_confirm = [tg for tg, n in confirmations.items() if n != 1]
        star_refunds = len(self.run.tg.calls_of("refundStarPayment"))
        card_refunds = len(self.run.stripe.refunds)
        events = await self._rows(
            select(PaymentEvent.event_id, func.count()).group_by(PaymentEvent.event_id)
        )
        doubled_events = [e for e, n in events if n != 1]
        expected_cards = sum(1 for learner in self.people.learners if learner.stripe)
        ok = (
            not wrong
            and not doubled
            and not unpaid_enrolled
            and not bad_confirm
            and not star_refunds
            and not card_refunds
            and not doubled_events
            and by_provider.get("stripe", 0) == expected_cards
            and by_provider.get("stars", 0) == len(self.people.learners) - expected_cards
        )
        r.checks.append(
            Check(
                "every payment fulfilled exactly once",
                ok,
                f"{by_provider.get('stars', 0)} Stars + {by_provider.get('stripe', 0)} card "
                f"orders paid for {len(self.people.learners)} learners; learners without exactly "
                f"one paid order: {len(wrong)}; orders with ≠1 enrollment: {len(doubled)}; "
                f"enrollments of unpaid orders: {unpaid_enrolled}; learners without exactly one "
                f"confirmation: {len(bad_confirm)}; refunds: {star_refunds} Stars, "
                f"{card_refunds} card; Stripe events recorded twice: {len(doubled_events)}; "
                f"Stripe webhook outcomes {dict(self.people.stripe_outcomes)}",
            )
        )

    async def bookings(self) -> None:
        r = self.r
        overlap = text(
            """
            SELECT count(*) FROM sessions a JOIN sessions b
              ON a.id < b.id AND a.status <> 'cancelled' AND b.status <> 'cancelled'
             AND (a.mentor_id = b.mentor_id OR a.learner_id = b.learner_id)
             AND a.start_at < b.start_at + make_interval(mins => b.duration_minutes)
             AND b.start_at < a.start_at + make_interval(mins => a.duration_minutes)
            """
        )
        async with self.run.engine.connect() as conn:
            overlaps = (await conn.execute(overlap)).scalar_one()
            credits = (
                await conn.execute(
                    text(
                        """
                        SELECT count(*) FROM enrollments e
                         WHERE e.credits_remaining + (SELECT count(*) FROM sessions s
                               WHERE s.enrollment_id = e.id AND s.status <> 'cancelled')
                               <> :included
                        """
                    ),
                    {"included": SESSIONS_INCLUDED},
                )
            ).scalar_one()
        per_status = dict(
            await self._rows(
                select(MentorSession.status, func.count()).group_by(MentorSession.status)
            )
        )
        sessions = sum(per_status.values())
        extra = sessions - len([learner for learner in self.people.learners if learner.sessions])
        requests = dict(
            await self._rows(
                select(MentorshipRequest.status, func.count()).group_by(MentorshipRequest.status)
            )
        )
        r.checks.append(
            Check(
                "no double booking",
                overlaps == 0 and credits == 0,
                f"{sessions} sessions {per_status}; overlapping pairs (same mentor or learner): "
                f"{overlaps}; enrollments whose credits don't add up: {credits}; "
                f"slot refusals retried: {self.people.book_refusals}; requests {requests}",
            )
        )
        if extra > 0:
            r.notes.append(
                f"{extra} session(s) more than the bookings learners were told about: booked, "
                "but the reply was lost (a process killed or stopped before answering)"
            )
        offers = sorted(
            n
            for (n,) in await self._rows(
                select(func.count()).select_from(RequestOffer).group_by(RequestOffer.mentor_id)
            )
        )
        if offers:
            r.notes.append(
                f"offers per mentor: median {statistics.median(offers):.0f}, max {offers[-1]}; "
                f"{self.s.mentors - len(offers)} of {self.s.mentors} mentors were offered nothing"
            )
        ratings = await self._scalar(select(func.count()).select_from(Rating))
        r.notes.append(
            f"{ratings} ratings stored; mentor answers to offers: "
            f"{dict(self.people.accept_outcomes)}"
        )

    async def reminders(self) -> None:
        r = self.r
        now = self.run.clock.now()
        rows = await self._rows(
            select(
                Reminder.id,
                Reminder.session_id,
                Reminder.kind,
                Reminder.due_at,
                Reminder.sent_at,
                Reminder.skipped_at,
                MentorSession.status,
                MentorSession.learner_id,
                MentorSession.mentor_id,
            ).join(MentorSession, MentorSession.id == Reminder.session_id)
        )
        chat_of_user = dict(
            await self._rows(
                select(Identity.user_id, Identity.external_id).where(
                    Identity.platform == "telegram"
                )
            )
        )
        mentor_user = dict(await self._rows(select(MentorProfile.id, MentorProfile.user_id)))
        due = [row for row in rows if row.due_at <= now]
        not_sent = [row for row in due if row.sent_at is None and row.status != "cancelled"]
        expected: Counter[tuple[int, int, str]] = Counter()
        for row in due:
            if row.sent_at is None:
                continue
            kind = "followup" if row.kind == "followup" else "before"
            for user_id in (row.learner_id, mentor_user[row.mentor_id]):
                expected[(int(chat_of_user[user_id]), row.session_id, kind)] += 1
        seen: Counter[tuple[int, int, str]] = Counter()
        sent_at: dict[tuple[int, int, str], list[float]] = defaultdict(list)
        lateness: list[float] = []
        due_at = {(row.session_id, row.kind): row.due_at for row in due}
        chats = {chat for chat, _sid, _k in expected}
        reminder = re.compile(r"Reminder: session #(\d+) ")
        ended = re.compile(r"Session #(\d+) with .* has ended\.")
        for chat in chats:
            for stamp, c in self.run.tg.chat(chat):
                if c.status != 200 or c.method.lower() != "sendmessage":
                    continue
                body = text_of(c)
                m = reminder.match(body)
                if m:
                    seen[(chat, int(m.group(1)), "before")] += 1
                    sent_at[(chat, int(m.group(1)), "before")].append(stamp)
                    continue
                m = ended.match(body)
                if m:
                    sid = int(m.group(1))
                    seen[(chat, sid, "followup")] += 1
                    sent_at[(chat, sid, "followup")].append(stamp)
                    if (sid, "followup") in due_at:
                        sim = (
                            self.run.start
                            + (datetime.fromtimestamp(stamp, UTC) - self.run.start) * self.s.speed
                        )
                        lateness.append(
                            (sim - due_at[(sid, "followup")]).total_seconds() / self.s.speed
                        )
        # A copy the killed process had sent and not recorded, sent again (see _check_notices).
        resent = 0
        for (chat, body), n in self.resent.items():
            m = reminder.match(body) or ended.match(body)
            if m:
                kind = "before" if m.re is reminder else "followup"
                seen[(chat, int(m.group(1)), kind)] -= n
                resent += n
        wrong = [
            (k, expected[k], seen[k]) for k in set(expected) | set(seen) if expected[k] != seen[k]
        ]
        before_sent = sum(1 for row in due if row.sent_at is not None and row.kind != "followup")
        followups_sent = sum(1 for row in due if row.sent_at is not None and row.kind == "followup")
        skipped_late = [
            row for row in due if row.skipped_at is not None and row.status != "cancelled"
        ]
        r.checks.append(
            Check(
                "every due reminder sent exactly once",
                not not_sent and not wrong and not skipped_late,
                f"{len(due)} due ({before_sent} before-session reminders and {followups_sent} "
                f"follow-ups sent, to both sides); due but unsent: {len(not_sent)}; skipped as "
                f"too late: {len(skipped_late)}; (chat, session) pairs whose messages ≠ rows: "
                f"{len(wrong)}" + (f", e.g. {wrong[:3]}" if wrong else "") + f"; copies sent "
                f"again after the kill -9 (not counted): {resent}",
            )
        )
        extra = [k for k in wrong if k[2] > k[1]]
        if extra and self.run.killed_wall:
            t = self.run.killed_wall
            spans = [
                f"{min(sent_at[k[0]]) - t:+.1f}…{max(sent_at[k[0]]) - t:+.1f} s" for k in extra[:5]
            ]
            r.notes.append(
                f"{len(extra)} (chat, session) pairs got a reminder or follow-up more often than "
                f"it was claimed; first and last copy relative to the kill -9: {spans}"
            )
        if lateness:
            p50, p99 = cuts(lateness)
            r.notes.append(
                f"follow-up lateness at the fake Bot API (wall clock): p50 {p50:.2f} s, "
                f"p99 {p99:.2f} s, max {max(lateness):.2f} s "
                f"(×{self.s.speed}: p99 = {p99 * self.s.speed / 60:.1f} simulated minutes)"
            )

    async def errors(self) -> None:
        r = self.r
        errors: list[str] = []
        warnings: Counter[str] = Counter()
        unparsed: list[str] = []
        metrics_errors = 0.0
        handle_errors = 0.0
        error_updates = 0.0
        for p in self.run.processes:
            if p.up:
                with contextlib.suppress(Exception):
                    m = await p.metrics(self.run.http)
                    metrics_errors += m.get("mentorbot_errors_total", 0.0)
                    handle_errors += m.get("mentorbot_errors_total{where=handle}", 0.0)
                    error_updates += sum(
                        v
                        for k, v in m.items()
                        if k.startswith("mentorbot_updates_total{") and "outcome=error" in k
                    )
        exits = {}
        for p in self.run.processes:
            started = time.monotonic()
            exits[p.name] = await p.terminate()
            self.run.log(f"{p.name} stopped by SIGTERM in {time.monotonic() - started:.1f} s")
        background: Counter[str] = Counter()
        for p in self.run.processes:
            for path in p.log_files:
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        unparsed.append(f"{path.name}: {line[:160]}")
                        continue
                    level = entry.get("level", "")
                    msg = str(entry.get("msg", "?"))
                    if level in ("error", "critical"):
                        if msg.startswith(USER_FACING):
                            errors.append(f"{path.name}: {msg} {entry.get('exc', '')[-300:]}")
                        else:
                            background[f"{msg[:70]} ({self._when(entry.get('ts', ''))})"] += 1
                    elif level == "warning":
                        warnings[re.sub(r"\d", "N", msg)[:120]] += 1
        sorry = sum(
            1
            for c in self.run.tg.calls
            if c.method.lower() in ("sendmessage", "answercallbackquery")
            and SORRY in str(c.params.get("text", ""))
        )
        r.checks.append(
            Check(
                "no error a user would have seen",
                not errors and not sorry and not handle_errors and not error_updates,
                f"ERROR log lines about an update or a payment: {len(errors)}; apologies sent "
                f"to users: {sorry}; mentorbot_errors_total{{where=handle}} (processes alive "
                f"at the end): {handle_errors:.0f}; updates with outcome=error: "
                f"{error_updates:.0f}" + (f"; e.g. {errors[:3]}" if errors else ""),
            )
        )
        r.checks.append(
            Check(
                "no other ERROR logged",
                not background,
                f"background ERROR lines (deliveries, sweeps; retried later): "
                f"{dict(background.most_common(6)) or 'none'}; mentorbot_errors_total, all "
                f"places: {metrics_errors:.0f}",
            )
        )
        if warnings:
            r.notes.append(f"WARNING log lines: {dict(warnings.most_common(6))}")
        if unparsed:
            r.notes.append(f"{len(unparsed)} non-JSON stderr lines, e.g. {unparsed[:3]}")
        r.notes.append(f"SIGTERM exit statuses: {exits} (None: still running after 40 s, killed)")
        kill, term = self.run.kill_info, self.run.sigterm_info
        if kill:
            r.notes.append(
                f"kill -9 of {self.run.processes[-1].name}: down {kill['down']:.1f} s "
                f"(restart to /readyz {kill['start']:.1f} s); load-balancer failovers "
                f"in the whole run: {self.run.lb.failovers}"
            )
        if term:
            r.notes.append(
                f"SIGTERM restart of {self.run.processes[0].name}: exit status "
                f"{term['exit']} after {term['stop']:.1f} s, ready "
                f"again after {term['down']:.1f} s"
            )
        r.notes.append(f"process logs and configs: {self.run.workdir}")

    def _when(self, ts: str) -> str:
        """Where a log line falls relative to the kill -9 and the SIGTERM restart."""
        try:
            at = datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return "?"
        marks = [("kill -9", self.run.killed_wall), ("SIGTERM", self.run.sigterm_wall)]
        near = [(at - t, name) for name, t in marks if t and -2 < at - t < 120]
        if not near:
            return "not near a restart"
        offset, name = min(near, key=lambda m: abs(m[0]))
        return f"{offset:+.1f} s from the {name}"
