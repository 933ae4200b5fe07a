"""orders keep the sessions they sold: sessions_included, filled from each order's course

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("sessions_included", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE orders SET sessions_included = (SELECT courses.sessions_included FROM courses "
        "WHERE courses.id = orders.course_id)"
    )
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("sessions_included", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("sessions_included")
