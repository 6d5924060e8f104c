"""Writing a file that holds a secret: whole, and never readable by others.

The data goes to a new temporary file beside the target, created with the
wanted mode (so it is never world-readable, whatever the umask widens), and is
then renamed over the target: a reader sees the old file or the new one, never
half of one.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
