"""The 12-week report counts in the database (`bot/reporting/records.py`): its revenue,
learners and sessions per week, per course and per mentor are the same numbers as counting
every row in Python, on a varied world (the demo's weeks of history, with card payments and
refunds added on week boundaries)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.app import Marketplace
from bot.core.clock import FakeClock
from bot.core.ledger import Kind
from bot.reporting.files import build_report
from bot.reporting.records import WEEK, week_starts
from bot.reporting.satisfaction import reliability_quality
from bot.runtime.demo_data import seed_demo
from storage.models import (
    Course,
    Enrollment,
    LedgerEntry,
    MentorSession,
    MentorshipRequest,
    Order,
    User,
)
from storage.uow import UnitOfWork
from tests.support import AppFactory, harness_for


async def card_order(
    uow: UnitOfWork,
    user_id: int,
    course_id: int,
    currency: str,
    amount: int,
    paid_at: datetime,
    refunded_at: datetime | None,
    ref: str,
) -> Order:
    """A card order paid at `paid_at` (refunded at `refunded_at`, if given) and its
    enrollment, as the payment rules leave them."""
    order = Order(
        user_id=user_id,
        course_id=course_id,
        status="refunded" if refunded_at else "paid",
        amount_minor=amount,
        currency=currency,
        sessions_included=4,
        provider="stripe",
        provider_ref=ref,
        created_at=paid_at,
        expires_at=paid_at + timedelta(hours=1),
        paid_at=paid_at,
        refunded_at=refunded_at,
    )
    uow.session.add(order)
    await uow.session.flush()
    uow.session.add(
        Enrollment(
            order_id=order.id,
            user_id=user_id,
            course_id=course_id,
            credits_remaining=0 if refunded_at else 4,
            status="refunded" if refunded_at else "active",
            created_at=paid_at,
        )
    )
    return order


async def paid_and_refunded(app: Marketplace, clock: FakeClock, weeks: list[datetime]) -> None:
    """Card orders (real money) on several courses and weeks, some refunded a week later, one
    paid exactly at a week's start and one just before the report's first week."""
    async with app.new_uow() as uow:
        users = list((await uow.session.execute(select(User.id).order_by(User.id))).scalars())
        courses = list(
            await uow.session.execute(select(Course.id, Course.currency).order_by(Course.id))
        )
        at_times = [
            weeks[0] - timedelta(microseconds=1),
            weeks[0],
            weeks[2] + timedelta(days=3, hours=5),
            weeks[5],
            weeks[5] + timedelta(days=6, hours=23),
            weeks[-2] + timedelta(hours=1),
            clock.now() - timedelta(minutes=5),
        ]
        for n, paid_at in enumerate(at_times):
            course_id, currency = courses[n % len(courses)]
            user_id = users[n % len(users)]
            refunded_at = paid_at + WEEK if n % 3 == 1 and paid_at + WEEK < clock.now() else None
            order = await card_order(
                uow,
                user_id,
                course_id,
                currency,
                1000 + 100 * n,
                paid_at,
                refunded_at,
                f"pi_test_{n}",
            )
            money = dict(user_id=user_id, order_id=order.id, currency=currency, demo=False)
            uow.session.add(
                LedgerEntry(
                    key=f"test:paid:{n}",
                    kind=Kind.ORDER_PAID.value,
                    at=paid_at,
                    amount_minor=order.amount_minor,
                    credits=0,
                    **money,
                )
            )
            if refunded_at:
                uow.session.add(
                    LedgerEntry(
                        key=f"test:refund:{n}",
                        kind=Kind.ORDER_REFUNDED.value,
                        at=refunded_at,
                        amount_minor=-order.amount_minor,
                        credits=0,
                        **money,
                    )
                )
        await uow.commit()


def _in(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


async def test_counted_in_sql_as_when_counted_row_by_row(
    make_app: AppFactory, clock: FakeClock
) -> None:
    h = harness_for(await make_app())
    assert await seed_demo(h.app, history=True)
    now = clock.now()
    weeks = week_starts(now, h.app.config.satisfaction.report_weeks)
    await paid_and_refunded(h.app, clock, weeks)
    async with h.app.new_uow() as uow:
        report = await build_report(uow, h.app.config, now)
        s = uow.session
        entries = list(
            await s.execute(
                select(Order.course_id, LedgerEntry).join(Order, Order.id == LedgerEntry.order_id)
            )
        )
        sessions = list(
            await s.execute(
                select(Enrollment.course_id, MentorSession).join(
                    Enrollment, Enrollment.id == MentorSession.enrollment_id
                )
            )
        )
        asked = list(
            (
                await s.execute(
                    select(MentorshipRequest.created_at).join(
                        Enrollment, Enrollment.id == MentorshipRequest.enrollment_id
                    )
                )
            ).scalars()
        )
        enrollments = list(
            await s.execute(select(Enrollment, Order).join(Order, Order.id == Enrollment.order_id))
        )
        since, until = weeks[0], now + timedelta(microseconds=1)

        def revenue(
            start: datetime, end: datetime, demo: bool, course: int | None = None
        ) -> dict[str, int]:
            totals: dict[str, int] = defaultdict(int)
            for course_id, e in entries:
                if e.demo != demo or (course is not None and course_id != course):
                    continue
                if e.kind in (Kind.ORDER_PAID.value, Kind.ORDER_REFUNDED.value) and _in(
                    e.at, start, end
                ):
                    totals[e.currency] += e.amount_minor
            return dict(totals)

        def held(
            start: datetime, end: datetime, course: int | None = None, mentor: int | None = None
        ) -> tuple[int, int]:
            picked = [
                m.status
                for course_id, m in sessions
                if _in(m.start_at, start, end)
                and (course is None or course_id == course)
                and (mentor is None or m.mentor_id == mentor)
            ]
            return picked.count("completed"), picked.count("no_show")

        for row in report.weeks:
            end = row.start + WEEK
            assert row.revenue == revenue(row.start, end, demo=False)
            assert row.demo_revenue == revenue(row.start, end, demo=True)
            assert (row.sessions_completed, row.no_shows) == held(row.start, end)
            assert row.requests == sum(1 for at in asked if _in(at, row.start, end))
            assert row.learners == len(
                {
                    e.user_id
                    for e, o in enrollments
                    if e.created_at < end and (o.refunded_at is None or o.refunded_at >= row.start)
                }
            )
        completed, missed = held(since, until)
        assert report.overall.reliability == reliability_quality(completed, missed)
        for b in report.courses:
            assert b.revenue == revenue(since, until, demo=False, course=b.id)
            assert (b.inputs.sessions_completed, b.inputs.sessions_no_show) == held(
                since, until, course=b.id
            )
            assert b.learners == len(
                {e.user_id for e, _o in enrollments if e.course_id == b.id and e.status == "active"}
            )
        for b in report.mentors:
            assert (b.inputs.sessions_completed, b.inputs.sessions_no_show) == held(
                since, until, mentor=b.id
            )
        assert report.currencies == sorted(
            {e.currency for _c, e in entries if not e.demo and e.at >= since and e.currency}
        )
        # The world is varied enough for the comparison to mean something.
        assert sum(1 for r in report.weeks if r.revenue) >= 4
        assert any(v < 0 for r in report.weeks for v in r.revenue.values())  # a refund's week
        assert sum(1 for r in report.weeks if r.demo_revenue) >= 2
        assert sum(r.no_shows for r in report.weeks) >= 1
        assert sum(1 for r in report.weeks if r.sessions_completed) >= 3
        assert sum(1 for r in report.weeks if r.requests) >= 2
        assert len({r.learners for r in report.weeks}) >= 3
        assert sum(1 for b in report.mentors if b.inputs.sessions_completed) >= 2


async def test_the_summary_reads_the_same_weeks_without_the_breakdowns(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """`/admin stats` builds the report without its per-course and per-mentor breakdowns:
    its weekly series and overall score are the full report's, and a learner refunded once
    and back weeks later counts in the weeks of each enrollment, never twice, never between."""
    h = harness_for(await make_app())
    assert await seed_demo(h.app, history=True)
    now = clock.now()
    weeks = week_starts(now, h.app.config.satisfaction.report_weeks)
    await paid_and_refunded(h.app, clock, weeks)
    async with h.app.new_uow() as uow:
        course_id, currency = (
            await uow.session.execute(select(Course.id, Course.currency).order_by(Course.id))
        ).first() or (0, "")
        learner = User(display_name="back again", language="en", timezone="UTC", created_at=now)
        uow.session.add(learner)
        await uow.session.flush()
        learner_id = learner.id
        for n, (start, refunded_at) in enumerate(
            ((weeks[1], weeks[3] + timedelta(days=1)), (weeks[6], None))
        ):
            await card_order(
                uow, learner_id, course_id, currency, 900, start, refunded_at, f"pi_back_{n}"
            )
        await uow.commit()
    async with h.app.new_uow() as uow:
        full = await build_report(uow, h.app.config, now)
        summary = await build_report(uow, h.app.config, now, breakdowns=False)
        enrollments = [
            (user_id, made, refunded_at)
            for user_id, made, refunded_at in await uow.session.execute(
                select(Enrollment.user_id, Enrollment.created_at, Order.refunded_at).join(
                    Order, Order.id == Enrollment.order_id
                )
            )
        ]
    assert summary.weeks == full.weeks
    assert summary.overall == full.overall
    assert summary.courses == [] and summary.mentors == []
    assert full.courses and full.mentors
    spans = [(made, gone) for user_id, made, gone in enrollments if user_id == learner_id]

    def spanned(made: datetime, gone: datetime | None, start: datetime) -> bool:
        return made < start + WEEK and (gone is None or gone >= start)

    for i, row in enumerate(full.weeks):
        assert row.learners == len(
            {u for u, made, gone in enrollments if spanned(made, gone, row.start)}
        )
        assert any(spanned(made, gone, row.start) for made, gone in spans) == (
            1 <= i <= 3 or i >= 6
        )
