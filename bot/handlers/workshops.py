"""Chat commands for workshops (group sessions); the rules are bot/sessions/workshops.py.

`/workshops` lists the upcoming ones in the reader's timezone with the seats left and a Join
button; `/join ID` takes a seat (or a place in line, or confirms an offered seat); `/leave ID`
gives it up (asking once when that loses the credits). Hosts use `/workshop new|move|cancel|
attendance`, attendees `/workshop rate`; admins see every workshop with `/admin workshops`.
The meeting link is shown to attendees and the host only.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from bot.context import Ctx
from bot.core.errors import BadInput
from bot.core.i18n import Lines, Money, Msg, When, _, clip, ngettext
from bot.core.replies import Choice, write_to_admins
from bot.handlers.args import MAX_ID, currency_arg, need, need_int, price_arg, within
from bot.handlers.catalogue import offer_checkout
from bot.handlers.registry import Sub, admin_subcommand, command, no_sub_chosen, number, text
from bot.learning.courses import course_by_slug
from bot.payments import place_order
from bot.recommending.log import FROM_SUGGESTION, mark_opened
from bot.sessions import workshop_host as hosting
from bot.sessions import workshops as rules
from bot.sessions.scheduling import parse_clock_time, parse_local_date
from storage.models import Course, User, Workshop, WorkshopSeat, WorkshopWaitlist

NEW_USAGE = (
    '/workshop new title="…" start="YYYY-MM-DD HH:MM" seats=N [minutes=60] [title_zh="…"] '
    "[topics=a,b] [course=SLUG credits=N | price=15.00 currency=USD stars=N] [weekly=N] "
    "[host=USER]"
)
NEW_FIELDS = (
    "title",
    "title_zh",
    "start",
    "seats",
    "minutes",
    "topics",
    "course",
    "credits",
    "weekly",
    "host",
    "price",
    "currency",
    "stars",
)
WORKSHOP = number("workshop", _("The workshop number"))


def _listing(item: rules.Listed, reader_id: int) -> Msg:
    w = item.workshop
    left = max(w.seats - item.taken, 0)
    line = _(
        "#{id} {title} — {when}, {minutes} min, with {host}. {seats} · {price}",
        id=w.id,
        title=rules.workshop_title(w),
        when=When(w.start_at),
        minutes=w.duration_minutes,
        host=item.host_name,
        seats=_("{left} of {total} seats left", left=left, total=w.seats)
        if left
        else _("full (waitlist open)"),
        price=rules.price_text(w, item.course),
    )
    if item.mine:
        return _("{line}\nYou are in. Join: {link}", line=line, link=w.meeting_link)
    return line


@command(
    "workshops", _("Upcoming workshops (group sessions) with the seats left"), section="together"
)
async def list_workshops(ctx: Ctx, args: list[str]) -> None:
    listed = await rules.upcoming(ctx.uow, ctx.actor.id, ctx.now())
    if not listed:
        ctx.say(_("No workshops are planned yet."))
        return
    buttons = [
        Choice(_("Join #{id}", id=item.workshop.id), f"/join {item.workshop.id}")
        for item in listed
        if not item.mine
    ][:10]
    ctx.say(
        _(
            "Upcoming workshops:\n{list}",
            list=Lines(_listing(item, ctx.actor.id) for item in listed),
        ),
        buttons,
    )


@command(
    "join",
    _("Take a seat in a workshop (or a place on its waitlist): /join ID"),
    args=(WORKSHOP,),
    section="together",
)
async def join(ctx: Ctx, args: list[str]) -> None:
    """A suggestion's Join button adds `FROM_SUGGESTION`, which counts as opening it."""
    workshop_id = need_int(args, 0, "/join ID")
    if args[1:2] == [FROM_SUGGESTION]:
        await mark_opened(ctx.uow, ctx.actor.id, "workshop", workshop_id, ctx.now())
    try:
        joined = await rules.join(ctx.uow, ctx.actor.id, workshop_id, ctx.now(), ctx.config)
    except rules.NeedsPayment as unpaid:
        if not unpaid.own:
            raise
        await _order_seat(ctx, workshop_id, unpaid.product)
        return
    w = joined.workshop
    title, when = rules.workshop_title(w), When(w.start_at)
    leave = [Choice(_("Leave"), f"/leave {w.id}")]
    if joined.seated and joined.already:
        ctx.say(
            _(
                "You already have a seat in workshop #{id} {title} on {when}. Join: {link}",
                id=w.id,
                title=title,
                when=when,
                link=w.meeting_link,
            ),
            leave,
        )
    elif joined.seated:
        ctx.say(
            _(
                "You have a seat in workshop #{id} {title} on {when}. Join: {link}",
                id=w.id,
                title=title,
                when=when,
                link=w.meeting_link,
            ),
            leave,
        )
        if joined.credits_left is not None:
            ctx.say(
                ngettext(
                    "{n} session credit left.", "{n} session credits left.", joined.credits_left
                )
            )
    else:
        ctx.say(
            _(
                "Workshop #{id} {title} is full. You are number {position} on its waitlist; "
                "when a seat frees up you will be offered it.",
                id=w.id,
                title=title,
                position=joined.position,
            ),
            [Choice(_("Leave the waitlist"), f"/leave {w.id}")],
        )


