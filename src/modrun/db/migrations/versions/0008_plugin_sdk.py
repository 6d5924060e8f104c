"""plugins: the SDK's name beside its version

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plugins") as batch:
        batch.add_column(sa.Column("sdk", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("plugins") as batch:
        batch.drop_column("sdk")
