"""A tenant's bundle reaches only the hosts the operator granted, and its
``{{NAME}}`` placeholders resolve only from the secrets its owner stored for it.

A real secured fleet started with ``--tenantHosts`` naming one recording server
(and a policy file granting a second one to team ``ml``); a real node whose own
environment holds a value for the very placeholder the tenant's manifest uses.
Alice's bundle calls the granted server through an HTTP model whose connection
sends ``Authorization: Bearer {{API_KEY}}``: the server sees the value Alice set
with ``modrun secrets set``, never the node's; nobody else reads it, and it is
in no log and not in the database in the clear. A stranger's plain plugin placed
on that node gets none of the node's own connections (one carries the
operator's key) or models, which the operator's copy of the same plugin uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from control_support import Recorder, bearer, deployed, join_as, secured_fleet, signed_up
from modrun.client import ClientError
from support import CONNECT_AS, HELLO_AS, wait_until

pytestmark = pytest.mark.slow
ALICES_VALUE = "alice-" + uuid.uuid4().hex
NODES_VALUE = "node-" + uuid.uuid4().hex
PLACEHOLDER_VARIABLE = "MODRUN_API_API_KEY"  # {{API_KEY}} in connection "api"
OPERATORS_KEY = "Bearer operator-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tenant-secrets")
    granted, teams_host, stranger, operators_api = Recorder(), Recorder(), Recorder(), Recorder()
    policy = root / "tenant-hosts.json"
    policy.write_text(json.dumps({"teams": {"ml": [f"127.0.0.1:{teams_host.port}"]}}))
    secured = secured_fleet(
        root / "orch", "--tenantHosts", f"127.0.0.1:{granted.port}", "--tenantHostsFile", str(policy)
    )
    (root / "n1").mkdir()
    (root / "n1" / "modrun.json").write_text(json.dumps(_node_manifest(operators_api.url)))
    node = secured.node(root / "n1", "n1", env={PLACEHOLDER_VARIABLE: NODES_VALUE})
    try:
        yield secured, node, root, granted, teams_host, stranger, operators_api
    finally:
        node.stop()
        secured.stop()
        for server in (granted, teams_host, stranger, operators_api):
            server.close()


def _node_manifest(url: str) -> dict:
    """The operator's: a connection with the operator's key, and a model."""
    return {
        "connections": {
            "ops": {"type": "http", "baseUrl": url + "/", "headers": {"Authorization": OPERATORS_KEY}}
        },
        "models": {"sentiment": {"provider": "embedded", "sourceModel": "vader"}},
    }


def _app(where: Path, url: str) -> Path:
    """A bundle with an HTTP model whose connection carries a placeholder."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(HELLO_AS, where / "hello.wasm")
    manifest = {
        "connections": {
            "api": {"type": "http", "endpoint": url, "headers": {"Authorization": "Bearer {{API_KEY}}"}}
        },
        "models": {"remote": {"provider": "generic", "connection": "api"}},
    }
    (where / "modrun.json").write_text(json.dumps(manifest))
    return where


