"""Helpers the tests share: free ports, real `modrun serve` processes, builds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELLO_AS = EXAMPLES / "hello-as" / "build" / "release.wasm"
TEXTKIT_C = EXAMPLES / "textkit-c" / "build" / "release.wasm"
CONNECT_AS = EXAMPLES / "connect-as" / "build" / "release.wasm"
CHAT_AS = EXAMPLES / "chat-as" / "build" / "release.wasm"
TEST_SOURCES = Path(__file__).resolve().parent / "plugins" / "src"


def chat_app(
    app: Path,
    api_server: str,
    model: str = "delay-20",
    *,
    timeout: float | None = None,
    models: dict | None = None,
    plugin: bool = True,
) -> Path:
    """``app`` with examples/chat-as and its schema (``plugin``), and a manifest
    whose ``assistant`` is the test server's OpenAI-compatible ``model``
    (``timeout``: its idle timeout), beside any other ``models``."""
    app.mkdir(parents=True, exist_ok=True)
    if plugin:
        shutil.copy(CHAT_AS, app / "chat.wasm")
        shutil.copy(EXAMPLES / "chat-as" / "modrun.schema.json", app / "chat.schema.json")
    spec: dict = {"provider": "openai", "sourceModel": model, "connection": "llm"}
    if timeout:
        spec["timeout"] = timeout
    manifest = {
        "connections": {"llm": {"type": "http", "baseUrl": f"{api_server}/"}},
        "models": {"assistant": spec, **(models or {})},
    }
    (app / "modrun.json").write_text(json.dumps(manifest))
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def modrun_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "modrun", *args]


def run_cli(
    *args: str, input: bytes | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        modrun_cmd(*args),
        input=input,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class ModrunServer:
    """A real ``modrun serve`` process on a free loopback port."""

    def __init__(
        self,
        plugins: Path,
        storage: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.plugins = plugins
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = storage / f"server-{self.port}.log"
        self.args = [
            "serve",
            "--plugins",
            str(plugins),
            "--port",
            str(self.port),
            "--storagePath",
            str(storage),
            *extra,
        ]
        # one process unless asked (the default is one per core): quick starts, one log
        self.env = {"MODRUN_PROCESSES": "1", **os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ModrunServer:
        with open(self.log_path, "ab") as server_log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                modrun_cmd(*self.args), stdout=server_log, stderr=server_log, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"modrun serve exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"modrun serve did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> ModrunServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate, timeout: float = 15, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def build_wat(source: Path, out: Path) -> Path:
    from wasmtime import wat2wasm

    out.write_bytes(bytes(wat2wasm(source.read_text())))
    return out


def build_c(source: Path, out: Path, model: str = "reactor") -> Path:
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is required to build C test plugins (make test installs it)")
    subprocess.run(
        [
            clang,
            "--target=wasm32-wasi",
            f"-mexec-model={model}",
            "-O2",
            "-Wl,--strip-debug",
            "-o",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return out


def copy_plugin(src: Path, directory: Path, name: str) -> Path:
    """Copy a plugin (and its schema sidecar if it has one) into ``directory`` as ``name``."""
    target = directory / f"{name}.wasm"
    tmp = directory / f".{name}.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)  # atomic, as a deploy would do it
    return target


class MotoServer:
    """A real ``moto_server`` (S3, Secrets Manager) on a free loopback port;
    ``kill`` and ``start`` again keep the port (its data starts empty)."""

    def __init__(self, log: Path) -> None:
        self.binary = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> MotoServer:
        with open(self.log, "ab") as out:
            command = [self.binary, "-H", "127.0.0.1", "-p", str(self.port)]
            self.proc = subprocess.Popen(command, stdout=out, stderr=out)

        def up() -> bool:
            try:
                return httpx.get(self.url + "/moto-api/", timeout=1).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=30, what="moto_server")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class CallLoad:
    """Threads that keep calling until stopped, every outcome kept: an HTTP
    status, or the name of the exception the client got. For counting what a
    fault cost."""

    def __init__(self, call: Callable[[], int], threads: int = 4) -> None:
        self.outcomes: list[int | str] = []
        self._call = call
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.outcomes.append(self._call())
            except httpx.HTTPError as exc:
                self.outcomes.append(type(exc).__name__)

    def __enter__(self) -> CallLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    @property
    def threads(self) -> int:
        return len(self._threads)

    def failed(self) -> dict[int | str, int]:
        """Outcomes other than 200, counted."""
        return {o: self.outcomes.count(o) for o in set(self.outcomes) if o != 200}


def custom_section(name: str, payload: bytes) -> bytes:
    """A WebAssembly custom section, to append to a module's bytes."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    body = leb(len(name)) + name.encode() + payload
    return b"\x00" + leb(len(body)) + body
