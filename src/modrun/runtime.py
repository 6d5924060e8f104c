"""Embedding modrun: load a plugins directory and call its functions in-process.

    >>> from modrun import Runtime
    >>> with Runtime("examples") as rt:
    ...     rt.call("reverse", "abc")
    b'cba'

Input follows the same rules as ``POST /functions/{name}`` (raw bytes, or a
JSON object of params for typed functions); failures raise
``modrun.errors.CallFailed`` subclasses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modrun.api.rest import prepare_input
from modrun.config.units import parse_duration, parse_size
from modrun.node.service import Node
from modrun.node.settings import ServeSettings
from modrun.plugins.invoker import CallResult


class Runtime:
    def __init__(
        self,
        plugins: str | Path,
        *,
        storage_path: str | Path | None = None,
        timeout: str | float | None = None,
        max_memory: str | int | None = None,
        db: str | None = None,
        history: bool = True,
    ) -> None:
        settings = ServeSettings(
            plugins=Path(plugins).expanduser().resolve(), noreload=True, db=db, history=history, migrate=True
        )
        if storage_path is not None:
            settings.storage_path = Path(storage_path).expanduser()
        if timeout is not None:
            settings.timeout = parse_duration(timeout)
        if max_memory is not None:
            settings.max_memory = parse_size(max_memory)
        self.node = Node(settings)
        self.node.start()

    def reload(self) -> bool:
        """Pick up changed plugins and manifest; True when something changed."""
        return self.node.reload()

    def invoke(self, function: str, data: bytes | str = b"") -> CallResult:
        """Call ``function`` (or ``plugin/function``); the result carries output, logs, duration."""
        if isinstance(data, str):
            data = data.encode()
        plugin, fn = self.node.manager.catalog.resolve(function)
        return self.node.invoker.call(plugin, fn, prepare_input(fn, data, plugin.schema.types))

    def stream(self, function: str, data: bytes | str = b"") -> Iterator[bytes]:
        """Call ``function`` and yield its output as it comes: each chunk it
        emits (``output_chunk``), then what it set as its output. Leaving the
        loop early stops the call; a failure raises ``CallFailed`` from it."""
        if isinstance(data, str):
            data = data.encode()
        plugin, fn = self.node.manager.catalog.resolve(function)
        return self.node.invoker.stream_iter(plugin, fn, prepare_input(fn, data, plugin.schema.types))

    def call(self, function: str, data: bytes | str = b"") -> bytes:
        """Call ``function`` and return its output bytes."""
        return self.invoke(function, data).output

    def functions(self) -> list[dict[str, Any]]:
        catalog = self.node.manager.catalog
        return [catalog.describe_function(fn) for fn in catalog.by_key.values()]

    @property
    def load_errors(self) -> dict[str, str]:
        return self.node.load_errors()

    def close(self) -> None:
        self.node.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
