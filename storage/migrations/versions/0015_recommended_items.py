"""recommendations_shown: plans, workshops and mentors beside courses

Suggestions name plans, workshops and mentors too; each shown one is logged like a course, with
`kind` and `item_id` naming it and `course_id` the course it is for (none for a workshop tied to
no course).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recommendations_shown") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="course")
        )
        batch.add_column(sa.Column("item_id", sa.Integer(), nullable=True))
        batch.alter_column("course_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM recommendations_shown WHERE course_id IS NULL")
    with op.batch_alter_table("recommendations_shown") as batch:
        batch.alter_column("course_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("item_id")
        batch.drop_column("kind")
