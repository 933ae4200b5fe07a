"""forum_topics: the message_thread_id of each forum topic the bot made for a community space

A `[community] spaces` entry may name a topic of a Telegram forum supergroup by name; the bot
creates it (createForumTopic) and must find its thread id again after a restart and from every
process, which the Bot API cannot list. One row per (platform, chat, name); `claimed_until` is
the lease under which one process creates it.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forum_topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_forum_topics"),
        sa.UniqueConstraint("platform", "chat", "name", name="uq_forum_topics_platform"),
    )


def downgrade() -> None:
    op.drop_table("forum_topics")