async def _order_seat(ctx: Ctx, workshop_id: int, product: Course) -> None:
    """A workshop sold alone: its seat is ordered like a course (the learner's pending order,
    or a new one) and every configured provider offers its way to pay after the commit."""
    providers = [p for p in ctx.payments if p.available_on(ctx.actor.platform)]
    if not providers:
        raise BadInput(
            _(
                "Payments are not set up on this marketplace yet. Tell the admins with "
                "/support, and buy again once they have set them up."
            ),
            [write_to_admins()],
        )
    placed = await place_order(ctx.uow, ctx.actor.id, product.id, ctx.now(), ctx.config)
    ctx.say(
        _(
            "A seat in workshop #{id} costs {price}. Pay below; the payment takes your seat "
            "(or, if the workshop fills up meanwhile, a place on its waitlist).",
            id=workshop_id,
            price=Money(product.price_minor, product.currency),
        )
    )
    ctx.after_commit(lambda: offer_checkout(ctx, providers, placed.order, product))


@command(
    "leave",
    _("Give up your seat (or waitlist place) in a workshop: /leave ID"),
    args=(
        WORKSHOP,
        text("confirm", _("yes: leave even if the credits are used up"), required=False),
    ),
    section="together",
)
async def leave(ctx: Ctx, args: list[str]) -> None:
    workshop_id = need_int(args, 0, "/leave ID")
    sure = len(args) > 1 and args[1].lower() in ("yes", "y", "是")
    now = ctx.now()
    workshop, seat, _entry = await rules.seat_to_leave(ctx.uow, ctx.actor.id, workshop_id, now)
    if (
        seat is not None
        and not sure
        and rules.leaving_loses_credits(workshop, seat, now, ctx.config)
    ):
        ctx.say(
            ngettext(
                "Workshop #{id} starts in less than {hours} h: leaving now uses up its {n} "
                "session credit. Leave anyway?",
                "Workshop #{id} starts in less than {hours} h: leaving now uses up its {n} "
                "session credits. Leave anyway?",
                seat.credits,
                id=workshop.id,
                hours=ctx.config.sessions.cancel_window_hours,
            ),
            [Choice(_("Leave anyway"), f"/leave {workshop.id} yes")],
        )
        return
    left = await rules.leave(ctx.uow, ctx.actor.id, workshop_id, now, ctx.config)
    if not left.from_seat:
        ctx.say(_("You left the waitlist of workshop #{id}.", id=workshop_id))
    elif left.credit_back:
        ctx.say(_("You left workshop #{id}. Your session credits are back.", id=workshop_id))
    else:
        ctx.say(_("You left workshop #{id}.", id=workshop_id))


# --- the host --------------------------------------------------------------------------------


