"""One running model process, whatever carries its stdin/stdout (pipes or SSH).

A ``Channel`` delivers stdout lines to a queue (so every read has a timeout)
and stderr lines to the log; ``ModelProcess`` speaks the protocol over it.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from typing import Any, Protocol

from modrun.errors import HostFunctionError

EOF_MARK = None


class ProcessDied(HostFunctionError):
    """The process exited (or its connection dropped)."""


class ProcessHung(HostFunctionError):
    """The process did not answer within the timeout and was killed."""


class Channel(Protocol):
    lines: queue.Queue  # stdout lines; EOF_MARK at end of stream
    stderr_tail: deque

    def write(self, data: bytes) -> None: ...
    def alive(self) -> bool: ...
    def kill(self) -> None: ...
    def close(self, exit_request: bytes, grace: float) -> None: ...


class ModelProcess:
    def __init__(
        self, name: str, channel: Channel, protocol: Any, ready_timeout: float, wait_ready: bool
    ) -> None:
        self.name = name
        self.channel = channel
        self.protocol = protocol
        self.calls = 0
        self.started = time.monotonic()
        if wait_ready:
            self._await_ready(ready_timeout)

    def _await_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, "to become ready")
            if self.protocol.is_ready(line):
                return

    def _next_line(self, deadline: float, doing: str) -> str:
        remaining = deadline - time.monotonic()
        try:
            line = self.channel.lines.get(timeout=max(remaining, 0.001))
        except queue.Empty:
            self.channel.kill()
            raise ProcessHung(
                f"model {self.name}: no answer within the time limit while waiting {doing}; "
                "the process was killed"
            ) from None
        if line is EOF_MARK:
            tail = " | ".join(self.channel.stderr_tail) or "no stderr output"
            raise ProcessDied(f"model {self.name}: process exited while waiting {doing} (stderr: {tail})")
        return line

    def invoke(self, payload: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        try:
            self.channel.write(self.protocol.request(payload))
        except OSError:
            raise ProcessDied(f"model {self.name}: process is gone") from None
        buffer: list[str] = []
        while True:
            reply = self.protocol.feed(self._next_line(deadline, "for a reply"), buffer)
            if reply is not None:
                self.calls += 1
                return reply.value

    def alive(self) -> bool:
        return self.channel.alive()

    def close(self) -> None:
        self.channel.close(self.protocol.exit_request(), grace=2.0)


def stderr_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"modrun.model.{name}")
