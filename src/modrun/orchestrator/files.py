"""The orchestrator's file store: where module files live (``/api/files``).

Blobs sit in a local directory under ``--storagePath`` or in S3; the metadata
database indexes them (path, SHA-256, size, kind), so a module created from a stored
file carries its digest and nodes can verify and cache what they fetch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modrun.db.tables import fleet_files
from modrun.db.times import utc_now
from modrun.db.upsert import upsert
from modrun.expiring import ExpiringCache
from modrun.orchestrator.state import iso
from modrun.plugins.wasmbin import module_kind
from modrun.storage.blobs import BlobStore
from modrun.storage.receive import Receiver
from modrun.storage.sealed import NAME as SEALED
from modrun.storage.sealed import SealError, open_sealed, seal

RECENT = 5.0  # seconds a file's index row is taken as read (recent_info)
RECENT_MAX = 100_000

MAX_PATH = 512


class BadPath(ValueError):
    pass


@dataclass(frozen=True)
class FileInfo:
    path: str
    sha256: str
    size: int
    updated_at: datetime
    kind: str = "unknown"
    encryption: str | None = None  # aes-256-gcm when the blob is sealed (storage.sealed)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "updated_at": iso(self.updated_at),
        }


def clean_path(path: str) -> str:
    """A relative, normalized path, or BadPath: no absolute paths, ``..``,
    backslashes, control characters or empty segments."""
    if not path or len(path) > MAX_PATH:
        raise BadPath(f"file path must be 1 to {MAX_PATH} characters")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise BadPath(f"file path {path!r} must be relative, with '/' separators and no control characters")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadPath(f"file path {path!r} must not contain empty, '.' or '..' segments")
    return path


class FileStore:
    def __init__(
        self, blobs: BlobStore, engine: Engine, scratch: Path, max_size: int, key: bytes | None = None
    ) -> None:
        self.blobs = blobs
        self.engine = engine
        self.scratch = scratch
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.max_size = max_size
        self.key = key  # seal what is stored (--encryptArtifacts)
        # path -> (what was there,) as read lately; the 1-tuple keeps "no such file" apart from a miss
        self._recent: ExpiringCache[str, tuple[FileInfo | None]] = ExpiringCache(RECENT_MAX)
        self._recent_lock = threading.Lock()

    def receiver(self) -> Receiver:
        return Receiver(self.scratch, self.max_size)

    def commit(self, path: str, received: Receiver) -> FileInfo:
        """Store a fully received upload under ``path`` and index it."""
        path = clean_path(path)
        info = FileInfo(
            path,
            received.sha256,
            received.size,
            utc_now(),
            _kind(received.path),
            SEALED if self.key is not None else None,
        )
        if self.key is not None:
            sealed = received.path.with_suffix(".sealed")
            seal(self.key, received.path, sealed)
            received.path.unlink()
            sealed.rename(received.path)
        self.blobs.put(path, received.path)
        with self.engine.begin() as conn:
            upsert(conn, fleet_files, [info.__dict__], ["path"])
        self._forget(path)
        return info

    def recent_info(self, path: str) -> FileInfo | None:
        """``info``, read again at most every RECENT seconds: the control loop asks
        for every module it creates, and a database round trip each time made a
        burst of creates wait on the database (bench/bench_scale.py). This
        process's own writes are seen at once."""
        with self._recent_lock:
            found = self._recent.get(path)
        if found is not None:
            return found[0]
        info = self.info(path)
        with self._recent_lock:
            self._recent.put(path, (info,), time.monotonic() + RECENT)
        return info

    def _forget(self, path: str) -> None:
        with self._recent_lock:
            self._recent.discard(path)

    def info(self, path: str) -> FileInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(fleet_files).where(fleet_files.c.path == path)).first()
        return _info(row) if row else None

    def list(self, prefix: str = "") -> list[FileInfo]:
        query = sa.select(fleet_files).order_by(fleet_files.c.path)
        if prefix:
            query = query.where(fleet_files.c.path.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(query)]

    def local_file(self, info: FileInfo) -> Path | None:
        """The file on local disk when it is kept there in the clear."""
        return None if info.encryption else self.blobs.local_path(info.path)

    def read(self, info: FileInfo) -> Iterator[bytes]:
        chunks = self.blobs.read(info.path)
        if info.encryption is None:
            return chunks
        if self.key is None:
            raise SealError(f"{info.path} is stored encrypted; start with --encryptArtifacts and its key")
        return open_sealed(self.key, chunks)

    def delete(self, path: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(fleet_files.delete().where(fleet_files.c.path == path)).rowcount
        self._forget(path)
        if gone:
            self.blobs.delete(path)
        return bool(gone)


def _info(row: sa.Row) -> FileInfo:
    return FileInfo(row.path, row.sha256, row.size, row.updated_at, row.kind, row.encryption)


def _kind(path: Path) -> str:
    """What a module made from this file is: read once, at upload."""
    try:
        return module_kind(path.read_bytes())
    except ValueError:  # not WebAssembly: runtimes of other kinds may still use it
        return "unknown"
