"""Join tokens: what an admin hands a node so it may join a secured fleet.

A join token (``mrj_...``, shown once, stored as SHA-256) lets its holder
read the fleet's config and module files over HTTP, ask the control plane
for call decisions, and connect to the embedded broker as a runtime limited
to its own topics. Like a kubeadm bootstrap token, whoever holds it is
trusted as a node: keep it as secret as a node's disk.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.keys import JOIN_PREFIX, LAST_USED_EVERY, key_hash, new_key, well_formed
from modrun.db.tables import node_tokens
from modrun.db.times import utc, utc_now


class JoinTokens:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, created_by: str, expires_at: datetime | None = None) -> tuple[uuid.UUID, str]:
        token = new_key(JOIN_PREFIX)
        token_id = uuid.uuid4()
        with self.engine.begin() as conn:
            conn.execute(
                node_tokens.insert().values(
                    id=token_id,
                    name=name,
                    token_hash=key_hash(token),
                    created_by=created_by,
                    created_at=utc_now(),
                    expires_at=expires_at,
                )
            )
        return token_id, token

    def check(self, token: str) -> uuid.UUID | None:
        """The token's id when it is a live join token."""
        if not well_formed(token, JOIN_PREFIX):
            return None
        moment = utc_now()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(node_tokens).where(node_tokens.c.token_hash == key_hash(token))
            ).first()
            if row is None or (row.expires_at is not None and utc(row.expires_at) <= moment):
                return None
            if row.last_used_at is None or moment - utc(row.last_used_at) > LAST_USED_EVERY:
                conn.execute(
                    node_tokens.update().where(node_tokens.c.id == row.id).values(last_used_at=moment)
                )
        return row.id

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(node_tokens).order_by(node_tokens.c.created_at)).all()
        return [
            {
                "id": str(r.id),
                "name": r.name,
                "created_by": r.created_by,
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
            }
            for r in rows
        ]

    def delete(self, token_id: uuid.UUID) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(node_tokens.delete().where(node_tokens.c.id == token_id)).rowcount)
