"""courses.revision: a number every edit of a course bumps

The recommender keeps its model while nothing it reads has changed, and asks on every
suggestion whether anything did. Courses were the one input it could only compare by loading
every row; with a revision bumped in SQL by each update (storage.models._bump_revision), one
aggregate over the table answers.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courses") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("courses") as batch:
        batch.drop_column("revision")