def _fields(pairs: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in NEW_FIELDS:
            raise BadInput(
                _(
                    "Unknown workshop field '{value}'. Usage: {usage}",
                    value=clip(key or pair),
                    usage=NEW_USAGE,
                )
            )
        fields[key] = value.strip()
    return fields


def _whole(fields: dict[str, str], key: str, default: int | None = None) -> int:
    raw = fields.get(key)
    if raw is None or raw == "":
        if default is None:
            raise BadInput(_("Missing {key}=…. Usage: {usage}", key=key, usage=NEW_USAGE))
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(
            _("{key} must be a whole number, got '{value}'.", key=key, value=clip(raw))
        ) from None
    if not 0 <= value <= MAX_ID:
        raise BadInput(_("{key} must be a whole number, got '{value}'.", key=key, value=clip(raw)))
    return value


def _when(raw: str) -> tuple[date, int]:
    day_text, _sep, time_text = raw.strip().partition(" ")
    day = parse_local_date(day_text)
    minute = parse_clock_time(time_text) if time_text else None
    if day is None or minute is None:
        raise BadInput(
            _(
                "Give the start as YYYY-MM-DD HH:MM in your timezone, got '{value}'.",
                value=clip(raw),
            )
        )
    return day, minute


def _price(fields: dict[str, str]) -> tuple[int | None, str]:
    """`price=15.00 currency=USD`: the seat's price in minor units (None: not sold alone)."""
    currency = currency_arg(fields.get("currency", "USD"))
    if "price" not in fields:
        return None, currency
    return price_arg(fields["price"], currency, positive=True), currency


async def _new(ctx: Ctx, args: list[str]) -> None:
    fields = _fields(args)
    if "title" not in fields or "start" not in fields:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=NEW_USAGE))
    title = within(fields["title"], "workshop_title", _("A workshop title"))
    if not title:
        raise BadInput(_("Missing argument. Usage: {usage}", usage=NEW_USAGE))
    day, minute = _when(fields["start"])
    topics = tuple(
        within(t.strip().lower(), "topic", _("A topic"))
        for t in fields.get("topics", "").replace("，", ",").split(",")
        if t.strip()
    )
    course_id = None
    credits = _whole(fields, "credits", 0)
    if fields.get("course"):
        course = await course_by_slug(ctx.uow, fields["course"])
        course_id = course.id
        credits = credits or 1
    host = _whole(fields, "host", 0) or None
    price_minor, currency = _price(fields)
    plan = rules.Plan(
        title_en=title,
        title_zh=within(fields.get("title_zh", ""), "workshop_title", _("A workshop title")),
        topics=topics,
        day=day,
        minute=minute,
        duration_minutes=_whole(fields, "minutes", 60),
        seats=_whole(fields, "seats"),
        course_id=course_id,
        price_credits=credits,
        weekly=_whole(fields, "weekly", 1),
        host_id=host,
        price_minor=price_minor,
        currency=currency,
        stars=_whole(fields, "stars", 0) or None,
    )
    made = await rules.create(
        ctx.uow, ctx.actor.id, ctx.actor.is_admin, plan, ctx.now(), ctx.config
    )
    ctx.wake_at.extend(made.wake_at)
    lines = [
        _(
            "#{id} {title} — {when}, {seats} seats",
            id=w.id,
            title=rules.workshop_title(w),
            when=When(w.start_at),
            seats=w.seats,
        )
        for w in made.workshops
    ]
    ctx.say(
        ngettext(
            "{n} workshop created:\n{list}",
            "{n} weekly workshops created:\n{list}",
            len(made.workshops),
            list=Lines(lines),
        )
    )


async def _cancel(ctx: Ctx, args: list[str]) -> None:
    workshop_id = need_int(args, 0, "/workshop cancel ID")
    workshop, seated, waiting = await hosting.cancel(
        ctx.uow, ctx.actor.id, ctx.actor.is_admin, workshop_id, ctx.now()
    )
    ctx.say(
        _(
            "Workshop #{id} is cancelled. {seated} attendees got their credits back and were "
            "told, and so were {waiting} people on the waitlist.",
            id=workshop.id,
            seated=seated,
            waiting=waiting,
        )
    )


