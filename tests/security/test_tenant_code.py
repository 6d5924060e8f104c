"""Tenant code cannot reach the host.

A stranger signs up on a secured fleet and pushes a bundle whose manifest
would run a command on the node (a ``local`` model), or open the node's network
to a database: refused at upload with the field named, and nothing ran. An
admin (the operator) may push such a bundle; once that admin is demoted, the
same bundle is refused at deploy. A bundle's child node runs with a clean
environment: a command it starts sees neither the node's join token nor any
other variable of the node's.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from control_support import bearer, secured_fleet, signed_up
from modrun.client import Client, ClientError
from support import HELLO_AS, ModrunServer, wait_until

pytestmark = pytest.mark.slow
MODEL_SCRIPT = Path(__file__).resolve().parent.parent / "models" / "model.py"
CANARY = "MODRUN_TEST_NODE_CANARY"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tenants")
    secured = secured_fleet(root / "orch")
    (root / "n1").mkdir()
    (root / "n1-state").mkdir()
    node = ModrunServer(
        root / "n1",
        root / "n1-state",
        "--noreload",
        "--orchestrator",
        secured.orch.url,
        "--name",
        "n1",
        env={**secured.join_env, CANARY: "the node's own secret"},
    ).start()
    try:
        yield secured, node, root
    finally:
        node.stop()
        secured.stop()


def _bundle(where: Path, manifest: dict) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(HELLO_AS, where / "hello.wasm")
    (where / "modrun.json").write_text(json.dumps(manifest))
    return where


def test_a_stranger_cannot_ship_a_command_to_the_nodes(fleet, tmp_path: Path):
    secured, _node, _root = fleet
    marker = tmp_path / "owned"
    mallory = signed_up(secured.orch.url, "mallory")
    evil = _bundle(tmp_path / "evil", {"models": {"sh": {"provider": "local", "command": f"touch {marker}"}}})
    with pytest.raises(ClientError) as refused:
        mallory.push(evil, name="innocent")
    assert refused.value.status == 422 and "models.sh.provider" in str(refused.value)
    db = _bundle(
        tmp_path / "db",
        {
            "connections": {
                "db": {"type": "postgresql", "connString": "postgresql://postgres@127.0.0.1/postgres"}
            }
        },
    )
    with pytest.raises(ClientError) as refused:
        mallory.push(db, name="innocent")
    assert refused.value.status == 422 and "connections.db.type" in str(refused.value)
    assert mallory.artifacts() == [] and not marker.exists()
    # what a tenant may use goes through
    fine = _bundle(tmp_path / "fine", {"models": {"mood": {"provider": "embedded", "sourceModel": "vader"}}})
    assert mallory.push(fine, name="fine")["version"] == 1


def test_a_demoted_admins_bundle_is_refused_at_deploy(fleet, tmp_path: Path):
    secured, _node, _root = fleet
    admin = secured.admin
    ops_id = admin.create_user("ops", "ops@example.com", "pw-ops-long-enough")
    admin.set_admin(ops_id, True)
    ops = Client(secured.orch.url)
    ops.login("ops", "pw-ops-long-enough")
    marker = tmp_path / "ran"
    tool = _bundle(tmp_path / "tool", {"models": {"sh": {"provider": "local", "command": f"touch {marker}"}}})
    artifact = ops.push(tool, name="ops-tool")["artifact_id"]  # an operator may
    admin.set_admin(ops_id, False)
    ops.login("ops", "pw-ops-long-enough")
    with pytest.raises(ClientError) as refused:
        ops.deploy(artifact, replicas=1)
    assert refused.value.status == 422 and "models.sh.provider" in str(refused.value)
    assert ops.deployments() == [] and not marker.exists()


def test_a_bundles_child_sees_nothing_of_the_nodes_environment(fleet, tmp_path: Path):
    secured, node, root = fleet
    admin = secured.admin
    dump = root / "child-environment.json"
    app = _bundle(
        tmp_path / "app",
        {
            "models": {
                "probe": {"provider": "local", "command": f"{sys.executable} probe.py {dump} {MODEL_SCRIPT}"}
            }
        },
    )
    (app / "probe.py").write_text(
        "import json, os, sys\n"
        "json.dump(dict(os.environ), open(sys.argv[1], 'w'))\n"
        "os.execv(sys.executable, [sys.executable, sys.argv[2]])  # then answer as a model does\n"
    )
    artifact = admin.push(app, name="probe")["artifact_id"]
    admin.deploy(artifact, replicas=1)
    wait_until(lambda: admin.deployment(artifact)["status"] == "complete", timeout=60, what="probe deployed")
    module = admin.deployment(artifact)["replicas"][0]["module"]
    base = f"{node.url}/bundles/{module}"
    answer = httpx.post(
        base + "/models/probe/invoke", json={"op": "ping"}, headers=bearer(admin.token), timeout=30
    )
    assert answer.status_code == 200, answer.text
    wait_until(dump.exists, timeout=10, what="the child's command ran")
    seen = json.loads(dump.read_text())
    assert "PATH" in seen  # it could run at all
    assert "MODRUN_JOIN_TOKEN" not in seen and CANARY not in seen
    assert not any(secured.join_env["MODRUN_JOIN_TOKEN"] in value for value in seen.values())
    admin.undeploy(artifact)
