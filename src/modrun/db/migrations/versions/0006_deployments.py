"""deployments and their history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column(
            "artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("replicas", sa.Integer, nullable=False),
        sa.Column("deployed_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_good_version", sa.Integer),
    )
    op.create_table(
        "deploy_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artifact_id", sa.Uuid, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("runtime", sa.Text),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_deploy_history_artifact", "deploy_history", ["artifact_id", "id"])


def downgrade() -> None:
    op.drop_table("deploy_history")
    op.drop_table("deployments")
