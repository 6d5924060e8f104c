"""Capturing a plugin instance's WASI stdout and stderr into the call's logs.

wasmtime-py's custom output streams call back into Python from wasmtime's
own (tokio) threads, which can happen after the interpreter has begun
shutting down and then crashes the process. So output goes to one file per
stream per instance (on /dev/shm when available) and is read incrementally,
in bulk, after each call.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path

MAX_BYTES = 1 << 20
"""An instance whose captured output files grow past this is retired."""

_DIR: Path | None = None


def _directory() -> Path:
    global _DIR
    if _DIR is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _DIR = Path(tempfile.mkdtemp(prefix="modrun-wasi-", dir=base))
    return _DIR


class OutputCapture:
    """Files wasmtime writes a store's stdout/stderr to, and read positions."""

    STREAMS = ("stdout", "stderr")

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}
        self._fds: dict[str, int] = {}
        self._pos = dict.fromkeys(self.STREAMS, 0)
        for stream in self.STREAMS:
            fd, path = tempfile.mkstemp(prefix=f"{stream}-", dir=_directory())
            self.paths[stream] = path
            self._fds[stream] = fd
        self._finalizer = weakref.finalize(self, _cleanup, dict(self._fds), dict(self.paths))

    def collect(self) -> dict[str, bytes]:
        """Bytes written to each stream since the last collect.

        Runs after every call of a WASI plugin, so the common case (nothing
        written) is one ``lseek`` per stream: it returns the size as a plain
        int, cheaper than ``fstat``."""
        out: dict[str, bytes] = {}
        for stream, fd in self._fds.items():
            size = os.lseek(fd, 0, os.SEEK_END)
            pos = self._pos[stream]
            if size > pos:
                out[stream] = os.pread(fd, size - pos, pos)
                self._pos[stream] = size
        return out

    @property
    def exhausted(self) -> bool:
        return max(self._pos.values()) > MAX_BYTES

    def close(self) -> None:
        self._finalizer()


def _cleanup(fds: dict[str, int], paths: dict[str, str]) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass
    for path in paths.values():
        try:
            os.unlink(path)
        except OSError:
            pass
