"""wrk with tests/load/statuses.lua, and the empty uvicorn app (the ceiling),
as the overload and event-loop benchmarks drive them."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support import free_port, wait_until

LUA = Path(__file__).resolve().parent.parent / "tests" / "load" / "statuses.lua"
UNLIMITED = ("--maxRunning", "1000000", "--maxQueue", "1000000", "--maxWait", "1h")


@dataclass
class WrkRun:
    seconds: int
    statuses: dict[int, int]
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float

    def per_second(self, status: int) -> float:
        return self.statuses.get(status, 0) / self.seconds

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())


def wrk(url: str, connections: int, seconds: int, timeout: str, threads: int = 4) -> WrkRun:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            timeout,
            "-s",
            str(LUA),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    errors = {k: int(v) for k, v in re.findall(r"(connect|read|write|timeout)=(\d+)", out)}
    p50, p99, top = (int(x) / 1000 for x in re.search(r"p50=(\d+) p99=(\d+) max=(\d+)", out).groups())
    return WrkRun(seconds, statuses, errors, p50, p99, top)


@contextlib.contextmanager
def empty_app(loop: str = "auto") -> Iterator[str]:
    """bench/empty_asgi_app.py on a free port and uvicorn ``loop``; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("empty_asgi_app.py")), str(port), loop]
    )
    try:
        wait_until(lambda: _answers(url), what="the empty app")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
