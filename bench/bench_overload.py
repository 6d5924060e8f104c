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
import tempfile
from pathlib import Path

from _wrk import UNLIMITED, empty_app, wrk
from support import EXAMPLES, ModrunServer


def run(url: str, connections: int, seconds: int) -> str:
    result = wrk(url, connections, seconds, timeout="2s")
    other = sum(n for s, n in result.statuses.items() if s not in (200, 503))
    return (
        f"200: {result.per_second(200):,.0f}/s, 503: {result.per_second(503):,.0f}/s, other: {other}; "
        f"socket errors {result.errors}; p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
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
    with empty_app() as url:
        for connections in (64, 512, 1024):
            result = run(url + "functions/greet", connections, args.seconds)
            print(f"empty uvicorn app (ceiling), {connections} connections: {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
