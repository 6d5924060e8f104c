"""The app in an S3 bucket: ``s3://<bucket>/<prefix>``, mirrored to local disk.

``sync`` lists the prefix (one ListObjectsV2 per 1,000 objects) and compares
ETags with the last listing; changed objects are downloaded (to a temporary
name, then renamed, so a loader never sees half a file) and removed ones are
deleted from the mirror. The mirror keeps the layout, so every local layout
works in S3 too (``*.wasm``, source roots with ``build/*.wasm``, schema
sidecars, ``modrun.json``, ``.env`` files). AWS settings come from the usual
places (environment, ``~/.aws``, instance roles); ``AWS_ENDPOINT_URL``
points it at an S3-compatible server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from modrun.errors import ConfigError

log = logging.getLogger("modrun.storage")

RELEVANT_SUFFIXES = (".wasm", ".json")


def _relevant(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.endswith(RELEVANT_SUFFIXES) or name.startswith(".env")


class S3Storage:
    def __init__(self, bucket: str, prefix: str, mirror_root: Path, client=None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client("s3")
        self.mirror = mirror_root / "s3" / bucket / self.prefix.strip("/")
        self.mirror.mkdir(parents=True, exist_ok=True)
        self._etags: dict[str, str] = {}
        self.last_error: str | None = None

    @property
    def app_dir(self) -> Path:
        return self.mirror

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _listing(self) -> dict[str, str]:
        objects: dict[str, str] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(self.prefix) :]
                if rel and not rel.endswith("/") and _relevant(rel):
                    objects[rel] = obj["ETag"]
        return objects

    def sync(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            listing = self._listing()
        except (BotoCoreError, ClientError) as exc:
            message = f"cannot list {self.describe()}: {exc}"
            if message != self.last_error:
                log.error("%s; serving what was loaded before", message)
            self.last_error = message
            return False
        changed = False
        for rel, etag in listing.items():
            if self._etags.get(rel) == etag:
                continue
            target = self.mirror / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.download")
            try:
                self.client.download_file(self.bucket, self.prefix + rel, str(tmp))
            except (BotoCoreError, ClientError) as exc:
                log.error("cannot download %s%s: %s", self.describe(), rel, exc)
                continue
            os.replace(tmp, target)
            self._etags[rel] = etag
            changed = True
        for rel in set(self._etags) - set(listing):
            (self.mirror / rel).unlink(missing_ok=True)
            del self._etags[rel]
            changed = True
        self.last_error = None
        return changed


def s3_storage(bucket: str | None, prefix: str | None, mirror_root: Path) -> S3Storage:
    if not bucket:
        raise ConfigError("--useAwsStorage needs --s3bucket")
    return S3Storage(bucket, prefix or "", mirror_root)
