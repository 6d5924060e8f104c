"""Fairness of the event loop under many connections: uvicorn serving an
empty app on uvloop and on asyncio's own loop, side by side in one run, then
``modrun serve`` (one process, which runs asyncio's loop) calling ``noop``.

    .venv/bin/python bench/bench_loops.py [--seconds 15] [--connections 1024]

Throughput hides what this shows: under uvloop a few connections wait
seconds for an answer while the rest are served in milliseconds (its p99
and max latency), so clients with a timeout give up although the server
keeps up. wrk's timeout is 10 s; answers later than that count as timeouts.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _wrk import UNLIMITED, WrkRun, empty_app, wrk
from support import EXAMPLES, ModrunServer


def line(result: WrkRun) -> str:
    return (
        f"{result.answers / result.seconds:,.0f} answers/s, p50 {result.p50_ms:.0f} ms, "
        f"p99 {result.p99_ms:.0f} ms, max {result.max_ms:.0f} ms, timeouts {result.errors['timeout']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=1024)
    args = parser.parse_args()
    n, seconds = args.connections, args.seconds
    for loop in ("uvloop", "asyncio"):
        with empty_app(loop) as url:
            result = wrk(url, n, seconds, timeout="10s", threads=2)
            print(f"empty app, uvicorn --loop {loop}, {n} connections: {line(result)}")
    with (
        tempfile.TemporaryDirectory(prefix="modrun-bench-loops-") as tmp,
        ModrunServer(EXAMPLES, Path(tmp), "--noreload", "--noHistory", *UNLIMITED) as server,
    ):
        result = wrk(server.url + "/functions/greet", n, seconds, timeout="10s", threads=2)
        print(f"modrun serve, greet, {n} connections: {line(result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
