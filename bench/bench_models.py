"""Model-invoke overhead: a function calling a model vs calling it directly.

    python bench/bench_models.py [--calls 400]

Starts the OpenAI-compatible test server (tests/servers/apis.py) on loopback.
Side A: `modrun.Runtime` calls `ask` from examples/connect-as (AssemblyScript:
builds the chat request, `model_invoke` host function, HTTP to the server,
returns the completion). Side B: httpx posts the same chat request to the
same server and parses the answer. Calls alternate A/B; prints median and p90
of each and the median difference (target: at most 1 ms added).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _servers import connect_app, model_server
from modrun import Runtime

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    with model_server() as base, tempfile.TemporaryDirectory() as tmp:
        app = connect_app(Path(tmp) / "app", base, "bench")
        runtime = Runtime(app, storage_path=Path(tmp) / "storage")
        client = httpx.Client(timeout=30)
        prompt = "How far is the moon?"
        request = {"model": "bench", "messages": [{"role": "user", "content": prompt}]}

        def via_function() -> str:
            return json.loads(runtime.call("ask", prompt))["choices"][0]["message"]["content"]

        def direct() -> str:
            r = client.post(f"{base}/v1/chat/completions", json=request)
            return r.json()["choices"][0]["message"]["content"]

        assert via_function() == direct() == f"echo: {prompt}"
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(args.calls + 20):
            pair = [(ours, via_function), (theirs, direct)]
            for sink, fn in pair if i % 2 == 0 else reversed(pair):
                t = time.perf_counter()
                fn()
                if i >= 20:  # warm-up
                    sink.append((time.perf_counter() - t) * 1000)
        runtime.close()

        def p90(xs: list[float]) -> float:
            return statistics.quantiles(xs, n=10)[-1]

        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{args.calls} calls each, alternating; OpenAI-compatible server on loopback")
        print(f"{'path':<28} {'median ms':>10} {'p90 ms':>8}")
        print(f"{'function -> model_invoke':<28} {a:>10.3f} {p90(ours):>8.3f}")
        print(f"{'httpx directly':<28} {b:>10.3f} {p90(theirs):>8.3f}")
        added = a - b
        verdict = "ok" if added <= TARGET_MS else "MISSED"
        print(f"added at the median: {added:.3f} ms (target <= {TARGET_MS:g} ms: {verdict})")
        return 0 if added <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
