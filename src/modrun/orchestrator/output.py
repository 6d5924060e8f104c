"""What modules print: the latest lines of every module's stdout and stderr.

Nodes publish them on ``{realm}/proc/stdout|stderr/{module}`` (a WASI
command's output, a plugin module's log lines and call errors). The
orchestrator keeps the latest ``LINES`` per module in memory for ``GET
/api/modules/{q}/output`` and deployment logs; the oldest modules' lines are
dropped past ``MODULES``. Lines are not persisted: a log pipeline that needs
them all subscribes to the topics itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from modrun.db.times import utc_now
from modrun.fleet import protocol as P

LINES = 500
MODULES = 5000
MAX_LINE = 4096


class ModuleOutput:
    def __init__(self, topics: P.Topics, lines: int = LINES, modules: int = MODULES) -> None:
        self.topics = topics
        self.lines = lines
        self.modules = modules
        self._buffers: OrderedDict[str, deque[dict]] = OrderedDict()
        self._lock = threading.Lock()

    def subscriptions(self) -> list[str]:
        return [f"{self.topics.realm}/proc/stdout/+", f"{self.topics.realm}/proc/stderr/+"]

    def on_mqtt(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 2 or parts[-2] not in ("stdout", "stderr"):
            return
        line = payload[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\n")
        entry = {"at": utc_now().isoformat(), "stream": parts[-2], "line": line}
        with self._lock:
            buffer = self._buffers.get(parts[-1])
            if buffer is None:
                buffer = self._buffers[parts[-1]] = deque(maxlen=self.lines)
                while len(self._buffers) > self.modules:
                    self._buffers.popitem(last=False)
            else:
                self._buffers.move_to_end(parts[-1])
            buffer.append(entry)

    def of(self, module: str, since: str | None = None) -> list[dict]:
        """The module's kept lines, oldest first; ``since`` (ISO time) keeps later ones."""
        with self._lock:
            entries = list(self._buffers.get(module, ()))
        return [e for e in entries if since is None or e["at"] > since]
