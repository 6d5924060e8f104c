"""Inference history: write throughput into PostgreSQL, and what it adds to a model call.

    python bench/bench_history.py [--rows 50000] [--calls 300] [--db postgresql://...]

Without --db, starts a private PostgreSQL cluster (initdb/pg_ctl, as the
tests do). Part 1 queues --rows realistic rows (chat request and answer JSON)
into the history writer and times until all are in the database. Part 2
calls `ask` (examples/connect-as) against the OpenAI-compatible test server
with two runtimes, history on (PostgreSQL) and off, alternating, and compares
median latency. Targets: >= 10,000 rows/s; <= 5% added latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from _servers import connect_app, model_server  # noqa: E402
from modrun import Runtime  # noqa: E402
from modrun.db import migrate  # noqa: E402
from modrun.db.engine import make_engine  # noqa: E402
from modrun.db.history import InferenceHistory, plugin_id  # noqa: E402

ROWS_TARGET = 10_000
LATENCY_TARGET = 0.05


def row(i: int, build: str) -> dict:
    prompt = f"question number {i}: how far is the moon from the earth, roughly?"
    return {
        "id": uuid.uuid4(),
        "model_hash": "a" * 64,
        "model_name": "assistant",
        "input": {"model": "gpt", "messages": [{"role": "user", "content": prompt}]},
        "output": {
            "id": f"chatcmpl-{i}",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "About 384,400 km on average."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21},
        },
        "started_at": dt.datetime.now(dt.UTC),
        "duration_ms": 3,
        "plugin_id": plugin_id(build),
        "plugin_build_id": build,
        "plugin": "bench",
        "function": "ask",
        "status": "ok",
        "error": None,
    }


def throughput(url: str, rows: int, spool: Path) -> float:
    engine = make_engine(url)
    migrate.upgrade(engine)
    history = InferenceHistory(engine, spool).start()
    build = "b" * 64
    batch = [row(i, build) for i in range(rows)]
    started = time.perf_counter()
    for r in batch:
        history.record(r)
    assert history.flush(timeout=120), "history did not drain"
    elapsed = time.perf_counter() - started
    assert history.written == rows and history.dropped == 0
    history.close()
    engine.dispose()
    return rows / elapsed


def latency(url: str, calls: int, tmp: Path) -> tuple[float, float]:
    with model_server() as base:
        app = connect_app(tmp / "app", base, "m")
        on = Runtime(app, storage_path=tmp / "on", db=url, history=True)
        off = Runtime(app, storage_path=tmp / "off", history=False)
        times: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(calls + 20):
            pair = [("on", on), ("off", off)]
            for label, rt in pair if i % 2 == 0 else reversed(pair):
                t = time.perf_counter()
                rt.call("ask", f"q{i}")
                if i >= 20:
                    times[label].append(time.perf_counter() - t)
        on.close()
        off.close()
        return statistics.median(times["on"]) * 1000, statistics.median(times["off"]) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--db", help="PostgreSQL URL (default: a private cluster)")
    args = parser.parse_args()
    pg = None
    if args.db is None:
        from databases import PrivatePostgres

        pg = PrivatePostgres()
        pg.start()
    url = args.db or pg.dsn
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rate = throughput(url, args.rows, Path(tmp) / "spool")
            on, off = latency(url, args.calls, Path(tmp))
    finally:
        if pg is not None:
            pg.cleanup()
    added = (on - off) / off
    ok_rate, ok_latency = rate >= ROWS_TARGET, added <= LATENCY_TARGET
    print(
        f"history writes into PostgreSQL: {rate:,.0f} rows/s ({args.rows:,} rows) "
        f"target >= {ROWS_TARGET:,}: {'ok' if ok_rate else 'MISSED'}"
    )
    print(
        f"model call median, history on: {on:.3f} ms, off: {off:.3f} ms -> added {added * 100:+.1f}% "
        f"target <= {LATENCY_TARGET * 100:g}%: {'ok' if ok_latency else 'MISSED'}"
    )
    return 0 if ok_rate and ok_latency else 1


if __name__ == "__main__":
    sys.exit(main())
