"""ledger indexes shaped like its sums; the unused mentor_earnings table dropped

Every balance is a sum over `ledger_entries`, which grows for ever, so each sum the bot runs
reads one index range that holds the summed columns too (no row lookups):

- credits left on an enrollment: (enrollment_id, credits), in place of (enrollment_id);
- one mentor's earnings: (mentor_id, kind, currency, amount_minor), in place of (mentor_id);
- revenue, earnings and fees by currency, every mentor's totals and the admin report's weeks:
  (kind, at, demo, currency, amount_minor, order_id, mentor_id).

Earnings come from the ledger since 0004; nothing reads or writes `mentor_earnings` any more.
A database that earned before then may still hold rows there that no ledger entry records:
each becomes the `mentor_earning` entry the code would have posted (same key, so one already
posted is left alone) before the table is dropped. Downgrade recreates the table empty.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = {
    "ix_ledger_entries_enrollment_credits": ["enrollment_id", "credits"],
    "ix_ledger_entries_mentor_kind": ["mentor_id", "kind", "currency", "amount_minor"],
    "ix_ledger_entries_kind_at": [
        "kind",
        "at",
        "demo",
        "currency",
        "amount_minor",
        "order_id",
        "mentor_id",
    ],
}
REPLACED = {
    "ix_ledger_entries_enrollment_id": "enrollment_id",
    "ix_ledger_entries_mentor_id": "mentor_id",
}


def upgrade() -> None:
    for name, columns in COVERING.items():
        op.create_index(name, "ledger_entries", columns, unique=False)
    for name in REPLACED:
        op.drop_index(name, table_name="ledger_entries")
    op.execute(
        "INSERT INTO ledger_entries (key, kind, at, mentor_id, order_id, session_id, currency, "
        "amount_minor, credits, demo) "
        "SELECT 'earning:session:' || e.session_id, 'mentor_earning', e.created_at, "
        "e.mentor_id, e.order_id, e.session_id, e.currency, e.amount_minor, 0, "
        "COALESCE(o.provider = 'demo', FALSE) "
        "FROM mentor_earnings e JOIN orders o ON o.id = e.order_id "
        "WHERE NOT EXISTS (SELECT 1 FROM ledger_entries l "
        "WHERE l.key = 'earning:session:' || e.session_id)"
    )
    op.drop_index("ix_mentor_earnings_mentor_id", table_name="mentor_earnings")
    op.drop_table("mentor_earnings")


def downgrade() -> None:
    op.create_table(
        "mentor_earnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentor_id"],
            ["mentor_profiles.id"],
            name=op.f("fk_mentor_earnings_mentor_id_mentor_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_mentor_earnings_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_mentor_earnings_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentor_earnings")),
        sa.UniqueConstraint("session_id", name=op.f("uq_mentor_earnings_session_id")),
    )
    op.create_index("ix_mentor_earnings_mentor_id", "mentor_earnings", ["mentor_id"], unique=False)
    for name, column in REPLACED.items():
        op.create_index(name, "ledger_entries", [column], unique=False)
    for name in COVERING:
        op.drop_index(name, table_name="ledger_entries")
