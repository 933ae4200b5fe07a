"""recommendation_dismissals: plans and workshop series too; impressions read per learner

"Not interested" names a course, a plan or a workshop series: `kind` (course, plan, workshop)
says which, `item_id` the plan or the series (a workshop's `series_id`, or its own id when it
is not part of one), and `course_id` stays the course of a course dismissal (NULL for the
others). Existing rows are course dismissals, as the server default says.

Impressions are deduplicated in the database (the same item shown to the same learner in the
same slot within the hour is logged once): that reads the learner's recent rows by
`(user_id, shown_at)`, as marking a suggestion opened does.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recommendation_dismissals") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="course")
        )
        batch.add_column(sa.Column("item_id", sa.Integer(), nullable=True))
        batch.alter_column("course_id", existing_type=sa.Integer(), nullable=True)
    op.create_index(
        "ix_recommendations_shown_user_shown_at",
        "recommendations_shown",
        ["user_id", "shown_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_recommendations_shown_user_shown_at", table_name="recommendations_shown")
    op.execute("DELETE FROM recommendation_dismissals WHERE kind <> 'course'")
    with op.batch_alter_table("recommendation_dismissals") as batch:
        batch.alter_column("course_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("item_id")
        batch.drop_column("kind")
