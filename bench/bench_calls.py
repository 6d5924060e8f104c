"""In-process call cost: modrun vs the `extism` PyPI host, same plugin, same run.

    python bench/bench_calls.py [--plugin examples/textkit-c/build/release.wasm] [--rounds 7]

Both hosts call the C example's `noop` and `echo` exports. Rounds alternate
which host goes first; each figure is the median over rounds of the mean time
per call. Prints one row per case with the modrun/extism ratio (lower is better).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path

import extism

from modrun import Runtime

REPO = Path(__file__).resolve().parent.parent
CASES = [
    ("no-op call", "noop", b"", 20000),
    ("echo 1 KiB", "echo", b"x" * 1024, 20000),
    ("echo 1 MiB", "echo", bytes(range(256)) * 4096, 200),
]
TARGETS = {"no-op call": 0.5, "echo 1 KiB": None, "echo 1 MiB": 1.0}


def per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", type=Path, default=REPO / "examples/textkit-c/build/release.wasm")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    wasm = args.plugin.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        app.mkdir()
        shutil.copy(args.plugin, app / "bench.wasm")
        runtime = Runtime(app, storage_path=Path(tmp) / "storage")
        peer = extism.Plugin(wasm, wasi=True)
        print(
            f"plugin: {args.plugin} ({len(wasm)} bytes); extism {version('extism')}, "
            f"wasmtime {version('wasmtime')}; python {sys.version.split()[0]}"
        )
        print(f"{'case':<12} {'modrun':>12} {'extism':>12} {'ratio':>7}  target")
        failed = False
        for label, name, data, n in CASES:
            assert runtime.call(name, data) == peer.call(name, data), f"{name}: hosts disagree"
            ours: list[float] = []
            theirs: list[float] = []
            for r in range(args.rounds):
                runs = [
                    (ours, partial(runtime.call, name, data)),
                    (theirs, partial(peer.call, name, data)),
                ]
                for sink, fn in runs if r % 2 == 0 else reversed(runs):
                    per_call(fn, max(1, n // 10))  # warm
                    sink.append(per_call(fn, n))
            a, b = statistics.median(ours), statistics.median(theirs)
            ratio = a / b
            target = TARGETS[label]
            verdict = "" if target is None else (f"<= {target:g}  {'ok' if ratio <= target else 'MISSED'}")
            failed |= target is not None and ratio > target
            print(f"{label:<12} {a * 1e6:>9.2f} us {b * 1e6:>9.2f} us {ratio:>7.2f}  {verdict}")
        runtime.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
