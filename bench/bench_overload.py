"""Overload (issue 11): the same node with admission control (the defaults)
and without it (limits so high nothing is ever shed), as one process and
as one per core, under 64, 512 and 1,024 connections of wrk calling
``greet``, in one run.

    .venv/bin/python bench/bench_overload.py [--seconds 10]

For each: answers per second by status, wrk's socket errors and timeouts
(its client timeout is 2 s, as in the issue's measurement), and latency
p50/p99 over all answers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support import EXAMPLES, ModrunServer, free_port, wait_until

LUA = Path(__file__).resolve().parent.parent / "tests" / "load" / "statuses.lua"
UNLIMITED = ("--maxRunning", "1000000", "--maxQueue", "1000000", "--maxWait", "1h")


def run(url: str, connections: int, seconds: int) -> str:
    out = subprocess.run(
        ["wrk", "-t4", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    errors = dict(re.findall(r"(connect|read|write|timeout)=(\d+)", out))
    p50, p99 = (int(x) / 1000 for x in re.search(r"p50=(\d+) p99=(\d+)", out).groups())
    ok, shed = statuses.get(200, 0) / seconds, statuses.get(503, 0) / seconds
    other = sum(n for s, n in statuses.items() if s not in (200, 503))
    return (
        f"200: {ok:,.0f}/s, 503: {shed:,.0f}/s, other: {other}; socket errors {errors}; "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modrun-bench-overload-") as tmp:
        cores = str(len(os.sched_getaffinity(0)))
        for label, flags in (
            ("admission control (defaults), 1 process", ()),
            ("no admission control, 1 process", UNLIMITED),
            (f"admission control (defaults), {cores} processes", ("--processes", cores)),
        ):
            state = Path(tmp) / str(len(os.listdir(tmp)))
            state.mkdir()
            with ModrunServer(EXAMPLES, state, "--noreload", "--noHistory", *flags) as server:
                for connections in (64, 512, 1024):
                    result = run(server.url + "/functions/greet", connections, args.seconds)
                    print(f"{label}, {connections} connections: {result}")
    # the ceiling: uvicorn with an app that only answers 200, under the same load
    port = free_port()
    empty = subprocess.Popen([sys.executable, str(Path(__file__).with_name("empty_asgi_app.py")), str(port)])
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), what="the empty app")
        for connections in (64, 512, 1024):
            result = run(f"http://127.0.0.1:{port}/functions/greet", connections, args.seconds)
            print(f"empty uvicorn app (ceiling), {connections} connections: {result}")
    finally:
        empty.terminate()
        empty.wait(10)
    return 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
