"""The marketplace's persisted nouns.

Instants are stored as naive UTC and handed back aware (`UTCDateTime`), so SQLite and
PostgreSQL behave alike. Money is an integer number of minor units plus a currency code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.core.states import (  # workshops (0010)
    EnrollmentStatus,
    MentorStatus,
    OfferStatus,
    OrderStatus,
    RequestStatus,
    SeatStatus,
    SessionStatus,
    ShelfStatus,
    SubscriptionStatus,
    WaitlistStatus,
    WorkshopStatus,
)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use the clock")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index over the rows `where` holds, on SQLite and PostgreSQL alike: what sweeps and
    constraints look for, kept as small as those rows however long the table grows."""
    return Index(
        name,
        *columns,
        unique=unique,
        sqlite_where=text(where),
        postgresql_where=text(where),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Set when the person erased their data (/deleteme): the row stays, anonymised, because
    # their paid orders and the ratings mentors' averages count still point at it.
    deleted_at: Mapped[datetime | None]


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # What this identity's platform last said about the admin role (a Discord guild role, a
    # console grant): True holds it, False holds none, None never said. Migration 0007.
    admin_word: Mapped[bool | None] = mapped_column(default=None)
    # The role ids the platform last said this identity holds (comma-separated, sorted; None:
    # never said), so that a change of `admin_role_ids` in config is judged against them at
    # start-up (bot.core.users.settle_all_admins). Migration 0018.
    platform_roles: Mapped[str | None] = mapped_column(Text, default=None)


class UserRole(Base):
    __tablename__ = "user_roles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class Conversation(Base):
    """The step a user is in, so a restart mid-step resumes where they were."""

    __tablename__ = "conversations"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (CheckConstraint("price_minor >= 0", name="price_not_negative"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title_en: Mapped[str] = mapped_column(String(200))
    title_zh: Mapped[str] = mapped_column(String(200), default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    sessions_included: Mapped[int] = mapped_column(Integer)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[ShelfStatus] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    # The price in Telegram Stars (XTR, whole stars); None: not sold for Stars.
    price_stars: Mapped[int | None] = mapped_column(Integer)
    # A lesson is dripped to each learner every this many days; 0: lessons on demand only.
    lesson_drip_days: Mapped[int] = mapped_column(Integer, default=0)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        partial_index("ix_orders_pending_expiry", "expires_at", where="status = 'pending'"),
        # The few refunded orders, for the report's learners per week (0012).
        partial_index("ix_orders_refunded_at", "refunded_at", where="refunded_at IS NOT NULL"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    status: Mapped[OrderStatus] = mapped_column(String(16), default="pending")
    # What was sold, fixed at purchase: later course edits change neither earnings nor credits.
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    sessions_included: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    # The provider's checkout for this order (Stripe: the Checkout Session id and its URL),
    # created once per order so pressing Buy again shows the same payment page.
    checkout_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    # The lease of the one process giving the money back through the provider now (0024).
    refund_claimed_until: Mapped[datetime | None]


class PaymentEvent(Base):
    """A provider event (a Stripe webhook) that was applied, recorded in the same transaction
    as its effect: the unique key makes a duplicate or concurrent delivery a no-op."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        CheckConstraint("credits_remaining >= 0", name="credits_not_negative"),
        # A learner's enrollments, oldest first; the report's learners per week (0012).
        Index("ix_enrollments_user_created", "user_id", "created_at", "order_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    credits_remaining: Mapped[int] = mapped_column(Integer)
    status: Mapped[EnrollmentStatus] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]


class MentorProfile(Base):
    __tablename__ = "mentor_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    status: Mapped[MentorStatus] = mapped_column(String(16), default="pending")
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=3)
    bio: Mapped[str] = mapped_column(Text, default="")
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class MentorTopic(Base):
    __tablename__ = "mentor_topics"
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.id"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class AvailabilityWindow(Base):
    """A weekly window in the mentor's own timezone (minutes from local midnight)."""

    __tablename__ = "availability_windows"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440", name="minute_range"),
        CheckConstraint("start_minute < end_minute", name="window_order"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class MentorshipRequest(Base):
    __tablename__ = "mentorship_requests"
    __table_args__ = (
        # The report's requests per week with their wait (0012).
        Index(
            "ix_mentorship_requests_report",
            "created_at",
            "enrollment_id",
            "mentor_id",
            "status",
            "accepted_at",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    topic: Mapped[str] = mapped_column(String(64))
    goals: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer)
    preferred_times: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[RequestStatus] = mapped_column(String(16), default="open", index=True)
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("mentor_profiles.id"))
    offer_round: Mapped[int] = mapped_column(Integer, default=0)
    offer_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]


class RequestOffer(Base):
    __tablename__ = "request_offers"
    __table_args__ = (
        partial_index("ix_request_offers_open_mentor", "mentor_id", where="status = 'offered'"),
    )
    request_id: Mapped[int] = mapped_column(ForeignKey("mentorship_requests.id"), primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.id"), primary_key=True)
    offer_round: Mapped[int] = mapped_column(Integer)
    status: Mapped[OfferStatus] = mapped_column(String(16), default="offered")
    explanation: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class MentorSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        partial_index(
            "uq_sessions_mentor_start_scheduled",
            "mentor_id",
            "start_at",
            where="status = 'scheduled'",
            unique=True,
        ),
        partial_index(
            "uq_sessions_learner_start_scheduled",
            "learner_id",
            "start_at",
            where="status = 'scheduled'",
            unique=True,
        ),
        # The report's sessions held or missed per week and mentor (0012).
        Index("ix_sessions_report", "start_at", "status", "mentor_id", "enrollment_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("mentorship_requests.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.id"))
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    meeting_link: Mapped[str] = mapped_column(String(300))
    status: Mapped[SessionStatus] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[datetime]
    # Who did not come, for a no_show: "learner" or "mentor".
    no_show_by: Mapped[str | None] = mapped_column(String(16))
    # Each side's answer to "did it take place?": "completed" or "no_show".
    mentor_outcome: Mapped[str | None] = mapped_column(String(16))
    learner_outcome: Mapped[str | None] = mapped_column(String(16))
    mentor_note: Mapped[str] = mapped_column(Text, default="")
    rescheduled_count: Mapped[int] = mapped_column(Integer, default=0)


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("session_id", "rater_id"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ratee_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


class AvailabilityBlock(Base):
    """A one-off time a mentor is away (a block or a whole day off), stored in UTC."""

    __tablename__ = "availability_blocks"
    __table_args__ = (CheckConstraint("start_at < end_at", name="block_order"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentor_profiles.id"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]


class Reminder(Base):
    """The durable truth for every timed notification; APScheduler only wakes us up."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("session_id", "kind", "due_at"),
        partial_index(
            "ix_reminders_pending_due",
            "due_at",
            where="sent_at IS NULL AND skipped_at IS NULL",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    skipped_at: Mapped[datetime | None]


class ButtonPayload(Base):
    """A button's command too long for the platform's button data, kept under a short token.

    The token is bound to the one identity the button was shown to and ages out, so a forged,
    foreign or stale token is refused before anything runs.
    """

    __tablename__ = "button_payloads"
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A rendered message waiting for delivery, written in the transaction that caused it."""

    __tablename__ = "outbox"
    # Delivery walks the undelivered rows in id order: a partial index keeps that walk as
    # short as the backlog however long the table grows (and whatever the planner's
    # statistics say).
    __table_args__ = (partial_index("ix_outbox_pending", "id", where="sent_at IS NULL"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class Lesson(Base):
    """A piece of course content delivered in chat: text, links (buttons) and files."""

    __tablename__ = "lessons"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    # Lessons are delivered in (position, id) order; gaps are fine.
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[ShelfStatus] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]


class LessonFile(Base):
    __tablename__ = "lesson_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LessonDelivery(Base):
    """A lesson a learner received (once per learner and lesson, whichever path sent it)."""

    __tablename__ = "lesson_deliveries"
    __table_args__ = (UniqueConstraint("user_id", "lesson_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id"), index=True)
    # "drip" or "demand".
    via: Mapped[str] = mapped_column(String(16))
    delivered_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class LessonRating(Base):
    __tablename__ = "lesson_ratings"
    __table_args__ = (
        UniqueConstraint("lesson_id", "user_id"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class LessonDrip(Base):
    """When a learner's next lesson of a course is due: the durable truth of the drip, swept
    and claimed like reminders. `next_due_at` is None when nothing is left to send."""

    __tablename__ = "lesson_drips"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        partial_index(
            "ix_lesson_drips_pending_due",
            "next_due_at",
            where="next_due_at IS NOT NULL",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    next_due_at: Mapped[datetime | None]


class LinkCode(Base):
    """A one-time code joining another platform's identity to this account (/link).

    Only the code's SHA-256 is stored, so reading the table does not reveal usable codes.
    """

    __tablename__ = "link_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LinkFailure(Base):
    """A wrong, expired or used code entered with /link: counted to stop guessing."""

    __tablename__ = "link_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    attempted_at: Mapped[datetime]


class AccountMerge(Base):
    """Two accounts made one by /link: who they were, so that /unlink can part them again.

    `survivor_id` is the account that was kept (the one that entered the code); the merged
    account's own name, language and timezone are kept here, since its user row is deleted.
    The rows the merge moved onto the survivor are `MergedRow`s; unlinking moves them back.
    """

    __tablename__ = "account_merges"
    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    survivor_name: Mapped[str] = mapped_column(String(200))
    merged_name: Mapped[str] = mapped_column(String(200))
    merged_language: Mapped[str] = mapped_column(String(8))
    merged_timezone: Mapped[str] = mapped_column(String(64))
    merged_created_at: Mapped[datetime]
    merged_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]


class MergedRow(Base):
    """One row a merge repointed from the merged account to the survivor: which table and
    column, and the row's other primary-key values (JSON), so unlinking can move it back."""

    __tablename__ = "merged_rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("account_merges.id"), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    column_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(200))


class LedgerEntry(Base):
    """One movement of money or session credits; never updated or deleted (see bot/core/ledger.py).

    `key` names what the entry is for (`paid:order:7`, `earning:session:9`), unique, so the same
    movement can never be posted twice, whoever retries. Money is `amount_minor` in `currency`
    (ISO 4217 minor units), positive towards the marketplace; credits are `credits`, positive
    when granted or returned to the learner.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # Each sum the bot runs reads one index range holding what it sums (migration 0006).
        Index("ix_ledger_entries_enrollment_credits", "enrollment_id", "credits"),
        # One mentor's earnings and fees, by month and by session or seat (migration 0021).
        Index(
            "ix_ledger_entries_mentor_earnings",
            *("mentor_id", "kind", "currency", "at", "seat_id", "reverses_id", "amount_minor"),
        ),
        Index(
            "ix_ledger_entries_kind_at",
            *("kind", "at", "demo", "currency", "amount_minor", "order_id", "mentor_id"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("mentor_profiles.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    # A workshop seat's earning and fee (migration 0013), as `session_id` for a session's.
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("workshop_seats.id"), index=True)
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(Integer, default=0)
    credits: Mapped[int] = mapped_column(Integer, default=0)
    demo: Mapped[bool] = mapped_column(default=False)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))


# --- workshops (group sessions), migration 0010: bot/sessions/workshops.py ---------------------


class Workshop(Base):
    """One occurrence of a group session: a host, a start, seats and a price in session credits
    of a course (0: free). A weekly series is one row per occurrence sharing `series_id` (the
    first occurrence's id).

    `venue_version` grows with every change a platform's event must follow (created, moved,
    cancelled); `venue_synced` is the version the platforms last took, so the sweep finds the
    rows still to publish by the partial index, and a failed call is retried by the next one.
    """

    __tablename__ = "workshops"
    __table_args__ = (
        CheckConstraint("seats > 0", name="seats_positive"),
        CheckConstraint("price_credits >= 0", name="price_not_negative"),
        partial_index("ix_workshops_venue_pending", "id", where="venue_synced <> venue_version"),
        Index("ix_workshops_status_start", "status", "start_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    series_id: Mapped[int | None] = mapped_column(Integer)
    title_en: Mapped[str] = mapped_column(String(200))
    title_zh: Mapped[str] = mapped_column(String(200), default="")
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    start_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    seats: Mapped[int] = mapped_column(Integer)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    price_credits: Mapped[int] = mapped_column(Integer, default=0)
    # Sold alone for money: `course_id` is then the workshop's own product (an archived course
    # of one session, paid through the order flow), not a course learners buy for itself.
    own_product: Mapped[bool] = mapped_column(default=False)
    meeting_link: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[WorkshopStatus] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[datetime]
    venue_ref: Mapped[str | None] = mapped_column(String(64))
    voice_ref: Mapped[str | None] = mapped_column(String(64))
    venue_version: Mapped[int] = mapped_column(Integer, default=1)
    venue_synced: Mapped[int] = mapped_column(Integer, default=0)
    venue_claimed_until: Mapped[datetime | None]


class WorkshopSeat(Base):
    """One attendee's place in a workshop, and what it cost (credits of `enrollment_id`)."""

    __tablename__ = "workshop_seats"
    __table_args__ = (
        partial_index(
            "uq_workshop_seats_workshop_user_seated",
            "workshop_id",
            "user_id",
            where="status = 'seated'",
            unique=True,
        ),
        CheckConstraint("stars IS NULL OR stars BETWEEN 1 AND 5", name="stars_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[SeatStatus] = mapped_column(String(16), default="seated")
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    credits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    # The attendee's rating of the workshop (feeds the host's average), changeable for a while.
    stars: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None]


class WorkshopWaitlist(Base):
    """A place in line for a full workshop, in id order; `offered` holds a freed seat until
    `expires_at`."""

    __tablename__ = "workshop_waitlist"
    __table_args__ = (
        partial_index(
            "uq_workshop_waitlist_workshop_user_open",
            "workshop_id",
            "user_id",
            where="status IN ('waiting', 'offered')",
            unique=True,
        ),
        partial_index(
            "ix_workshop_waitlist_offered_expiry", "expires_at", where="status = 'offered'"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[WaitlistStatus] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime]
    offered_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class WorkshopReminder(Base):
    """A workshop's timed notice (to every attendee before it, to the host after it), claimed
    once across processes like `Reminder`."""

    __tablename__ = "workshop_reminders"
    __table_args__ = (
        UniqueConstraint("workshop_id", "kind", "due_at"),
        partial_index(
            "ix_workshop_reminders_pending_due",
            "due_at",
            where="sent_at IS NULL AND skipped_at IS NULL",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    skipped_at: Mapped[datetime | None]


# ── discussion spaces and community access (issue 18; migration 0011) ─────────────────────


class RelayThread(Base):
    """The private conversation of one mentorship (request), relayed through the bot so that
    neither side needs the other's handle. `space_ref` is its Discord private channel or
    thread, when one was made (`[discussion] discord_category_id`)."""

    __tablename__ = "relay_threads"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("mentorship_requests.id"), unique=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mentor_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    space_ref: Mapped[str | None] = mapped_column(String(64))
    space_state: Mapped[str] = mapped_column(String(16), default="none")
    space_claimed_until: Mapped[datetime | None]


class RelayMessage(Base):
    """One message relayed in a thread; kept `[discussion] keep_days`, erased by /deleteme."""

    __tablename__ = "relay_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("relay_threads.id"), index=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class RelayDelivery(Base):
    """Where a relayed message landed on a platform that lets people reply to a message
    (Telegram): the recipient's chat and the bot's message id there. A reply to that message
    continues the thread; a reply to any other message is refused."""

    __tablename__ = "relay_deliveries"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "platform_message_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("relay_messages.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    platform_message_id: Mapped[str] = mapped_column(String(64))


class AccessGrant(Base):
    """One person's access to one community space: what it should be (`desired`, from the
    rule) and what the platform was last seen or made to do (`actual`). A sweep claims rows
    whose two differ (`claimed_until`, a lease) and makes the platform match, once."""

    __tablename__ = "access_grants"
    __table_args__ = (
        UniqueConstraint("user_id", "space", "external_id"),
        Index("ix_access_grants_drift", "desired", "actual"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    space: Mapped[str] = mapped_column(String(120))  # "python-basics@telegram:-100123"
    platform: Mapped[str] = mapped_column(String(16))
    space_ref: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(64))
    desired: Mapped[str] = mapped_column(String(16))  # granted | revoked
    actual: Mapped[str] = mapped_column(String(16))  # none | granted | revoked | failed
    reason: Mapped[str] = mapped_column(String(32))
    invite_link: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    checked_at: Mapped[datetime | None]


class ForumTopic(Base):
    """A forum topic the bot made in a Telegram supergroup for a `[community] spaces` entry
    that names it by name. Telegram lists no topics to bots, so its `message_thread_id` lives
    only here: found again after a restart and by every process, and made once, by whichever
    process holds the lease (`claimed_until`) while thread_id is still unknown. Migration 0022.
    """

    __tablename__ = "forum_topics"
    __table_args__ = (UniqueConstraint("platform", "chat", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat: Mapped[str] = mapped_column(String(64))  # the supergroup's id
    name: Mapped[str] = mapped_column(String(128))  # Telegram allows 1-128 characters
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime | None]


class AccessLog(Base):
    """Every grant and revoke, asked for and done, for admins (`/admin spaces`)."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("access_grants.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    space: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(16))  # grant | revoke | done | failed | drift
    desired: Mapped[str] = mapped_column(String(16))
    actual: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(index=True)


# --- Subscriptions (migration 0009; rules in bot/subscriptions/) -------------------------


class Plan(Base):
    """A monthly plan: a number of sessions per period with a mentor of its course(s).

    Each paid period grants `sessions_per_period` credits on the subscription's enrollment;
    up to `rollover_max` unused ones carry over to the next period (0: none carry over).
    One currency per plan, like a course; `price_stars` is its price in Telegram Stars
    (None: not sold for Stars). `course_id` is its primary course, where those credits land;
    `PlanCourse` rows list the courses it covers besides.
    """

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="plan_price_not_negative"),
        CheckConstraint("sessions_per_period >= 1", name="plan_sessions_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200), default="")
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    # Only this mentor's learners may book on it (None: any mentor of the course).
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("mentor_profiles.id"))
    currency: Mapped[str] = mapped_column(String(3))
    price_minor: Mapped[int] = mapped_column(Integer)
    price_stars: Mapped[int | None] = mapped_column(Integer)
    sessions_per_period: Mapped[int] = mapped_column(Integer)
    rollover_max: Mapped[int] = mapped_column(Integer, default=0)
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    # One free intro session per learner per mentor, granted with the first period.
    intro_session: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ShelfStatus] = mapped_column(String(16), default="active")
    # Stripe's recurring Price for this plan's amount, created once (looked up by lookup_key).
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class PlanCourse(Base):
    """A course a plan covers besides its primary one (`Plan.course_id`, whose enrollment gets
    the sessions): a live subscription to the plan opens its lessons and community spaces too,
    through an enrollment of its own with no credits (bot/subscriptions/coverage.py)."""

    __tablename__ = "plan_courses"
    __table_args__ = (UniqueConstraint("plan_id", "course_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))


class Subscription(Base):
    """One learner's subscription to a plan, on one provider (demo, stripe, stars).

    Its credits live on an ordinary enrollment (`enrollment_id`), tied to an anchor order
    (`order_id`, provider "subscription") so booking, earnings and refunds work unchanged.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        partial_index("ix_subscriptions_renewal", "current_period_end", where="ended_at IS NULL"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    status: Mapped[SubscriptionStatus] = mapped_column(String(16), default="incomplete")
    provider: Mapped[str] = mapped_column(String(16))
    # The provider's id of the subscription (Stripe sub_…; Stars: the first charge id).
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    customer_ref: Mapped[str | None] = mapped_column(String(255))
    checkout_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    # Set once access begins (a trial or the first paid period); a new pair after a lapsed
    # subscription recovers, as a revoked enrollment stays revoked.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id"))
    # The price each period is charged (after a promo code), in the plan's currency.
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    promo_id: Mapped[int | None] = mapped_column(ForeignKey("promo_codes.id"))
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    # The period end the renewal reminder (or trial notice) was sent for: sent once each.
    reminded_for: Mapped[datetime | None]
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class SubscriptionPeriod(Base):
    """One paid period of a subscription: an invoice, a Stars charge, a demo renewal.

    `(provider, provider_ref)` is unique (the invoice or charge id), so the same payment
    delivered twice, or out of order, grants its period once.
    """

    __tablename__ = "subscription_periods"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(255))
    # The provider's id for the money (a Stripe PaymentIntent or charge), for refunds.
    payment_ref: Mapped[str | None] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    credits: Mapped[int] = mapped_column(Integer)
    paid_at: Mapped[datetime]
    refunded_at: Mapped[datetime | None]


class PromoCode(Base):
    """A discount code: `percent` (1–100) or `amount` (minor units of `currency`) off, on the
    first period (`once`) or every period (`forever`); optional cap, expiry, plan or course."""

    __tablename__ = "promo_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # "percent" or "amount"
    value: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(8), default="once")  # "once" or "forever"
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None]
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    created_at: Mapped[datetime]


class PromoUse(Base):
    """One learner's use of a code (once per learner and code)."""

    __tablename__ = "promo_uses"
    __table_args__ = (UniqueConstraint("promo_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    promo_id: Mapped[int] = mapped_column(ForeignKey("promo_codes.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    used_at: Mapped[datetime]


# --- end subscriptions -------------------------------------------------------------------
# --- recommendations (migration 0008) ----------------------------------------------------------


class LearnerInterest(Base):
    """What a learner said they want to learn (`/recommend GOALS`), for suggestions before
    they have bought anything; the newest row counts. A surrogate key, so merging two
    accounts that both said something keeps both."""

    __tablename__ = "learner_interests"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    goals: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]


class RecommendationShown(Base):
    """One suggestion shown to a learner: what, why, where and in which rank, and which arm
    chose it (the hybrid ranker or the popularity baseline of the held-out share). `opened_at`
    is when the learner next opened that course; purchases, completions and ratings are
    joined to it afterwards from their own tables (bot/recommending/log.py)."""

    __tablename__ = "recommendations_shown"
    # A learner's recent impressions: the hour's dedupe and marking one opened (0025).
    __table_args__ = (Index("ix_recommendations_shown_user_shown_at", "user_id", "shown_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # What was suggested: a course, or a plan, workshop or mentor (`item_id`), with the course
    # it is for where it has one (migration 0015).
    kind: Mapped[str] = mapped_column(String(16), default="course", server_default="course")
    item_id: Mapped[int | None] = mapped_column(Integer)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    slot: Mapped[str] = mapped_column(String(16))  # start, courses, recommend, course_end
    arm: Mapped[str] = mapped_column(String(16))  # hybrid, baseline
    # goal, next, also, topic, popular, new; plan, workshop, mentor
    reason: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    shown_at: Mapped[datetime] = mapped_column(index=True)
    opened_at: Mapped[datetime | None]


class RecommendationDismissal(Base):
    """Something a learner said they are not interested in: never suggested to them again. A
    course (`course_id`), a plan (`item_id`) or a workshop series (`item_id`: the series' id,
    a workshop's own id when it is not part of one; migration 0025)."""

    __tablename__ = "recommendation_dismissals"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="course", server_default="course")
    item_id: Mapped[int | None] = mapped_column(Integer)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    created_at: Mapped[datetime]


class ModelChange(Base):
    """A committed change to something the recommender's model reads (`storage.changes`): the
    newest id, and how many rows the last thousand ids hold, tell the model cache whether it is
    still current in one indexed read, however large the tables it reads have grown."""

    __tablename__ = "model_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    tables: Mapped[str] = mapped_column(String(200))  # which of the watched tables changed


class LedgerTotal(Base):
    """The ledger's money summed by kind, currency and demo over every entry posted before
    `through_at` (a UTC midnight at least a day past) with an id up to `through_id`, so that
    all-time totals read one row plus the entries after it (`bot.core.ledger.totals_by_currency`)
    rather than every entry ever posted. `sums` maps "kind|currency|demo" to minor units."""

    __tablename__ = "ledger_totals"
    through_at: Mapped[datetime] = mapped_column(primary_key=True)
    through_id: Mapped[int] = mapped_column(Integer)
    sums: Mapped[dict[str, int]] = mapped_column(JSON)
