"""discussion spaces and community access: relay threads, messages and deliveries; access
grants (desired and actual state) and their log

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("mentor_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("space_ref", sa.String(length=64), nullable=True),
        sa.Column("space_state", sa.String(length=16), nullable=False),
        sa.Column("space_claimed_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["mentorship_requests.id"],
            name="fk_relay_threads_request_id_mentorship_requests",
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"], ["users.id"], name="fk_relay_threads_learner_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["mentor_user_id"], ["users.id"], name="fk_relay_threads_mentor_user_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_relay_threads"),
        sa.UniqueConstraint("request_id", name="uq_relay_threads_request_id"),
    )
    op.create_index("ix_relay_threads_learner_id", "relay_threads", ["learner_id"])
    op.create_index("ix_relay_threads_mentor_user_id", "relay_threads", ["mentor_user_id"])
    op.create_table(
        "relay_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["relay_threads.id"], name="fk_relay_messages_thread_id_relay_threads"
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["users.id"], name="fk_relay_messages_sender_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_relay_messages"),
    )
    op.create_index("ix_relay_messages_thread_id", "relay_messages", ["thread_id"])
    op.create_index("ix_relay_messages_sender_id", "relay_messages", ["sender_id"])
    op.create_index("ix_relay_messages_created_at", "relay_messages", ["created_at"])
    op.create_table(
        "relay_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("platform_message_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["relay_messages.id"],
            name="fk_relay_deliveries_message_id_relay_messages",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["users.id"], name="fk_relay_deliveries_recipient_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_relay_deliveries"),
        sa.UniqueConstraint(
            "platform", "chat_id", "platform_message_id", name="uq_relay_deliveries_platform"
        ),
    )
    op.create_index("ix_relay_deliveries_message_id", "relay_deliveries", ["message_id"])
    op.create_index("ix_relay_deliveries_recipient_id", "relay_deliveries", ["recipient_id"])
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=120), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("space_ref", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("desired", sa.String(length=16), nullable=False),
        sa.Column("actual", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("invite_link", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_access_grants_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_access_grants"),
        sa.UniqueConstraint("user_id", "space", "external_id", name="uq_access_grants_user_id"),
    )
    op.create_index("ix_access_grants_user_id", "access_grants", ["user_id"])
    op.create_index("ix_access_grants_drift", "access_grants", ["desired", "actual"])
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("desired", sa.String(length=16), nullable=False),
        sa.Column("actual", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["access_grants.id"], name="fk_access_log_grant_id_access_grants"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_access_log_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_access_log"),
    )
    op.create_index("ix_access_log_grant_id", "access_log", ["grant_id"])
    op.create_index("ix_access_log_user_id", "access_log", ["user_id"])
    op.create_index("ix_access_log_at", "access_log", ["at"])


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_table("access_grants")
    op.drop_table("relay_deliveries")
    op.drop_table("relay_messages")
    op.drop_table("relay_threads")
