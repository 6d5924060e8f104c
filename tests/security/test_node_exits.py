"""A node speaks for itself only: its module exits are taken from its own
control topic, and only for modules placed on it.

A real secured fleet with one real node serving a deployed ``hello``, and a
rogue: an MQTT client holding a valid join token, connected as a runtime of its
own. It reports the victim's module as exited, on its own topic (which the
broker lets it publish on) and on the shared control topic (which it does
not). The module stays alive where it was and keeps answering; the real
node's own exit reports still arrive (an undeployed replica is dead within
seconds, not left exiting until a timeout).
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from control_support import bearer, mqtt_connect, secured_fleet
from modrun.fleet import protocol as P
from support import HELLO_AS, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("exits")
    secured = secured_fleet(root / "orch")
    node = secured.node(root / "n1", "n1")
    admin = secured.admin
    api = httpx.Client(base_url=secured.orch.url, headers=bearer(admin.token), timeout=30)
    try:
        artifact = admin.push(HELLO_AS, name="hello")["artifact_id"]
        admin.deploy(artifact, replicas=1)
        wait_until(lambda: admin.deployment(artifact)["status"] == "complete", timeout=40, what="hello")
        yield secured, api, artifact
    finally:
        api.close()
        node.stop()
        secured.stop()


def _replica(api: httpx.Client) -> dict:
    """The detail of the live ``hello`` replica."""
    modules = api.get("/api/modules/").json()["results"]
    found = next(m for m in modules if m["name"] == "hello" and m["status"] == P.ALIVE)
    return api.get(f"/api/modules/{found['uuid']}/").json()


def test_a_forged_exit_leaves_the_victim_running(fleet):
    secured, api, _artifact = fleet
    victim = _replica(api)
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    port = int(
        httpx.get(secured.orch.url + "/api/config", headers=bearer(token)).json()["mqtt"].rsplit(":", 1)[1]
    )
    rogue_id = str(uuid.uuid4())
    rogue = mqtt_connect(port, rogue_id, token)
    assert rogue is not None
    try:
        own = {"type": "runtime", "uuid": rogue_id, "name": "rogue", "apis": ["extism"]}
        rogue.publish(f"realm/proc/reg/{rogue_id}", json.dumps(P.envelope("create", own)), qos=1)
        wait_until(lambda: api.get(f"/api/runtimes/{rogue_id}/").status_code == 200, timeout=10, what="rogue")
        forged = P.envelope(
            "exited", {"type": "module", "uuid": victim["uuid"], "exit_code": 1, "reason": "trap"}
        )
        for topic in (f"realm/proc/control/{rogue_id}", "realm/proc/control"):
            rogue.publish(topic, json.dumps(forged), qos=1).wait_for_publish(5)
        time.sleep(2)  # the orchestrator has long handled both by now
    finally:
        rogue.loop_stop()
        rogue.disconnect()
    after = api.get(f"/api/modules/{victim['uuid']}/").json()
    assert after["status"] == P.ALIVE and after["parent"] == victim["parent"]
    assert after["restarts"] == victim["restarts"]
    assert api.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"


def test_the_nodes_own_exits_arrive(fleet):
    secured, api, artifact = fleet
    replica = _replica(api)
    started = time.monotonic()
    secured.admin.undeploy(artifact)
    wait_until(
        lambda: api.get(f"/api/modules/{replica['uuid']}/").json()["status"] == P.DEAD,
        timeout=5,  # the orchestrator stops waiting for an exit after 10 s: this must be the node's report
        what="replica dead",
    )
    assert time.monotonic() - started < 5
