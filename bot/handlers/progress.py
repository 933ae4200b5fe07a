"""A learner's progress: per course, lessons and sessions done and left, goals, mentor notes."""

from __future__ import annotations

from sqlalchemy import select

from bot.context import Ctx
from bot.core.i18n import Lines, Msg, When, _
from bot.handlers.catalogue import my_enrollments
from bot.handlers.registry import command
from bot.learning.courses import course_title
from bot.learning.lessons import lesson_counts
from storage.models import MentorSession, MentorshipRequest


@command(
    "progress",
    _("Your progress: lessons and sessions done and left, goals and notes"),
    section="learning",
)
async def progress(ctx: Ctx, args: list[str]) -> None:
    rows = await my_enrollments(ctx)
    if not rows:
        return
    for enrollment, course in rows:
        sessions = list(
            (
                await ctx.uow.session.execute(
                    select(MentorSession)
                    .where(MentorSession.enrollment_id == enrollment.id)
                    .order_by(MentorSession.start_at)
                )
            ).scalars()
        )
        goals = (
            (
                await ctx.uow.session.execute(
                    select(MentorshipRequest.goals)
                    .where(MentorshipRequest.enrollment_id == enrollment.id)
                    .where(
                        MentorshipRequest.status.in_(("open", "offered", "waitlisted", "accepted"))
                    )
                )
            )
            .scalars()
            .first()
        )
        done = [s for s in sessions if s.status == "completed"]
        booked = [s for s in sessions if s.status == "scheduled"]
        notes: list[Msg] = [
            _("{when}: {note}", when=When(s.start_at), note=s.mentor_note)
            for s in done
            if s.mentor_note
        ]
        lessons_done, _received, lessons = await lesson_counts(ctx.uow, ctx.actor.id, course.id)
        ctx.say(
            _(
                "{title}\nLessons done: {lessons_done} of {lessons}\n"
                "Sessions done: {done} · booked: {booked} · left to book: {left}\n"
                "Goals: {goals}\nMentor notes:\n{notes}",
                title=course_title(course),
                lessons_done=lessons_done,
                lessons=lessons,
                done=len(done),
                booked=len(booked),
                left=enrollment.credits_remaining,
                goals=goals or "—",
                notes=Lines(notes) if notes else "—",
            )
        )
