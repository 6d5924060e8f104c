"""Several orchestrators (issue 18): how long a takeover takes, against a
single orchestrator restarted at once (the best a supervisor like systemd
can do), and how far behind a follower's view runs.

Real processes on loopback: a private PostgreSQL, a private Mosquitto, two
``modrun orchestrator`` processes on the same database and a simulated
runtime. Each trial SIGKILLs (or SIGSTOPs) the leader, publishes a SilverLine
create at the same moment, and measures until the other one leads and until
the create reaches the runtime (and counts how often it arrived).

    .venv/bin/python bench/bench_failover.py [--trials 5]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from databases import PrivatePostgres
from fleet_support import OrchestratorProcess, PrivateMosquitto, RawClient, RawRuntime, envelope
from support import wait_until


def poll(check, timeout: float = 20.0, step: float = 0.005) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(step)
    raise TimeoutError("not within the timeout")


def spec(runtime: RawRuntime) -> dict:
    return {
        "type": "module",
        "uuid": str(uuid.uuid4()),
        "name": "m",
        "file": "x.wasm",
        "parent": runtime.uuid,
    }


def trial(
    victim: OrchestratorProcess, heir: OrchestratorProcess, runtime: RawRuntime, client: RawClient, how: int
) -> tuple[float, float, int]:
    """(takeover s, create placed s, times placed)."""
    module = spec(runtime)
    victim.proc.send_signal(how)
    started = time.monotonic()
    client.publish("realm/proc/control", envelope("create", module))
    poll(lambda: heir.role() == "leader")
    took = time.monotonic() - started  # from the signal
    poll(lambda: module["uuid"] in [c["uuid"] for c in runtime.creates()])
    placed = time.monotonic() - started
    time.sleep(1.0)  # a second placement, were there one
    if how == signal.SIGSTOP:
        victim.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: victim.role() == "follower", timeout=10, what="the old leader follows")
        time.sleep(0.5)
    count = [c["uuid"] for c in runtime.creates()].count(module["uuid"])
    return took, placed, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    pg = PrivatePostgres()
    pg.start()
    broker = PrivateMosquitto()
    root = Path(tempfile.mkdtemp(prefix="modrun-bench-failover-"))
    procs: list[OrchestratorProcess] = []
    try:
        db = pg.fresh_database("failover")
        common = ("--db", db, "--migrate", "--mqtt", broker.url, "--keepalive", "60s")
        a = OrchestratorProcess(root / "fleet", *common, "--instance", "a").start()
        wait_until(lambda: a.role() == "leader", timeout=10, what="a leads")
        b = OrchestratorProcess(root / "fleet", *common, "--instance", "b").start()
        wait_until(lambda: b.role() == "follower", timeout=10, what="b follows")
        procs += [a, b]
        runtime = RawRuntime(broker.port, name="keeper")
        runtime.register()
        client = RawClient(broker.port)

        # a follower's view: from the leader's 201 to the follower showing the module
        lags = []
        with httpx.Client(timeout=5) as http:
            for _ in range(30):
                module = spec(runtime)
                assert http.post(a.url + "/api/modules/", json=module).status_code == 201
                started = time.monotonic()
                poll(
                    lambda m=module: http.get(f"{b.url}/api/modules/{m['uuid']}/").status_code == 200,
                    step=0.001,
                )
                lags.append((time.monotonic() - started) * 1000)
        lags.sort()

        results: dict[str, list[tuple[float, float, int]]] = {"SIGKILL": [], "SIGSTOP": []}
        leader, follower = a, b
        for how in (signal.SIGKILL, signal.SIGSTOP):
            for _ in range(args.trials):
                results[how.name].append(trial(leader, follower, runtime, client, how))
                if how == signal.SIGKILL:  # back as a follower for the next trial
                    leader.start()
                    wait_until(lambda o=leader: o.role() == "follower", timeout=10, what="back, following")
                leader, follower = follower, leader

        # the baseline: one orchestrator, killed and started again at once
        follower.stop()
        restarts = []
        for _ in range(args.trials):
            module = spec(runtime)
            leader.proc.send_signal(signal.SIGKILL)
            started = time.monotonic()
            client.publish("realm/proc/control", envelope("create", module))
            leader.proc.wait()
            leader.start()
            poll(lambda o=leader: o.role() == "leader")
            up = time.monotonic() - started
            poll(lambda m=module: m["uuid"] in [c["uuid"] for c in runtime.creates()])
            restarts.append((up, time.monotonic() - started))

        print(
            f"follower view behind the leader's commit: p50 {lags[len(lags) // 2]:.1f} ms, "
            f"max {lags[-1]:.1f} ms ({len(lags)} creates)"
        )
        base_lead = statistics.median(r[0] for r in restarts)
        base_place = statistics.median(r[1] for r in restarts)
        print(
            f"{'':28} {'leads (median, max)':>22} {'create placed (median)':>24} "
            f"{'placed':>8} {'vs restart':>11}"
        )
        print(
            f"{'one orchestrator restarted':28} {base_lead:8.2f} s {max(r[0] for r in restarts):8.2f} s "
            f"{base_place:20.2f} s {'1x':>8} {'1.00x':>11}"
        )
        for name, rows in results.items():
            lead = statistics.median(r[0] for r in rows)
            place = statistics.median(r[1] for r in rows)
            counts = sorted({r[2] for r in rows})
            print(
                f"{'follower takes over: ' + name:28} {lead:8.2f} s {max(r[0] for r in rows):8.2f} s "
                f"{place:20.2f} s {'/'.join(f'{c}x' for c in counts):>8} {lead / base_lead:10.2f}x"
            )
        runtime.close()
        client.close()
    finally:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
            proc.stop()
        broker.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
