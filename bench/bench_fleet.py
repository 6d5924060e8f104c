"""Fleet benchmarks (issue 8): placement throughput, control round trip,
failover after SIGKILL or a hang, and gateway overhead.

Everything runs here on loopback: a private Mosquitto, a real
``modrun orchestrator`` process, simulated runtimes (raw MQTT clients that
register, keep alive and acknowledge creates as a modrun node does) and, for
failover and the gateway, real ``modrun serve`` nodes.

    .venv/bin/python bench/bench_fleet.py [--modules 1000] [--runtimes 10]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet_support import OrchestratorProcess, PrivateMosquitto, RawClient, RawRuntime, envelope
from support import HELLO_AS, ModrunServer, wait_until

WASMCLOUD_FAILOVER = 70.0  # seconds: wadm drops a crashed host after about 70 s with its defaults
SILVERLINE_EXPLICIT = (6.8, 7.8)  # seconds for 1,000 explicit-parent creates on 10 runtimes (issue 8)


class AckingRuntime(RawRuntime):
    """Counts creates as they arrive and answers each like a node does."""

    def __init__(self, port: int, name: str) -> None:
        super().__init__(port, name=name)
        self.received: list[float] = []
        self.lock = threading.Lock()
        control = f"{self.realm}/proc/control/{self.uuid}"

        def on_message(_c, _u, message) -> None:
            if message.topic != control:
                self.inbox.put((message.topic, message.payload))
                return
            import json

            body = json.loads(message.payload)
            if body.get("type") == "req" and body.get("action") == "create":
                with self.lock:
                    self.received.append(time.perf_counter())
                reply = {
                    "object_id": body["object_id"],
                    "action": "create",
                    "type": "resp",
                    "data": {"result": "ok", "details": {"uuid": body["data"]["uuid"]}},
                }
                self.client.publish(control, json.dumps(reply), qos=1)

        self.client.on_message = on_message

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def keep_alive(runtimes: list[AckingRuntime], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for rt in runtimes:
            rt.keepalive()


def placement(port: int, runtimes: list[AckingRuntime], modules: int, explicit: bool) -> float:
    sender = RawClient(port)
    before = sum(rt.count() for rt in runtimes)
    started = time.perf_counter()
    for i in range(modules):
        data = {"type": "module", "name": f"m{i}", "file": "bench.wasm"}
        if explicit:
            data["parent"] = runtimes[i % len(runtimes)].name
        sender.client.publish("realm/proc/control", __import__("json").dumps(envelope("create", data)), qos=1)
    wait_until(
        lambda: sum(rt.count() for rt in runtimes) - before >= modules,
        timeout=120,
        interval=0.002,
        what="all placements",
    )
    elapsed = max(max(rt.received) for rt in runtimes if rt.received) - started
    sender.close()
    return elapsed


def round_trips(port: int, runtime: AckingRuntime, n: int) -> list[float]:
    sender = RawClient(port)
    out = []
    for i in range(n):
        before = runtime.count()
        sent = time.perf_counter()
        sender.publish(
            "realm/proc/control",
            envelope("create", {"name": f"rtt{i}", "file": "bench.wasm", "parent": runtime.name}),
        )
        while runtime.count() == before:
            time.sleep(0.0001)
        out.append(runtime.received[-1] - sent)
    sender.close()
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def control_plane(args: argparse.Namespace, tmp: Path) -> None:
    broker = PrivateMosquitto()
    try:
        for scheduler in ("least-loaded", "round-robin"):
            with OrchestratorProcess(
                tmp / f"orch-{scheduler}", "--mqtt", broker.url, "--keepalive", "5s", "--scheduler", scheduler
            ):
                runtimes = [AckingRuntime(broker.port, f"sim{i:02d}") for i in range(args.runtimes)]
                for rt in runtimes:
                    rt.register()
                stop = threading.Event()
                beating = threading.Thread(target=keep_alive, args=(runtimes, stop), daemon=True)
                beating.start()
                scheduled = placement(broker.port, runtimes, args.modules, explicit=False)
                spread = sorted(rt.count() for rt in runtimes)
                print(
                    f"{args.modules} creates, {scheduler} scheduler, {args.runtimes} runtimes: "
                    f"{scheduled:.2f} s ({args.modules / scheduled:.0f}/s); each {spread[0]}-{spread[-1]}"
                )
                if scheduler == "least-loaded":
                    explicit = placement(broker.port, runtimes, args.modules, explicit=True)
                    low, high = SILVERLINE_EXPLICIT
                    print(
                        f"{args.modules} creates, explicit parents: {explicit:.2f} s "
                        f"({args.modules / explicit:.0f}/s); SilverLine {low}-{high} s -> "
                        f"{explicit / high:.2f}-{explicit / low:.2f}x its time (target <= 0.5)"
                    )
                    rtt = round_trips(broker.port, runtimes[0], args.round_trips)
                    print(
                        f"control round trip (create sent -> runtime receives), {len(rtt)} sequential: "
                        f"p50 {pct(rtt, 0.5) * 1000:.2f} ms, p99 {pct(rtt, 0.99) * 1000:.2f} ms"
                    )
                stop.set()
                beating.join()
                for rt in runtimes:
                    rt.close()
    finally:
        broker.stop()


def node(orch: OrchestratorProcess, tmp: Path, name: str) -> ModrunServer:
    (tmp / f"{name}-app").mkdir(exist_ok=True)
    (tmp / f"{name}-storage").mkdir(exist_ok=True)
    return ModrunServer(
        tmp / f"{name}-app", tmp / f"{name}-storage", "--noreload", "--orchestrator", orch.url, "--name", name
    )


def failover(tmp: Path, how: str) -> float:
    """Seconds from the signal until the gateway answers from another node."""
    with OrchestratorProcess(tmp / f"orch-{how}", "--keepalive", "1s") as orch:
        nodes = {n: node(orch, tmp, f"{how}-{n}").start() for n in ("a", "b")}
        try:
            api = orch.api()
            wait_until(lambda: api.get("/api/runtimes/").json()["count"] == 2, timeout=20, what="nodes")
            api.put("/api/files/hello.wasm", content=HELLO_AS.read_bytes())
            api.post("/api/modules/", json={"name": "hello", "file": "hello.wasm"})
            wait_until(lambda: api.post("/functions/greet", content=b"x").status_code == 200, what="served")
            host = api.post("/functions/greet", content=b"x").headers["x-modrun-node"]
            victim = nodes[host.rsplit("-", 1)[1]]
            started = time.perf_counter()
            victim.proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGSTOP)
            with httpx.Client(base_url=orch.url, timeout=30) as client:
                while True:
                    r = client.post("/functions/greet", content=b"x")  # a hung node's call ends in 502
                    if r.status_code == 200 and r.headers["x-modrun-node"] != host:
                        return time.perf_counter() - started
                    time.sleep(0.01)
        finally:
            for n in nodes.values():
                if n.proc is not None and n.proc.poll() is None:
                    n.proc.send_signal(signal.SIGCONT)
                n.stop()


def gateway_overhead(tmp: Path, calls: int) -> tuple[float, float]:
    with OrchestratorProcess(tmp / "orch-gw", "--keepalive", "1s") as orch:
        worker = node(orch, tmp, "gw").start()
        try:
            api = orch.api()
            api.put("/api/files/hello.wasm", content=HELLO_AS.read_bytes())
            api.post("/api/modules/", json={"name": "hello", "file": "hello.wasm"})
            wait_until(lambda: api.post("/functions/greet", content=b"x").status_code == 200, what="served")
            timings = {}
            with httpx.Client(base_url=orch.url) as via, httpx.Client(base_url=worker.url) as direct:
                for rounds in range(2):  # the second round counts (warm)
                    for name, client in (("direct", direct), ("gateway", via)):
                        samples = []
                        for _ in range(calls):
                            t = time.perf_counter()
                            client.post("/functions/greet", content=b"Ada")
                            samples.append(time.perf_counter() - t)
                        if rounds:
                            timings[name] = statistics.median(samples)
            return timings["direct"], timings["gateway"]
        finally:
            worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--runtimes", type=int, default=10)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modrun-bench-fleet-") as tmp:
        root = Path(tmp)
        control_plane(args, root)
        for how in ("sigkill", "sigstop"):
            seconds = failover(root, how)
            cause = "Last Will" if how == "sigkill" else "keepalive timeout (3 s)"
            print(
                f"failover after {how.upper()} of the serving node ({cause}), --keepalive 1s: "
                f"{seconds:.2f} s; wasmCloud defaults ~{WASMCLOUD_FAILOVER:.0f} s -> "
                f"{seconds / WASMCLOUD_FAILOVER:.3f}x (target < 5 s)"
            )
        direct, gateway = gateway_overhead(root, args.calls)
        print(
            f"gateway: median {gateway * 1000:.3f} ms vs direct {direct * 1000:.3f} ms -> "
            f"+{(gateway - direct) * 1000:.3f} ms (target < 1 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
