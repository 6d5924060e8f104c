"""Running a WASI command module (``_start``) to its exit, on a thread.

Each run gets its own wasmtime Engine, so its epoch belongs to it alone: the
time limit, or a kill (module deleted), advances that epoch and the guest
traps at its next check. stdin, stdout and stderr are named pipes, so output
reaches ``on_output`` line by line while the module runs and input can be fed
to it as it arrives (SilverLine channels). A file channel (a guest path
opened for writing) is a file in a preopened scratch directory, tailed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wasmtime import Engine, ExitTrap, Linker, Store, Trap, WasiConfig, WasmtimeError

from modrun.metrics import procfs
from modrun.wasm.engine import WasmEngine, engine_config
from modrun.wasm.limits import Limits

OutputHandler = Callable[[str, bytes], None]
"""(stream, line): stream is ``stdout``, ``stderr`` or a guest file path."""

TAIL_INTERVAL = 0.05


def channel_path(path: str) -> str:
    """A file channel's guest path, checked: absolute, no ``..`` or empty
    segments, no NUL. Its host file lives under the run's scratch directory, so
    a path that could climb out of it is refused (ValueError), never followed."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ValueError(f"channel path {path!r}: an absolute path")
    parts = path[1:].split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"channel path {path!r}: no empty, '.' or '..' segments")
    return "/" + "/".join(parts)


@dataclass
class CommandResult:
    exit_code: int | None
    reason: str  # exit | trap | limit | timeout | killed | error
    message: str | None
    duration: float

    def as_dict(self) -> dict:
        return {
            "exit_code": self.exit_code,
            "reason": self.reason,
            "message": self.message,
            "duration_sec": round(self.duration, 6),
        }


@dataclass
class CommandSpec:
    wasm: bytes
    argv: list[str]
    env: list[tuple[str, str]] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    stdin: bool = False  # keep stdin open for write_stdin()
    files: list[str] = field(default_factory=list)  # guest paths whose writes are reported

    def __post_init__(self) -> None:
        self.files = [channel_path(f) for f in self.files]  # a spec never holds a path out of the scratch


