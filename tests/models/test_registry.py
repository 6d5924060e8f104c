"""The model registry: run-time model servers, access log, versioned weights."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import httpx

from apps import make_app
from support import ModrunServer, wait_until

MODEL = Path(__file__).with_name("model.py")
DYNAMIC = {"name": "dyn", "provider": "local", "command": f"{sys.executable} {MODEL}", "protocol": "jsonl"}


def _status(c: httpx.Client, name: str) -> dict:
    return {m["name"]: m for m in c.get("/models").json()["models"]}.get(name, {})


def test_runtime_changes_need_the_flag(app_dir, storage, bridge_wasm):
    make_app(app_dir, bridge_wasm, {})
    with ModrunServer(app_dir, storage, "--noreload") as server, server.client() as c:
        r = c.post("/models", json=DYNAMIC)
        assert r.status_code == 403 and "--allowRuntimeChanges" in r.json()["error"]
        assert c.delete("/models/anything").status_code == 403


def test_create_use_modify_weights_access_delete(app_dir, storage, bridge_wasm):
    make_app(app_dir, bridge_wasm, {"models": {"fixed": {"provider": "embedded", "sourceModel": "vader"}}})
    with (
        ModrunServer(app_dir, storage, "--noreload", "--allowRuntimeChanges") as server,
        server.client(timeout=30) as c,
    ):
        assert c.post("/models", json=DYNAMIC).status_code == 201
        assert c.post("/models", json=DYNAMIC).status_code == 409
        shadow = c.post("/models", json={**DYNAMIC, "name": "fixed"})
        assert shadow.status_code == 400 and "manifest model" in shadow.json()["error"]
        bad = c.post("/models", json={"name": "broken", "provider": "local"})
        assert bad.status_code == 400 and "needs a command" in bad.json()["error"]

        assert _status(c, "dyn")["source"] == "registry"
        answer = wait_until(
            lambda: c.post("/models/dyn/invoke", json={"text": "hi"}).json().get("result"), what="dyn answers"
        )
        assert answer["text"] == "HI"

        assert c.put("/models/dyn", json={"pool": 2}).status_code == 200
        wait_until(lambda: _status(c, "dyn")["status"]["alive"] == 2, what="pool of 2")

        v1 = c.post(
            "/models/dyn/weights",
            json={"params": {"temperature": 0.2}, "weights": base64.b64encode(b"layer-1").decode()},
        )
        assert v1.status_code == 201 and v1.json()["version"] == 1
        seen = wait_until(
            lambda: (
                (e := c.post("/models/dyn/invoke", json={"op": "env"}).json().get("result"))
                and e["version"] == "1"
                and e
            ),
            what="weights v1 in the process",
        )
        assert seen["params"] == {"temperature": 0.2} and seen["weights"] == "layer-1"
        assert c.post("/models/dyn/weights", json={"params": {"temperature": 0.9}}).json()["version"] == 2
        versions = c.get("/models/dyn/weights").json()["versions"]
        assert [v["version"] for v in versions] == [2, 1] and versions[1]["weightsBytes"] == 7
        assert _status(c, "dyn")["weightsVersion"] == 2

        access = c.get("/models/dyn/access").json()["access"]
        assert len(access) >= 2 and {a["status"] for a in access} == {"ok"}
        assert all(a["stop"] >= a["start"] and len(a["requestId"]) == 36 for a in access)

    # the registry is in the database: it survives a restart
    with (
        ModrunServer(app_dir, storage, "--noreload", "--allowRuntimeChanges") as server,
        server.client(timeout=30) as c,
    ):
        assert _status(c, "dyn")["source"] == "registry"
        assert c.delete("/models/dyn").status_code == 200
        assert "dyn" not in {m["name"] for m in c.get("/models").json()["models"]}
        assert c.post("/models/dyn/invoke", json={"text": "x"}).status_code == 404
        assert c.delete("/models/dyn").status_code == 400
