"""A node's credential is its identity on an external Mosquitto too.

A real ``mosquitto -c`` that enforces a password file and an ACL, both written
by a real secured orchestrator (``--mosquittoFiles``, reloaded with SIGHUP by
``--mosquittoReload``), and a real node that joins through it and serves a
deployed plugin. A join-token holder who joined as a runtime of its own can
connect only as that runtime, cannot hear another runtime's control topic or
deregister it, and is cut off within 5 s of being revoked.
"""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from control_support import bearer, deployed, join_as, mqtt_connect, secured_fleet
from fleet_support import PrivateMosquitto
from modrun.fleet import protocol as P
from modrun.orchestrator.mosquitto import password_line
from support import HELLO_AS, wait_until

pytestmark = pytest.mark.slow
ORCHESTRATOR_PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mosquitto-identity")
    access = root / "mosquitto"
    access.mkdir()
    (access / "passwd").write_text(password_line("modrun-orchestrator", ORCHESTRATOR_PASSWORD) + "\n")
    (access / "acl").write_text("user modrun-orchestrator\ntopic readwrite realm/#\n")
    broker = PrivateMosquitto(access)
    secured = secured_fleet(
        root / "orch",
        "--mqtt",
        f"mqtt://modrun-orchestrator:{ORCHESTRATOR_PASSWORD}@127.0.0.1:{broker.port}",
        "--mosquittoFiles",
        str(access),
        "--mosquittoReload",
        f"kill -HUP {broker.proc.pid}",
    )
    node = secured.node(root / "n1", "n1")
    api = httpx.Client(base_url=secured.orch.url, headers=bearer(secured.admin.token), timeout=30)
    try:
        deployed(secured.admin, HELLO_AS, "hello")
        victim = api.get("/api/runtimes/").json()["results"][0]["uuid"]
        yield secured, broker, access, api, victim
    finally:
        api.close()
        node.stop()
        secured.stop()
        broker.stop()


def test_a_node_joins_and_serves_through_mosquitto_under_the_written_rules(fleet):
    _secured, _broker, access, api, victim = fleet
    answer = api.post("/functions/greet", content=b"Ada")
    assert answer.status_code == 200 and answer.text == "Hello, Ada!"
    module = api.get("/api/modules/").json()["results"][0]["uuid"]
    acl = (access / "acl").read_text()
    assert f"user {victim}\n" in acl and f"topic write realm/proc/stdout/{module}" in acl
    passwd = (access / "passwd").read_text()
    assert passwd.count(f"{victim}:$7$101$") == 1
    assert (access / "passwd").stat().st_mode & 0o007 == 0  # not readable by others


def test_a_joined_rogue_speaks_only_for_itself(fleet):
    secured, broker, _access, api, victim = fleet
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    assert mqtt_connect(broker.port, victim, token) is None  # a join token is no broker password
    rogue, credential = join_as(secured.orch.url, token)
    assert mqtt_connect(broker.port, victim, credential) is None  # nor is another runtime's credential
    client = wait_until(
        lambda: mqtt_connect(broker.port, rogue, credential), timeout=5, what="rogue connects"
    )
    heard: list[str] = []
    client.on_message = lambda _c, _u, message: heard.append(message.topic)
    client.subscribe(f"realm/proc/control/{victim}", qos=1)
    client.subscribe("realm/#", qos=1)
    time.sleep(0.5)
    forged = P.envelope("delete", {"type": "runtime", "uuid": victim, "name": "n1"})
    client.publish(f"realm/proc/reg/{victim}", json.dumps(forged), qos=1)
    # the orchestrator talks to the victim on its control topic (a create for a
    # second deployment, then its delete): the rogue hears none of it
    admin = secured.admin
    second = deployed(admin, HELLO_AS, "hello-two")
    assert len(api.get(f"/api/runtimes/{victim}/").json()["children"]) == 2
    admin.undeploy(second)
    wait_until(lambda: len(api.get(f"/api/runtimes/{victim}/").json()["children"]) == 1, what="undeployed")
    runtime = api.get(f"/api/runtimes/{victim}/").json()
    assert runtime["alive"] is True and runtime["children"]
    assert api.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"
    assert heard == [], heard
    client.loop_stop()
    client.disconnect()


def test_a_revoked_node_is_cut_off_mosquitto_within_5_seconds(fleet):
    secured, broker, access, api, _victim = fleet
    rogue, credential = join_as(secured.orch.url, secured.join_env["MODRUN_JOIN_TOKEN"])
    client = wait_until(
        lambda: mqtt_connect(broker.port, rogue, credential), timeout=5, what="rogue connects"
    )
    dropped: list[float] = []
    client.on_disconnect = lambda *_args: dropped.append(time.monotonic())
    revoked_at = time.monotonic()
    assert api.delete(f"/api/v2/node/{rogue}").status_code == 204
    wait_until(lambda: dropped, timeout=5, what="the broker drops the revoked node")
    assert dropped[0] - revoked_at < 5
    client.loop_stop()
    assert mqtt_connect(broker.port, rogue, credential) is None
    assert rogue not in (access / "passwd").read_text() and rogue not in (access / "acl").read_text()
