"""The fleet at scale (issue 18): 100, 300 and 1,000 simulated runtimes with 1 s
keepalives against two real orchestrators (a leader and a follower) on a
private PostgreSQL and a private Mosquitto, in one run, each size on a fresh
database:

* keepalive processing lag: the control loop's own measure (``/health``: a
  message's arrival on MQTT to its handling), p50 and p99, target p99 < 1 s;
* the orchestrator's CPU (share of one core) and RSS in a 10 s steady window;
* placing 10,000 modules published as one burst of SilverLine creates on MQTT
  (target < 10 s), and how many the runtimes never got (lost messages);
* noticing one dead runtime (SIGKILL-like: its connection dropped, the Last
  Will) and its modules running elsewhere (target < 2 s);
* a page of 100 from the 10,000 modules (target < 50 ms);
* the follower: its CPU in the same window, how long after the leader its view
  shows all 10,000 placed, and the same page served from it.

    .venv/bin/python bench/bench_scale.py [--runtimes 100,300,1000] [--modules 10000] [--procs 4]

The runtimes are paho clients, ``--procs`` processes of them
(bench/_sim_runtimes.py), answering creates and deletes as a node does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from databases import PrivatePostgres
from fleet_support import OrchestratorProcess, PrivateMosquitto
from support import wait_until

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settled(count: Callable[[], int], quiet: float = 3.0, limit: float = 60.0) -> int:
    """``count()`` once it has not changed for ``quiet`` seconds (deliveries may
    still be on their way when the orchestrator has placed everything)."""
    last, since, deadline = count(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


def total(api: httpx.Client, path: str, **params: str) -> int:
    return int(api.get(path, params={**params, "count": "1"}).headers["x-total-count"])


class Sims:
    """``procs`` processes hosting ``count`` simulated runtimes between them."""

    def __init__(self, port: int, count: int, procs: int) -> None:
        sizes = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(HERE / "_sim_runtimes.py"), str(port), str(size), f"sim{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, size in enumerate(sizes)
            if size
        ]
        self.uuids: list[list[str]] = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("ready "), line
            self.uuids.append(json.loads(line.removeprefix("ready ")))

    def ask(self, i: int, command: str) -> str:
        proc = self.procs[i]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def stats(self) -> list[dict]:
        return [json.loads(self.ask(i, "stats").removeprefix("stats ")) for i in range(len(self.procs))]

    def modules(self) -> int:
        """Distinct modules a create reached a runtime for (one moved between
        runtimes counts once)."""
        found: set[str] = set()
        for i in range(len(self.procs)):
            found.update(json.loads(self.ask(i, "created").removeprefix("created ")))
        return len(found)

    def creates(self) -> int:
        """Creates that reached runtimes, resends included."""
        return sum(s["creates"] for s in self.stats())

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def burst(port: int, modules: int) -> None:
    """``modules`` SilverLine creates published at once."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent = []
    for i in range(modules):
        data = {
            "type": "module",
            "uuid": str(uuid.uuid4()),
            "name": f"m{i}",
            "file": "x.wasm",
            "restart": "always",
        }
        message = {"object_id": str(uuid.uuid4()), "action": "create", "type": "req", "data": data}
        sent.append(client.publish("realm/proc/control", json.dumps(message), qos=1))
    for info in sent:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def one_size(tmp: Path, postgres: PrivatePostgres, runtimes: int, modules: int, procs: int) -> dict:
    db = postgres.fresh_database(f"scale{runtimes}")
    broker = PrivateMosquitto()
    orch = OrchestratorProcess(
        tmp / f"orch-{runtimes}", "--mqtt", broker.url, "--db", db, "--migrate", "--keepalive", "1s"
    )
    orch.start()
    wait_until(lambda: orch.role() == "leader", timeout=20, what="the orchestrator leads")
    follower = OrchestratorProcess(
        tmp / f"orch-{runtimes}", "--mqtt", broker.url, "--db", db, "--keepalive", "1s", "--instance", "b"
    )
    follower.start()
    wait_until(lambda: follower.role() == "follower", timeout=20, what="the second one follows")
    sims = None
    api = httpx.Client(base_url=orch.url, timeout=60)
    mirror = httpx.Client(base_url=follower.url, timeout=60)
    try:
        started = time.monotonic()
        sims = Sims(broker.port, runtimes, procs)
        wait_until(
            lambda: total(api, "/api/runtimes/") == runtimes, timeout=120, what="every runtime registered"
        )
        joined = time.monotonic() - started
        time.sleep(3)  # keepalives flowing
        assert orch.proc is not None and follower.proc is not None
        pid, fpid = orch.proc.pid, follower.proc.pid
        cpu0, fcpu0, t0 = cpu_seconds(pid), cpu_seconds(fpid), time.monotonic()
        time.sleep(10)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        follower_cpu = (cpu_seconds(fpid) - fcpu0) / (time.monotonic() - t0)
        lag = api.get("/health").json()["control"]["lag_ms"]
        rss = rss_mib(pid)

        placing = time.monotonic()
        burst(broker.port, modules)
        wait_until(
            lambda: total(api, "/api/modules/", status="A") == modules,
            timeout=300,
            interval=0.1,
            what="placed",
        )
        placed = time.monotonic() - placing
        wait_until(lambda: total(mirror, "/api/modules/", status="A") == modules, timeout=120, interval=0.05)
        in_step = time.monotonic() - placing - placed  # the follower's view, after the leader's
        try:  # and every create on the runtimes
            wait_until(lambda: sims.modules() >= modules, timeout=120, interval=0.5)
            delivered: float | None = time.monotonic() - placing
        except AssertionError:
            delivered = None
        lost = modules - settled(sims.modules)
        resent = sims.creates() - (modules - lost)  # resends, and creates of modules that moved
        # runtimes declared dead for silence though alive (their keepalives came too late); they revive
        died = orch.log().count("is dead: no keepalive")
        burst_lag = api.get("/health").json()["control"]["lag_ms"]

        victim = sims.uuids[0][0]
        hosted = total(api, "/api/modules/", status="A", runtime=victim)
        killed = time.monotonic()
        sims.ask(0, "kill 0")
        wait_until(
            lambda: api.get(f"/api/runtimes/{victim}/").json()["status"] == "D",
            timeout=30,
            interval=0.02,
            what="dead",
        )
        noticed = time.monotonic() - killed
        try:
            wait_until(lambda: total(api, "/api/modules/", status="A") == modules, timeout=60, interval=0.02)
        except AssertionError:
            states = {state: total(api, "/api/modules/", status=state) for state in ("A", "Q", "K", "E", "D")}
            raise AssertionError(f"the dead runtime's modules did not all come back: {states}") from None
        moved = time.monotonic() - killed

        page, follower_page = page_ms(api), page_ms(mirror)
        return {
            "runtimes": runtimes,
            "joined_s": joined,
            "lag_p50_ms": lag["p50"],
            "lag_p99_ms": lag["p99"],
            "cpu": cpu,
            "rss_mib": rss,
            "place_s": placed,
            "delivered_s": delivered,
            "lost": lost,
            "resent": resent,
            "died": died,
            "burst_lag_p99_ms": burst_lag["p99"],
            "hosted": hosted,
            "dead_noticed_s": noticed,
            "moved_s": moved,
            "page_ms": page,
            "follower_cpu": follower_cpu,
            "follower_behind_s": in_step,
            "follower_page_ms": follower_page,
        }
    finally:
        api.close()
        mirror.close()
        if sims is not None:
            sims.stop()
        follower.stop()
        orch.stop()
        broker.stop()


