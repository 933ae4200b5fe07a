"""workshops (group sessions): occurrences, seats, waitlist entries and their reminders

A workshop is one occurrence (a weekly series shares `series_id`), with its seats, its price
in session credits of a course (or, `own_product`, for money through the
order flow, as a one-session archived course of its own), its meeting link and what the platforms' events last took
(`venue_version` / `venue_synced`). Seats are attendee rows, one seated row per person; the
waitlist keeps people in line in id order; workshop reminders are claimed like session ones.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _partial(name: str, table: str, columns: list[str], where: str, unique: bool = False) -> None:
    op.create_index(
        name,
        table,
        columns,
        unique=unique,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.create_table(
        "workshops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("price_credits", sa.Integer(), nullable=False),
        sa.Column("own_product", sa.Boolean(), nullable=False),
        sa.Column("meeting_link", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("venue_ref", sa.String(length=64), nullable=True),
        sa.Column("voice_ref", sa.String(length=64), nullable=True),
        sa.Column("venue_version", sa.Integer(), nullable=False),
        sa.Column("venue_synced", sa.Integer(), nullable=False),
        sa.Column("venue_claimed_until", sa.DateTime(), nullable=True),
        sa.CheckConstraint("seats > 0", name=op.f("ck_workshops_seats_positive")),
        sa.CheckConstraint("price_credits >= 0", name=op.f("ck_workshops_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_workshops_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_workshops_created_by_users")
        ),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_workshops_host_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workshops")),
    )
    op.create_index(op.f("ix_workshops_host_id"), "workshops", ["host_id"], unique=False)
    op.create_index("ix_workshops_status_start", "workshops", ["status", "start_at"], unique=False)
    _partial("ix_workshops_venue_pending", "workshops", ["id"], "venue_synced <> venue_version")

    op.create_table(
        "workshop_seats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workshop_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("stars", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "stars IS NULL OR stars BETWEEN 1 AND 5", name=op.f("ck_workshop_seats_stars_range")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_workshop_seats_enrollment_id_enrollments"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_workshop_seats_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["workshop_id"], ["workshops.id"], name=op.f("fk_workshop_seats_workshop_id_workshops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workshop_seats")),
    )
    op.create_index(op.f("ix_workshop_seats_user_id"), "workshop_seats", ["user_id"])
    op.create_index(op.f("ix_workshop_seats_workshop_id"), "workshop_seats", ["workshop_id"])
    _partial(
        "uq_workshop_seats_workshop_user_seated",
        "workshop_seats",
        ["workshop_id", "user_id"],
        "status = 'seated'",
        unique=True,
    )

    op.create_table(
        "workshop_waitlist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workshop_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("offered_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_workshop_waitlist_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["workshop_id"],
            ["workshops.id"],
            name=op.f("fk_workshop_waitlist_workshop_id_workshops"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workshop_waitlist")),
    )
    op.create_index(op.f("ix_workshop_waitlist_user_id"), "workshop_waitlist", ["user_id"])
    op.create_index(op.f("ix_workshop_waitlist_workshop_id"), "workshop_waitlist", ["workshop_id"])
    _partial(
        "uq_workshop_waitlist_workshop_user_open",
        "workshop_waitlist",
        ["workshop_id", "user_id"],
        "status IN ('waiting', 'offered')",
        unique=True,
    )
    _partial(
        "ix_workshop_waitlist_offered_expiry",
        "workshop_waitlist",
        ["expires_at"],
        "status = 'offered'",
    )

    op.create_table(
        "workshop_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workshop_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("skipped_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workshop_id"],
            ["workshops.id"],
            name=op.f("fk_workshop_reminders_workshop_id_workshops"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workshop_reminders")),
        sa.UniqueConstraint(
            "workshop_id", "kind", "due_at", name=op.f("uq_workshop_reminders_workshop_id")
        ),
    )
    op.create_index(op.f("ix_workshop_reminders_workshop_id"), "workshop_reminders", ["workshop_id"])
    _partial(
        "ix_workshop_reminders_pending_due",
        "workshop_reminders",
        ["due_at"],
        "sent_at IS NULL AND skipped_at IS NULL",
    )


def downgrade() -> None:
    op.drop_table("workshop_reminders")
    op.drop_table("workshop_waitlist")
    op.drop_table("workshop_seats")
    op.drop_table("workshops")
