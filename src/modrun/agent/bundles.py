"""Bundle modules: an app directory (plugins, schemas, ``modrun.json`` with its
models, connections and local executors, files) placed on this node.

A bundle is a whole app, with a manifest of its own, so it runs as its own
``modrun serve`` child process on a loopback port: the same code serves it as
serves any app, and its models, executors and plugins cannot disturb the
node's. The node answers for it: ``POST /bundles/{module}/functions/...`` and
``POST /bundles/{module}/graphql`` are checked like every call (the bundle's
artifact) and then forwarded to the child. Its functions are reported in the
node's keepalives with those paths, so the gateway routes to them. The child's
log goes to the module's stderr topic. ``BundleRun`` has the interface of a
WASI ``CommandRun`` (start, wait, kill, result, cpu_seconds), so the agent
reports its end, and the orchestrator restarts it, the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from modrun.http.asgi import BodyTooLarge, read_body, respond
from modrun.http.upstream import Lost, Refused, UpstreamPool
from modrun.metrics import procfs
from modrun.storage.bundles import extract_bundle
from modrun.storage.private import write_private
from modrun.wasm.command import CommandResult

log = logging.getLogger("modrun.agent")

PREFIX = "/bundles/"
START_TIMEOUT = 60.0
STOP_GRACE = 10.0

Output = Callable[[str, bytes], None]


CHILD_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV")
"""All a bundle's child node inherits of the node's environment: what the
interpreter needs to run, nothing that configures or authenticates the node
(its join token, cloud credentials, API keys a manifest's ``{{NAME}}`` could pull)."""


def child_environment(root: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in CHILD_ENVIRONMENT if name in os.environ}
    env["HOME"] = str(root)
    return env


class BundleRun:
    def __init__(
        self,
        module_id: str,
        archive: Path,
        root: Path,
        serve_args: list[str],
        output: Output,
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.module_id = module_id
        self.secrets = secrets or {}  # its deployment's: the only values its placeholders resolve from
        self.env = env or {}
        self.archive = archive
        self.root = root
        self.serve_args = serve_args
        self.output = output
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.functions: list[dict] = []
        self.result: CommandResult | None = None
        self.started = time.monotonic()
        self._killed = False
        self._done = threading.Event()
        self._tail: deque[bytes] = deque(maxlen=5)  # the child's last lines, for errors

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Unpack, start the child, wait until it serves; raises RuntimeError when it does not."""
        app = self.root / "app"
        shutil.rmtree(self.root, ignore_errors=True)
        app.mkdir(parents=True)
        extract_bundle(self.archive, app)
        secrets_args = []
        if self.secrets:  # outside the app's directory, readable by this user only
            secrets_file = self.root / "secrets.json"
            write_private(secrets_file, json.dumps(self.secrets))
            secrets_args = ["--secretsFile", str(secrets_file)]
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "modrun",
            "serve",
            "--plugins",
            str(app),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storagePath",
            str(self.root / "state"),
            "--noreload",
            *secrets_args,
            *self.serve_args,
        ]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**child_environment(self.root), **self.env},
            cwd=app,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._pump, name=f"bundle-{self.module_id[:8]}", daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not self._done.is_set():
            try:
                listing = httpx.get(self.url + "/functions", timeout=2)
                if listing.status_code == 200:
                    self.functions = listing.json()["functions"]
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the bundle's app did not start: {self._last_lines()}")

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._tail.append(line.rstrip(b"\n"))
            self.output("stderr", line.rstrip(b"\n"))

    def _last_lines(self) -> str:
        return " | ".join(line.decode(errors="replace") for line in self._tail)

    def _watch(self) -> None:
        assert self.proc is not None
        code = self.proc.wait()
        duration = time.monotonic() - self.started
        if self._killed:
            self.result = CommandResult(code, "killed", None, duration)
        else:
            self.result = CommandResult(
                code, "exit", f"the bundle's app stopped: {self._last_lines()}", duration
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self._done.set()

    # -- the CommandRun interface ----------------------------------------------------------

    def kill(self) -> None:
        self._killed = True
        proc = self.proc
        if proc is None:
            self._done.set()
            return
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # it finishes calls in flight
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()

    def wait(self, timeout: float | None = None) -> CommandResult | None:
        self._done.wait(timeout)
        return self.result

    def cpu_seconds(self) -> float:
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        return procfs.cpu_seconds(f"/proc/{self.proc.pid}/stat")


class BundleProxy:
    """ASGI: ``/bundles/{module}/...`` forwarded to the module's child app (POST),
    ``GET /bundles/{module}/functions`` from the listing it started with."""

    def __init__(self, app: Any, runs: Callable[[str], BundleRun | None]) -> None:
        self.app = app
        self.runs = runs
        self.upstream = UpstreamPool(timeout=300)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        module, _, rest = scope["path"][len(PREFIX) :].partition("/")
        run = self.runs(module)
        if run is None or run.port == 0:
            await respond(send, 404, b'{"error": "no such bundle module on this node"}', b"application/json")
            return
        if scope["method"] == "GET" and rest == "functions":
            body = json.dumps({"functions": run.functions}).encode()
            await respond(send, 200, body, b"application/json")
            return
        if scope["method"] != "POST":
            await respond(send, 405, b'{"error": "use POST"}', b"application/json", [(b"allow", b"POST")])
            return
        try:
            body = await read_body(receive, 64 * 1024 * 1024)
        except BodyTooLarge:
            await respond(send, 413, b'{"error": "request body too large"}', b"application/json")
            return
        headers = [(k, v) for k, v in scope["headers"] if k in (b"content-type", b"accept", b"x-request-id")]
        try:
            answer = await self.upstream.post(f"{run.url}/{rest}", body, headers)
        except (Refused, Lost) as exc:
            await respond(
                send,
                502,
                f'{{"error": "the bundle app did not answer: {exc}"}}'.encode(),
                b"application/json",
            )
            return
        content_type = answer.headers.get(b"content-type", b"application/octet-stream")
        await respond(send, answer.status, answer.body, content_type)

    async def close(self) -> None:
        await self.upstream.close()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the node dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
