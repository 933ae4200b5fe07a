"""indexes shaped like the admin report's scans: sessions, requests and learners by week

`/admin stats` reads the report's weeks from three tables that grow with every booking and
purchase. Each read now walks one index range holding every column it needs (no row lookups):

- sessions held or missed per week (and per mentor): (start_at, status, mentor_id,
  enrollment_id);
- requests per week with their wait: (created_at, enrollment_id, mentor_id, status,
  accepted_at);
- learners per week, from each learner's first enrollment: (user_id, created_at, order_id),
  in place of (user_id), which it also serves; the refunded orders, a few of many, on their
  own (orders.refunded_at where it is set).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = {
    ("sessions", "ix_sessions_report"): ["start_at", "status", "mentor_id", "enrollment_id"],
    ("mentorship_requests", "ix_mentorship_requests_report"): [
        "created_at",
        "enrollment_id",
        "mentor_id",
        "status",
        "accepted_at",
    ],
    ("enrollments", "ix_enrollments_user_created"): ["user_id", "created_at", "order_id"],
}


def upgrade() -> None:
    for (table, name), columns in COVERING.items():
        op.create_index(name, table, columns, unique=False)
    op.drop_index("ix_enrollments_user_id", table_name="enrollments")
    op.create_index(
        "ix_orders_refunded_at",
        "orders",
        ["refunded_at"],
        unique=False,
        sqlite_where=sa.text("refunded_at IS NOT NULL"),
        postgresql_where=sa.text("refunded_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_refunded_at", table_name="orders")
    op.create_index("ix_enrollments_user_id", "enrollments", ["user_id"], unique=False)
    for table, name in COVERING:
        op.drop_index(name, table_name=table)
