"""ledger_totals: the money of the settled past, summed once and kept

`/admin stats` summed revenue, mentors' earnings and platform fees over every ledger entry ever
posted (0.2 s at a million entries); a kept sum per day of what is over a day old, plus the
entries after it, answers from one row and two short index ranges (bot.core.ledger).

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_totals",
        sa.Column("through_at", sa.DateTime(), nullable=False),
        sa.Column("through_id", sa.Integer(), nullable=False),
        sa.Column("sums", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("through_at", name="pk_ledger_totals"),
    )


def downgrade() -> None:
    op.drop_table("ledger_totals")
