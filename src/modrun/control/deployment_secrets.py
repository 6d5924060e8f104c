"""Secrets a deployment's owner stores for its manifest's ``{{NAME}}`` placeholders.

A tenant's bundle resolves placeholders only from these (its child node runs
with a clean environment): ``modrun secrets set my-app MODRUN_OPENAI_API_KEY``.
Values are sealed with AES-256-GCM, each bound to its artifact and name, and
are never returned to callers: the owner lists names, and only a node that
runs one of the deployment's modules reads the values (``GET
/api/modules/{uuid}/secrets`` with its credential).

The key: ``MODRUN_SECRETS_KEY`` (64 hex digits), else ``MODRUN_ARTIFACTS_KEY``,
else one generated into ``<storagePath>/control/secrets-key`` (mode 0600) beside
the database, which protects a stolen database dump but not a stolen disk.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.errors import BadRequest, Unprocessable
from modrun.db.tables import deployment_secrets
from modrun.db.times import utc_now
from modrun.secrets.sources import SecretSource
from modrun.storage.private import write_private
from modrun.storage.sealed import SealError, open_value, parse_key, seal_value

log = logging.getLogger("modrun.control")

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VALUE = 64 * 1024
MAX_PER_DEPLOYMENT = 100


def secrets_key(storage: Path) -> bytes:
    """The key secrets are sealed with (see the module's docstring)."""
    source = SecretSource({})
    for scope in ("secrets", "artifacts"):
        value, tried = source.lookup(scope, "key")
        if value:
            try:
                return parse_key(value)
            except SealError as exc:
                raise ValueError(f"{tried[0]}: {exc}") from None
    path = storage / "control" / "secrets-key"
    if not path.exists():
        write_private(path, secrets.token_hex(32))
        log.warning(
            "deployment secrets are sealed with a key generated into %s; set MODRUN_SECRETS_KEY "
            "to keep the key away from the database",
            path,
        )
    return parse_key(path.read_text())


class DeploymentSecrets:
    def __init__(self, engine: Engine, key: bytes) -> None:
        self.engine = engine
        self.key = key

    @staticmethod
    def _context(artifact_id: uuid.UUID, name: str) -> bytes:
        return f"deployment-secret:{artifact_id}:{name}".encode()

    def set(self, artifact_id: uuid.UUID, name: object, value: object, actor: str) -> bool:
        """Store (or replace) one value; True when it is new."""
        if not isinstance(name, str) or not NAME.match(name):
            raise BadRequest("name: a variable name (letters, digits and _, not starting with a digit)")
        if not isinstance(value, str):
            raise BadRequest("value: a string")
        if len(value.encode()) > MAX_VALUE:
            raise Unprocessable(f"value: at most {MAX_VALUE} bytes")
        row = {
            "sealed": seal_value(self.key, value.encode(), self._context(artifact_id, name)),
            "updated_at": utc_now(),
            "updated_by": actor,
        }
        table = deployment_secrets
        with self.engine.begin() as conn:
            updated = conn.execute(
                table.update().where(table.c.artifact_id == artifact_id, table.c.name == name).values(**row)
            ).rowcount
            if updated:
                return False
            count = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.artifact_id == artifact_id)
            ).scalar_one()
            if count >= MAX_PER_DEPLOYMENT:
                raise Unprocessable(f"at most {MAX_PER_DEPLOYMENT} secrets per deployment")
            conn.execute(table.insert().values(artifact_id=artifact_id, name=name, **row))
        return True

    def names(self, artifact_id: uuid.UUID) -> list[dict]:
        """What is stored, never the values."""
        table = deployment_secrets
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.name, table.c.updated_at, table.c.updated_by)
                .where(table.c.artifact_id == artifact_id)
                .order_by(table.c.name)
            ).all()
        return [
            {"name": r.name, "updated_at": r.updated_at.isoformat(), "updated_by": r.updated_by} for r in rows
        ]

    def delete(self, artifact_id: uuid.UUID, name: str) -> bool:
        table = deployment_secrets
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    table.delete().where(table.c.artifact_id == artifact_id, table.c.name == name)
                ).rowcount
            )

    def delete_all(self, artifact_id: uuid.UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(deployment_secrets.delete().where(deployment_secrets.c.artifact_id == artifact_id))

    def values(self, artifact_id: uuid.UUID) -> dict[str, str]:
        """The plaintext values: for a node that runs the deployment, nobody else."""
        table = deployment_secrets
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.name, table.c.sealed).where(table.c.artifact_id == artifact_id)
            ).all()
        found = {}
        for row in rows:
            try:
                plain = open_value(self.key, row.sealed, self._context(artifact_id, row.name))
                found[row.name] = plain.decode()
            except SealError as exc:  # a wrong key or an altered row: left out, said once
                log.error("deployment secret %s of %s cannot be opened: %s", row.name, artifact_id, exc)
        return found
