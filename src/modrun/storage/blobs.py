"""Named blobs (the orchestrator's file store, later artifacts): one interface,
a local directory or an S3 prefix behind it.

Writes go through a local temporary file that the caller has already hashed
and size-checked, so a blob is either there whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


class BlobStore(Protocol):
    def put(self, name: str, source: Path) -> None:
        """Store the file ``source`` (consumed: moved or deleted) as ``name``."""
        ...

    def read(self, name: str) -> Iterator[bytes]: ...

    def local_path(self, name: str) -> Path | None:
        """A path to serve directly, when the blob is on local disk."""
        ...

    def delete(self, name: str) -> None: ...

    def describe(self) -> str: ...


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.root / name

    def put(self, name: str, source: Path) -> None:
        target = self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def read(self, name: str) -> Iterator[bytes]:
        with open(self._path(name), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def local_path(self, name: str) -> Path | None:
        path = self._path(name)
        return path if path.is_file() else None

    def delete(self, name: str) -> None:
        path = self._path(name)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def describe(self) -> str:
        return str(self.root)


class S3Blobs:
    """``s3://bucket/prefix``; AWS settings from the usual places
    (``AWS_ENDPOINT_URL`` for an S3-compatible server)."""

    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client("s3")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def put(self, name: str, source: Path) -> None:
        try:
            self.client.upload_file(str(source), self.bucket, self._key(name))
        finally:
            source.unlink(missing_ok=True)

    def read(self, name: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def local_path(self, name: str) -> Path | None:
        return None

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
