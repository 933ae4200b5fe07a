"""partial indexes for what sweeps and delivery look for

Undelivered outbox rows, pending orders by expiry and open offers by mentor: each sweep and
each delivery looks only at these, and the tables they sit in grow for ever. The outbox's index
on `sent_at` (all rows, mostly delivered ones) gives way to one on the undelivered rows' ids.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _partial(name: str, table: str, column: str, where: str) -> None:
    op.create_index(
        name,
        table,
        [column],
        unique=False,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    _partial("ix_outbox_pending", "outbox", "id", "sent_at IS NULL")
    op.drop_index("ix_outbox_sent_at", table_name="outbox")
    _partial("ix_orders_pending_expiry", "orders", "expires_at", "status = 'pending'")
    _partial("ix_request_offers_open_mentor", "request_offers", "mentor_id", "status = 'offered'")


def downgrade() -> None:
    op.drop_index("ix_request_offers_open_mentor", table_name="request_offers")
    op.drop_index("ix_orders_pending_expiry", table_name="orders")
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], unique=False)
    op.drop_index("ix_outbox_pending", table_name="outbox")
