"""fleet: runtimes, managers, modules and their history, the file index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "fleet_managers",
        sa.Column("uuid", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_table(
        "fleet_runtimes",
        sa.Column("uuid", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("runtime_type", sa.Text, nullable=False),
        sa.Column("max_nmodules", sa.Integer, nullable=False),
        sa.Column("apis", JSONType, nullable=False),
        sa.Column("platform", JSONType),
        sa.Column("metadata", JSONType),
        sa.Column("ka_interval_sec", sa.Float, nullable=False),
        sa.Column("ka_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("parent", sa.Text),
    )
    op.create_table(
        "fleet_modules",
        sa.Column("index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("uuid", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("parent", sa.Text),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("sha256", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("apis", JSONType, nullable=False),
        sa.Column("args", JSONType, nullable=False),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("restart", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("group", sa.Text, comment="replicas of one deployment version: kept on distinct runtimes"),
    )
    op.create_index("ix_fleet_modules_status", "fleet_modules", ["status"])
    op.create_table(
        "fleet_module_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("runtime", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_fleet_module_events_module", "fleet_module_events", ["module", "id"])
    op.create_table(
        "fleet_files",
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False, comment="plugin, wasi or unknown (from its exports)"),
    )
    op.create_table(
        "fleet_settings",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", JSONType),
    )


def downgrade() -> None:
    for table in (
        "fleet_settings",
        "fleet_files",
        "fleet_module_events",
        "fleet_modules",
        "fleet_runtimes",
        "fleet_managers",
    ):
        op.drop_table(table)
