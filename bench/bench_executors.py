"""Local model executor: round trip and throughput, pool of 1 vs 4, one run.

    python bench/bench_executors.py [--requests 400] [--clients 8]

The model is tests/models/model.py (a Python process speaking JSON lines).
Round trip: sequential requests with an instant answer (the executor's own
cost: pipes, framing, JSON). Throughput: --clients threads sending requests
that each take 10 ms in the model (an I/O-bound or accelerator-bound model),
with a pool of 1 and of 4 processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modrun.manifest.model import ModelSpec
from modrun.models.executors.factory import make_executor

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "tests/models/model.py"


def executor(pool: int, protocol: str):
    spec = ModelSpec.model_validate(
        {
            "provider": "local",
            "command": f"{sys.executable} {MODEL} --protocol {protocol}",
            "protocol": protocol,
            "pool": pool,
            "timeout": 30,
            "queueTimeout": 60,
        }
    )
    ex = make_executor("bench", spec, REPO)
    deadline = time.monotonic() + 30
    while ex.ping()["idle"] < pool and time.monotonic() < deadline:
        time.sleep(0.05)
    return ex


def round_trip(ex, n: int) -> float:
    samples = []
    for i in range(n):
        t = time.perf_counter()
        ex.invoke({"text": f"r{i}"})
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def throughput(ex, n: int, clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: ex.invoke({"op": "sleep", "ms": 10, "text": str(i)}), range(n)))
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    print(f"{'pool':<6} {'protocol':<9} {'round trip (median)':>20} {'throughput, 10 ms model':>25}")
    results = {}
    for pool in (1, 4):
        for protocol in ("jsonl", "mer"):
            ex = executor(pool, protocol)
            rt = round_trip(ex, args.requests)
            tp = throughput(ex, args.requests, args.clients)
            ex.close()
            results[(pool, protocol)] = tp
            print(f"{pool:<6} {protocol:<9} {rt:>17.0f} us {tp:>19.0f} req/s")
    for protocol in ("jsonl", "mer"):
        print(
            f"{protocol}: pool 4 / pool 1 throughput = {results[(4, protocol)] / results[(1, protocol)]:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
