"""one mentor's earnings index: what `/earnings` groups by, in place of (mentor_id, kind, …)

`/earnings` sums one mentor's earnings and fees by currency, by session or workshop seat, and
by whether the earning (a reversal: the earning it reverses) falls in this month. The index of
0006 held (mentor_id, kind, currency, amount_minor): every other column meant a row lookup per
entry. This one holds them all after the same columns, so it still serves every sum the old
one did (`bot.core.ledger.mentor_earnings`, `/admin earnings`), and replaces it.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "ix_ledger_entries_mentor_earnings"
OLD = "ix_ledger_entries_mentor_kind"


def upgrade() -> None:
    op.create_index(
        NEW,
        "ledger_entries",
        ["mentor_id", "kind", "currency", "at", "seat_id", "reverses_id", "amount_minor"],
        unique=False,
    )
    op.drop_index(OLD, table_name="ledger_entries")


def downgrade() -> None:
    op.create_index(
        OLD, "ledger_entries", ["mentor_id", "kind", "currency", "amount_minor"], unique=False
    )
    op.drop_index(NEW, table_name="ledger_entries")
