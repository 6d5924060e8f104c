"""The Python client and the login/push/keys commands against a real orchestrator."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from pathlib import Path

import httpx
import pytest

from control_support import ADMIN_PASSWORD
from modrun.client import Client, ClientError
from support import HELLO_AS, TEXTKIT_C, run_cli


def test_client_covers_push_download_keys_and_refusals(orch, tmp_path: Path):
    with Client(orch.url) as admin:
        admin.login("admin", ADMIN_PASSWORD)
        name = f"cli{uuid.uuid4().hex[:6]}"
        admin.create_user(name, f"{name}@example.com", "password-" + name)
    with Client(orch.url) as client:
        client.login(name, "password-" + name)
        seen: list[tuple[int, int]] = []
        pushed = client.push(
            HELLO_AS,
            name=f"{name}-hello",
            progress=lambda sent, total: seen.append((sent, total)),
            chunk_size=16_384,
        )
        size = HELLO_AS.stat().st_size
        assert seen[-1] == (size, size) and len(seen) == -(-size // 16_384)
        assert (
            pushed["version"] == 1 and pushed["sha256"] == hashlib.sha256(HELLO_AS.read_bytes()).hexdigest()
        )
        assert client.push(TEXTKIT_C, name=f"{name}-hello")["version"] == 2
        client.set_alias(pushed["artifact_id"], "stable", 1)
        out = client.download(pushed["artifact_id"], tmp_path / "got.wasm", version="stable")
        assert out.read_bytes() == HELLO_AS.read_bytes()
        assert client.artifact(pushed["artifact_id"])["aliases"] == {"latest": 2, "stable": 1}
        key = client.create_key("reader", artifact_ids=[pushed["artifact_id"]], scopes=["read"], expires="1d")
        assert [k["name"] for k in client.api_keys()] == ["reader"]
        client.refresh()
        assert client.info()["username"] == name
    with Client(orch.url, api_key=key["api_key"]) as keyed:
        assert [a["id"] for a in keyed.artifacts()] == [pushed["artifact_id"]]
        with pytest.raises(ClientError) as refused:
            keyed.create_key("nope")
        assert refused.value.status == 403
        with pytest.raises(ClientError) as refused:
            keyed.delete_artifact(pushed["artifact_id"])
        assert refused.value.status == 403


def test_cli_login_push_and_keys(orch, tmp_path: Path):
    env = {"MODRUN_STORAGE_PATH": str(tmp_path / "home"), "MODRUN_ORCHESTRATOR": orch.url, "COLUMNS": "200"}
    wrong = run_cli("login", "--username", "admin", "--password", "nope", env=env)
    assert wrong.returncode == 1 and b"wrong username" in wrong.stderr
    logged = run_cli("login", "--username", "admin", "--password", ADMIN_PASSWORD, env=env)
    assert logged.returncode == 0 and b"as admin (admin)" in logged.stdout
    saved = tmp_path / "home" / "credentials.json"
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600 and orch.url in json.loads(saved.read_text())

    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(HELLO_AS, app / "hello.wasm")
    (app / "modrun.json").write_text("{}")
    (app / ".env").write_text("SECRET=1")  # never packed
    pushed = run_cli("push", str(app), "--name", "myapp", "--json", env=env)
    assert pushed.returncode == 0, pushed.stderr
    artifact = json.loads(pushed.stdout)["artifact_id"]
    again = run_cli("push", str(HELLO_AS), "--name", "myapp", env=env)
    assert again.returncode == 0 and b"myapp version 2" in again.stdout

    created = run_cli(
        "keys",
        "create",
        "--name",
        "deploy-bot",
        "--artifact",
        artifact,
        "--scope",
        "read",
        "--expires",
        "2d",
        env=env,
    )
    assert created.returncode == 0 and created.stdout.startswith(b"mrk_")
    key = created.stdout.decode().strip()
    listed = run_cli("keys", "list", env=env)
    assert b"deploy-bot" in listed.stdout and key.encode() not in listed.stdout
    with Client(orch.url, api_key=key) as keyed:
        assert keyed.artifact(artifact)["type"] == "bundle"
    key_id = next(
        k["id"]
        for k in Client(
            orch.url, api_key=None, token=json.loads(saved.read_text())[orch.url]["access_token"]
        ).api_keys()
        if k["name"] == "deploy-bot"
    )
    assert run_cli("keys", "delete", key_id, env=env).returncode == 0
    with Client(orch.url, api_key=key) as keyed, pytest.raises(ClientError):
        keyed.artifacts()
    too_long = run_cli("keys", "create", "--name", "x", "--all", "--expires", "400d", env=env)
    assert too_long.returncode == 1 and b"key lifetime policy" in too_long.stderr


def test_cli_fleet_commands_use_the_saved_login(orch, tmp_path: Path):
    env = {"MODRUN_STORAGE_PATH": str(tmp_path / "home"), "MODRUN_ORCHESTRATOR": orch.url, "COLUMNS": "200"}
    anonymous = run_cli("runtimes", env=env)
    assert anonymous.returncode == 1 and b"sign in" in anonymous.stderr
    assert run_cli("login", "--username", "admin", "--password", ADMIN_PASSWORD, env=env).returncode == 0
    assert run_cli("runtimes", env=env).returncode == 0
    token = run_cli("node-token", "--name", "cli-made", env=env)
    assert token.returncode == 0 and token.stdout.startswith(b"mrj_"), token.stderr
    joined = httpx.get(
        orch.url + "/api/config", headers={"authorization": f"Bearer {token.stdout.decode().strip()}"}
    )
    assert joined.status_code == 200 and joined.json()["auth"]["issuers"][0]["audience"] == "modrun"
    quota = run_cli("quota", env=env)
    assert quota.returncode == 0 and b"user:" in quota.stdout
    bad = run_cli("deploy", "nothing", "--label", "no-equals-sign", env=env)
    assert bad.returncode == 2 and b"KEY=VALUE" in bad.stderr
