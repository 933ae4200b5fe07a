"""Personal settings (language, timezone), becoming a mentor, and a mentor's profile.

A mentor who changes timezone is asked what their weekly hours do (`bot.sessions.availability`);
the hours themselves are `/availability`, in bot/handlers/availability.py.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.context import Ctx
from bot.core import conversations, words
from bot.core.errors import BadInput, NotAllowed
from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, Lines, _
from bot.core.replies import Choice
from bot.core.states import advance
from bot.core.timezones import find_zone, suggest_zone
from bot.core.users import mentor_profile_of
from bot.handlers.args import clip, need_int, within
from bot.handlers.mentor_review import STATUS_WORDS, rating_text
from bot.handlers.registry import SKIPPABLE, choice, command, text
from bot.mentoring.offers import LEVEL_NAMES
from bot.sessions import availability
from storage.models import MentorProfile, MentorTopic

MAX_CAPACITY = 50


@command("cancel", _("Stop what you are in the middle of"), section="start")
async def cancel(ctx: Ctx, args: list[str]) -> None:
    if await conversations.end(ctx.uow, ctx.actor.id):
        ctx.say(_("Stopped. Nothing was saved from that step."))
    else:
        ctx.say(_("There is nothing to cancel."))


@command("skip", _("Skip an optional step"), section="start")
async def skip(ctx: Ctx, args: list[str]) -> None:
    """Leave an optional question unanswered (`flow(optional=True)`). A question that needs
    its answer (a mentor request's goals, a confirmation) stays open: ending it here used to
    drop a half-made request while saying "Skipped.", as if it went on without that step."""
    conv = await conversations.current(ctx.uow, ctx.actor.id)
    if conv is None:
        ctx.say(_("There is nothing to skip."))
        return
    if conv.flow not in SKIPPABLE:
        ctx.say(
            _(
                "This question needs an answer, so it cannot be skipped. Reply to it, or "
                "send /cancel to stop."
            )
        )
        return
    await conversations.end(ctx.uow, ctx.actor.id)
    ctx.say(_("Skipped."))


@command(
    "language",
    _("Change your language: /language en|zh"),
    args=(
        choice(
            "language",
            _("Leave out to choose"),
            *LANGUAGE_NAMES.items(),
            words=True,
            also=words.LANGUAGE_WORDS,
        ),
    ),
    section="start",
)
async def language(ctx: Ctx, args: list[str]) -> None:
    if not args:
        ctx.say(
            _("Choose your language:"),
            [Choice(LANGUAGE_NAMES[code], f"/language {code}") for code in LANGUAGES],
        )
        return
    code = words.lookup(words.LANGUAGE_WORDS, " ".join(args))
    if code is None:
        raise BadInput(
            _(
                "Unknown language '{value}'. Choose one of: {choices}.",
                value=clip(" ".join(args)),
                choices=Lines(LANGUAGES, ", "),
            )
        )
    ctx.actor.user.language = code
    ctx.say(_("Language set to English."))


@command(
    "timezone",
    _("Set your timezone: /timezone Area/City"),
    args=(text("timezone", _("A name like Europe/Berlin or Asia/Shanghai"), required=False),),
    section="start",
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
    keep = words.lookup(words.KEEP_HOURS, args[-1]) if len(args) > 1 else None
    typed = " ".join(args[:-1] if keep is not None else args)
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
    if not await _weekly_hours_follow(ctx, name, keep):
        return
    ctx.actor.user.timezone = name
    ctx.say(_("Timezone set to {tz}. Times are now shown in it.", tz=name))


async def _weekly_hours_follow(ctx: Ctx, name: str, keep: words.KeepHours | None) -> bool:
    """A mentor with weekly hours chooses whether they stay at the same local time or at the
    same instants; True when there is nothing to choose (a learner, no hours, no shift)."""
    old = ctx.actor.user.timezone
    mentor = await mentor_profile_of(ctx.uow, ctx.actor.id)
    rows = await availability.windows_of(ctx.uow, mentor.id) if mentor is not None else []
    shift = availability.offset_change(old, name, ctx.now())
    if mentor is None or not rows or shift == 0:
        return True
    hours = [availability.as_window(r) for r in rows]
    local = Lines(availability.window_text(w) for w in hours)
    moved = Lines(availability.window_text(w) for w in availability.shifted(hours, shift))
    if keep is None:
        ctx.say(
            _(
                "Moving to {tz}: should your weekly hours stay at the same local time, or at "
                "the same instants? Booked sessions keep their times either way.\n"
                "Same local time ({tz}):\n{local}\nSame instants ({tz}):\n{moved}",
                local=local,
                moved=moved,
                tz=name,
            ),
            [
                Choice(_("Same local time"), f"/timezone {name} local"),
                Choice(_("Same instants"), f"/timezone {name} instants"),
            ],
        )
        return False
    if keep == "instants":
        await availability.keep_instants(ctx.uow, mentor.id, old, name, ctx.now())
    ctx.actor.user.timezone = name
    ctx.say(
        _(
            "Timezone set to {tz}. Booked sessions keep their times, now shown in {tz}. Your "
            "weekly hours ({tz}):\n{hours}",
            tz=name,
            hours=local if keep == "local" else moved,
        )
    )
    return False


@command("becomementor", _("Apply to mentor on this marketplace"), section="mentors")
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


async def own_profile(ctx: Ctx) -> MentorProfile:
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
    section="mentors",
)
async def profile(ctx: Ctx, args: list[str]) -> None:
    mentor = await own_profile(ctx)
    if args:
        await _edit_profile(ctx, mentor, args)
    topics = (
        (
            await ctx.uow.session.execute(
                select(MentorTopic)
                .where(MentorTopic.mentor_id == mentor.id)
                .order_by(MentorTopic.topic)
            )
        )
        .scalars()
        .all()
    )
    ctx.say(
        _(
            "Mentor profile #{id} — {status}\nTopics: {topics}\nLanguages: {languages}\n"
            "Capacity: {capacity} mentees\nRating: {rating}\nBio: {bio}",
            id=mentor.id,
            status=STATUS_WORDS[mentor.status],
            topics=Lines(
                (_("{topic} ({level})", topic=t.topic, level=LEVEL_NAMES[t.level]) for t in topics),
                ", ",
            )
            if topics
            else _("none set yet (/profile topics python:advanced)"),
            languages=Lines(mentor.languages, ", "),
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
        for item in words.items(value):
            topic, _sep, level_word = (part.strip() for part in item.partition(":"))
            level = words.lookup(words.LEVELS, level_word or "advanced")
            if not topic or level is None:
                raise BadInput(
                    _(
                        "Could not read '{value}'. Write topics as name:level, with level "
                        "beginner, intermediate or advanced.",
                        value=clip(item),
                    )
                )
            parsed[within(topic.lower(), "topic", _("A topic"))] = level
        await ctx.uow.session.execute(delete(MentorTopic).where(MentorTopic.mentor_id == mentor.id))
        for topic, level in parsed.items():
            ctx.uow.add(MentorTopic(mentor_id=mentor.id, topic=topic, level=level))
    elif field == "languages":
        typed = words.items(value)
        bad = [v for v in typed if v not in words.LANGUAGE_WORDS]
        if bad or not typed:
            raise BadInput(
                _(
                    "Unknown language '{value}'. Choose one of: {choices}.",
                    value=clip(", ".join(bad) or value),
                    choices=Lines(LANGUAGES, ", "),
                )
            )
        mentor.languages = list(dict.fromkeys(words.LANGUAGE_WORDS[v] for v in typed))
    elif field == "capacity":
        capacity = need_int([value], 0, "/profile capacity N")
        if capacity > MAX_CAPACITY:
            raise BadInput(_("Capacity can be at most {n}.", n=MAX_CAPACITY))
        mentor.capacity = capacity
    elif field == "bio":
        mentor.bio = within(value, "bio", _("A bio"))
    else:
        raise BadInput(
            _(
                "Unknown profile field '{value}'. Usage: {usage}",
                value=clip(field),
                usage=PROFILE_USAGE,
            )
        )
    await ctx.uow.flush()
