"""Shared benchmark set-up: the OpenAI-compatible test server on a free port,
and the connect-as app whose `ask` calls it."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    """tests/servers/apis.py on loopback; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/servers/apis.py"), str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/_log", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def connect_app(app: Path, base: str, source_model: str) -> Path:
    """examples/connect-as in ``app``, its `assistant` model served at ``base``."""
    app.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "examples/connect-as/build/release.wasm", app / "connect.wasm")
    shutil.copy(REPO / "examples/connect-as/modrun.schema.json", app / "connect.schema.json")
    model = {
        "provider": "openai",
        "sourceModel": source_model,
        "connection": "llm",
        "path": "chat/completions",
    }
    manifest = {
        "connections": {"llm": {"type": "http", "baseUrl": f"{base}/v1/"}},
        "models": {"assistant": model},
    }
    (app / "modrun.json").write_text(json.dumps(manifest))
    return app