def _modrun(url: str, token: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "MODRUN_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "modrun", *args, "--orchestrator", url],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_tenants_connection_may_reach_only_granted_hosts(fleet, tmp_path: Path):
    secured, _node, _root, granted, _teams_host, stranger, _ops = fleet
    mallory = signed_up(secured.orch.url, "mallory")
    for url, why in (
        (stranger.url + "/v1", f"connections.api.endpoint: 127.0.0.1:{stranger.port} is not among"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254:80 is not among"),
        ("http://{{TARGET}}/v1", "a placeholder in the host"),
    ):
        with pytest.raises(ClientError) as refused:
            mallory.push(_app(tmp_path / uuid.uuid4().hex, url), name="probe")
        assert refused.value.status == 422 and why in refused.value.message
    assert mallory.artifacts() == [] and stranger.requests == []
    assert mallory.push(_app(tmp_path / "fine", granted.url + "/v1"), name="fine")["version"] == 1


def test_a_team_members_grant_is_checked_again_at_deploy(fleet, tmp_path: Path):
    secured, _node, _root, _granted, teams_host, _stranger, _ops = fleet
    admin = secured.admin
    carol = signed_up(secured.orch.url, "carol")
    team = admin.create_team("ml")["id"]
    admin.add_team_member(team, carol.info()["id"])
    carol.login("carol", "pw-carol-long")
    artifact = carol.push(_app(tmp_path / "ml", teams_host.url + "/v1"), name="ml-app")["artifact_id"]
    admin.remove_team_member(team, carol.info()["id"])
    with pytest.raises(ClientError) as refused:
        carol.deploy(artifact, replicas=1)
    assert (
        refused.value.status == 422 and f"127.0.0.1:{teams_host.port} is not among" in refused.value.message
    )
    assert carol.deployments() == [] and teams_host.requests == []


def test_placeholders_resolve_only_from_the_deployments_secrets(fleet, tmp_path: Path):
    secured, node, root, granted, _teams_host, _stranger, _ops = fleet
    url = secured.orch.url
    alice, bob = signed_up(url, "alice"), signed_up(url, "bob")
    artifact = alice.push(_app(tmp_path / "app", granted.url + "/v1"), name="remote-app")["artifact_id"]
    # set from stdin: the value is in neither the command line nor the shell's history
    made = _modrun(url, alice.token, "secrets", "set", "remote-app", PLACEHOLDER_VARIABLE, stdin=ALICES_VALUE)
    assert made.returncode == 0, made.stderr
    listed = _modrun(url, alice.token, "secrets", "list", "remote-app")
    assert PLACEHOLDER_VARIABLE in listed.stdout and ALICES_VALUE not in listed.stdout
    shown = httpx.get(f"{url}/api/v2/deploy/{artifact}/secrets", headers=bearer(alice.token)).json()
    assert [s["name"] for s in shown["secrets"]] == [PLACEHOLDER_VARIABLE] and ALICES_VALUE not in json.dumps(
        shown
    )
    for token in (bob.token,):  # another tenant neither lists nor sets them
        assert httpx.get(f"{url}/api/v2/deploy/{artifact}/secrets", headers=bearer(token)).status_code == 403
        put = httpx.put(
            f"{url}/api/v2/deploy/{artifact}/secrets/{PLACEHOLDER_VARIABLE}",
            json={"value": "bobs"},
            headers=bearer(token),
        )
        assert put.status_code == 403
    alice.deploy(artifact, replicas=1)
    wait_until(lambda: alice.deployment(artifact)["status"] == "complete", timeout=60, what="deployed")
    module = alice.deployment(artifact)["replicas"][0]["module"]
    answer = httpx.post(
        f"{node.url}/bundles/{module}/models/remote/invoke",
        json={"prompt": "hi"},
        headers=bearer(alice.token),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert granted.requests[-1]["authorization"] == f"Bearer {ALICES_VALUE}"
    assert not any(NODES_VALUE in json.dumps(r) for r in granted.requests)
    # the values go to the node the module is placed on, and to nobody else
    secrets_path = f"{url}/api/modules/{module}/secrets"
    for who in (secured.admin.token, alice.token, bob.token):
        assert httpx.get(secrets_path, headers=bearer(who)).status_code == 403
    _rogue, rogue_credential = join_as(url, secured.join_env["MODRUN_JOIN_TOKEN"])
    assert httpx.get(secrets_path, headers=bearer(rogue_credential)).status_code == 404
    credential = next((root / "n1-state" / "fleet").glob("runtime-*.credential")).read_text().strip()
    assert httpx.get(secrets_path, headers=bearer(credential)).json()["secrets"] == {
        PLACEHOLDER_VARIABLE: ALICES_VALUE
    }
    # and are kept nowhere in the clear
    for log in (secured.orch.log_path, node.log_path):
        assert ALICES_VALUE not in log.read_text(errors="replace")
    for stored in (root / "orch").rglob("*"):
        if stored.is_file():
            assert ALICES_VALUE.encode() not in stored.read_bytes(), stored
    alice.undeploy(artifact)


def _call(url: str, token: str, function: str, body: str) -> httpx.Response:
    return httpx.post(f"{url}/functions/{function}", content=body.encode(), headers=bearer(token), timeout=30)


def test_a_tenants_plugin_gets_none_of_the_nodes_connections_or_models(fleet):
    secured, _node, _root, _granted, _teams_host, _stranger, operators_api = fleet
    url, admin = secured.orch.url, secured.admin
    target = operators_api.url + "/status"
    # the operator's own plugin on that node uses them: the legitimate path
    tool = deployed(admin, CONNECT_AS, "ops-tool")
    assert _call(url, admin.token, "fetchStatus", target).text == "200"
    assert operators_api.requests[-1]["authorization"] == OPERATORS_KEY
    assert "compound" in _call(url, admin.token, "mood", "what a lovely day").text
    admin.undeploy(tool)
    wait_until(
        lambda: _call(url, admin.token, "mood", "x").status_code in (404, 503), timeout=20, what="gone"
    )
    # the same plugin as a stranger's deployment, on the same node
    dave = signed_up(url, "dave")
    mine = deployed(dave, CONNECT_AS, "daves-tool")
    seen = len(operators_api.requests)
    fetched = _call(url, dave.token, "fetchStatus", target)
    assert fetched.text != "200", fetched.text
    mood = _call(url, dave.token, "mood", "what a lovely day")
    assert "compound" not in mood.text and "sentiment" in mood.text, mood.text
    assert len(operators_api.requests) == seen  # the operator's API saw nothing, with its key or without
    dave.undeploy(mine)
