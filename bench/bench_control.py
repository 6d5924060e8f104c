"""Control-plane benchmarks (issues 9 and 17): what checking every call costs (an
open fleet against a secured one, through the gateway and on a node, with a
token and with an API key); artifact upload speed and the orchestrator's
peak memory by artifact size; a rolling update of a 3-replica deployment
under load (failed calls, time); how long a node takes to join a secured
fleet against an open one, and the join exchange against a config read; the
permission-filtered fleet lists with 10,000 modules, a tenant's view against
an admin's.

    .venv/bin/python bench/bench_control.py [--sizes 10,50,100] [--parts auth,uploads,rolling,join,lists]

Artifacts are the hello-as plugin padded with a custom section to the size
wanted (still a valid module, as uploads are validated). Peak memory is the
orchestrator process's VmHWM from /proc, read after each push.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from control_support import ADMIN_PASSWORD, secured_fleet
from fleet_support import CallLoad, OrchestratorProcess
from modrun.client import Client
from modrun.plugins.wasmbin import append_custom_section
from support import HELLO_AS, ModrunServer, wait_until

MIB = 1 << 20


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def uploads(tmp: Path, sizes: list[int]) -> None:
    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with OrchestratorProcess(tmp / "orch-up", "--maxArtifactSize", "2GiB", env=env, auth="basic") as orch:
        client = Client(orch.url, timeout=600)
        client.login("admin", ADMIN_PASSWORD)
        baseline = peak_rss(orch.proc.pid)
        print(f"orchestrator peak RSS before uploads: {baseline / MIB:.0f} MiB")
        for size in sizes:
            wasm = append_custom_section(HELLO_AS.read_bytes(), "pad", bytes(size * MIB))
            path = tmp / f"pad{size}.wasm"
            path.write_bytes(wasm)
            started = time.perf_counter()
            client.push(path, name=f"pad{size}")
            seconds = time.perf_counter() - started
            print(
                f"push {size} MiB in 8 MiB chunks: {seconds:.2f} s = {len(wasm) / MIB / seconds:.0f} MiB/s; "
                f"orchestrator peak RSS {peak_rss(orch.proc.pid) / MIB:.0f} MiB"
            )
            path.unlink()


def rolling_update(tmp: Path) -> None:
    secured = secured_fleet(tmp / "orch-roll")
    orch, client = secured.orch, secured.admin
    nodes = [secured.node(tmp / name, name) for name in ("r1", "r2", "r3")]
    try:
        v2 = tmp / "v2.wasm"
        v2.write_bytes(append_custom_section(HELLO_AS.read_bytes(), "build", b"2"))
        artifact = client.push(HELLO_AS, name="hello")["artifact_id"]
        client.push(v2, name="hello")

        def settled(version: int) -> bool:
            state = client.deployment(artifact)
            return state["status"] == "complete" and state["version"] == version

        client.deploy(artifact, 1, replicas=3)
        wait_until(lambda: settled(1), timeout=60, interval=0.05, what="v1 complete")
        with CallLoad(orch.url, "/functions/greet", clients=4, headers=client.auth_headers()) as load:
            time.sleep(1)
            started = time.perf_counter()
            client.deploy(artifact, 2, replicas=3)
            wait_until(lambda: settled(2), timeout=120, interval=0.05, what="v2 complete")
            took = time.perf_counter() - started
            time.sleep(1)
        print(
            f"rolling update of 3 replicas under load (4 clients): {len(load.results)} calls, "
            f"{len(load.failed())} failed (target 0); complete after {took:.2f} s"
        )
    finally:
        for node in nodes:
            node.stop()
        secured.stop()


def _fleet(tmp: Path, name: str, auth: str) -> tuple[OrchestratorProcess, ModrunServer, dict]:
    """An orchestrator with one node serving hello-as; the admin's headers."""
    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    orch = OrchestratorProcess(tmp / f"orch-{name}", "--keepalive", "1s", env=env, auth=auth).start()
    client = Client(orch.url)
    node_env = {}
    if auth != "none":
        client.login("admin", ADMIN_PASSWORD)
        node_env["MODRUN_JOIN_TOKEN"] = client.create_node_token("bench")["token"]
    (tmp / name).mkdir()
    worker = ModrunServer(
        tmp / name, tmp / name, "--noreload", "--orchestrator", orch.url, "--name", name, env=node_env
    ).start()
    artifact = client.push(HELLO_AS, name="hello")["artifact_id"]
    client.deploy(artifact, replicas=1)
    wait_until(lambda: client.deployment(artifact)["status"] == "complete", timeout=60, what="deployed")
    headers = client.auth_headers()
    if auth != "none":
        key = client.create_key("bench", artifact_ids=[artifact], scopes=["invoke"], expires="1d")
        headers = {"token": headers, "key": {"x-api-key": key["api_key"]}}
    else:
        headers = {"none": {}}
    return orch, worker, headers


