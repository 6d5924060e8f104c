"""Join tokens: what an admin hands a node so it may join a secured fleet.

A join token (``mrj_...``, shown once, stored as SHA-256) is a bootstrap
secret, like a kubeadm bootstrap token: its holder may read the fleet's
config and exchange it, once per runtime uuid, for that runtime's own
credential (below). Everything else a node does (the broker, module files,
call decisions) takes the node credential.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.keys import JOIN_PREFIX, LAST_USED_EVERY, NODE_PREFIX, key_hash, new_key, well_formed
from modrun.db.tables import node_credentials, node_tokens
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


class NodeCredentials:
    """Each runtime's own credential (``mrn_...``), the one a join token is
    exchanged for: it speaks for one runtime uuid, which the broker takes as
    the MQTT username and the fleet's routes as the node's identity (like a
    kubelet's client certificate after its bootstrap token). A uuid is joined
    once; revoking its credential cuts the runtime off for good, and the
    ``on_revoke`` hooks (the embedded broker's disconnect) run at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.on_revoke: list[Callable[[str], None]] = []
        # (runtime, credential), the one moment it is known in the clear: an external broker's files
        self.on_issue: list[Callable[[str, str], None]] = []

    def issue(self, runtime: uuid.UUID, name: str, join_token: uuid.UUID | None) -> str | None:
        """A new credential for ``runtime``; None when that uuid has joined already."""
        secret = new_key(NODE_PREFIX)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    node_credentials.insert().values(
                        runtime=runtime,
                        name=name,
                        secret_hash=key_hash(secret),
                        join_token=join_token,
                        created_at=utc_now(),
                    )
                )
        except sa.exc.IntegrityError:
            return None
        for hook in self.on_issue:
            hook(str(runtime), secret)
        return secret

    def check(self, secret: str) -> uuid.UUID | None:
        """The runtime a live (unrevoked) credential speaks for."""
        if not well_formed(secret, NODE_PREFIX):
            return None
        moment = utc_now()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(node_credentials).where(node_credentials.c.secret_hash == key_hash(secret))
            ).first()
            if row is None or row.revoked_at is not None:
                return None
            if row.last_used_at is None or moment - utc(row.last_used_at) > LAST_USED_EVERY:
                conn.execute(
                    node_credentials.update()
                    .where(node_credentials.c.runtime == row.runtime)
                    .values(last_used_at=moment)
                )
        return row.runtime

    def speaks_for(self, secret: str, runtime: str) -> bool:
        found = self.check(secret)
        return found is not None and str(found) == runtime

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(node_credentials).order_by(node_credentials.c.created_at)).all()
        return [
            {
                "runtime": str(r.runtime),
                "name": r.name,
                "join_token": str(r.join_token) if r.join_token else None,
                "created_at": r.created_at.isoformat(),
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in rows
        ]

    def revoke(self, runtime: uuid.UUID) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                node_credentials.update()
                .where(node_credentials.c.runtime == runtime, node_credentials.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            ).rowcount
        if done:
            for hook in self.on_revoke:
                hook(str(runtime))
        return bool(done)