async def _move(ctx: Ctx, args: list[str]) -> None:
    usage = "/workshop move ID YYYY-MM-DD HH:MM"
    workshop_id = need_int(args, 0, usage)
    day, minute = _when(" ".join(args[1:3]) if len(args) > 1 else need(args, 1, usage))
    workshop, wake = await hosting.move(
        ctx.uow,
        ctx.actor.id,
        ctx.actor.is_admin,
        workshop_id,
        day,
        minute,
        ctx.now(),
        ctx.config,
    )
    ctx.wake_at.extend(wake)
    ctx.say(
        _(
            "Workshop #{id} now starts {when}; everyone in it was told.",
            id=workshop.id,
            when=When(workshop.start_at),
        )
    )


async def _attendance(ctx: Ctx, args: list[str]) -> None:
    usage = "/workshop attendance ID [all|SEAT…]"
    workshop_id = need_int(args, 0, usage)
    rest = [a for a in " ".join(args[1:]).replace(",", " ").split() if a]
    if not rest:
        workshop = await ctx.uow.get(Workshop, workshop_id)
        if workshop is None:
            raise BadInput(_("There is no workshop #{id}. See /workshops.", id=workshop_id))
        await rules.may_manage(ctx.uow, workshop, ctx.actor.id, ctx.actor.is_admin)
        seats = await rules.attendees(ctx.uow, workshop_id)
        if not seats:
            ctx.say(_("Workshop #{id} has no attendees.", id=workshop_id))
            return
        names = [_("seat #{seat}: {name}", seat=s.id, name=u.display_name) for s, u in seats]
        ctx.say(
            _(
                "Attendees of workshop #{id}:\n{list}\nSay who came: /workshop attendance {id} "
                "all, or the seat numbers of those who came.",
                id=workshop_id,
                list=Lines(names),
            ),
            [Choice(_("Everyone came"), f"/workshop attendance {workshop_id} all")],
        )
        return
    present: set[int] | None
    if [r.lower() for r in rest] == ["all"]:
        present = None
    else:
        present = {need_int(rest, i, usage) for i in range(len(rest))}
    workshop, seats = await hosting.mark_attendance(
        ctx.uow, ctx.actor.id, ctx.actor.is_admin, workshop_id, present, ctx.now(), ctx.config
    )
    came = sum(1 for s, _u in seats if s.status == "attended")
    ctx.say(
        _(
            "Attendance of workshop #{id}: {came} of {total} came. Those who came are asked "
            "to rate it.",
            id=workshop.id,
            came=came,
            total=len(seats),
        )
    )


async def _rate(ctx: Ctx, args: list[str]) -> None:
    usage = "/workshop rate ID STARS [COMMENT]"
    workshop_id = need_int(args, 0, usage)
    raw = need(args, 1, usage)
    stars = int(raw) if raw.isdigit() and len(raw) == 1 else 0
    if not 1 <= stars <= 5:
        raise BadInput(
            _("A rating is a whole number from 1 to 5; you sent '{value}'.", value=clip(raw))
        )
    comment = within(" ".join(args[2:]).strip(), "comment", _("A comment"))
    previous = await hosting.rate(
        ctx.uow, ctx.actor.id, workshop_id, stars, comment, ctx.now(), ctx.config
    )
    if previous is None:
        ctx.say(_("Thank you! You rated workshop #{id} {stars}★.", id=workshop_id, stars=stars))
    else:
        ctx.say(_("Your rating of workshop #{id} is now {stars}★.", id=workshop_id, stars=stars))


