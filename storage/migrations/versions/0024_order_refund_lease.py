"""orders.refund_claimed_until: the lease under which one process gives an order's money back

Two processes refunding the same order at once (the unused-seat sweep running in both, or two
admins) would each call the provider; Telegram Stars has no idempotency key, so the second
`refundStarPayment` was only stopped by Telegram's CHARGE_ALREADY_REFUNDED. The process that
sets this first calls the provider; the others leave the order alone until it runs out.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("refund_claimed_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refund_claimed_until")
