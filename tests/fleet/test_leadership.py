"""Several orchestrators on one PostgreSQL are one fleet: one leads, the others
follow, serve reads and the gateway, send writes on, and take over when the
leader is killed (SIGKILL) or paused (SIGSTOP) — with placements intact,
nothing placed twice, and a create sent during the takeover answered once."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from fleet_support import OrchestratorProcess, PrivateMosquitto, RawClient, RawRuntime, envelope
from support import wait_until

pytestmark = pytest.mark.slow


@dataclass
class Pair:
    a: OrchestratorProcess
    b: OrchestratorProcess
    broker: PrivateMosquitto
    db: str


def health(orch: OrchestratorProcess) -> dict:
    return httpx.get(orch.url + "/health", timeout=2).json()


@pytest.fixture
def pair(tmp_path, postgres) -> Iterator[Pair]:
    broker = PrivateMosquitto()
    db = postgres.fresh_database(f"ha_{uuid.uuid4().hex[:8]}")
    # one fleet shares its database, its broker and its file store (here: one directory)
    common = ("--db", db, "--migrate", "--mqtt", broker.url, "--keepalive", "30s")
    a = OrchestratorProcess(tmp_path / "fleet", *common, "--instance", "a").start()
    wait_until(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = OrchestratorProcess(tmp_path / "fleet", *common, "--instance", "b").start()
    wait_until(lambda: b.role() == "follower", timeout=10, what="b follows")
    try:
        yield Pair(a, b, broker, db)
    finally:
        for orch in (a, b):
            if orch.proc is not None and orch.proc.poll() is None:
                orch.proc.send_signal(signal.SIGCONT)
            orch.stop()
        broker.stop()


def create(runtime: RawRuntime, name: str) -> dict:
    return {
        "type": "module",
        "uuid": str(uuid.uuid4()),
        "name": name,
        "file": "x.wasm",
        "parent": runtime.uuid,
    }


def test_one_leads_and_a_follower_serves_reads_and_forwards_writes(pair):
    runtime = RawRuntime(pair.broker.port, name="keeper")
    runtime.register()
    leader, follower = pair.a, pair.b
    assert health(leader)["leader"]["instance"] == "a"
    assert health(follower)["leader"]["instance"] == "a"
    # a write sent to the follower is carried out by the leader, answered as it answered
    spec = create(runtime, "via-follower")
    with follower.api() as api:
        made = api.post("/api/modules/", json=spec)
        assert made.status_code == 201, made.text
        # the follower's view follows the leader's commit
        wait_until(
            lambda: api.get(f"/api/modules/{spec['uuid']}/").status_code == 200, timeout=2, what="seen"
        )
        assert api.get(f"/api/modules/{spec['uuid']}/").json()["parent"] == runtime.uuid
        refused = api.post("/api/modules/", json={"type": "module", "name": "bad", "file": 3})
        assert refused.status_code == 400  # the leader's refusal, passed on
    assert [c["uuid"] for c in runtime.creates()] == [spec["uuid"]]  # placed once, by the leader
    metrics = httpx.get(follower.url + "/metrics").text
    assert "modrun_orchestrator_leading 0.0" in metrics
    assert "modrun_orchestrator_leading 1.0" in httpx.get(leader.url + "/metrics").text
    runtime.close()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP])
def test_a_follower_takes_over_and_a_create_sent_meanwhile_is_answered_once(pair, how):
    runtime = RawRuntime(pair.broker.port, name="keeper")
    runtime.register()
    client = RawClient(pair.broker.port).subscribe("realm/proc/log/#")
    old, new = pair.a, pair.b
    before = create(runtime, "before")
    with old.api() as api:
        assert api.post("/api/modules/", json=before).status_code == 201
    term = health(new)["leader"]["term"]

    old.proc.send_signal(how)
    started = time.monotonic()
    during = create(runtime, "during")
    request = envelope("create", during)
    client.publish("realm/proc/control", request)  # while nobody leads
    wait_until(lambda: new.role() == "leader", timeout=10, what="the follower takes over")
    took = time.monotonic() - started
    state = health(new)
    assert state["leader"]["instance"] == "b" and state["leader"]["term"] > term

    with new.api() as api:
        wait_until(
            lambda: api.get(f"/api/modules/{during['uuid']}/").status_code == 200, timeout=5, what="placed"
        )
        assert api.get(f"/api/modules/{before['uuid']}/").json()["parent"] == runtime.uuid  # intact
    if how == signal.SIGSTOP:
        old.proc.send_signal(signal.SIGCONT)  # the paused leader wakes up holding the create too
        wait_until(lambda: old.role() == "follower", timeout=10, what="the old leader follows")
    time.sleep(1.5)  # time for a second placement, were there one
    # SilverLine answers a create by sending it on to the runtime it is placed on: once, by one leader
    placed = [c["uuid"] for c in runtime.creates()]
    assert sorted(placed) == sorted([before["uuid"], during["uuid"]]), placed
    errors = client.messages("realm/proc/log")
    assert errors == [], errors
    print(f"takeover after {how.name}: {took:.2f} s")
    runtime.close()
    client.close()


def test_a_gateway_serves_and_forwards_but_never_leads(pair, tmp_path):
    gateway = OrchestratorProcess(
        tmp_path / "fleet",
        "--db",
        pair.db,
        "--mqtt",
        pair.broker.url,
        "--keepalive",
        "30s",
        "--instance",
        "g",
    )
    gateway.args[0] = "gateway"
    gateway.start()
    try:
        runtime = RawRuntime(pair.broker.port, name="keeper")
        runtime.register()
        assert gateway.role() == "gateway"
        with gateway.api() as api:
            first = create(runtime, "through-the-gateway")
            assert api.post("/api/modules/", json=first).status_code == 201  # carried out by a
            pair.a.proc.send_signal(signal.SIGKILL)
            wait_until(lambda: pair.b.role() == "leader", timeout=10, what="b takes over")
            assert gateway.role() == "gateway"  # it never campaigns
            second = create(runtime, "after-the-takeover")
            made = api.post("/api/modules/", json=second)  # now carried out by b
            assert made.status_code == 201, made.text
            for module in (first, second):
                wait_until(
                    lambda m=module: api.get(f"/api/modules/{m['uuid']}/").status_code == 200, timeout=5
                )
            assert health(gateway)["leader"]["instance"] == "b"
        assert sorted(c["uuid"] for c in runtime.creates()) == sorted([first["uuid"], second["uuid"]])
        runtime.close()
    finally:
        gateway.stop()


def test_a_gateway_needs_the_fleets_database_and_broker(tmp_path):
    from support import run_cli

    refused = run_cli("gateway", "--storagePath", str(tmp_path), "--port", "1")
    assert refused.returncode == 2
    assert b"give --db" in refused.stderr
