"""model registry: servers, access log, versioned weights

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_servers",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("conn_type", sa.Text, nullable=False),
        sa.Column("conn_params", JSONType, nullable=False),
        sa.Column("model_params", JSONType, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "model_access",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("start_access", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stop_access", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_model_access_model_start", "model_access", ["model", "start_access"])
    op.create_table(
        "model_weights",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("weights", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_model_weights_version"),
    )


def downgrade() -> None:
    op.drop_table("model_weights")
    op.drop_table("model_access")
    op.drop_table("model_servers")
