"""One wasmtime engine per node: configuration, epoch ticker, compiled-module cache.

Timeouts use epoch interruption: a daemon thread advances the engine's epoch
every ``TICK`` seconds and each call sets its deadline in ticks. Compiled modules
are serialized under ``<storagePath>/cache/modules`` keyed by the wasm's SHA-256
and the engine's identity, so a restart deserializes instead of recompiling.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

from wasmtime import Config, Engine, Module

from modrun.wasm.kernel import compile_kernel

log = logging.getLogger(__name__)

TICK = 0.01
"""Seconds per epoch tick: the granularity of timeouts."""


def engine_config() -> Config:
    config = Config()
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
    return config


class WasmEngine:
    """The shared engine plus what every plugin instance links against."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.engine = Engine(engine_config())
        self.kernel = compile_kernel(self.engine)
        self.kernel_exports = frozenset(e.name for e in self.kernel.exports)
        self.cache_dir = cache_dir
        self.identity = f"wasmtime-{_wasmtime_version()}-epoch-speed"
        self._ticker = threading.Thread(target=self._tick, name="modrun-epoch", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        increment = self.engine.increment_epoch
        while True:
            time.sleep(TICK)
            increment()

    @staticmethod
    def ticks(seconds: float) -> int:
        return max(1, int(seconds / TICK) + 1)

    def compile(self, wasm: bytes) -> tuple[Module, bool]:
        """Compile ``wasm`` (or load it from the cache). Returns the module and
        whether it came from the cache."""
        path = self._cache_path(wasm)
        if path is not None and path.exists():
            try:
                return Module.deserialize_file(self.engine, str(path)), True
            except Exception as exc:  # stale or corrupt cache entry: rebuild it
                log.warning("discarding unusable compiled-module cache %s: %s", path, exc)
        module = Module(self.engine, wasm)
        if path is not None:
            self._store(path, module)
        return module, False

    def compile_into(self, engine: Engine, wasm: bytes) -> Module:
        """``wasm`` compiled for another engine of the same configuration
        (a WASI command's own engine), through the same on-disk cache."""
        path = self._cache_path(wasm)
        if path is None:
            return Module(engine, wasm)
        if not path.exists():
            self.compile(wasm)
        try:
            return Module.deserialize_file(engine, str(path))
        except Exception:
            return Module(engine, wasm)

    def _cache_path(self, wasm: bytes) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(self.identity.encode() + b"\0" + wasm).hexdigest()
        return self.cache_dir / f"{key}.cwasm"

    @staticmethod
    def _store(path: Path, module: Module) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(module.serialize())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write compiled-module cache %s: %s", path, exc)


def _wasmtime_version() -> str:
    return version("wasmtime")