def auth_overhead(tmp: Path, calls: int) -> None:
    """Median latency of one call, open fleet vs secured fleet, interleaved."""
    open_orch, open_node, _ = _fleet(tmp, "open", "none")
    safe_orch, safe_node, creds = _fleet(tmp, "safe", "basic")
    try:
        cases = [
            ("gateway, open fleet", open_orch.url, {}),
            ("gateway, token", safe_orch.url, creds["token"]),
            ("gateway, API key", safe_orch.url, creds["key"]),
            ("node, open fleet", open_node.url, {}),
            ("node, token", safe_node.url, creds["token"]),
            ("node, API key", safe_node.url, creds["key"]),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        clients = {name: httpx.Client(base_url=url, headers=headers) for name, url, headers in cases}
        for name, client in clients.items():  # warm connections and caches
            for _ in range(50):
                assert client.post("/functions/greet", content=b"Ada").status_code == 200, name
        for _ in range(calls):
            for name, client in clients.items():
                started = time.perf_counter()
                client.post("/functions/greet", content=b"Ada")
                samples[name].append(time.perf_counter() - started)
        median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        for where in ("gateway", "node"):
            base = median[f"{where}, open fleet"]
            print(f"{where}, open fleet: median {base:.3f} ms")
            for how in ("token", "API key"):
                value = median[f"{where}, {how}"]
                print(
                    f"{where}, secured, {how}: median {value:.3f} ms -> +{value - base:.3f} ms "
                    f"({value / base:.2f}x){' (target < 0.2 ms added)' if where == 'gateway' else ''}"
                )
        for client in clients.values():
            client.close()
    finally:
        for proc in (open_node, safe_node):
            proc.stop()
        open_orch.stop()
        safe_orch.stop()


def _p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def join_time(tmp: Path, starts: int, exchanges: int) -> None:
    """Node start to alive in the fleet, open vs secured; the exchange itself."""
    import uuid

    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    fleets = {
        auth: OrchestratorProcess(tmp / f"join-{auth}", "--keepalive", "1s", env=env, auth=auth).start()
        for auth in ("none", "basic")
    }
    try:
        admin = Client(fleets["basic"].url)
        admin.login("admin", ADMIN_PASSWORD)
        token = admin.create_node_token("bench")["token"]
        alive: dict[str, list[float]] = {"none": [], "basic": []}
        for i in range(starts):
            for auth, orch in fleets.items():
                where = tmp / f"joiner-{auth}-{i}"
                where.mkdir()
                node_env = {"MODRUN_JOIN_TOKEN": token} if auth == "basic" else {}
                api = httpx.Client(base_url=orch.url, headers=admin.auth_headers(), timeout=10)
                started = time.perf_counter()
                node = ModrunServer(
                    where, where, "--noreload", "--orchestrator", orch.url, "--name", f"j{i}", env=node_env
                ).start()
                names = lambda api=api: {r["name"] for r in api.get("/api/runtimes/").json()["results"]}  # noqa: E731
                wait_until(
                    lambda i=i, names=names: f"j{i}" in names(), timeout=30, interval=0.01, what="joined"
                )
                alive[auth].append(time.perf_counter() - started)
                node.stop()
                api.close()
        base, secured = _p50(alive["none"]), _p50(alive["basic"])
        print(
            f"node start to alive in the fleet, p50 of {starts}: open {base:.0f} ms, "
            f"secured {secured:.0f} ms ({secured / base:.2f}x)"
        )
        with httpx.Client(base_url=fleets["basic"].url, headers={"authorization": f"Bearer {token}"}) as http:
            config, join = [], []
            for _ in range(exchanges):
                started = time.perf_counter()
                assert http.get("/api/config").status_code == 200
                config.append(time.perf_counter() - started)
                started = time.perf_counter()
                made = http.post("/api/v2/node/join", json={"runtime": str(uuid.uuid4()), "name": "bench"})
                assert made.status_code == 201, made.text
                join.append(time.perf_counter() - started)
        print(
            f"join exchange (POST /api/v2/node/join), p50 of {exchanges}: {_p50(join):.2f} ms; "
            f"GET /api/config with the same token {_p50(config):.2f} ms ({_p50(join) / _p50(config):.2f}x)"
        )
    finally:
        for orch in fleets.values():
            orch.stop()


def filtered_lists(tmp: Path, modules: int, rounds: int) -> None:
    """The fleet's list routes with ``modules`` modules of 100 artifacts, a
    tenant who may read 10 of them against the admin who sees all; a full page
    (1,000) and a page of 100 from the middle."""
    from control_support import broker_port, join_as, signed_up
    from fleet_support import RawRuntime

    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with OrchestratorProcess(tmp / "lists", "--keepalive", "60s", env=env, auth="basic") as orch:
        admin = Client(orch.url)
        admin.login("admin", ADMIN_PASSWORD)
        tenant = signed_up(orch.url, "tenant")
        # one joined runtime (a raw MQTT client) that every module is placed on
        runtime, credential = join_as(orch.url, admin.create_node_token("bench")["token"], name="holder")
        holder = RawRuntime(broker_port(orch.url, credential), name="holder", auth=(runtime, credential))
        holder.register()
        owners = [tenant] * 10 + [admin] * 90
        artifacts = [c.push(HELLO_AS, name=f"a{i}")["artifact_id"] for i, c in enumerate(owners)]
        api = httpx.Client(base_url=orch.url, headers=admin.auth_headers(), timeout=60)
        assert api.put("/api/files/hello.wasm", content=HELLO_AS.read_bytes()).status_code == 201
        started = time.perf_counter()
        for i in range(modules):
            group = f"deploy:{artifacts[i % len(artifacts)]}:v{i}"  # one group per module: all on one runtime
            made = api.post("/api/modules/", json={"name": f"m{i}", "file": "hello.wasm", "group": group})
            assert made.status_code == 201, made.text
        took = time.perf_counter() - started
        print(f"{modules} modules of {len(artifacts)} artifacts created in {took:.1f} s")
        views = {
            "admin": api,
            "tenant": httpx.Client(base_url=orch.url, headers=tenant.auth_headers(), timeout=60),
        }
        routes = [
            "/api/modules/?status=all",  # a full page: 1,000 entries
            "/api/modules/?status=all&start=5000&count=100",
            "/api/runtimes/",
            "/api/functions",
            "/api/stats/calls",
        ]
        for route in routes:
            p50 = {}
            for who, client in views.items():
                samples = []
                for _ in range(rounds):
                    begun = time.perf_counter()
                    answer = client.get(route)
                    samples.append(time.perf_counter() - begun)
                    assert answer.status_code == 200, answer.text
                p50[who] = _p50(samples)
                if route.startswith("/api/modules"):
                    seen = int(answer.headers["x-total-count"])
                    assert seen == (modules if who == "admin" else modules // 10), seen
            print(
                f"GET {route}: admin p50 {p50['admin']:.1f} ms, tenant (filtered) p50 {p50['tenant']:.1f} ms "
                f"({p50['tenant'] / p50['admin']:.2f}x; target < 50 ms)"
            )
        for client in views.values():
            client.close()
        holder.client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,50,100", help="artifact sizes in MiB")
    parser.add_argument("--calls", type=int, default=2000, help="calls per case for the auth overhead")
    parser.add_argument("--parts", default="auth,uploads,rolling,join,lists", help="which parts to run")
    parser.add_argument("--modules", type=int, default=10000, help="modules for the list routes")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="modrun-bench-control-") as tmp:
        if "auth" in parts:
            auth_overhead(Path(tmp), args.calls)
        if "uploads" in parts:
            uploads(Path(tmp), [int(s) for s in args.sizes.split(",")])
        if "rolling" in parts:
            rolling_update(Path(tmp))
        if "join" in parts:
            join_time(Path(tmp), starts=5, exchanges=200)
        if "lists" in parts:
            filtered_lists(Path(tmp), args.modules, rounds=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
