"""API keys: ``mrk_<random>_<checksum>``, shown once, stored as SHA-256.

The prefix makes a leaked key recognisable (secret scanners, logs); the
checksum (CRC-32 of the random part) rejects mistyped or made-up keys before
any database lookup. A key is scoped: actions (``invoke``, ``read``,
``deploy``, ``manage``), artifacts (listed, or all), an expiry no later than
the maximum lifetime; it never allows more than its creator may do.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import api_keys

PREFIX = "mrk_"
JOIN_PREFIX = "mrj_"  # join tokens: what a node presents to join a secured fleet
NODE_PREFIX = "mrn_"  # node credentials: one runtime's identity, exchanged for a join token
SCOPES = ("invoke", "read", "deploy", "manage")
LAST_USED_EVERY = timedelta(seconds=60)  # how often a key's (or join token's) last-used time is written
_FORMAT = re.compile(r"^(mr[kjn]_)([A-Za-z0-9]{40})_([0-9a-f]{8})$")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_key(prefix: str = PREFIX) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return f"{prefix}{body}_{zlib.crc32(body.encode()):08x}"


def well_formed(key: str, prefix: str = PREFIX) -> bool:
    match = _FORMAT.match(key)
    return (
        match is not None
        and match.group(1) == prefix
        and f"{zlib.crc32(match.group(2).encode()):08x}" == match.group(3)
    )


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX)


def looks_like_join_token(value: str) -> bool:
    return value.startswith(JOIN_PREFIX)


def looks_like_node_credential(value: str) -> bool:
    return value.startswith(NODE_PREFIX)


@dataclass(frozen=True)
class KeyGrant:
    """What a presented key allows (before intersecting with its creator's rights)."""

    id: uuid.UUID
    user_id: uuid.UUID
    scopes: frozenset[str]
    all_artifacts: bool
    artifact_ids: frozenset[str]
    expires_at: datetime

    def covers(self, scope: str, artifact_id: str | None = None) -> bool:
        if scope not in self.scopes:
            return False
        return artifact_id is None or self.all_artifacts or artifact_id in self.artifact_ids


class ApiKeys:
    """The ``api_keys`` table (accounts know nothing of keys)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def store(self, record: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**record))

    def list(self, user_id: uuid.UUID) -> list[dict]:
        query = sa.select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at)
        with self.engine.connect() as conn:
            return [
                {
                    "id": str(r.id),
                    "name": r.name,
                    "prefix": r.prefix,
                    "scopes": r.scopes,
                    "all_artifacts": r.all_artifacts,
                    "artifact_ids": r.artifact_ids,
                    "created_at": r.created_at.isoformat(),
                    "expires_at": r.expires_at.isoformat(),
                    "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                }
                for r in conn.execute(query)
            ]

    def delete(self, key_id: uuid.UUID, owner: uuid.UUID | None) -> bool:
        query = api_keys.delete().where(api_keys.c.id == key_id)
        if owner is not None:
            query = query.where(api_keys.c.user_id == owner)
        with self.engine.begin() as conn:
            return bool(conn.execute(query).rowcount)
