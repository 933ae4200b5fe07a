"""model_changes: one row per committed change to what the recommender's model reads

The model cache asked whether anything changed by counting completed sessions and lessons
done (scans of tables that only grow) and summing courses' revisions on every suggestion. A row
per change (storage.changes) answers with one indexed read; courses.revision goes.

Revision ID: 0019
Revises: 0018
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tables", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_changes"),
    )
    # The first read after the upgrade sees a change: the model is built once more.
    op.execute("INSERT INTO model_changes (tables) VALUES ('upgrade')")
    # Not batch mode: on SQLite that copies `courses`, which every order and enrollment
    # references. SQLite before 3.35 cannot drop a column; there the unused column stays (it
    # has a default, so nothing writes it).
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35):
        op.execute("ALTER TABLE courses DROP COLUMN revision")


def downgrade() -> None:
    with op.batch_alter_table("courses") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.drop_table("model_changes")