def page_ms(client: httpx.Client) -> float:
    """Median milliseconds for a page of 100 from the middle of the module list."""
    samples = []
    for _ in range(20):
        begun = time.perf_counter()
        client.get("/api/modules/", params={"status": "all", "start": "5000", "count": "100"})
        samples.append(time.perf_counter() - begun)
    return sorted(samples)[len(samples) // 2] * 1000


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "not all"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtimes", default="100,300,1000")
    parser.add_argument("--modules", type=int, default=10000)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    postgres = PrivatePostgres()
    postgres.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="modrun-bench-scale-") as tmp:
            for n in (int(x) for x in args.runtimes.split(",")):
                row = one_size(Path(tmp), postgres, n, args.modules, args.procs)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        postgres.cleanup()
    columns = [
        ("runtimes", lambda r: f"{r['runtimes']:,}"),
        ("all registered", lambda r: f"{r['joined_s']:.1f} s"),
        ("keepalive lag p50 / p99", lambda r: f"{r['lag_p50_ms']:.1f} / {r['lag_p99_ms']:.1f} ms"),
        ("CPU (one core)", lambda r: f"{r['cpu'] * 100:.0f} %"),
        ("RSS", lambda r: f"{r['rss_mib']:.0f} MiB"),
        (
            f"place {args.modules:,} / on the runtimes",
            lambda r: f"{r['place_s']:.1f} s / {_seconds(r['delivered_s'])}",
        ),
        ("lost (resent)", lambda r: f"{r['lost']} ({r['resent']})"),
        ("died in the burst", lambda r: str(r["died"])),
        ("lag p99 in the burst", lambda r: f"{r['burst_lag_p99_ms']:.0f} ms"),
        (
            "one dead: noticed / moved",
            lambda r: f"{r['dead_noticed_s']:.2f} s / {r['moved_s']:.2f} s ({r['hosted']})",
        ),
        ("page of 100", lambda r: f"{r['page_ms']:.1f} ms"),
        (
            "follower: CPU / behind after the burst / page",
            lambda r: (
                f"{r['follower_cpu'] * 100:.0f} % / {r['follower_behind_s']:.2f} s"
                f" / {r['follower_page_ms']:.1f} ms"
            ),
        ),
    ]
    print("\n| " + " | ".join(name for name, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(cell(row) for _, cell in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
