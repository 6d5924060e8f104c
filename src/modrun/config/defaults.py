"""Defaults shared by the node, the orchestrator and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PORT = 8686
DEFAULT_REFRESH = 5.0
DEFAULT_MAX_INPUT = 64 * 1024 * 1024


def default_storage_path() -> Path:
    return Path(os.environ.get("MODRUN_STORAGE_PATH") or Path.home() / ".modrun")
