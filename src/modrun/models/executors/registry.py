"""The node's running executors, kept in step with the manifest's models.

A manifest reload restarts only the models whose spec changed (new processes
start before the old ones are closed, so requests in flight finish).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modrun.manifest.model import EXECUTOR_PROVIDERS, ModelSpec
from modrun.models.executors.factory import make_executor

log = logging.getLogger("modrun.models")
RETIRE_AFTER = 30.0


class ExecutorRegistry:
    def __init__(self, app_dir: Path) -> None:
        self.app_dir = app_dir
        self._running: dict[str, tuple[ModelSpec, Any]] = {}
        self._lock = threading.Lock()

    def sync(self, models: Mapping[str, ModelSpec]) -> None:
        wanted = {n: s for n, s in models.items() if s.provider in EXECUTOR_PROVIDERS}
        retired = []
        with self._lock:
            for name in list(self._running):
                if name not in wanted or self._running[name][0] != wanted[name]:
                    retired.append(self._running.pop(name)[1])
            for name, spec in wanted.items():
                if name not in self._running:
                    try:
                        self._running[name] = (spec, make_executor(name, spec, self.app_dir))
                        log.info(
                            "model %s: %s executor started (%s)",
                            name,
                            spec.provider,
                            f"pool of {spec.pool}" if spec.provider != "embedded" else spec.source_model,
                        )
                    except Exception as exc:  # reported on use, not fatal to the node
                        log.error("model %s: cannot start: %s", name, exc)
        for executor in retired:
            timer = threading.Timer(RETIRE_AFTER, executor.close)
            timer.daemon = True
            timer.start()

    def get(self, name: str) -> Any | None:
        entry = self._running.get(name)
        return entry[1] if entry else None

    def status(self) -> dict[str, Any]:
        return {name: executor.ping() for name, (_spec, executor) in list(self._running.items())}

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, {}
        for _spec, executor in running.values():
            executor.close()