SUBS = {
    "new": (
        _new,
        Sub(
            "new",
            _("Create a workshop (mentors and admins)"),
            (
                text("title", _("The title in English"), keyed=True),
                text("start", _("YYYY-MM-DD HH:MM in your timezone"), keyed=True),
                number("seats", _("How many seats"), keyed=True),
                number("minutes", _("How long, in minutes (60)"), required=False, keyed=True),
                text("title_zh", _("The title in Chinese"), required=False, keyed=True),
                text(
                    "topics", _("Comma-separated, e.g. python,testing"), required=False, keyed=True
                ),
                text("course", _("Paid with credits of this course"), required=False, keyed=True),
                text(
                    "price",
                    _("Or sold alone at this price, e.g. 15.00"),
                    required=False,
                    keyed=True,
                ),
                text("currency", _("3-letter code, e.g. USD"), required=False, keyed=True),
                number("stars", _("The price in Telegram Stars"), required=False, keyed=True),
                number("credits", _("Credits per seat (1)"), required=False, keyed=True),
                number("weekly", _("Repeat weekly this many times"), required=False, keyed=True),
                number("host", _("Admins: the mentor's user number"), required=False, keyed=True),
            ),
        ),
    ),
    "move": (
        _move,
        Sub(
            "move",
            _("Move a workshop to another time"),
            (
                WORKSHOP,
                text("start", _("YYYY-MM-DD HH:MM in your timezone"), words=True),
            ),
        ),
    ),
    "cancel": (
        _cancel,
        Sub("cancel", _("Cancel a workshop: everyone is credited back"), (WORKSHOP,)),
    ),
    "attendance": (
        _attendance,
        Sub(
            "attendance",
            _("Mark who came to a workshop"),
            (
                WORKSHOP,
                text(
                    "seats",
                    _("all, or the seat numbers of those who came"),
                    required=False,
                    words=True,
                ),
            ),
        ),
    ),
    "rate": (
        _rate,
        Sub(
            "rate",
            _("Rate a workshop you attended"),
            (
                WORKSHOP,
                number("stars", _("From 1 (poor) to 5 (excellent)"), high=5),
                text("comment", _("Optional words for the host"), required=False, words=True),
            ),
        ),
    ),
}


@command(
    "workshop",
    _("Create and run workshops; rate one you attended"),
    subs={name: sub for name, (_handler, sub) in SUBS.items()},
    section="together",
)
async def workshop(ctx: Ctx, args: list[str]) -> None:
    subs = [sub for _handler, sub in SUBS.values()]
    chinese = ctx.actor.user.language == "zh"
    asking = _("What would you like to do with workshops?")
    asked = no_sub_chosen("workshop", subs, args, chinese, asking)
    if asked is not None:
        ctx.say(asked)
        return
    await SUBS[args[0].lower()][0](ctx, args[1:])


# --- admins ----------------------------------------------------------------------------------


async def _admin_workshops(ctx: Ctx, args: list[str]) -> None:
    rows = (
        await ctx.uow.session.execute(
            select(Workshop, User)
            .join(User, User.id == Workshop.host_id)
            .order_by(Workshop.start_at.desc(), Workshop.id.desc())
            .limit(50)
        )
    ).all()
    if not rows:
        ctx.say(_("No workshops yet."))
        return
    lines = []
    for w, host in rows:
        counts: dict[str, int] = {
            str(status): int(n)
            for status, n in (
                await ctx.uow.session.execute(
                    select(WorkshopSeat.status, func.count(WorkshopSeat.id))
                    .where(WorkshopSeat.workshop_id == w.id)
                    .group_by(WorkshopSeat.status)
                )
            ).all()
        }
        waiting = (
            await ctx.uow.session.execute(
                select(func.count(WorkshopWaitlist.id))
                .where(WorkshopWaitlist.workshop_id == w.id)
                .where(WorkshopWaitlist.status.in_(rules.OPEN_WAITLIST))
            )
        ).scalar_one()
        lines.append(
            _(
                "#{id} {title} — {when}, host {host}: {seated} of {seats} seats, {waiting} "
                "waiting, {came} came — {status}",
                id=w.id,
                title=rules.workshop_title(w),
                when=When(w.start_at),
                host=host.display_name,
                seated=sum(counts.get(s, 0) for s in rules.PRESENT),
                seats=w.seats,
                waiting=waiting,
                came=counts.get("attended", 0),
                status=_status(w),
            )
        )
    ctx.say(_("Workshops (latest first):\n{list}", list=Lines(lines)))


def _status(w: Workshop) -> Msg:
    from bot.core.errors import STATUS_NAMES

    return STATUS_NAMES.get(w.status, _("scheduled"))


admin_subcommand("workshops", _("Every workshop with seats, waitlist and attendance"))(
    _admin_workshops
)
