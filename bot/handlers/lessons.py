"""Lessons in chat: learners read, finish and rate them; admins write them and set the drip.

Learners: `/lessons` (what they received, what is left, when the next one drips),
`/nextlesson [SLUG]` (the next one now), `/lesson ID` (read one again), `/lessondone ID`, and
`/ratelesson ID STARS [COMMENT]` (once per learner and lesson; rating marks it done). Admins:
`/admin lessons SLUG` and `/admin lesson add|edit|archive|restore|drip …`. Files are attached by
the import (`mentorbot lessons import`), since chat commands carry text only.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.context import Ctx
from bot.core import conversations
from bot.core.errors import STATUS_NAMES, BadInput, NotFound
from bot.core.i18n import Lines, Msg, When, _, ngettext
from bot.core.replies import Choice
from bot.core.states import advance
from bot.handlers.args import clip, need, need_int, within
from bot.handlers.recommend import suggestion_block
from bot.handlers.registry import Sub, admin_subcommand, command, flow, number, text
from bot.learning.courses import course_by_slug, course_title
from bot.learning.lessons import (
    DEMAND,
    active_lessons,
    delivered_ids,
    drip_next_at,
    enrolled,
    lesson_counts,
    lesson_say,
    next_lesson,
    rearm_course,
    record_delivery,
)
from storage.models import (
    Conversation,
    Course,
    Enrollment,
    Lesson,
    LessonDelivery,
    LessonFile,
    LessonRating,
)

RATE_USAGE = "/ratelesson LESSON STARS [COMMENT]"
LESSON_FIELDS = ("title", "body", "link", "position")
MAX_DRIP_DAYS = 90
LESSON = number("lesson", _("The lesson number"))


async def my_courses(ctx: Ctx, slug: str | None = None) -> list[Course]:
    """Courses the actor holds an active enrollment in (each once), optionally just one."""
    enrolled_in = (
        select(Enrollment.course_id)
        .where(Enrollment.user_id == ctx.actor.id)
        .where(Enrollment.status == "active")
    )
    stmt = select(Course).where(Course.id.in_(enrolled_in)).order_by(Course.id)
    if slug is not None:
        course = await course_by_slug(ctx.uow, slug, active_only=False)
        stmt = stmt.where(Course.id == course.id)
    return list((await ctx.uow.session.execute(stmt)).scalars())


async def _received_lesson(ctx: Ctx, lesson_id: int) -> tuple[Lesson, LessonDelivery]:
    """A lesson this learner received and may still read (their course is active for them)."""
    lesson = await ctx.uow.get(Lesson, lesson_id)
    delivery = (
        await ctx.uow.session.execute(
            select(LessonDelivery)
            .where(LessonDelivery.user_id == ctx.actor.id)
            .where(LessonDelivery.lesson_id == lesson_id)
        )
    ).scalar_one_or_none()
    if (
        lesson is None
        or delivery is None
        or not await enrolled(ctx.uow, ctx.actor.id, lesson.course_id)
    ):
        raise NotFound(_("You have no lesson #{id}. See /lessons.", id=lesson_id))
    return lesson, delivery


@command("lessons", _("Your lessons: received, done and what comes next"), section="learning")
async def list_lessons(ctx: Ctx, args: list[str]) -> None:
    courses = await my_courses(ctx, args[0] if args else None)
    if not courses:
        ctx.say(_("You have no courses yet."), [Choice(_("Browse courses"), "/courses")])
        return
    for course in courses:
        lessons = await active_lessons(ctx.uow, course.id)
        if not lessons:
            ctx.say(_("{title} has no lessons yet.", title=course_title(course)))
            continue
        received = await delivered_ids(ctx.uow, ctx.actor.id, course.id)
        stars = dict(
            (
                await ctx.uow.session.execute(
                    select(LessonRating.lesson_id, LessonRating.stars)
                    .where(LessonRating.user_id == ctx.actor.id)
                    .where(LessonRating.lesson_id.in_([x.id for x in lessons]))
                )
            ).all()
        )
        lines: list[Msg] = [
            _(
                "#{id} {title}{done}{stars}",
                id=x.id,
                title=x.title,
                done=" ✓" if received[x.id].done_at else "",
                stars=f" {stars[x.id]}★" if x.id in stars else "",
            )
            for x in lessons
            if x.id in received
        ]
        upcoming = await drip_next_at(ctx.uow, ctx.actor.id, course.id)
        left = len(lessons) - len(lines)
        if left and course.lesson_drip_days and upcoming is not None:
            schedule = _(
                "The next one arrives {when}; a new lesson every {days} days.",
                when=When(upcoming),
                days=course.lesson_drip_days,
            )
        elif left and course.lesson_drip_days:
            schedule = _(
                "A new lesson arrives every {days} days; /nextlesson gets the next one now.",
                days=course.lesson_drip_days,
            )
        elif left:
            schedule = _("Get the next one whenever you like with /nextlesson.")
        else:
            schedule = _("You have received every lesson.")
        done = sum(1 for x in lessons if x.id in received and received[x.id].done_at)
        ctx.say(
            _(
                "{title}: received {received} of {total} lessons, done {done}.\n{list}\n{schedule}",
                title=course_title(course),
                received=len(lines),
                total=len(lessons),
                done=done,
                list=Lines(lines) if lines else "—",
                schedule=schedule,
            ),
            [Choice(_("Next lesson"), f"/nextlesson {course.slug}")] if left else [],
        )


@command(
    "nextlesson",
    _("Get your next lesson now: /nextlesson [SLUG]"),
    args=(text("slug", _("The course's short name; leave out to choose"), required=False),),
    section="learning",
)
async def next_lesson_now(ctx: Ctx, args: list[str]) -> None:
    courses = await my_courses(ctx, args[0] if args else None)
    if not courses:
        raise BadInput(_("Lessons come with a course. Buy one first with /courses."))
    waiting = [
        (course, lesson)
        for course in courses
        if (lesson := await next_lesson(ctx.uow, ctx.actor.id, course.id)) is not None
    ]
    if not waiting:
        with_lessons = [c for c in courses if await active_lessons(ctx.uow, c.id)]
        if not with_lessons:
            ctx.say(
                _(
                    "Your courses have no lessons yet; your sessions with a mentor are the "
                    "course for now. New lessons will come to you here as they are added."
                ),
                [Choice(_("Your sessions"), "/sessions"), Choice(_("Find a mentor"), "/mentor")],
            )
            return
        ctx.say(
            _("You have received every lesson so far. New ones will come to you here."),
            [Choice(_("Your lessons"), "/lessons")],
        )
        return
    if len(waiting) > 1:
        ctx.say(
            _("Which course?"),
            [Choice(course_title(c), f"/nextlesson {c.slug}") for c, _lesson in waiting],
        )
        return
    _course, lesson = waiting[0]
    await record_delivery(ctx.uow, ctx.actor.id, lesson, DEMAND, ctx.now())
    say = await lesson_say(ctx.uow, lesson, ctx.actor.id)
    ctx.say(say.msg, say.choices, say.attachments)


@command(
    "lesson", _("Read a lesson you received again: /lesson ID"), args=(LESSON,), section="learning"
)
async def show_lesson(ctx: Ctx, args: list[str]) -> None:
    lesson, _delivery = await _received_lesson(ctx, need_int(args, 0, "/lesson ID"))
    say = await lesson_say(ctx.uow, lesson, ctx.actor.id)
    ctx.say(say.msg, say.choices, say.attachments)


@command(
    "lessondone", _("Mark a lesson as done: /lessondone ID"), args=(LESSON,), section="learning"
)
async def lesson_done(ctx: Ctx, args: list[str]) -> None:
    lesson, delivery = await _received_lesson(ctx, need_int(args, 0, "/lessondone ID"))
    if delivery.done_at is None:
        delivery.done_at = ctx.now()
    said: Msg = _("Lesson #{id} is done. Well done!", id=lesson.id)
    choices = [Choice(_("Rate this lesson"), f"/ratelesson {lesson.id}")]
    await ctx.uow.flush()
    done, _received, total = await lesson_counts(ctx.uow, ctx.actor.id, lesson.course_id)
    if total and done >= total:  # the last lesson of the course: what to take next
        found = await suggestion_block(ctx, "course_end")
        lines = found.lines()
        if lines is not None:
            said = Lines([said, lines]).as_msg()
            choices += found.choices()
    ctx.say(said, choices)


@command(
    "ratelesson",
    _("Rate a lesson: /ratelesson ID STARS [COMMENT]"),
    args=(
        LESSON,
        number("stars", _("From 1 (poor) to 5 (excellent)"), high=5),
        text("comment", _("An optional comment"), required=False, words=True),
    ),
    section="learning",
)
async def rate_lesson(ctx: Ctx, args: list[str]) -> None:
    lesson, delivery = await _received_lesson(ctx, need_int(args, 0, RATE_USAGE))
    existing = (
        await ctx.uow.session.execute(
            select(LessonRating)
            .where(LessonRating.lesson_id == lesson.id)
            .where(LessonRating.user_id == ctx.actor.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise BadInput(
            _(
                "You rated lesson #{id} {stars}★ already; each lesson is rated once.",
                id=lesson.id,
                stars=existing.stars,
            )
        )
    if len(args) < 2:
        ctx.say(
            _("How was lesson #{id}, {title}?", id=lesson.id, title=lesson.title),
            [Choice("★" * n, f"/ratelesson {lesson.id} {n}") for n in range(1, 6)],
        )
        return
    raw = need(args, 1, RATE_USAGE)
    stars = int(raw) if raw.isdigit() else 0
    if not 1 <= stars <= 5:
        raise BadInput(
            _("A rating is a whole number from 1 to 5; you sent '{value}'.", value=clip(raw))
        )
    comment = within(" ".join(args[2:]).strip(), "comment", _("A comment"))
    now = ctx.now()
    rating = LessonRating(
        lesson_id=lesson.id, user_id=ctx.actor.id, stars=stars, comment=comment, created_at=now
    )
    ctx.uow.add(rating)
    if delivery.done_at is None:
        delivery.done_at = now
    await ctx.uow.flush()
    if comment:
        ctx.say(_("Thank you! You rated lesson #{id} {stars}★.", id=lesson.id, stars=stars))
        return
    await conversations.begin(
        ctx.uow, ctx.actor.id, "lesson_comment", "comment", {"rating_id": rating.id}, now
    )
    ctx.say(
        _(
            "Thank you! You rated lesson #{id} {stars}★. Add a comment? Send it now, or /skip.",
            id=lesson.id,
            stars=stars,
        )
    )


@flow("lesson_comment", optional=True)
async def lesson_comment(ctx: Ctx, conv: Conversation, text: str) -> None:
    rating = await ctx.uow.get(LessonRating, conv.data["rating_id"])
    await conversations.end(ctx.uow, ctx.actor.id)
    if rating is None or rating.user_id != ctx.actor.id:
        return
    rating.comment = within(text.strip(), "comment", _("A comment"))
    ctx.say(_("Your comment is saved. Thank you!"))


# --- admins -------------------------------------------------------------------------------


def _parse_lesson_fields(pairs: list[str]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in LESSON_FIELDS:
            raise BadInput(
                _(
                    "Unknown lesson field '{value}'. Fields: {fields}.",
                    value=clip(key or pair),
                    fields=Lines(LESSON_FIELDS, ", "),
                )
            )
        fields.setdefault(key, []).append(value.strip())
    return fields


def _apply_lesson_fields(lesson: Lesson, fields: dict[str, list[str]]) -> None:
    if "title" in fields:
        title = within(fields["title"][-1], "title", _("A title"))
        if not title:
            raise BadInput(_("A lesson needs a title."))
        lesson.title = title
    if "body" in fields:
        lesson.body = fields["body"][-1].replace("\\n", "\n")
    if "link" in fields:
        links = [link for link in fields["link"] if link]
        for link in links:
            if not link.startswith(("https://", "http://")):
                raise BadInput(
                    _(
                        "A link must start with https:// or http://, got '{value}'.",
                        value=clip(link),
                    )
                )
        lesson.links = links
    if "position" in fields:
        raw = fields["position"][-1]
        if not raw.isdigit():
            raise BadInput(_("position must be a whole number, got '{value}'.", value=clip(raw)))
        lesson.position = int(raw)


async def _admin_lesson(ctx: Ctx, lesson_id: int) -> Lesson:
    lesson = await ctx.uow.lock(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(_("There is no lesson #{id}.", id=lesson_id))
    return lesson


@admin_subcommand(
    "lessons",
    _("A course's lessons, in order"),
    args=(text("slug", _("The course's short name")),),
)
async def admin_lessons(ctx: Ctx, args: list[str]) -> None:
    course = await course_by_slug(ctx.uow, need(args, 0, "/admin lessons SLUG"), active_only=False)
    rows = (
        await ctx.uow.session.execute(
            select(Lesson).where(Lesson.course_id == course.id).order_by(Lesson.position, Lesson.id)
        )
    ).scalars()
    lines: list[Msg] = []
    for lesson in rows:
        files = (
            await ctx.uow.session.execute(
                select(func.count(LessonFile.id)).where(LessonFile.lesson_id == lesson.id)
            )
        ).scalar_one()
        received = (
            await ctx.uow.session.execute(
                select(func.count(LessonDelivery.id)).where(LessonDelivery.lesson_id == lesson.id)
            )
        ).scalar_one()
        count, avg = (
            await ctx.uow.session.execute(
                select(func.count(LessonRating.id), func.avg(LessonRating.stars)).where(
                    LessonRating.lesson_id == lesson.id
                )
            )
        ).one()
        lines.append(
            _(
                "#{id} [{position}] {title} — {status}; {files}, {links}; "
                "received by {received}; {rating}",
                id=lesson.id,
                position=lesson.position,
                title=lesson.title,
                status=STATUS_NAMES[lesson.status],
                files=ngettext("{n} file", "{n} files", files),
                links=ngettext("{n} link", "{n} links", len(lesson.links)),
                received=received,
                rating=f"{float(avg):.1f}★ ({count})" if count else "—",
            )
        )
    drip = (
        _("a new lesson every {days} days", days=course.lesson_drip_days)
        if course.lesson_drip_days
        else _("on demand only")
    )
    ctx.say(
        _(
            "Lessons of {title} ({drip}):\n{list}",
            title=course_title(course),
            drip=drip,
            list=Lines(lines) if lines else "—",
        )
    )


@admin_subcommand(
    "lesson",
    _("Add, edit, archive, restore or drip lessons"),
    subs=(
        Sub(
            "add",
            _("Add a lesson to a course"),
            (
                text("slug", _("The course's short name")),
                text("fields", _('key=value pairs, e.g. title=Intro body="Read this"'), words=True),
            ),
        ),
        Sub(
            "edit",
            _("Change a lesson"),
            (
                LESSON,
                text(
                    "changes", _('key=value pairs, e.g. title="New title" position=2'), words=True
                ),
            ),
        ),
        Sub("archive", _("Take a lesson out of the course"), (LESSON,)),
        Sub("restore", _("Put an archived lesson back"), (LESSON,)),
        Sub(
            "drip",
            _("Send a course's lessons every few days"),
            (
                text("slug", _("The course's short name")),
                number(
                    "days",
                    _("Days between lessons; 0 for on demand only"),
                    low=0,
                    high=MAX_DRIP_DAYS,
                ),
            ),
        ),
    ),
)
async def admin_lesson(ctx: Ctx, args: list[str]) -> None:
    usage = (
        "/admin lesson add SLUG title=… body=… [link=URL…] · /admin lesson edit ID key=value… · "
        "/admin lesson archive|restore ID · /admin lesson drip SLUG DAYS"
    )
    action = need(args, 0, usage).lower()
    now = ctx.now()
    if action == "add":
        course = await course_by_slug(ctx.uow, need(args, 1, usage), active_only=False)
        fields = _parse_lesson_fields(args[2:])
        if "title" not in fields:
            raise BadInput(_("A lesson needs a title."))
        last = (
            await ctx.uow.session.execute(
                select(func.max(Lesson.position)).where(Lesson.course_id == course.id)
            )
        ).scalar_one()
        lesson = Lesson(
            course_id=course.id,
            position=(last or 0) + 1,
            title="",
            body="",
            links=[],
            status="active",
            created_at=now,
        )
        _apply_lesson_fields(lesson, fields)
        ctx.uow.add(lesson)
        await ctx.uow.flush()
        await rearm_course(ctx.uow, course.id, now)
        ctx.say(
            _(
                "Lesson #{id} added to {title}: {lesson}.",
                id=lesson.id,
                title=course_title(course),
                lesson=lesson.title,
            )
        )
    elif action == "edit":
        lesson = await _admin_lesson(ctx, need_int(args, 1, usage))
        fields = _parse_lesson_fields(args[2:])
        if not fields:
            raise BadInput(_("Nothing to change. Give key=value pairs."))
        _apply_lesson_fields(lesson, fields)
        ctx.say(_("Lesson #{id} updated.", id=lesson.id))
    elif action in ("archive", "restore"):
        lesson = await _admin_lesson(ctx, need_int(args, 1, usage))
        advance("lesson", lesson, "archived" if action == "archive" else "active")
        if action == "restore":
            await rearm_course(ctx.uow, lesson.course_id, now)
            ctx.say(_("Lesson #{id} is back in its course.", id=lesson.id))
        else:
            ctx.say(
                _(
                    "Lesson #{id} is archived: nobody receives it any more; its ratings stay.",
                    id=lesson.id,
                )
            )
    elif action == "drip":
        course = await course_by_slug(ctx.uow, need(args, 1, usage), active_only=False)
        raw = need(args, 2, usage)
        if not raw.isdigit() or int(raw) > MAX_DRIP_DAYS:
            raise BadInput(
                _(
                    "The drip is a whole number of days from 0 (on demand only) to {max}, "
                    "got '{value}'.",
                    max=MAX_DRIP_DAYS,
                    value=raw,
                )
            )
        course.lesson_drip_days = int(raw)
        if course.lesson_drip_days:
            await rearm_course(ctx.uow, course.id, now)
            ctx.say(
                _(
                    "{title}: learners get a new lesson every {days} days.",
                    title=course_title(course),
                    days=course.lesson_drip_days,
                )
            )
        else:
            ctx.say(_("{title}: lessons on demand only.", title=course_title(course)))
    else:
        raise BadInput(
            _("Unknown action '{value}'. Usage: {usage}", value=clip(action), usage=usage)
        )