class CommandRun:
    def __init__(self, spec: CommandSpec, node_engine: WasmEngine, on_output: OutputHandler) -> None:
        self.spec = spec
        self.on_output = on_output
        self.engine = Engine(engine_config())
        self.module = node_engine.compile_into(self.engine, spec.wasm)
        self.dir = Path(tempfile.mkdtemp(prefix="modrun-cmd-"))
        self._killed = threading.Event()
        self._timed_out = False
        self._done = threading.Event()
        self.result: CommandResult | None = None
        self.started = 0.0
        self.thread_id: int | None = None
        self._stdin_fd: int | None = None
        self._readers: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._run, name="modrun-wasi", daemon=True)

    # -- control --------------------------------------------------------------------

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def write_stdin(self, data: bytes) -> None:
        fd = self._stdin_fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, data)

    def close_stdin(self) -> None:
        fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def kill(self) -> None:
        self._killed.set()
        self.close_stdin()
        for _ in range(3):
            self.engine.increment_epoch()

    def wait(self, timeout: float | None = None) -> CommandResult | None:
        self._done.wait(timeout)
        return self.result

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def cpu_seconds(self) -> float:
        """CPU time the run's thread has used (Linux: /proc)."""
        if self.thread_id is None:
            return 0.0
        return procfs.cpu_seconds(f"/proc/self/task/{self.thread_id}/stat")

    # -- the run ------------------------------------------------------------------------

    def _pipe(self, name: str) -> str:
        path = str(self.dir / name)
        os.mkfifo(path, 0o600)
        return path

    def _wasi(self) -> WasiConfig:
        wasi = WasiConfig()
        wasi.argv = self.spec.argv
        wasi.env = [list(pair) for pair in self.spec.env]
        if self.spec.stdin:
            path = self._pipe("stdin")
            self._stdin_fd = os.open(path, os.O_RDWR)  # never blocks; we hold both ends
            wasi.stdin_file = path
        for stream in ("stdout", "stderr"):
            path = self._pipe(stream)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(fd, True)
            self._readers.append(threading.Thread(target=self._pump, args=(fd, stream), daemon=True))
            setattr(wasi, f"{stream}_file", path)
        for guest_dir in sorted({os.path.dirname(f) or "/" for f in self.spec.files}):
            host = self.dir / "files" / guest_dir.strip("/")
            host.mkdir(parents=True, exist_ok=True)
            wasi.preopen_dir(str(host), guest_dir)
        return wasi

    def _run(self) -> None:
        self.thread_id = threading.get_native_id()
        timer = threading.Thread(target=self._deadline, daemon=True)
        tailer = threading.Thread(target=self._tail_files, daemon=True) if self.spec.files else None
        try:
            self.result = self._execute(timer, tailer)
        except Exception as exc:  # the run must always report an end
            self.result = self._finish(None, "error", f"{type(exc).__name__}: {exc}")
        finally:
            # The store is gone with _execute's frame, so the pipes' write ends are closed.
            self.close_stdin()
            for reader in self._readers:
                reader.join(2)
            self._killed.set()  # stops the timer and the tailer
            if tailer is not None:
                tailer.join(2)
            self._done.set()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _execute(self, timer: threading.Thread, tailer: threading.Thread | None) -> CommandResult:
        store = Store(self.engine)
        store.set_limits(memory_size=self.spec.limits.max_memory)
        store.set_wasi(self._wasi())
        store.set_epoch_deadline(1)
        for thread in (*self._readers, timer, *([tailer] if tailer else [])):
            thread.start()
        linker = Linker(self.engine)
        linker.define_wasi()
        try:
            instance = linker.instantiate(store, self.module)
            start = instance.exports(store).get("_start")
            if start is None:
                return self._finish(None, "error", "the module exports no _start: not a WASI command")
            start(store)  # type: ignore[operator]
            return self._finish(0, "exit", None)
        except ExitTrap as exc:
            return self._finish(exc.code, "exit", None)
        except Trap as exc:
            return self._trapped(str(exc))
        except WasmtimeError as exc:
            return self._finish(None, "error", _first_line(str(exc)))

    def _finish(self, code: int | None, reason: str, message: str | None) -> CommandResult:
        return CommandResult(code, reason, message, time.monotonic() - self.started)

    def _trapped(self, message: str) -> CommandResult:
        if "interrupt" in message:
            if self._killed.is_set() and not self._timed_out:
                return self._finish(None, "killed", "stopped: the module was deleted")
            return self._finish(None, "timeout", f"time limit of {self.spec.limits.timeout:g} s exceeded")
        reason = _first_line(message)
        kind = "limit" if "memory" in reason and ("grow" in reason or "limit" in reason) else "trap"
        return self._finish(None, kind, reason)

    def _deadline(self) -> None:
        limit = self.spec.limits.timeout
        if not self._killed.wait(limit if limit > 0 else None) and not self._done.is_set():
            self._timed_out = True
            self.kill()

    # -- output ---------------------------------------------------------------------------

    def _pump(self, fd: int, stream: str) -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.on_output(stream, line)
        except OSError:
            pass
        finally:
            if pending:
                self.on_output(stream, pending)
            os.close(fd)

    def _tail_files(self) -> None:
        positions: dict[str, int] = {}
        pending: dict[str, bytes] = {}

        def sweep(final: bool) -> None:
            for guest in self.spec.files:
                host = self.dir / "files" / guest.strip("/")
                try:
                    with open(host, "rb") as f:
                        f.seek(positions.get(guest, 0))
                        data = f.read()
                except OSError:
                    continue
                positions[guest] = positions.get(guest, 0) + len(data)
                buffered = pending.get(guest, b"") + data
                *lines, rest = buffered.split(b"\n")
                for line in lines:
                    self.on_output(guest, line)
                pending[guest] = rest
                if final and rest:
                    self.on_output(guest, rest)

        while not self._killed.wait(TAIL_INTERVAL):
            sweep(False)
        sweep(True)


def _first_line(message: str) -> str:
    from modrun.wasm.instance import _trap_reason

    return _trap_reason(message)
