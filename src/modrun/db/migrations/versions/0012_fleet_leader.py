"""fleet_leader, fleet_handled, login_failures: several orchestrators on one database

fleet_leader holds the one leadership lease (holder, term, expiry); every fleet
write checks its term. fleet_handled remembers which control messages the
leader has applied, so a new leader replays only the ones it has not.
login_failures counts failed sign-ins for all of them together.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_leader",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("term", sa.BigInteger, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "fleet_handled",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fleet_handled_at", "fleet_handled", ["at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["scope", "key", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key", "login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_fleet_handled_at", "fleet_handled")
    op.drop_table("fleet_handled")
    op.drop_table("fleet_leader")
