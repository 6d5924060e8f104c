"""A secured fleet end to end: a real orchestrator (``--auth basic``) and real
nodes joined with a join token. The gateway and the nodes themselves refuse
anonymous calls (401) and calls without Read + invoke on the artifact that
provides the function (403); revocation reaches the whole fleet within 5 s;
the embedded broker keeps each node to its own topics."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from control_support import bearer, deployed, join_as, mqtt_connect, secured_fleet
from modrun.client import Client, ClientError
from modrun.fleet import protocol as P
from support import CONNECT_AS, HELLO_AS, TEST_SOURCES, TEXTKIT_C, ModrunServer, build_wat, wait_until

pytestmark = pytest.mark.slow
REVOCATION_BOUND = 5.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("secured")
    secured = secured_fleet(root / "orch")
    local = root / "e2-plugins"
    local.mkdir()
    build_wat(TEST_SOURCES / "sandbox.wat", local / "sandbox.wasm")  # the node's own plugin
    nodes = {
        "e1": secured.node(root / "e1", "e1", "--label", "zone=eu"),
        "e2": secured.node(local, "e2"),
    }
    admin_root = httpx.Client(base_url=secured.orch.url, headers=bearer(secured.admin.token), timeout=30)
    wait_until(lambda: admin_root.get("/api/runtimes/").json()["count"] == 2, timeout=30, what="2 nodes")
    token = secured.join_env["MODRUN_JOIN_TOKEN"]
    try:
        yield secured.orch, secured.admin, nodes, token, admin_root, root
    finally:
        for node in nodes.values():
            node.stop()
        admin_root.close()
        secured.stop()


def _status(url: str, path: str, headers: dict, body: bytes = b"Ada") -> int:
    return httpx.post(url + path, content=body, headers=headers, timeout=30).status_code


def test_join_needs_a_valid_token(fleet):
    orch, _admin, _nodes, _token, admin_root, root = fleet
    assert httpx.get(orch.url + "/api/config").status_code == 401
    assert (
        httpx.get(orch.url + "/api/config", headers=bearer("mrj_" + "A" * 40 + "_00000000")).status_code
        == 401
    )
    (root / "intruder").mkdir()
    intruder = ModrunServer(
        root / "intruder", root / "intruder", "--noreload", "--orchestrator", orch.url, "--name", "intruder"
    ).start()
    try:
        time.sleep(3)
        names = {r["name"] for r in admin_root.get("/api/runtimes/").json()["results"]}
        assert "intruder" not in names
        assert "refused to let this node join" in intruder.log()
    finally:
        intruder.stop()


def test_keys_users_and_permissions_are_enforced_on_gateway_and_nodes(fleet):
    orch, admin, nodes, _token, _root, _ = fleet
    hello = deployed(admin, HELLO_AS, "hello", replicas=2)
    text = deployed(admin, TEXTKIT_C, "textkit", replicas=1)
    owner = Client(orch.url)
    owner_id = admin.create_user("carol", "carol@example.com", "pw-carol-123")
    owner.login("carol", "pw-carol-123")
    assert owner_id

    # nothing: 401 everywhere, with a reason
    for url in (orch.url, nodes["e1"].url, nodes["e2"].url):
        refused = httpx.post(url + "/functions/greet", content=b"x")
        assert refused.status_code == 401 and "sign in" in refused.json()["error"]
    # a user who may not read the private artifacts: 403
    assert _status(orch.url, "/functions/greet", bearer(owner.token)) == 403
    assert _status(nodes["e1"].url, "/functions/greet", bearer(owner.token)) == 403
    # the admin may call both
    assert httpx.post(orch.url + "/functions/greet", content=b"Ada", headers=bearer(admin.token)).text == (
        "Hello, Ada!"
    )
    assert _status(orch.url, "/functions/reverse", bearer(admin.token)) == 200

    # a key for hello only: works on hello (gateway and node), refused on textkit
    key = admin.create_key("hello-only", artifact_ids=[hello], scopes=["invoke"], expires="1d")
    with_key = {"x-api-key": key["api_key"]}
    assert _status(orch.url, "/functions/greet", with_key) == 200
    assert _status(nodes["e1"].url, "/functions/greet", with_key) == 200
    assert _status(orch.url, "/functions/reverse", with_key) == 403
    text_node = next(n for n in nodes.values() if _serves(n.url, "reverse", admin.token))
    assert _status(text_node.url, "/functions/reverse", with_key) == 403
    # GraphQL through the gateway: the key may ask for nothing of textkit
    denied = httpx.post(
        orch.url + "/graphql", json={"query": '{ reverse(text: "x") }'}, headers=with_key, timeout=30
    )
    assert denied.status_code == 403 and denied.json()["errors"][0]["message"]
    assert (
        httpx.post(orch.url + "/graphql", json={"query": "{ __typename }"}, headers=with_key).status_code
        == 200
    )
    # a key with the wrong scope: 403
    read_only = admin.create_key("read-only", artifact_ids=[hello], scopes=["read"], expires="1d")
    assert _status(orch.url, "/functions/greet", {"x-api-key": read_only["api_key"]}) == 403
    # the node's own plugin (no artifact) is for admins only
    assert _status(nodes["e2"].url, "/functions/noop", with_key) == 403
    assert _status(nodes["e2"].url, "/functions/noop", bearer(admin.token), b"") == 200
    # node management routes are for admins
    assert httpx.get(nodes["e1"].url + "/models", headers=with_key).status_code == 403
    assert httpx.get(nodes["e1"].url + "/health").status_code == 200

    # a permission change reaches the fleet within the bound: hello made public
    admin.set_access(hello, "public")
    took = _until(lambda: _status(nodes["e1"].url, "/functions/greet", bearer(owner.token)) == 200)
    assert took < REVOCATION_BOUND
    assert _status(orch.url, "/functions/greet", bearer(owner.token)) == 200

    # revoking the key: refused on the gateway and on every node within 5 s
    assert _status(nodes["e2"].url, "/functions/greet", with_key) == 200
    admin.delete_key(key["id"])
    took = _until(
        lambda: all(
            _status(url, "/functions/greet", with_key) == 401
            for url in (orch.url, nodes["e1"].url, nodes["e2"].url)
        )
    )
    assert took < REVOCATION_BOUND, took

    # deleting the user: their token stops working everywhere within 5 s
    assert _status(nodes["e1"].url, "/functions/greet", bearer(owner.token)) == 200
    admin.delete_user(owner_id)
    took = _until(
        lambda: all(
            _status(url, "/functions/greet", bearer(owner.token)) == 401
            for url in (orch.url, nodes["e1"].url)
        )
    )
    assert took < REVOCATION_BOUND, took

    # what was denied is in the audit log, without secrets
    denied_calls = admin.audit(action="function.invoke", outcome="denied")
    assert denied_calls and key["api_key"] not in str(denied_calls)
    admin.undeploy(text)


def test_labels_choose_the_nodes(fleet):
    _orch, admin, _nodes, _token, _admin_root, _ = fleet
    artifact = admin.push(HELLO_AS, name="hello-eu")["artifact_id"]
    admin.deploy(artifact, replicas="daemon", labels={"zone": "eu"})
    wait_until(lambda: admin.deployment(artifact)["status"] == "complete", timeout=40, what="eu deploy")
    state = admin.deployment(artifact)
    assert [r["node"] for r in state["replicas"]] == ["e1"] and state["labels"] == {"zone": "eu"}
    with pytest.raises(ClientError) as bad:
        admin.deploy(artifact, labels={"zone": "a b"})
    assert bad.value.status == 400
    admin.undeploy(artifact)


def test_the_broker_keeps_nodes_to_their_own_topics(fleet):
    orch, _admin, _nodes, token, admin_root, _ = fleet
    config = httpx.get(orch.url + "/api/config", headers=bearer(token)).json()
    port = int(config["mqtt"].rsplit(":", 1)[1])
    victim = next(r for r in admin_root.get("/api/runtimes/").json()["results"] if r["name"] == "e1")

    anonymous = mqtt_connect(port, None, None)
    assert anonymous is None  # refused
    assert mqtt_connect(port, "someone", "not-a-token") is None

    assert mqtt_connect(port, str(uuid.uuid4()), token) is None  # a join token is only for joining
    rogue_id, credential = join_as(orch.url, token)
    rogue = mqtt_connect(port, rogue_id, credential)
    assert rogue is not None
    try:
        granted: list[list[int]] = []
        rogue.on_subscribe = lambda _c, _u, _mid, codes, _p: granted.append([int(c.value) for c in codes])
        rogue.subscribe(
            [
                (f"realm/proc/control/{victim['uuid']}", 1),
                ("realm/#", 1),
                (f"realm/proc/control/{rogue_id}", 1),
            ]
        )
        wait_until(lambda: granted, timeout=5, what="SUBACK")
        assert granted[0][0] >= 0x80 and granted[0][1] >= 0x80 and granted[0][2] < 0x80
        # its own registration goes through (so the messages below are well formed) ...
        own = {"type": "runtime", "uuid": rogue_id, "name": "rogue", "apis": []}
        rogue.publish(f"realm/proc/reg/{rogue_id}", json.dumps(P.envelope("create", own)), qos=1)
        wait_until(
            lambda: admin_root.get(f"/api/runtimes/{rogue_id}/").status_code == 200, timeout=10, what="rogue"
        )
        # ... but deregistering e1 in its name is dropped by the broker: e1 stays alive
        forged = {"type": "runtime", "uuid": victim["uuid"], "name": "e1"}
        rogue.publish(
            f"realm/proc/reg/{victim['uuid']}", json.dumps(P.envelope("delete", forged)), qos=1
        ).wait_for_publish(5)
        time.sleep(2)
        assert admin_root.get(f"/api/runtimes/{victim['uuid']}/").json()["alive"] is True
    finally:
        rogue.loop_stop()
        rogue.disconnect()


def test_join_tokens_are_admin_only_and_can_be_deleted(fleet):
    orch, admin, _nodes, _token, _root, _ = fleet
    made = admin.create_node_token("short-lived")
    assert made["token"].startswith("mrj_")
    listed = admin.node_tokens()
    assert any(t["id"] == made["id"] for t in listed) and made["token"] not in str(listed)
    assert httpx.get(orch.url + "/api/config", headers=bearer(made["token"])).status_code == 200
    admin.delete_node_token(made["id"])
    assert httpx.get(orch.url + "/api/config", headers=bearer(made["token"])).status_code == 401
    # a join token opens nothing else
    assert httpx.get(orch.url + "/api/v2/user/info", headers=bearer(made["token"])).status_code == 401


def _serves(url: str, function: str, token: str) -> bool:
    listing = httpx.get(url + "/functions", headers=bearer(token)).json()["functions"]
    return any(f["name"] == function for f in listing)


def _until(check, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            return timeout
        time.sleep(0.1)
    return time.monotonic() - started


def test_deployment_limits_bound_each_call(fleet, tmp_path: Path):
    orch, admin, nodes, _token, _root, _ = fleet
    sandbox = build_wat(TEST_SOURCES / "sandbox.wat", tmp_path / "sandbox.wasm")
    artifact = admin.push(sandbox, name="limited")["artifact_id"]
    with pytest.raises(ClientError) as bad:
        admin.deploy(artifact, limits={"timeout": "soon"})
    assert bad.value.status == 400 and "limits" in str(bad.value)
    admin.deploy(artifact, replicas=1, labels={"zone": "eu"}, limits={"timeout": "300ms"})
    wait_until(lambda: admin.deployment(artifact)["status"] == "complete", timeout=40, what="limited")
    assert admin.deployment(artifact)["limits"] == {"timeout": 0.3}
    started = time.monotonic()
    spun = httpx.post(nodes["e1"].url + "/functions/spin", headers=bearer(admin.token), timeout=30)
    took = time.monotonic() - started
    assert spun.status_code >= 400 and took < 3, (spun.status_code, took)  # the node's own default is 10 s
    assert "time" in spun.text.lower()
    # the call error was shipped from the node: in the deployment's logs and the module's output
    wait_until(
        lambda: any(
            e.get("stream") == "stderr" and "error spin" in e["line"] for e in admin.deploy_logs(artifact)
        ),
        timeout=10,
        what="the call error in the deployment's logs",
    )
    replica = admin.deployment(artifact)["replicas"][0]["module"]
    output = httpx.get(f"{orch.url}/api/modules/{replica}/output", headers=bearer(admin.token)).json()
    assert any("error spin" in line["line"] for line in output["lines"])
    admin.undeploy(artifact)


def test_a_bundle_deploys_as_a_whole_app(fleet, tmp_path: Path):
    """An app directory (two plugins, a manifest with plugin config and an
    embedded model) pushed as a bundle, deployed, called through the gateway
    and on its node; checked like any artifact."""
    orch, admin, nodes, _token, admin_root, _ = fleet
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(HELLO_AS, app / "hello.wasm")
    shutil.copy(CONNECT_AS, app / "connect.wasm")
    (app / "modrun.json").write_text(
        json.dumps(
            {
                "models": {"sentiment": {"provider": "embedded", "sourceModel": "vader"}},
                "plugins": {"hello": {"config": {"greeting": "Howdy"}}},
            }
        )
    )
    artifact = admin.push(app, name="whole-app")["artifact_id"]
    assert admin.artifact(artifact)["type"] == "bundle"
    admin.deploy(artifact, replicas=1, labels={"zone": "eu"})
    wait_until(lambda: admin.deployment(artifact)["status"] == "complete", timeout=90, what="bundle deployed")
    replica = admin.deployment(artifact)["replicas"][0]
    assert replica["node"] == "e1"
    signed_in = bearer(admin.token)
    # through the gateway: the bundle's functions are in the fleet's catalog
    listed = admin_root.get("/api/functions").json()["results"]
    assert any(f["name"] == "mood" and f["module"] == replica["module"] for f in listed)
    mood = httpx.post(
        orch.url + "/functions/mood", content=b"I love this, it is wonderful", headers=signed_in
    )
    assert mood.status_code == 200, mood.text
    assert mood.json()["compound"] > 0.5  # the bundle's own embedded model answered
    # on its node, under the bundle's path, with the bundle's own plugin config
    base = f"{nodes['e1'].url}/bundles/{replica['module']}"
    assert httpx.post(base + "/functions/greet", content=b"Ada", headers=signed_in).text == "Howdy, Ada!"
    # checked like any artifact: anonymous 401, a key for another artifact 403
    assert httpx.post(base + "/functions/greet", content=b"Ada").status_code == 401
    other = admin.push(HELLO_AS, name="not-the-bundle")["artifact_id"]
    key = admin.create_key("other", artifact_ids=[other], scopes=["invoke"], expires="1d")
    assert (
        httpx.post(base + "/functions/greet", content=b"x", headers={"x-api-key": key["api_key"]}).status_code
        == 403
    )
    assert _status(orch.url, "/functions/mood", {"x-api-key": key["api_key"]}) == 403
    # undeployed: the child app stops and its directory goes
    admin.undeploy(artifact)
    wait_until(
        lambda: httpx.post(base + "/functions/greet", content=b"Ada", headers=signed_in).status_code == 404,
        timeout=30,
        what="bundle stopped",
    )
