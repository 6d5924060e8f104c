"""What a host function is, and what it can see of the call that invoked it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

LEVELS = ("trace", "debug", "info", "warn", "error")


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


class MustRunOnThread(Exception):
    """Raised by a host function that may block or has outside effects when it
    is reached during a speculative inline call; the call is then re-run on a
    worker thread from scratch (nothing it did so far is kept)."""


class VarStore:
    """Extism vars of one plugin: bytes by key, shared by all its instances,
    kept until the plugin is reloaded. Bounded in total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: dict[bytes, bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def commit(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Apply a call's writes (None deletes) all at once."""
        with self._lock:
            size = self._size
            for key, value in writes.items():
                old = self._data.get(key)
                size -= 0 if old is None else len(key) + len(old)
                size += 0 if value is None else len(key) + len(value)
            if size > self.max_bytes:
                raise ValueError(f"plugin vars would hold {size} bytes, over the {self.max_bytes}-byte limit")
            for key, value in writes.items():
                if value is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = value
            self._size = size


@dataclass(slots=True)
class CallState:
    """Everything one call accumulates; discarded if the call is re-run."""

    function: str
    speculative: bool = False
    logs: list[LogLine] = field(default_factory=list)
    var_writes: dict[bytes, bytes | None] = field(default_factory=dict)
    http_status: int = 0
    http_headers: bytes = b"{}"
    pending: BaseException | None = None
    streams: dict[str, bytearray] = field(default_factory=dict)

    def var(self, store: VarStore, key: bytes) -> bytes | None:
        if key in self.var_writes:
            return self.var_writes[key]
        return store.get(key)


class GuestCall(Protocol):
    """The view a host function has of the running call (a plugin instance)."""

    plugin_name: str
    config: Mapping[str, str]
    vars: VarStore
    state: CallState
    log_level: int

    def read(self, handle: int) -> bytes: ...
    def write(self, data: bytes) -> int: ...
    def read_guest(self, address: int, length: int) -> bytes: ...


@dataclass(frozen=True)
class HostFunction:
    """A function plugins import as ``module.name``.

    ``params``/``results`` are wasm value types (``"i32"`` or ``"i64"``);
    ``impl(call, *params)`` returns the single result (or None). ``effects``
    marks functions that may block or act outside the call, which therefore
    never run during a speculative inline attempt.
    """

    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    impl: Callable[..., int | None]
    effects: bool = False
