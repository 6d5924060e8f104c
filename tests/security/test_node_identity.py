"""A node speaks for itself only: the orchestrator takes the runtime from the
topic a message came on, never from its payload, and a node's module exits
count only for modules placed on it.

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
from typing import Any

import httpx
import pytest

from control_support import bearer, deployed, mqtt_connect, secured_fleet
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
        yield secured, api, deployed(admin, HELLO_AS, "hello")
    finally:
        api.close()
        node.stop()
        secured.stop()


def _replica(api: httpx.Client) -> dict:
    """The detail of the live ``hello`` replica."""
    modules = api.get("/api/modules/").json()["results"]
    found = next(m for m in modules if m["name"] == "hello" and m["status"] == P.ALIVE)
    return api.get(f"/api/modules/{found['uuid']}/").json()


def _rogue(secured) -> tuple[Any, str]:
    """An MQTT client with a valid join token, registered as a runtime of its own."""
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    config = httpx.get(secured.orch.url + "/api/config", headers=bearer(token)).json()
    rogue_id = str(uuid.uuid4())
    rogue = mqtt_connect(int(config["mqtt"].rsplit(":", 1)[1]), rogue_id, token)
    assert rogue is not None
    own = {"type": "runtime", "uuid": rogue_id, "name": "rogue", "apis": ["extism"]}
    rogue.publish(f"realm/proc/reg/{rogue_id}", json.dumps(P.envelope("create", own)), qos=1)
    with httpx.Client(base_url=secured.orch.url, headers=bearer(secured.admin.token)) as api:
        wait_until(lambda: api.get(f"/api/runtimes/{rogue_id}/").status_code == 200, timeout=10, what="rogue")
    return rogue, rogue_id


def test_a_node_cannot_deregister_or_speak_for_another(fleet):
    secured, api, _artifact = fleet
    victim = next(r for r in api.get("/api/runtimes/").json()["results"] if r["name"] == "n1")
    before = api.get(f"/api/runtimes/{victim['uuid']}/").json()
    rogue, rogue_id = _rogue(secured)
    try:
        other = {"type": "runtime", "uuid": victim["uuid"], "name": "n1"}
        # on its own topics (which the broker lets it use), in the victim's name
        rogue.publish(f"realm/proc/reg/{rogue_id}", json.dumps(P.envelope("delete", other)), qos=1)
        lies = {**other, "functions": [], "graphql": [], "children": []}
        rogue.publish(f"realm/proc/keepalive/{rogue_id}", json.dumps(P.envelope("update", lies)), qos=1)
        time.sleep(2)
    finally:
        rogue.loop_stop()
        rogue.disconnect()
    after = api.get(f"/api/runtimes/{victim['uuid']}/").json()
    assert after["alive"] is True and after["functions"] == before["functions"]
    assert api.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"


def test_a_forged_exit_leaves_the_victim_running(fleet):
    secured, api, _artifact = fleet
    victim = _replica(api)
    rogue, rogue_id = _rogue(secured)
    try:
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
