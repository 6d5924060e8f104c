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

PREFIX = "mrk_"
JOIN_PREFIX = "mrj_"  # join tokens: what a node presents to join a secured fleet
SCOPES = ("invoke", "read", "deploy", "manage")
LAST_USED_EVERY = timedelta(seconds=60)  # how often a key's (or join token's) last-used time is written
_FORMAT = re.compile(r"^(mr[kj]_)([A-Za-z0-9]{40})_([0-9a-f]{8})$")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_key(prefix: str = PREFIX) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return f"{prefix}{body}_{zlib.crc32(body.encode()):08x}"


def well_formed(key: str, prefix: str = PREFIX) -> bool:
    match = _FORMAT.match(key)
    return (
        bool(match)
        and match.group(1) == prefix
        and f"{zlib.crc32(match.group(2).encode()):08x}" == match.group(3)
    )


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX)


def looks_like_join_token(value: str) -> bool:
    return value.startswith(JOIN_PREFIX)


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
