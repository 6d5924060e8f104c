"""join tokens, quotas, OIDC identities, deployment labels and limits, artifact encryption

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "node_tokens",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "quotas",
        sa.Column("subject", sa.Text, primary_key=True),
        sa.Column("artifact_bytes", sa.BigInteger),
        sa.Column("deployments", sa.Integer),
        sa.Column("replicas", sa.Integer),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("external_id", sa.Text))
        batch.create_unique_constraint("uq_users_external_id", ["external_id"])
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("labels", JSONType, nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("limits", JSONType, nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("fleet_modules") as batch:
        batch.add_column(sa.Column("labels", JSONType, nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("artifact_versions") as batch:
        batch.add_column(sa.Column("encryption", sa.Text))
    with op.batch_alter_table("fleet_files") as batch:
        batch.add_column(sa.Column("encryption", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("fleet_files") as batch:
        batch.drop_column("encryption")
    with op.batch_alter_table("artifact_versions") as batch:
        batch.drop_column("encryption")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("limits")
        batch.drop_column("labels")
    with op.batch_alter_table("fleet_modules") as batch:
        batch.drop_column("labels")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_external_id", type_="unique")
        batch.drop_column("external_id")
    op.drop_table("quotas")
    op.drop_table("node_tokens")
