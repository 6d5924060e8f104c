"""artifacts: versioned plugins and bundles, aliases

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("team_id", sa.Uuid, sa.ForeignKey("teams.id", ondelete="SET NULL")),
        sa.Column("access", sa.Text, nullable=False),
        sa.Column("default_permission", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "artifact_versions",
        sa.Column(
            "artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("pushed_by", sa.Text, nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tags", JSONType, nullable=False),
    )
    op.create_table(
        "artifact_aliases",
        sa.Column(
            "artifact_id", sa.Uuid, sa.ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("alias", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("artifact_aliases", "artifact_versions", "artifacts"):
        op.drop_table(table)
