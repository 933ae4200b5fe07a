"""identities remember what their platform last said about the admin role: admin_word

`identities.admin_word` is True when the identity's platform last said it holds an admin role
(a Discord guild role listed in `admin_role_ids`, or `/as NAME admin` on the console), False
when it last said it holds none, NULL when it never said. Linking and unlinking re-derive each
account's admin role from its identities (see `bot.core.users.sync_roles`), so the word goes
with the identity. Every identity of a user who is an admin now is marked True, so nobody's
admin role is lost by the next link or unlink; the platform's next word corrects it.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("admin_word", sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE identities SET admin_word = TRUE WHERE user_id IN "
        "(SELECT user_id FROM user_roles WHERE role = 'admin')"
    )


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("admin_word")
