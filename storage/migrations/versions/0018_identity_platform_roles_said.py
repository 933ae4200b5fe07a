"""identities.platform_roles: the role ids the platform last said an identity holds

`admin_word` remembered only whether those roles made an admin under the config of that day;
taking a role id out of `admin_role_ids` then left its holders admins, in DMs for good. With
the role ids themselves, start-up judges every identity against today's config.

Revision ID: 0018
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("platform_roles", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("platform_roles")
