"""N warm processes of one model, with queueing, restarts and health.

* ``size`` processes are started at once (in the background) and kept warm.
* A request takes an idle process, waiting up to ``queue_timeout``.
* A process that dies is replaced, with backoff (0.5 s doubling to 30 s)
  while replacements keep failing; one that does not answer within the call
  timeout is killed and replaced. The request that met it fails with a clear
  error; other requests are not affected.
* ``ping()`` reports how many processes are alive and idle.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from modrun.errors import HostFunctionError
from modrun.models.executors.process import ModelProcess, ProcessDied, ProcessHung

log = logging.getLogger("modrun.models")

MAX_BACKOFF = 30.0


class ProcessPool:
    def __init__(
        self,
        name: str,
        spawn: Callable[[], ModelProcess],
        size: int,
        call_timeout: float,
        queue_timeout: float,
    ) -> None:
        self.name = name
        self.size = size
        self.call_timeout = call_timeout
        self.queue_timeout = queue_timeout
        self._spawn = spawn
        self._idle: queue.Queue[ModelProcess] = queue.Queue()
        self._lock = threading.Lock()
        self._live = 0
        self._failures = 0
        self._closed = False
        self.last_error: str | None = None
        self.restarts = 0
        for _ in range(size):
            self._start_one(delay=0.0)

    def _start_one(self, delay: float) -> None:
        threading.Thread(
            target=self._starter, args=(delay,), daemon=True, name=f"model-{self.name}-start"
        ).start()

    def _starter(self, delay: float) -> None:
        while not self._closed:
            if delay:
                time.sleep(delay)
            try:
                process = self._spawn()
            except HostFunctionError as exc:
                with self._lock:
                    self._failures += 1
                    delay = min(0.5 * 2 ** (self._failures - 1), MAX_BACKOFF)
                self.last_error = exc.message
                log.warning("%s; retrying in %.1fs", exc.message, delay)
                continue
            with self._lock:
                self._failures = 0
                self._live += 1
            if self._closed:
                process.close()
                return
            self._idle.put(process)
            return

    def _replace(self, process: ModelProcess) -> None:
        with self._lock:
            self._live -= 1
            self.restarts += 1
            delay = min(0.5 * 2**self._failures, MAX_BACKOFF) if self._failures else 0.0
        process.channel.kill()
        self._start_one(delay)

    def invoke(self, payload: Any) -> Any:
        try:
            process = self._idle.get(timeout=self.queue_timeout)
        except queue.Empty:
            why = f" (last start failure: {self.last_error})" if self.last_error and not self._live else ""
            raise HostFunctionError(
                f"model {self.name}: no process free within {self.queue_timeout:g}s "
                f"({self._live} of {self.size} running){why}"
            ) from None
        try:
            result = process.invoke(payload, self.call_timeout)
        except (ProcessDied, ProcessHung):
            self._replace(process)
            raise
        self._idle.put(process)
        return result

    def ping(self) -> dict[str, Any]:
        alive = self._live
        return {
            "processes": self.size,
            "alive": alive,
            "idle": self._idle.qsize(),
            "restarts": self.restarts,
            "healthy": alive > 0,
            "lastError": self.last_error,
        }

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
