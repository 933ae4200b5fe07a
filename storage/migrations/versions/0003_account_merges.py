"""account merges: what /link joined, so /unlink can part it again

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("survivor_name", sa.String(length=200), nullable=False),
        sa.Column("merged_name", sa.String(length=200), nullable=False),
        sa.Column("merged_language", sa.String(length=8), nullable=False),
        sa.Column("merged_timezone", sa.String(length=64), nullable=False),
        sa.Column("merged_created_at", sa.DateTime(), nullable=False),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["users.id"], name=op.f("fk_account_merges_survivor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_merges")),
    )
    with op.batch_alter_table("account_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_merges_survivor_id"), ["survivor_id"], unique=False
        )
    op.create_table(
        "merged_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merge_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("column_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["merge_id"], ["account_merges.id"], name=op.f("fk_merged_rows_merge_id_account_merges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merged_rows")),
    )
    with op.batch_alter_table("merged_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merged_rows_merge_id"), ["merge_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("merged_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merged_rows_merge_id"))
    op.drop_table("merged_rows")
    with op.batch_alter_table("account_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_merges_survivor_id"))
    op.drop_table("account_merges")
