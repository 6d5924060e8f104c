"""Quotas per user and team (403 with what is used), and artifacts encrypted at rest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from control_support import ADMIN_PASSWORD
from fleet_support import OrchestratorProcess
from modrun.client import Client, ClientError
from modrun.plugins.wasmbin import append_custom_section
from modrun.storage.sealed import SEGMENT, SealError, open_sealed, seal
from support import HELLO_AS, run_cli

KEY_HEX = "5f" * 32


def _client(orch, name: str, admin: Client) -> tuple[Client, str]:
    user_id = admin.create_user(name, f"{name}@example.com", f"pw-{name}-123")
    client = Client(orch.url)
    client.login(name, f"pw-{name}-123")
    return client, user_id


def test_quotas_refuse_what_does_not_fit(orch, tmp_path: Path):
    admin = Client(orch.url)
    admin.login("admin", ADMIN_PASSWORD)
    alice, alice_id = _client(orch, "quota-alice", admin)
    size = HELLO_AS.stat().st_size
    admin.set_quota("user", alice_id, artifact_bytes=size + 100, deployments=1, replicas=2)

    first = alice.push(HELLO_AS, name="q-one")["artifact_id"]
    bigger = tmp_path / "bigger.wasm"
    bigger.write_bytes(append_custom_section(HELLO_AS.read_bytes(), "pad", bytes(200)))
    with pytest.raises(ClientError) as over:
        alice.push(bigger, name="q-two")
    assert over.value.status == 403 and "quota" in str(over.value)
    assert [a["name"] for a in alice.artifacts()] == ["q-one"]  # nothing left behind

    with pytest.raises(ClientError) as too_many:
        alice.deploy(first, replicas=3)
    assert too_many.value.status == 403 and "replica quota" in str(too_many.value)
    alice.deploy(first, replicas=2)
    mine = alice.quota()
    assert mine[0]["usage"] == {"artifact_bytes": size, "deployments": 1, "replicas": 2}
    assert mine[0]["limits"]["deployments"] == 1
    alice.deploy(first, replicas=1)  # changing the one deployment is not a second one
    alice.undeploy(first)

    # the team quota counts too: an artifact of the team must fit both
    team = admin.create_team("quota-team")
    admin.add_team_member(team["id"], alice_id, team_admin=True)
    alice.set_access(first, "protected", team["id"])
    admin.set_quota("team", team["id"], deployments=0)
    with pytest.raises(ClientError) as team_full:
        alice.deploy(first, replicas=1)
    assert team_full.value.status == 403 and f"team:{team['id']}" in str(team_full.value)
    assert admin.reset_quota("team", team["id"])["limits"]["deployments"] is None

    # only admins set quotas
    with pytest.raises(ClientError) as refused:
        alice.set_quota("user", alice_id, artifact_bytes=None)
    assert refused.value.status == 403
    with pytest.raises(ClientError) as bad:
        admin.set_quota("user", alice_id, replicas=-1)
    assert bad.value.status == 400


def test_artifacts_are_encrypted_at_rest(tmp_path: Path):
    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD, "MODRUN_ARTIFACTS_KEY": KEY_HEX}
    storage = tmp_path / "orch"
    with OrchestratorProcess(storage, "--encryptArtifacts", env=env, auth="basic") as orch:
        admin = Client(orch.url)
        admin.login("admin", ADMIN_PASSWORD)
        marker = b"plaintext-marker-" + os.urandom(8).hex().encode()
        wasm = append_custom_section(HELLO_AS.read_bytes(), "note", marker * 1000)
        source = tmp_path / "marked.wasm"
        source.write_bytes(wasm)
        artifact = admin.push(source, name="sealed")["artifact_id"]
        stored = list((storage / "artifacts").rglob("*"))
        blobs = [p for p in stored if p.is_file()]
        assert blobs and all(marker not in p.read_bytes() for p in blobs)
        assert all(p.read_bytes().startswith(b"MRS1") for p in blobs)
        back = admin.download(artifact, tmp_path / "back.wasm")
        assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(wasm).hexdigest()
        assert httpx.get(orch.url + "/api/v2/artifact/list").status_code == 401
        # the fleet's file store (where nodes fetch modules) is sealed too
        signed_in = {"authorization": f"Bearer {admin.token}"}
        put = httpx.put(orch.url + "/api/files/m/marked.wasm", content=wasm, headers=signed_in)
        assert put.status_code == 201, put.text
        files = [p for p in (storage / "files").rglob("*") if p.is_file()]
        assert files and all(marker not in p.read_bytes() for p in files)
        assert httpx.get(orch.url + "/api/files/m/marked.wasm", headers=signed_in).content == wasm

    # without its key the orchestrator will not start with encryption on, and says why
    refused = run_cli(
        "orchestrator",
        "--storagePath",
        str(storage),
        "--encryptArtifacts",
        "--port",
        "1",
        env={"MODRUN_ARTIFACTS_KEY": ""},
    )
    assert refused.returncode != 0 and b"MODRUN_ARTIFACTS_KEY" in refused.stderr


@pytest.mark.parametrize("size", [0, 10, SEGMENT - 1, SEGMENT, 2 * SEGMENT + 5])
def test_sealed_files_round_trip_and_refuse_tampering(tmp_path: Path, size: int):
    key = bytes.fromhex(KEY_HEX)
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(size))
    sealed = tmp_path / "sealed"
    seal(key, plain, sealed)
    data = sealed.read_bytes()
    chunks = [data[i : i + 7777] for i in range(0, len(data), 7777)]
    assert b"".join(open_sealed(key, chunks)) == plain.read_bytes()
    with pytest.raises(SealError):
        b"".join(open_sealed(bytes(32), [data]))  # another key
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(SealError):
        b"".join(open_sealed(key, [bytes(flipped)]))
    if size > SEGMENT:  # cut after a whole segment: the last-segment flag catches it
        with pytest.raises(SealError):
            b"".join(open_sealed(key, [data[: 12 + SEGMENT + 16]]))
