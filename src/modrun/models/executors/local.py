"""``local`` executor: ``sh -c "cd <workdir> && <command>"`` with pipes."""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from modrun.models.executors.process import EOF_MARK, stderr_logger

STDERR_TAIL = 20


class LocalChannel:
    def __init__(self, name: str, command: str, workdir: Path, env: Mapping[str, str]) -> None:
        self.lines: queue.Queue = queue.Queue()
        self.stderr_tail: deque = deque(maxlen=STDERR_TAIL)
        self._log = stderr_logger(name)
        self.proc = subprocess.Popen(
            ["sh", "-c", f"cd {shlex.quote(str(workdir))} && exec {command}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            start_new_session=True,
        )
        threading.Thread(target=self._read_stdout, daemon=True, name=f"model-{name}-out").start()
        threading.Thread(target=self._read_stderr, daemon=True, name=f"model-{name}-err").start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(EOF_MARK)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            self._log.info("%s", line)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=10)

    def close(self, exit_request: bytes, grace: float) -> None:
        if self.alive():
            try:
                if exit_request:
                    self.write(exit_request)
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            self.kill()
