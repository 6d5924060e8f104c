"""In-process call cost: modrun vs the `extism` PyPI host, same plugin, same run.

    python bench/bench_calls.py [--plugin examples/textkit-c/build/release.wasm] [--rounds 7]

Both hosts call the C example's `noop` and `echo` exports. Rounds alternate
which host goes first; each figure is the median over rounds of the mean time
per call. Prints one row per case with the modrun/extism ratio (lower is better).

Then, on modrun alone, a Modus-ABI plugin (tests/modus/plugin, built by `make
test-plugins`) against an Extism one doing the same work (bench/plugins/
abi_peer.c: add two numbers, build a list of three objects), both typed and
called with the same JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
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
        abi_comparison(Path(tmp), args.rounds)
    return 1 if failed else 0


MODUS_PLUGIN = REPO / "tests/modus/plugin/build/modus_test.wasm"
ABI_CASES = [("add two numbers", "add", b'{"a":2,"b":3}', 2000), ("three objects", "makePeople", b"{}", 2000)]


def build_peer(out: Path) -> Path:
    """bench/plugins/abi_peer.c with the C example's Extism helpers."""
    src = REPO / "examples/textkit-c/src"
    subprocess.run(
        [
            shutil.which("clang") or "clang",
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-Wl,--strip-debug",
            f"-I{src}",
            "-o",
            str(out),
            str(REPO / "bench/plugins/abi_peer.c"),
            str(src / "extism.c"),
        ],
        check=True,
    )
    return out


def abi_comparison(tmp: Path, rounds: int) -> None:
    """The same work through a Modus plugin and an Extism plugin, on modrun."""
    if not MODUS_PLUGIN.is_file():
        raise SystemExit(f"{MODUS_PLUGIN} is missing: run `make test-plugins`")
    runtimes = {}
    for abi in ("modus", "extism"):
        app = tmp / f"abi-{abi}"
        app.mkdir()
        if abi == "modus":
            shutil.copy(MODUS_PLUGIN, app / "plugin.wasm")
        else:
            build_peer(app / "plugin.wasm")
            shutil.copy(REPO / "bench/plugins/abi_peer.schema.json", app / "plugin.schema.json")
        runtimes[abi] = Runtime(app, storage_path=tmp / f"storage-{abi}")
    print(f"\n{'same work':<16} {'modus':>12} {'extism':>12} {'ratio':>7}")
    for label, name, data, n in ABI_CASES:
        answers = {abi: json.loads(rt.call(name, data)) for abi, rt in runtimes.items()}
        assert answers["modus"] == answers["extism"], answers
        times: dict[str, list[float]] = {"modus": [], "extism": []}
        for r in range(rounds):
            order = ["modus", "extism"] if r % 2 == 0 else ["extism", "modus"]
            for abi in order:
                fn = partial(runtimes[abi].call, name, data)
                per_call(fn, max(1, n // 10))
                times[abi].append(per_call(fn, n))
        a, b = statistics.median(times["modus"]), statistics.median(times["extism"])
        print(f"{label:<16} {a * 1e6:>9.2f} us {b * 1e6:>9.2f} us {a / b:>7.2f}")
    for rt in runtimes.values():
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
