"""The console's budget (issue 10): compressed size of what the first load
fetches, and how soon the page is interactive and showing its data in
headless Chromium, measured with the Navigation Timing API.

    .venv/bin/python bench/bench_console.py [--loads 5]

The fleet overview (stats, charts, the nodes table) is measured on an orchestrator with 10 registered runtimes
(SilverLine-protocol clients on the embedded broker, kept alive); the node's
inference history on a node whose database holds 10,000 inference rows.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import sqlalchemy as sa

from fleet_support import OrchestratorProcess, PrivateMosquitto, RawRuntime
from modrun.console import STATIC
from modrun.db.engine import make_engine
from modrun.db.migrate import ensure_schema
from modrun.db.tables import inferences
from support import EXAMPLES, ModrunServer

CHROMIUM = "/usr/bin/chromium"
BUDGET_KB = 300
BUDGET_S = 1.0


def first_load_size() -> int:
    return sum(len(gzip.compress((STATIC / name).read_bytes(), 9)) for name in ("console.js", "console.css"))


def measure(url: str, ready: str, loads: int) -> tuple[float, float]:
    """Median (domInteractive, data on screen) in seconds over ``loads`` fresh loads."""
    from playwright.sync_api import sync_playwright

    interactive, shown = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(loads + 1):  # the first load warms the server
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(ready)
            done = page.evaluate("performance.now()") / 1000
            timing = page.evaluate(
                "JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))"
            )
            interactive.append(timing["domInteractive"] / 1000)
            shown.append(done)
            context.close()
        browser.close()
    return statistics.median(interactive[1:]), statistics.median(shown[1:])


def big_fleet(tmp: Path, loads: int, nodes: int) -> None:
    """The overview and the nodes page with ``nodes`` simulated runtimes (1 s
    keepalives, on a private Mosquitto: the embedded broker is for laptops)."""
    from bench_scale import Sims

    broker = PrivateMosquitto()
    try:
        with OrchestratorProcess(tmp / f"orch-{nodes}", "--keepalive", "1s", "--mqtt", broker.url) as orch:
            sims = Sims(broker.port, nodes, 4)
            try:
                overview = measure(orch.url + "/console", "[data-node-state]", loads)
                nodes_page = measure(orch.url + "/console/nodes", "[data-node-state]", loads)
            finally:
                sims.stop()
    finally:
        broker.stop()
    for what, (interactive, shown) in (("fleet overview", overview), ("nodes page", nodes_page)):
        print(
            f"{what}, {nodes:,} nodes: domInteractive {interactive * 1000:.0f} ms, "
            f"the first rows on screen {shown * 1000:.0f} ms (target interactive < {BUDGET_S * 1000:.0f} ms)"
        )


def fleet_overview(tmp: Path, loads: int) -> None:
    with OrchestratorProcess(tmp / "orch", "--keepalive", "1s") as orch:  # --auth none: no login step
        runtimes = [RawRuntime(orch.broker_port, name=f"node-{i:02d}") for i in range(10)]
        for runtime in runtimes:
            runtime.register()
        stop = threading.Event()

        def keep_alive() -> None:
            while not stop.wait(0.5):
                for runtime in runtimes:
                    runtime.keepalive()

        threading.Thread(target=keep_alive, daemon=True).start()
        try:
            interactive, shown = measure(
                orch.url + "/console", "tbody tr:nth-child(10) [data-node-state]", loads
            )
        finally:
            stop.set()
            for runtime in runtimes:
                runtime.close()
    print(
        f"fleet overview, 10 nodes: domInteractive {interactive * 1000:.0f} ms, all 10 rows on screen "
        f"{shown * 1000:.0f} ms (target interactive < {BUDGET_S * 1000:.0f} ms)"
    )


def node_inferences(tmp: Path, loads: int) -> None:
    storage = tmp / "node"
    storage.mkdir()
    url = f"sqlite:///{storage / 'modrun.db'}"
    engine = make_engine(url)
    ensure_schema(engine, url, True)
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "model_hash": "bench",
            "model_name": "sentiment",
            "input": {"text": f"row {i}"},
            "output": {"compound": 0.5},
            "started_at": now - timedelta(seconds=i * 0.09),
            "duration_ms": 1 + i % 7,
            "plugin": "connect-as",
            "function": "mood",
            "status": "success",
        }
        for i in range(10_000)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(inferences), rows)
    engine.dispose()
    server = ModrunServer(EXAMPLES, storage, "--noreload", "--db", url).start()
    try:
        interactive, shown = measure(server.url + "/console/inferences", "tbody tr:nth-child(50)", loads)
    finally:
        server.stop()
    print(
        f"node inferences page, 10,000 rows in the database: domInteractive {interactive * 1000:.0f} ms, "
        f"first page of 50 rows and the charts on screen {shown * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=1000, help="the big fleet's size")
    args = parser.parse_args()
    size = first_load_size()
    print(f"first load: console.js + console.css = {size / 1024:.1f} KiB gzip (target < {BUDGET_KB} KB)")
    with tempfile.TemporaryDirectory(prefix="modrun-bench-console-") as tmp:
        fleet_overview(Path(tmp), args.loads)
        big_fleet(Path(tmp), args.loads, args.nodes)
        node_inferences(Path(tmp), args.loads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
