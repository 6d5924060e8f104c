"""A node speaks for itself only. A join token is only for joining: it is
exchanged, once per runtime uuid, for that runtime's own credential, which is
the node's identity on the broker (username = its uuid) and on the fleet's
routes (it downloads only its own modules' files); revoking it cuts the node
off within seconds. The orchestrator takes the runtime from the topic a
message came on, never from its payload, and a node's module exits count only
for modules placed on it.

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
from typing import Any

import httpx
import pytest

from control_support import bearer, broker_port, deployed, join_as, mqtt_connect, secured_fleet
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


def _rogue(secured) -> tuple[Any, str, str]:
    """An MQTT client that joined with a valid join token, as a runtime of its own."""
    rogue_id, credential = join_as(secured.orch.url, secured.join_env["MODRUN_JOIN_TOKEN"])
    rogue = mqtt_connect(broker_port(secured.orch.url, credential), rogue_id, credential)
    assert rogue is not None
    own = {"type": "runtime", "uuid": rogue_id, "name": "rogue", "apis": ["extism"]}
    rogue.publish(f"realm/proc/reg/{rogue_id}", json.dumps(P.envelope("create", own)), qos=1)
    with httpx.Client(base_url=secured.orch.url, headers=bearer(secured.admin.token)) as api:
        wait_until(lambda: api.get(f"/api/runtimes/{rogue_id}/").status_code == 200, timeout=10, what="rogue")
    return rogue, rogue_id, credential


def test_a_node_cannot_deregister_or_speak_for_another(fleet):
    secured, api, _artifact = fleet
    victim = next(r for r in api.get("/api/runtimes/").json()["results"] if r["name"] == "n1")
    before = api.get(f"/api/runtimes/{victim['uuid']}/").json()
    rogue, rogue_id, _credential = _rogue(secured)
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
    rogue, rogue_id, _credential = _rogue(secured)
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


def test_a_join_token_is_only_for_joining_and_each_uuid_joins_once(fleet):
    secured, api, _artifact = fleet
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    victim = next(r for r in api.get("/api/runtimes/").json()["results"] if r["name"] == "n1")
    rogue_id, credential = join_as(secured.orch.url, token)  # the legitimate path
    port = broker_port(secured.orch.url, credential)
    # the join token itself opens neither the broker nor the files, under any name
    assert mqtt_connect(port, rogue_id, token) is None
    assert mqtt_connect(port, victim["uuid"], token) is None
    assert httpx.get(secured.orch.url + "/api/files/", headers=bearer(token)).status_code == 403
    # the victim's uuid cannot be joined again, and a credential speaks for its own runtime only
    again = httpx.post(
        secured.orch.url + "/api/v2/node/join", json={"runtime": victim["uuid"]}, headers=bearer(token)
    )
    assert again.status_code == 409 and "joined already" in again.json()["error"]
    assert mqtt_connect(port, victim["uuid"], credential) is None
    own = mqtt_connect(port, rogue_id, credential)
    assert own is not None
    own.disconnect()
    assert api.get(f"/api/runtimes/{victim['uuid']}/").json()["alive"] is True
    assert api.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"


def test_a_node_downloads_only_the_files_of_its_own_modules(fleet):
    secured, api, _artifact = fleet
    wanted = _replica(api)["file"]
    assert api.get(f"/api/files/{wanted}").status_code == 200  # an admin reads every file
    _rogue_id, credential = join_as(secured.orch.url, secured.join_env["MODRUN_JOIN_TOKEN"])
    as_rogue = bearer(credential)
    assert httpx.get(secured.orch.url + f"/api/files/{wanted}", headers=as_rogue).status_code == 404
    listed = httpx.get(secured.orch.url + "/api/files/", headers=as_rogue).json()
    assert listed["count"] == 0 and wanted not in str(listed)
    assert any(f["path"] == wanted for f in api.get("/api/files/").json()["results"])


def test_a_revoked_node_is_cut_off_within_5_seconds(fleet):
    secured, api, _artifact = fleet
    rogue, rogue_id, credential = _rogue(secured)
    dropped: list[float] = []
    rogue.on_disconnect = lambda *_a: dropped.append(time.monotonic())
    joined = next(n for n in api.get("/api/v2/node/list").json()["nodes"] if n["runtime"] == rogue_id)
    assert joined["revoked_at"] is None and api.get(f"/api/runtimes/{rogue_id}/").json()["alive"]
    config = secured.orch.url + "/api/config"
    assert httpx.get(config, headers=bearer(credential)).status_code == 200
    started = time.monotonic()
    assert api.delete(f"/api/v2/node/{rogue_id}").status_code == 204
    try:
        wait_until(lambda: dropped, timeout=5, what="the broker dropping the revoked node")
        wait_until(
            lambda: api.get(f"/api/runtimes/{rogue_id}/").json().get("alive") is not True,
            timeout=5,
            what="the revoked runtime gone from the fleet",
        )
        assert time.monotonic() - started < 5
    finally:
        rogue.loop_stop()
    listed = next(n for n in api.get("/api/v2/node/list").json()["nodes"] if n["runtime"] == rogue_id)
    assert listed["revoked_at"] is not None
    assert httpx.get(config, headers=bearer(credential)).status_code == 401
    assert (
        mqtt_connect(
            broker_port(secured.orch.url, secured.join_env["MODRUN_JOIN_TOKEN"]), rogue_id, credential
        )
        is None
    )
    assert api.delete(f"/api/v2/node/{rogue_id}").status_code == 404


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
