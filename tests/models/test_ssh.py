"""ssh executor against a real sshd on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

from apps import envelope, make_app
from support import ModrunServer

MODEL = Path(__file__).with_name("model.py")


def _spec(sshd, **extra) -> dict:
    spec = {
        "provider": "ssh",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "privateKey": "{{KEY}}",
        "knownHosts": str(sshd.known_hosts),
        "protocol": "mer",
        "command": f"{sys.executable} {MODEL} --protocol mer",
        "workdir": str(MODEL.parent),
        "env": {"MODEL_MODE": "remote"},
    }
    spec.update(extra)
    return spec


def test_model_over_ssh_with_key_from_a_secret(app_dir, storage, bridge_wasm, sshd):
    manifest = {
        "models": {
            "remote": _spec(sshd, pool=2),
            "unknown-host": _spec(
                sshd, knownHosts=str(app_dir / "empty_known_hosts"), queueTimeout=3, readyTimeout=5
            ),
        }
    }
    (app_dir / "empty_known_hosts").write_text("")
    make_app(app_dir, bridge_wasm, manifest)
    key = sshd.client_key.read_text()
    env = {"MODRUN_REMOTE_KEY": key, "MODRUN_UNKNOWN_HOST_KEY": key}
    with ModrunServer(app_dir, storage, "--noreload", env=env) as server, server.client(timeout=60) as c:
        first = envelope(c, "model", {"model": "remote", "input": {"text": "over ssh"}})
        crash = envelope(c, "model", {"model": "remote", "input": {"op": "crash"}})
        again = envelope(c, "model", {"model": "remote", "input": {"text": "back"}})
        refused = envelope(c, "model", {"model": "unknown-host", "input": {"text": "x"}})
        models = {m["name"]: m for m in c.get("/models").json()["models"]}
        log = server.log()
    assert first["result"]["text"] == "OVER SSH"
    assert "process exited" in crash["error"]
    assert again["result"]["text"] == "BACK"
    assert "no process free" in refused["error"]
    assert "HostKeyNotVerifiable" in models["unknown-host"]["status"]["lastError"]
    assert "PRIVATE KEY" not in log
