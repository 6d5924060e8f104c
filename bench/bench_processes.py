"""Requests/s with 1 vs N node processes, and against the Starlette + `extism`
peer given the same number of processes, in one run.

    python bench/bench_processes.py [--processes N] [--seconds 5] [--rounds 2]

Every server serves the C example's `noop` through `POST /functions/noop` on
loopback: `modrun serve --processes P` and the peer under uvicorn with P
workers, for P = 1 and P = N (default: one per core). wrk (Debian package
`wrk`, two threads) drives them with 64 connections; rounds alternate the
order and the best round per server is reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _servers import free_port
from bench_http import PLUGIN, have_wrk, noop_app, wait_ready, wrk


def modrun(app: Path, storage: Path, port: int, processes: int) -> subprocess.Popen:
    flags = f"--port {port} --noreload --noHistory --logLevel warning --processes {processes}"
    command = [sys.executable, "-m", "modrun", "serve", "--plugins", str(app), "--storagePath", str(storage)]
    return subprocess.Popen(command + flags.split())


def peer(port: int, processes: int) -> subprocess.Popen:
    script = Path(__file__).with_name("peer_extism_app.py")
    return subprocess.Popen([sys.executable, str(script), str(PLUGIN), str(port), str(processes)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not have_wrk():
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        app, script = noop_app(tmp_path)
        counts = sorted({1, args.processes})
        servers: dict[str, subprocess.Popen] = {}
        urls: dict[str, str] = {}
        try:
            for p in counts:
                ours, theirs = free_port(), free_port()
                servers[f"modrun {p}"] = modrun(app, tmp_path / f"storage-{p}", ours, p)
                servers[f"peer {p}"] = peer(theirs, p)
                urls[f"modrun {p}"] = f"http://127.0.0.1:{ours}/functions/noop"
                urls[f"peer {p}"] = f"http://127.0.0.1:{theirs}/functions/noop"
            for name, url in urls.items():
                wait_ready(url, servers[name])
                wrk(url, 8, 1, script)  # warm up
            best = dict.fromkeys(urls, 0.0)
            for r in range(args.rounds):
                order = list(urls) if r % 2 == 0 else list(reversed(urls))
                for name in order:
                    best[name] = max(best[name], wrk(urls[name], args.connections, args.seconds, script, 2))
        finally:
            for proc in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    print(
        f"wrk -t2 -c{args.connections}, {args.seconds}s per run, best of {args.rounds}; "
        f"POST /functions/noop; {len(os.sched_getaffinity(0))} cores"
    )
    print(f"{'processes':<10} {'modrun req/s':>13} {'peer req/s':>11} {'modrun/peer':>12} {'vs 1':>6}")
    for p in counts:
        ours, theirs = best[f"modrun {p}"], best[f"peer {p}"]
        scaling = ours / best["modrun 1"]
        print(f"{p:<10} {ours:>13.0f} {theirs:>11.0f} {ours / theirs:>12.2f} {scaling:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
