"""plugins and inferences

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("sdk_version", sa.Text),
        sa.Column("build_id", sa.Text, nullable=False, unique=True, comment="SHA-256 of the wasm"),
        sa.Column("build_time", sa.DateTime(timezone=True)),
        sa.Column("git_repo", sa.Text),
        sa.Column("git_commit", sa.Text),
    )
    op.create_table(
        "inferences",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("model_hash", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("input", JSONType),
        sa.Column("output", JSONType),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("plugin_id", sa.Uuid, sa.ForeignKey("plugins.id")),
        sa.Column("plugin", sa.Text),
        sa.Column("function", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_inferences_model_started", "inferences", ["model_hash", "started_at"])
    op.create_index("ix_inferences_plugin_id", "inferences", ["plugin_id"])
    op.create_index("ix_inferences_plugin_function", "inferences", ["plugin_id", "function"])
    op.create_index("ix_inferences_function", "inferences", ["function"])
    op.create_index("ix_inferences_started_desc", "inferences", [sa.text("started_at DESC")])


def downgrade() -> None:
    op.drop_table("inferences")
    op.drop_table("plugins")
