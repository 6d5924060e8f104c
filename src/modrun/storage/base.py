"""One interface for app storage."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    """Presents the app as a local directory, kept in step by ``sync``."""

    @property
    def app_dir(self) -> Path: ...

    def sync(self) -> bool:
        """Bring ``app_dir`` up to date; True when anything changed."""
        ...

    def describe(self) -> str: ...


class LocalStorage:
    """The app is a local directory (or a single .wasm file); nothing to sync."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def app_dir(self) -> Path:
        return self.path

    def sync(self) -> bool:
        return False

    def describe(self) -> str:
        return str(self.path)
