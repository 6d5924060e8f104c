"""Receiving an upload into a scratch file: size-limited, hashed as it is written,
so nothing needs reading twice and nothing is kept when it is abandoned."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


class TooLarge(ValueError):
    pass


class Receiver:
    """Takes an upload chunk by chunk into a scratch file, hashing as it goes."""

    def __init__(self, scratch: Path, max_size: int) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=scratch, suffix=".upload")
        self.path = Path(name)
        self._file = open(fd, "wb")  # noqa: SIM115 - closed by finish/abort
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_size = max_size
        self.sha256 = ""

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise TooLarge(f"file is larger than the {self.max_size}-byte limit")
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Receiver:
        self._file.close()
        self.sha256 = self._hash.hexdigest()
        return self

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
