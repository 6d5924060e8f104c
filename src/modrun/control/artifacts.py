"""Artifacts: a single ``.wasm`` plugin or an app bundle (zip or tar of an app
directory), pushed in chunks, checked, stored through the blob store, with
immutable numbered versions, movable aliases (``latest`` is always the
newest) and tags.

Checks before anything is kept: the SHA-256 the client states, the size
limit, for a plugin a valid WebAssembly module (wasmtime validates it), for a
bundle no absolute or ``..`` paths, no links, no entry or total size over
the limits (zip bombs), every ``.wasm`` valid, and its ``modrun.json`` (if
any) a valid manifest. A refused upload leaves no file and no row.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.control.accounts import USERNAME
from modrun.control.artifact_checks import check
from modrun.control.errors import (
    BadRequest,
    Conflict,
    Misconfigured,
    NotFound,
    TooLarge,
    Unauthorized,
    Unprocessable,
)
from modrun.control.permissions import ACCESS, ArtifactAccess
from modrun.control.quotas import QuotaExceeded
from modrun.control.tenant_hosts import HostPattern
from modrun.db.tables import artifact_aliases, artifact_versions, artifacts, deployment_secrets
from modrun.db.times import utc_now
from modrun.storage import receive
from modrun.storage.blobs import BlobStore
from modrun.storage.receive import Receiver
from modrun.storage.sealed import NAME as SEALED
from modrun.storage.sealed import open_sealed, seal

TYPES = ("plugin", "bundle")
UPLOAD_TTL = 3600.0
ALIAS = USERNAME


@dataclass
class Upload:
    """One upload in progress (kept in memory: an orchestrator restart drops it)."""

    user_id: uuid.UUID | None  # the new artifact's owner (None in an open fleet: --auth none)
    actor: str
    name: str
    type: str
    artifact_id: uuid.UUID | None  # pushing a new version of an existing artifact
    receiver: Receiver
    quota_room: int | None = None  # bytes the owner's quota leaves, when tighter than the size limit
    granted: tuple[HostPattern, ...] | None = ()  # hosts a tenant may reach; None: an operator's
    next_chunk: int = 0
    started: float = field(default_factory=time.monotonic)


class Artifacts:
    def __init__(
        self, engine: Engine, blobs: BlobStore, scratch: Path, max_size: int, key: bytes | None = None
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.key = key  # AES-256 key: new versions are stored sealed (storage.sealed)
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.max_size = max_size
        self._uploads: dict[str, Upload] = {}

    # -- reading --------------------------------------------------------------------

    def access(self, artifact_id: uuid.UUID) -> ArtifactAccess | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).first()
        return _access(row) if row else None

    def by_name(self, name: str) -> ArtifactAccess | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(artifacts).where(artifacts.c.name == name)).first()
        return _access(row) if row else None

    def all(self, team_id: uuid.UUID | None = None) -> list[tuple[ArtifactAccess, dict]]:
        query = sa.select(artifacts).order_by(artifacts.c.name)
        if team_id is not None:
            query = query.where(artifacts.c.team_id == team_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            latest = dict(
                conn.execute(
                    sa.select(
                        artifact_versions.c.artifact_id, sa.func.max(artifact_versions.c.version)
                    ).group_by(artifact_versions.c.artifact_id)
                ).all()
            )
        return [(_access(r), _summary(r) | {"latest": latest.get(r.id)}) for r in rows]

    def detail(self, artifact_id: uuid.UUID) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).first()
            if row is None:
                raise NotFound("no such artifact")
            versions = conn.execute(
                sa.select(artifact_versions)
                .where(artifact_versions.c.artifact_id == artifact_id)
                .order_by(artifact_versions.c.version)
            ).all()
            aliases = conn.execute(
                sa.select(artifact_aliases.c.alias, artifact_aliases.c.version).where(
                    artifact_aliases.c.artifact_id == artifact_id
                )
            ).all()
        listed = [
            {
                "version": v.version,
                "sha256": v.sha256,
                "size": v.size,
                "pushed_by": v.pushed_by,
                "pushed_at": v.pushed_at.isoformat(),
                "tags": v.tags,
            }
            for v in versions
        ]
        named = {a: n for a, n in aliases}
        if listed:
            named["latest"] = listed[-1]["version"]
        return _summary(row) | {"versions": listed, "aliases": dict(sorted(named.items()))}

    def resolve(self, artifact_id: uuid.UUID, version: str | None) -> tuple[int, str]:
        """A version number or alias (default ``latest``) -> (version, sha256)."""
        detail = self.detail(artifact_id)
        wanted = version or "latest"
        number = int(wanted) if wanted.isdigit() else detail["aliases"].get(wanted)
        found = next((v for v in detail["versions"] if v["version"] == number), None)
        if found is None:
            raise NotFound(f"no version or alias {wanted!r}")
        return found["version"], found["sha256"]

    def blob_name(self, artifact_id: uuid.UUID, version: int) -> str:
        return f"{artifact_id}/{version}"

    def _encryption(self, artifact_id: uuid.UUID, version: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(artifact_versions.c.encryption).where(
                    artifact_versions.c.artifact_id == artifact_id, artifact_versions.c.version == version
                )
            ).scalar()

    def read(self, artifact_id: uuid.UUID, version: int) -> Iterator[bytes]:
        """A version's bytes as stored, opened when it was stored sealed."""
        encryption = self._encryption(artifact_id, version)
        chunks = self.blobs.read(self.blob_name(artifact_id, version))
        if encryption is None:
            return chunks
        if self.key is None:
            raise Misconfigured("this version is stored encrypted; start with --encryptArtifacts and its key")
        return open_sealed(self.key, chunks)

    def local_file(self, artifact_id: uuid.UUID, version: int) -> Path | None:
        """The version's file on local disk when it is kept there in the clear."""
        if self._encryption(artifact_id, version):
            return None
        return self.blobs.local_path(self.blob_name(artifact_id, version))

    # -- changing --------------------------------------------------------------------

    def set_alias(self, artifact_id: uuid.UUID, alias: object, version: int) -> None:
        if not isinstance(alias, str) or not ALIAS.match(alias) or alias == "latest" or alias.isdigit():
            raise BadRequest("alias: a name of letters, digits, '.', '_', '-' (not 'latest', not a number)")
        self.resolve(artifact_id, str(version))
        with self.engine.begin() as conn:
            conn.execute(
                artifact_aliases.delete().where(
                    artifact_aliases.c.artifact_id == artifact_id, artifact_aliases.c.alias == alias
                )
            )
            conn.execute(
                artifact_aliases.insert().values(artifact_id=artifact_id, alias=alias, version=version)
            )

    def add_tags(self, artifact_id: uuid.UUID, version: int, tags: object) -> list[str]:
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags):
            raise BadRequest("tags: a list of strings")
        self.resolve(artifact_id, str(version))
        where = (artifact_versions.c.artifact_id == artifact_id, artifact_versions.c.version == version)
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(artifact_versions.c.tags).where(*where)).scalar_one()
            merged = sorted(set(current) | set(tags))
            conn.execute(artifact_versions.update().where(*where).values(tags=merged))
        return merged

    def set_access(self, artifact_id: uuid.UUID, access: object, team_id: uuid.UUID | None) -> None:
        if access not in ACCESS:
            raise BadRequest(f"access: one of {', '.join(ACCESS)}")
        if access == "protected" and team_id is None:
            raise BadRequest("a protected artifact needs a team_id")
        with self.engine.begin() as conn:
            conn.execute(
                artifacts.update().where(artifacts.c.id == artifact_id).values(access=access, team_id=team_id)
            )

    def set_default_permission(self, artifact_id: uuid.UUID, permission: object) -> None:
        if permission not in ("read", "write"):
            raise BadRequest("permission: read or write")
        with self.engine.begin() as conn:
            conn.execute(
                artifacts.update().where(artifacts.c.id == artifact_id).values(default_permission=permission)
            )

    def delete(self, artifact_id: uuid.UUID) -> None:
        with self.engine.begin() as conn:
            versions = (
                conn.execute(
                    sa.select(artifact_versions.c.version).where(
                        artifact_versions.c.artifact_id == artifact_id
                    )
                )
                .scalars()
                .all()
            )
            conn.execute(artifact_aliases.delete().where(artifact_aliases.c.artifact_id == artifact_id))
            conn.execute(deployment_secrets.delete().where(deployment_secrets.c.artifact_id == artifact_id))
            conn.execute(artifact_versions.delete().where(artifact_versions.c.artifact_id == artifact_id))
            conn.execute(artifacts.delete().where(artifacts.c.id == artifact_id))
        for version in versions:
            self.blobs.delete(self.blob_name(artifact_id, version))

    # -- uploading --------------------------------------------------------------------

    def begin(
        self,
        user_id: uuid.UUID | None,
        actor: str,
        name: object,
        type_: object,
        existing: uuid.UUID | None,
        quota_room: int | None = None,
        granted: tuple[HostPattern, ...] | None = (),
    ) -> str:
        if not isinstance(name, str) or not ALIAS.match(name):
            raise BadRequest("name: 2 to 64 letters, digits, '.', '_' or '-'")
        if type_ not in TYPES:
            raise BadRequest("type: plugin or bundle")
        self._expire()
        token = "mru_" + secrets.token_urlsafe(32)
        tighter = quota_room if quota_room is not None and quota_room < self.max_size else None
        receiver = Receiver(self.scratch, self.max_size if tighter is None else tighter)
        self._uploads[_digest(token)] = Upload(
            user_id, actor, name, str(type_), existing, receiver, tighter, granted=granted
        )
        return token

    def upload(self, token: str) -> Upload:
        self._expire()
        upload = self._uploads.get(_digest(token))
        if upload is None:
            raise Unauthorized("unknown or expired upload token")
        return upload

    def abort(self, token: str) -> None:
        upload = self._uploads.pop(_digest(token), None)
        if upload is not None:
            upload.receiver.abort()

    def add_chunk(self, token: str, index: int, data: bytes) -> Upload:
        upload = self.upload(token)
        if index != upload.next_chunk:
            self.abort(token)
            raise Conflict(
                f"chunk {index} out of order (expected {upload.next_chunk}): upload cancelled, start again"
            )
        try:
            upload.receiver.write(data)
        except receive.TooLarge:
            self.abort(token)
            if upload.quota_room is not None:
                raise QuotaExceeded(
                    f"artifact storage quota: only {upload.quota_room} more bytes fit; upload cancelled"
                ) from None
            raise TooLarge(
                f"artifact larger than the {self.max_size}-byte limit; the upload is cancelled"
            ) from None
        upload.next_chunk += 1
        return upload

    def commit(self, token: str, sha256: object) -> dict:
        upload = self.upload(token)
        try:
            if not isinstance(sha256, str) or len(sha256) != 64:
                raise BadRequest("sha256: the upload's SHA-256, 64 hex digits")
            if upload.next_chunk == 0:
                raise BadRequest("no chunk was uploaded")
            digest = upload.receiver.finish().sha256
            if digest != sha256.lower():
                raise Unprocessable(f"SHA-256 mismatch: the chunks received hash to {digest}")
            check(upload.type, upload.receiver.path, upload.granted)
            return self._store(upload, digest)
        finally:
            self.abort(token)

    def _store(self, upload: Upload, digest: str) -> dict:
        with self.engine.begin() as conn:
            artifact_id = upload.artifact_id
            if artifact_id is None:
                artifact_id = uuid.uuid4()
                try:
                    conn.execute(
                        artifacts.insert().values(
                            id=artifact_id,
                            name=upload.name,
                            type=upload.type,
                            owner_id=upload.user_id,
                            team_id=None,
                            access="private",
                            default_permission="read",
                            created_at=utc_now(),
                        )
                    )
                except sa.exc.IntegrityError:
                    raise Conflict("an artifact with that name was created meanwhile; push again") from None
            version = (
                conn.execute(
                    sa.select(sa.func.max(artifact_versions.c.version)).where(
                        artifact_versions.c.artifact_id == artifact_id
                    )
                ).scalar()
                or 0
            ) + 1
            kept = upload.receiver.path.with_suffix(".keep")
            if self.key is not None:
                seal(self.key, upload.receiver.path, kept)
            else:
                upload.receiver.path.rename(kept)
            self.blobs.put(self.blob_name(artifact_id, version), kept)
            conn.execute(
                artifact_versions.insert().values(
                    artifact_id=artifact_id,
                    version=version,
                    sha256=digest,
                    size=upload.receiver.size,
                    pushed_by=upload.actor,
                    pushed_at=utc_now(),
                    tags=[],
                    encryption=SEALED if self.key is not None else None,
                )
            )
        return {"artifact_id": str(artifact_id), "version": version, "sha256": digest}

    def _expire(self) -> None:
        cutoff = time.monotonic() - UPLOAD_TTL
        for key, upload in list(self._uploads.items()):
            if upload.started < cutoff:
                self._uploads.pop(key, None)
                upload.receiver.abort()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _access(row: sa.Row) -> ArtifactAccess:
    return ArtifactAccess(row.id, row.owner_id, row.team_id, row.access, row.default_permission)


def _summary(row: sa.Row) -> dict:
    return {
        "id": str(row.id),
        "name": row.name,
        "type": row.type,
        "owner_id": str(row.owner_id) if row.owner_id else None,
        "team_id": str(row.team_id) if row.team_id else None,
        "access": row.access,
        "default_permission": row.default_permission,
        "created_at": row.created_at.isoformat(),
    }
