"""What a host function is, and what it can see of the call that invoked it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

LEVELS = ("trace", "debug", "info", "warn", "error")


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    message: str


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


class OutputSink(Protocol):
    """Where a streaming call's chunks go as the guest emits them."""

    gone: bool  # the reader went away

    def emit(self, data: bytes, deadline: float | None = None) -> None:
        """Hand one chunk on; blocks while the reader is behind (backpressure),
        raises ``ClientGone`` once the reader has gone, ``CallTimeout`` at
        the deadline."""
        ...

    def opened(self, stream: Any) -> None:
        """A model stream the call opened: aborted if the reader goes."""
        ...


class CallState:
    """Everything one call accumulates; discarded if the call is re-run.

    Collections are created on first use: most calls log nothing, set no var
    and print nothing, and this object is made for every call.
    """

    __slots__ = (
        "chunks",
        "deadline",
        "function",
        "http_headers",
        "http_status",
        "logs",
        "model_streams",
        "pending",
        "sink",
        "speculative",
        "streams",
        "var_writes",
    )

    def __init__(self, function: str, speculative: bool = False) -> None:
        self.function = function
        self.sink: OutputSink | None = None  # set for a streaming call
        self.chunks: bytearray | None = None  # output_chunk's bytes when nobody streams them
        self.model_streams: dict[int, Any] | None = None  # open model streams, by handle
        self.deadline: float | None = None  # time.monotonic() the call must end by
        self.speculative = speculative
        self.logs: list[LogLine] | None = None
        self.var_writes: dict[bytes, bytes | None] | None = None
        self.streams: dict[str, bytearray] | None = None
        self.http_status = 0
        self.http_headers = b"{}"
        self.pending: BaseException | None = None

    def log(self, line: LogLine) -> None:
        if self.logs is None:
            self.logs = []
        self.logs.append(line)

    def write(self, stream: str, data: bytes) -> None:
        if self.streams is None:
            self.streams = {}
        self.streams.setdefault(stream, bytearray()).extend(data)

    def emit(self, data: bytes) -> None:
        """One chunk of the call's output: to the reader now, or kept to lead
        the whole output when the caller asked for it whole."""
        if self.sink is not None:
            self.sink.emit(data, self.deadline)
        elif self.chunks is None:
            self.chunks = bytearray(data)
        else:
            self.chunks.extend(data)

    def close_model_streams(self) -> None:
        for stream in (self.model_streams or {}).values():
            stream.close()
        self.model_streams = None

    def set_var(self, key: bytes, value: bytes | None) -> None:
        if self.var_writes is None:
            self.var_writes = {}
        self.var_writes[key] = value

    def var(self, store: VarStore, key: bytes) -> bytes | None:
        if self.var_writes is not None and key in self.var_writes:
            return self.var_writes[key]
        return store.get(key)

    def all_logs(self, levels: Mapping[str, str]) -> list[LogLine]:
        """Log lines, then captured output streams as lines (level by stream)."""
        logs = list(self.logs or ())
        for stream, data in (self.streams or {}).items():
            level = levels.get(stream, "info")
            logs.extend(LogLine(level, line) for line in data.decode("utf-8", "replace").splitlines())
        return logs


class GuestCall(Protocol):
    """The view a host function has of the running call (a plugin instance)."""

    plugin_name: str
    config: Mapping[str, str]
    vars: VarStore
    state: CallState
    log_level: int
    services: Any

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
