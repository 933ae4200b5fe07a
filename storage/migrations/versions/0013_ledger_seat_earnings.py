"""ledger entries name the workshop seat they are for: a host's earning and the platform's fee
on an attended paid seat (and their reversals) carry `seat_id`, as a session's carry
`session_id`

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("seat_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_ledger_entries_seat_id_workshop_seats", "workshop_seats", ["seat_id"], ["id"]
        )
        batch.create_index("ix_ledger_entries_seat_id", ["seat_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_index("ix_ledger_entries_seat_id")
        batch.drop_constraint("fk_ledger_entries_seat_id_workshop_seats", type_="foreignkey")
        batch.drop_column("seat_id")
