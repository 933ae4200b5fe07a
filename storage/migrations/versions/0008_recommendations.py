"""recommendations: learner_interests, recommendations_shown, recommendation_dismissals

What a learner said they want to learn (for suggestions before any purchase), every suggestion
shown (what, to whom, why, rank, slot, arm: hybrid or the popularity baseline) with when it was
opened, and the courses a learner is not interested in.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learner_interests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_learner_interests_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learner_interests")),
    )
    op.create_index(
        op.f("ix_learner_interests_user_id"), "learner_interests", ["user_id"], unique=False
    )
    op.create_table(
        "recommendations_shown",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=16), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_recommendations_shown_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recommendations_shown_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendations_shown")),
    )
    op.create_index(op.f("ix_recommendations_shown_user_id"), "recommendations_shown", ["user_id"])
    op.create_index(
        op.f("ix_recommendations_shown_shown_at"), "recommendations_shown", ["shown_at"]
    )
    op.create_table(
        "recommendation_dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_recommendation_dismissals_course_id_courses"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recommendation_dismissals_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_dismissals")),
    )
    op.create_index(
        op.f("ix_recommendation_dismissals_user_id"), "recommendation_dismissals", ["user_id"]
    )


def downgrade() -> None:
    op.drop_table("recommendation_dismissals")
    op.drop_table("recommendations_shown")
    op.drop_table("learner_interests")
