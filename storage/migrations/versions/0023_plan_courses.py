"""plan_courses: the courses a plan covers besides its primary one

A plan covers one or more courses. `plans.course_id` stays its primary course, where each
period's sessions land, so nothing existing changes; each further course it covers is one
row here (a plan and a course once each). A live subscription opens every covered course's
lessons and community spaces.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_plan_courses_plan_id_plans"),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name="fk_plan_courses_course_id_courses"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_plan_courses"),
        sa.UniqueConstraint("plan_id", "course_id", name="uq_plan_courses_plan_id"),
    )


def downgrade() -> None:
    op.drop_table("plan_courses")
