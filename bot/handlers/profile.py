"""Personal settings, becoming a mentor, and a mentor's profile and weekly availability."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from bot.context import Ctx
from bot.core import conversations
from bot.core.errors import BadInput, NotAllowed
from bot.core.i18n import LANGUAGES, Lines, When, _
from bot.core.replies import Choice
from bot.core.states import advance
from bot.core.timezones import find_zone, suggest_zone
from bot.core.users import mentor_profile_of
from bot.handlers.args import clip, need, need_int
from bot.handlers.mentor_review import STATUS_WORDS, rating_text
from bot.handlers.registry import choice, command, number, text
from bot.mentoring.offers import LEVEL_NAMES
from bot.sessions.scheduling import WEEKDAYS, format_minute, parse_hhmm, parse_weekday
from storage.models import AvailabilityBlock, AvailabilityWindow, MentorProfile, MentorTopic

LANGUAGE_NAMES = {"en": "English", "zh": "简体中文"}
TOPIC_LEVELS = {
    "beginner": 1,
    "intermediate": 2,
    "advanced": 3,
    "expert": 3,
    "1": 1,
    "2": 2,
    "3": 3,
}
MAX_CAPACITY = 50


@command("cancel", _("Stop what you are in the middle of"))
async def cancel(ctx: Ctx, args: list[str]) -> None:
    if await conversations.end(ctx.uow, ctx.actor.id):
        ctx.say(_("Stopped. Nothing was saved from that step."))
    else:
        ctx.say(_("There is nothing to cancel."))


@command("skip", _("Skip an optional step"))
async def skip(ctx: Ctx, args: list[str]) -> None:
    await conversations.end(ctx.uow, ctx.actor.id)
    ctx.say(_("Skipped."))


@command(
    "language",
    _("Change your language: /language en|zh"),
    args=(choice("language", _("Leave out to choose"), *LANGUAGE_NAMES.items()),),
)
async def language(ctx: Ctx, args: list[str]) -> None:
    if not args:
        ctx.say(
            _("Choose your language:"),
            [Choice(LANGUAGE_NAMES[code], f"/language {code}") for code in LANGUAGES],
        )
        return
    code = args[0].lower()
    if code not in LANGUAGES:
        raise BadInput(
            _(
                "Unknown language '{value}'. Choose one of: {choices}.",
                value=args[0],
                choices=", ".join(LANGUAGES),
            )
        )
    ctx.actor.user.language = code
    ctx.say(_("Language set to English."))


@command(
    "timezone",
    _("Set your timezone: /timezone Area/City"),
    args=(text("timezone", _("A name like Europe/Berlin or Asia/Shanghai"), required=False),),
)
async def timezone(ctx: Ctx, args: list[str]) -> None:
    if not args:
        ctx.say(
            _(
                "Your timezone is {tz}. Change it with /timezone Area/City, e.g. "
                "/timezone Asia/Shanghai.",
                tz=ctx.actor.user.timezone,
            )
        )
        return
    typed = " ".join(args)
    name = find_zone(typed)
    if name is None:
        suggestion = suggest_zone(typed)
        if suggestion is not None:
            raise BadInput(
                _(
                    "'{value}' is not a timezone I know. Did you mean {suggestion}?",
                    value=clip(typed),
                    suggestion=suggestion,
                ),
                choices=(Choice(suggestion, f"/timezone {suggestion}"),),
            )
        raise BadInput(
            _(
                "'{value}' is not a timezone I know. Use a name like Europe/Berlin or "
                "Asia/Shanghai, a city like Shanghai, or a UTC offset like UTC+8.",
                value=clip(typed),
            )
        )
    ctx.actor.user.timezone = name
    ctx.say(_("Timezone set to {tz}. Times are now shown in it.", tz=name))


@command("becomementor", _("Apply to mentor on this marketplace"))
async def become_mentor(ctx: Ctx, args: list[str]) -> None:
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    if profile is not None and profile.status != "rejected":
        ctx.say(
            _(
                "You already have a mentor profile ({status}). See /profile.",
                status=STATUS_WORDS[profile.status],
            ),
            [Choice(_("My profile"), "/profile")],
        )
        return
    if profile is None:
        profile = MentorProfile(
            user_id=ctx.actor.id,
            status="pending",
            languages=[ctx.actor.user.language],
            capacity=3,
            bio="",
            rating_count=0,
            rating_sum=0,
            created_at=ctx.now(),
        )
        ctx.uow.add(profile)
        await ctx.uow.flush()
    else:  # applying again after a rejection
        advance("mentor", profile, "pending")
        profile.created_at = ctx.now()
    await ctx.tell_admins(
        _(
            "{name} applied to mentor (profile #{id}). Review it with /admin applications.",
            name=clip(ctx.actor.user.display_name),
            id=profile.id,
        ),
        [
            Choice(_("Review applications"), "/admin applications"),
            Choice(_("Approve"), f"/admin mentor approve {profile.id}"),
            Choice(_("Reject"), f"/admin reject {profile.id}"),
        ],
    )
    ctx.say(
        _(
            "Thanks for applying! An admin will review your profile #{id}. Meanwhile set your "
            "topics (/profile topics python:advanced,sql:intermediate) and your availability "
            "(/availability add mon 18:00-20:00).",
            id=profile.id,
        )
    )


async def _own_profile(ctx: Ctx) -> MentorProfile:
    profile = await mentor_profile_of(ctx.uow, ctx.actor.id)
    if profile is None:
        raise NotAllowed(_("You are not a mentor. Apply with /becomementor."))
    return profile


PROFILE_USAGE = "/profile [topics T:LEVEL,… | languages en,zh | capacity N | bio TEXT]"


@command(
    "profile",
    _("Your mentor profile: /profile [topics|languages|capacity|bio] VALUE"),
    args=(
        choice(
            "field",
            _("What to change; leave out to see your profile"),
            "topics",
            "languages",
            "capacity",
            "bio",
        ),
        text(
            "value",
            _("e.g. python:advanced,sql:beginner · en,zh · 3 · a few words about you"),
            required=False,
            words=True,
        ),
    ),
)
async def profile(ctx: Ctx, args: list[str]) -> None:
    mentor = await _own_profile(ctx)
    if args:
        await _edit_profile(ctx, mentor, args)
    topics = (
        await ctx.uow.session.execute(
            select(MentorTopic)
            .where(MentorTopic.mentor_id == mentor.id)
            .order_by(MentorTopic.topic)
        )
    ).scalars()
    ctx.say(
        _(
            "Mentor profile #{id} — {status}\nTopics: {topics}\nLanguages: {languages}\n"
            "Capacity: {capacity} mentees\nRating: {rating}\nBio: {bio}",
            id=mentor.id,
            status=STATUS_WORDS[mentor.status],
            topics=Lines(
                (_("{topic} ({level})", topic=t.topic, level=LEVEL_NAMES[t.level]) for t in topics),
                ", ",
            ),
            languages=", ".join(mentor.languages),
            capacity=mentor.capacity,
            rating=rating_text(mentor.rating_sum, mentor.rating_count),
            bio=mentor.bio or "—",
        )
    )


async def _edit_profile(ctx: Ctx, mentor: MentorProfile, args: list[str]) -> None:
    field = args[0].lower()
    value = " ".join(args[1:]).strip()
    if not value:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=PROFILE_USAGE))
    if field == "topics":
        parsed: dict[str, int] = {}
        for item in value.replace(" ", "").split(","):
            topic, _sep, level_word = item.partition(":")
            level = TOPIC_LEVELS.get(level_word.lower() or "advanced")
            if not topic or level is None:
                raise BadInput(
                    _(
                        "Could not read '{value}'. Write topics as name:level, with level "
                        "beginner, intermediate or advanced.",
                        value=item,
                    )
                )
            parsed[topic.lower()[:64]] = level
        await ctx.uow.session.execute(delete(MentorTopic).where(MentorTopic.mentor_id == mentor.id))
        for topic, level in parsed.items():
            ctx.uow.add(MentorTopic(mentor_id=mentor.id, topic=topic, level=level))
    elif field == "languages":
        langs = [v.strip().lower() for v in value.split(",") if v.strip()]
        bad = [v for v in langs if v not in LANGUAGES]
        if bad or not langs:
            raise BadInput(
                _(
                    "Unknown language '{value}'. Choose one of: {choices}.",
                    value=", ".join(bad) or value,
                    choices=", ".join(LANGUAGES),
                )
            )
        mentor.languages = langs
    elif field == "capacity":
        capacity = need_int([value], 0, "/profile capacity N")
        if capacity > MAX_CAPACITY:
            raise BadInput(_("Capacity can be at most {n}.", n=MAX_CAPACITY))
        mentor.capacity = capacity
    elif field == "bio":
        mentor.bio = value[:1000]
    else:
        raise BadInput(
            _("Unknown profile field '{value}'. Usage: {usage}", value=field, usage=PROFILE_USAGE)
        )
    await ctx.uow.flush()


AVAILABILITY_USAGE = (
    "/availability [add DAY HH:MM-HH:MM | remove N | clear | block YYYY-MM-DD HH:MM-HH:MM | "
    "off YYYY-MM-DD | unblock N]"
)


def _local_range(day_text: str, span: str | None, tz: str) -> tuple[datetime, datetime] | None:
    """A local date (and optional HH:MM-HH:MM) in `tz` as a UTC range; None if unreadable."""
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None
    zone = ZoneInfo(tz)
    if span is None:
        start_minute, end_minute = 0, 1440
    else:
        start_text, _sep, end_text = span.partition("-")
        start_m, end_m = parse_hhmm(start_text), parse_hhmm(end_text)
        if start_m is None or end_m is None or start_m >= end_m:
            return None
        start_minute, end_minute = start_m, end_m
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    start = (midnight + timedelta(minutes=start_minute)).astimezone(UTC)
    end = (midnight + timedelta(minutes=end_minute)).astimezone(UTC)
    if end_minute == 1440:
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


@command(
    "availability",
    _("Your weekly availability: /availability [add|remove|clear]"),
    args=(
        choice("action", _("Leave out to see your weekly windows"), "add", "remove", "clear"),
        choice("day", _("For add: the weekday"), *WEEKDAYS),
        text("hours", _("For add: e.g. 18:00-20:00, in your timezone"), required=False),
        number("window", _("For remove: the window number"), required=False),
    ),
)
async def availability(ctx: Ctx, args: list[str]) -> None:
    mentor = await _own_profile(ctx)
    if args:
        action = args[0].lower()
        if action == "add":
            day = parse_weekday(need(args, 1, AVAILABILITY_USAGE))
            start_text, _sep, end_text = need(args, 2, AVAILABILITY_USAGE).partition("-")
            start, end = parse_hhmm(start_text), parse_hhmm(end_text)
            if day is None or start is None or end is None or start >= end:
                raise BadInput(
                    _(
                        "Could not read that window. Example: /availability add mon 18:00-20:00 "
                        "(in your timezone)."
                    )
                )
            ctx.uow.add(
                AvailabilityWindow(
                    mentor_id=mentor.id, weekday=day, start_minute=start, end_minute=end
                )
            )
        elif action == "remove":
            window_id = need_int(args, 1, AVAILABILITY_USAGE)
            window = await ctx.uow.get(AvailabilityWindow, window_id)
            if window is None or window.mentor_id != mentor.id:
                raise BadInput(_("You have no availability window #{id}.", id=window_id))
            await ctx.uow.session.delete(window)
        elif action in ("block", "off"):
            day_text = need(args, 1, AVAILABILITY_USAGE)
            span = need(args, 2, AVAILABILITY_USAGE) if action == "block" else None
            found = _local_range(day_text, span, ctx.actor.user.timezone)
            if found is None:
                raise BadInput(
                    _(
                        "Could not read that. Examples: /availability block 2026-03-10 "
                        "14:00-18:00, /availability off 2026-03-12 (in your timezone)."
                    )
                )
            ctx.uow.add(
                AvailabilityBlock(
                    mentor_id=mentor.id, start_at=found[0], end_at=found[1], created_at=ctx.now()
                )
            )
        elif action == "unblock":
            block_id = need_int(args, 1, AVAILABILITY_USAGE)
            block = await ctx.uow.get(AvailabilityBlock, block_id)
            if block is None or block.mentor_id != mentor.id:
                raise BadInput(_("You have no block #{id}.", id=block_id))
            await ctx.uow.session.delete(block)
        elif action == "clear":
            await ctx.uow.session.execute(
                delete(AvailabilityWindow).where(AvailabilityWindow.mentor_id == mentor.id)
            )
        else:
            raise BadInput(
                _(
                    "Unknown action '{value}'. Usage: {usage}",
                    value=action,
                    usage=AVAILABILITY_USAGE,
                )
            )
        await ctx.uow.flush()
    windows = (
        await ctx.uow.session.execute(
            select(AvailabilityWindow)
            .where(AvailabilityWindow.mentor_id == mentor.id)
            .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_minute)
        )
    ).scalars()
    lines = [
        f"#{w.id} {WEEKDAYS[w.weekday]} "
        f"{format_minute(w.start_minute)}-{format_minute(w.end_minute)}"
        for w in windows
    ]
    blocks = (
        await ctx.uow.session.execute(
            select(AvailabilityBlock)
            .where(AvailabilityBlock.mentor_id == mentor.id)
            .where(AvailabilityBlock.end_at > ctx.now())
            .order_by(AvailabilityBlock.start_at)
        )
    ).scalars()
    away = [
        _("block #{id}: {start} – {end}", id=b.id, start=When(b.start_at), end=When(b.end_at))
        for b in blocks
    ]
    if away:
        ctx.say(_("Away (no bookings):\n{list}", list=Lines(away)))
    if not lines:
        ctx.say(
            _(
                "You have no availability yet. Add some: /availability add mon 18:00-20:00 "
                "(times in {tz}).",
                tz=ctx.actor.user.timezone,
            )
        )
        return
    ctx.say(
        _("Your weekly availability ({tz}):\n{list}", tz=ctx.actor.user.timezone, list=Lines(lines))
    )
