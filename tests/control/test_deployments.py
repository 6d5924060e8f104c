"""Deployments across a real orchestrator and real nodes: deploy, rolling
update under load with zero failed calls, rollback, refusals, undeploy."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from control_support import secured_fleet
from fleet_support import CallLoad
from modrun.client import Client, ClientError
from modrun.plugins.wasmbin import append_custom_section
from support import HELLO_AS, run_cli, wait_until

pytestmark = pytest.mark.slow


def test_deploy_roll_out_roll_back_undeploy(tmp_path: Path):
    secured = secured_fleet(tmp_path / "orch")
    orch, admin = secured.orch, secured.admin
    nodes = [secured.node(tmp_path / name, name) for name in ("d1", "d2")]
    signed_in = {"authorization": f"Bearer {admin.token}"}
    gateway = httpx.Client(base_url=orch.url, timeout=30, headers=signed_in)
    try:
        v2_file = tmp_path / "hello-v2.wasm"
        v2_file.write_bytes(append_custom_section(HELLO_AS.read_bytes(), "build", b"v2"))
        artifact = admin.push(HELLO_AS, name="hello")["artifact_id"]
        assert admin.push(v2_file, name="hello")["version"] == 2

        def status() -> dict:
            return admin._json("GET", f"/deploy/{artifact}/status")

        def settled(version: int) -> bool:
            now = status()  # one reading: status and version from the same reconcile
            return now["status"] == "complete" and now["version"] == version

        admin._json("POST", f"/deploy/{artifact}", json={"version": 1, "replicas": 2})
        wait_until(lambda: settled(1), timeout=30, what="deployment complete")
        first = status()
        assert {r["node"] for r in first["replicas"]} == {"d1", "d2"}  # replicas on distinct nodes
        assert {(r["version"], r["state"]) for r in first["replicas"]} == {(1, "serving")}
        assert gateway.post("/functions/greet", content=b"Ada").text == "Hello, Ada!"

        # the artifact cannot go while deployed; others may not deploy it
        with pytest.raises(ClientError) as refused:
            admin.delete_artifact(artifact)
        assert refused.value.status == 422
        admin.create_user("viewer", "viewer@example.com", "viewer-password")
        viewer = Client(orch.url)
        viewer.login("viewer", "viewer-password")
        with pytest.raises(ClientError) as refused:
            viewer._json("POST", f"/deploy/{artifact}", json={"version": 1})
        assert refused.value.status == 403
        reader = Client(
            orch.url, api_key=admin.create_key("r", artifact_ids=[artifact], scopes=["read"])["api_key"]
        )
        assert reader._json("GET", f"/deploy/{artifact}/status")["status"] == "complete"
        with pytest.raises(ClientError) as refused:
            reader._json("POST", f"/deploy/{artifact}/rollback")
        assert refused.value.status == 403

        # rolling update to version 2 while clients call through the gateway
        with CallLoad(orch.url, "/functions/greet", clients=3, headers=signed_in) as load:
            time.sleep(0.5)
            admin._json("POST", f"/deploy/{artifact}", json={"alias": "latest", "replicas": 2})
            wait_until(lambda: settled(2), timeout=60, what="rolled out")
            time.sleep(0.5)
        results = [status for _, status in load.results]
        print(f"rolling update: {len(results)} calls, {sum(1 for r in results if r != 200)} failed")
        assert results and all(code == 200 for code in results)
        assert {(r["version"], r["state"]) for r in status()["replicas"]} == {(2, "serving")}

        # roll back to the last good version
        assert admin._json("POST", f"/deploy/{artifact}/rollback")["version"] == 1
        wait_until(
            lambda: settled(1),
            timeout=60,
            what="rolled back",
        )
        history = admin._json("GET", f"/deploy/{artifact}/history")["history"]
        events = [(h["event"], h["version"]) for h in history]
        for expected in (("deploy", 1), ("complete", 1), ("update", 2), ("complete", 2), ("rollback", 1)):
            assert expected in events, events
        admin_id = admin.info()["id"]
        assert {h["actor"] for h in history if h["event"] in ("deploy", "update", "rollback")} == {
            f"user:{admin_id}"
        }
        assert {h["runtime"] for h in history if h["event"] == "replica serving"} == {"d1", "d2"}
        assert admin._json("GET", f"/deploy/{artifact}/logs")["logs"]
        assert [d["artifact_id"] for d in admin._json("GET", "/deploy/list")["deployments"]] == [artifact]

        # the CLI sees and drives the same deployment
        env = {"MODRUN_TOKEN": admin.token, "MODRUN_ORCHESTRATOR": orch.url, "COLUMNS": "200"}
        listed = run_cli("deployments", env=env)
        assert listed.returncode == 0 and b"hello" in listed.stdout and b"complete" in listed.stdout
        rolled = run_cli("deploy", "hello:2", "--replicas", "2", "--wait", env=env, timeout=90)
        assert rolled.returncode == 0 and b"hello: complete" in rolled.stdout, rolled.stderr
        back = run_cli("rollback", "hello", env=env)
        assert back.returncode == 0 and b"rolling back to version 1" in back.stdout
        assert run_cli("deploy", "nosuch@prod", env=env).returncode == 1

        admin._json("DELETE", f"/deploy/{artifact}")
        wait_until(
            lambda: gateway.post("/functions/greet", content=b"x").status_code in (404, 503),
            timeout=30,
            what="function gone",
        )
        admin.delete_artifact(artifact)
        files = gateway.get("/api/files/", params={"prefix": "artifacts/"}).json()["results"]
        assert files == []  # the deployed versions' copies went with it
    finally:
        gateway.close()
        for n in nodes:
            n.stop()
        secured.stop()
