"""Artifacts over HTTP against a real orchestrator: chunked pushes, versions,
aliases, tags, downloads, the permission model, key scopes, bad uploads."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from control_support import bearer, in_days, new_user
from modrun.control.permissions import ACTIONS, Level
from modrun.control.routes.table import endpoints
from support import HELLO_AS, TEXTKIT_C


def push(
    api: httpx.Client,
    token: str | dict,
    name: str,
    data: bytes,
    type_: str = "plugin",
    chunk: int = 40_000,
    digest: str | None = None,
) -> httpx.Response:
    headers = bearer(token) if isinstance(token, str) else token
    begun = api.post("/artifact/upload", headers=headers, json={"name": name, "type": type_})
    if begun.status_code != 201:
        return begun
    upload = bearer(begun.json()["token"])
    for index, start in enumerate(range(0, len(data), chunk)):
        r = api.post(f"/artifact/upload/{index}", headers=upload, content=data[start : start + chunk])
        if r.status_code != 200:
            return r
    return api.post(
        "/artifact/upload/commit", headers=upload, json={"sha256": digest or hashlib.sha256(data).hexdigest()}
    )


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def test_versions_aliases_tags_and_downloads(api, admin):
    _, owner = new_user(api, admin)
    name = f"hello-{uuid.uuid4().hex[:6]}"
    first = push(api, owner, name, HELLO_AS.read_bytes())
    assert first.status_code == 201, first.text
    artifact = first.json()["artifact_id"]
    assert first.json()["version"] == 1
    second = push(api, owner, name, TEXTKIT_C.read_bytes()).json()
    assert (second["artifact_id"], second["version"]) == (artifact, 2)
    assert (
        api.post(
            f"/artifact/{artifact}/alias", headers=bearer(owner), json={"alias": "prod", "version": 1}
        ).status_code
        == 204
    )
    assert (
        api.post(
            f"/artifact/{artifact}/alias", headers=bearer(owner), json={"alias": "latest", "version": 1}
        ).status_code
        == 400
    )
    assert api.post(
        f"/artifact/{artifact}/tags", headers=bearer(owner), json={"version": 2, "tags": ["rc"]}
    ).json()["tags"] == ["rc"]
    detail = api.get(f"/artifact/{artifact}", headers=bearer(owner)).json()
    assert detail["access"] == "private" and detail["aliases"] == {"latest": 2, "prod": 1}
    assert [(v["version"], v["sha256"], v["tags"]) for v in detail["versions"]] == [
        (1, hashlib.sha256(HELLO_AS.read_bytes()).hexdigest(), []),
        (2, hashlib.sha256(TEXTKIT_C.read_bytes()).hexdigest(), ["rc"]),
    ]
    assert all(v["pushed_by"].startswith("user:") for v in detail["versions"])
    for version, expected in (("prod", HELLO_AS), ("1", HELLO_AS), (None, TEXTKIT_C), ("latest", TEXTKIT_C)):
        r = api.get(
            f"/artifact/{artifact}/download",
            headers=bearer(owner),
            params={"version": version} if version else {},
        )
        assert (
            r.content == expected.read_bytes()
            and r.headers["x-checksum-sha256"] == hashlib.sha256(r.content).hexdigest()
        )
    assert (
        api.get(f"/artifact/{artifact}/download", headers=bearer(owner), params={"version": "9"}).status_code
        == 404
    )


def test_permissions_follow_the_bazaar_model(api, admin):
    owner_id, owner = new_user(api, admin)
    _, stranger = new_user(api, admin)
    lead_id, lead = new_user(api, admin)
    member_id, member = new_user(api, admin)
    name = f"perm-{uuid.uuid4().hex[:6]}"
    artifact = push(api, owner, name, HELLO_AS.read_bytes()).json()["artifact_id"]
    # private: only the owner (and global admins)
    assert api.get(f"/artifact/{artifact}", headers=bearer(stranger)).status_code == 403
    assert name not in [
        a["name"] for a in api.get("/artifact/list", headers=bearer(stranger)).json()["artifacts"]
    ]
    assert api.get(f"/artifact/{artifact}", headers=bearer(admin)).status_code == 200
    assert push(api, stranger, name, HELLO_AS.read_bytes()).status_code == 403
    # public, default read: everyone reads, nobody else writes
    assert (
        api.post(
            f"/artifact/{artifact}/access", headers=bearer(stranger), json={"access": "public"}
        ).status_code
        == 403
    )
    assert (
        api.post(f"/artifact/{artifact}/access", headers=bearer(owner), json={"access": "public"}).status_code
        == 204
    )
    assert api.get(f"/artifact/{artifact}/download", headers=bearer(stranger)).status_code == 200
    assert api.get(f"/artifact/{artifact}/permissions", headers=bearer(stranger)).json()["yours"] == "read"
    assert push(api, stranger, name, HELLO_AS.read_bytes()).status_code == 403
    assert (
        api.post(
            f"/artifact/{artifact}/alias", headers=bearer(stranger), json={"alias": "x", "version": 1}
        ).status_code
        == 403
    )
    # default permission write: others may push versions, still not delete
    assert (
        api.post(
            f"/artifact/{artifact}/default-permission", headers=bearer(owner), json={"permission": "write"}
        ).status_code
        == 204
    )
    assert push(api, stranger, name, HELLO_AS.read_bytes()).json()["version"] == 2
    assert api.delete(f"/artifact/{artifact}", headers=bearer(stranger)).status_code == 403
    # protected with a team: members get the default, team admins own it, strangers nothing
    team = api.post("/team/create", headers=bearer(admin), json={"name": f"t{uuid.uuid4().hex[:6]}"}).json()[
        "id"
    ]
    api.post(f"/team/{team}/admins/{lead_id}", headers=bearer(admin))
    api.post(f"/team/{team}/users/{member_id}", headers=bearer(admin))
    api.post(f"/artifact/{artifact}/default-permission", headers=bearer(owner), json={"permission": "read"})
    assert (
        api.post(
            f"/artifact/{artifact}/access", headers=bearer(owner), json={"access": "protected"}
        ).status_code
        == 400
    )
    assert (
        api.post(
            f"/artifact/{artifact}/access",
            headers=bearer(owner),
            json={"access": "protected", "team_id": team},
        ).status_code
        == 204
    )
    assert api.get(f"/artifact/{artifact}/permissions", headers=bearer(member)).json()["yours"] == "read"
    assert api.get(f"/artifact/{artifact}/permissions", headers=bearer(lead)).json()["yours"] == "owner"
    assert api.get(f"/artifact/{artifact}", headers=bearer(stranger)).status_code == 403
    assert [
        a["id"] for a in api.get(f"/team/{team}/artifacts", headers=bearer(member)).json()["artifacts"]
    ] == [artifact]
    assert api.delete(f"/artifact/{artifact}", headers=bearer(member)).status_code == 403
    assert api.delete(f"/artifact/{artifact}", headers=bearer(lead)).status_code == 204
    assert api.get(f"/artifact/{artifact}", headers=bearer(owner)).status_code == 404
    assert owner_id


def test_keys_are_scoped_to_artifacts_actions_and_their_creator(api, admin):
    _, owner = new_user(api, admin)
    a = push(api, owner, f"ka-{uuid.uuid4().hex[:6]}", HELLO_AS.read_bytes()).json()["artifact_id"]
    b = push(api, owner, f"kb-{uuid.uuid4().hex[:6]}", HELLO_AS.read_bytes()).json()["artifact_id"]
    _, other = new_user(api, admin)
    c = push(api, other, f"kc-{uuid.uuid4().hex[:6]}", HELLO_AS.read_bytes()).json()["artifact_id"]

    def key(**body) -> dict:
        r = api.post("/api-key/create", headers=bearer(owner), json={"name": "k", "exp": in_days(1), **body})
        assert r.status_code == 201, r.text
        return {"x-api-key": r.json()["api_key"]}

    reader = key(artifact_ids=[a], scopes=["read"])
    assert api.get(f"/artifact/{a}/download", headers=reader).status_code == 200
    assert api.get(f"/artifact/{b}/download", headers=reader).status_code == 403  # another artifact
    invoker = key(artifact_ids=[a], scopes=["invoke"])
    assert api.get(f"/artifact/{a}/download", headers=invoker).status_code == 403  # the wrong scope
    everything = key(all_artifacts=True, scopes=["read", "deploy", "manage", "invoke"])
    assert api.get(f"/artifact/{c}", headers=everything).status_code == 403  # never more than its creator
    listed = {x["id"] for x in api.get("/artifact/list", headers=everything).json()["artifacts"]}
    assert {a, b} <= listed and c not in listed
    assert push(api, reader, f"new-{uuid.uuid4().hex[:6]}", HELLO_AS.read_bytes()).status_code == 403
    assert push(api, everything, f"new-{uuid.uuid4().hex[:6]}", HELLO_AS.read_bytes()).status_code == 201


def test_bad_uploads_are_refused_and_leave_nothing(orch, api, admin):
    _, user = new_user(api, admin)
    before = len(api.get("/artifact/list", headers=bearer(admin)).json()["artifacts"])
    wasm = HELLO_AS.read_bytes()

    # out-of-order chunk: refused, and the upload is gone
    begun = api.post("/artifact/upload", headers=bearer(user), json={"name": "ooo", "type": "plugin"}).json()
    upload = bearer(begun["token"])
    assert api.post("/artifact/upload/0", headers=upload, content=wasm[:100]).status_code == 200
    assert api.post("/artifact/upload/2", headers=upload, content=wasm[100:]).status_code == 409
    assert api.post("/artifact/upload/commit", headers=upload, json={"sha256": "0" * 64}).status_code == 401
    # missing chunk: the digest does not match what was received
    missing = push(api, user, "gap", wasm, digest=hashlib.sha256(wasm).hexdigest(), chunk=len(wasm) // 2 + 1)
    assert missing.status_code == 201  # (all chunks present) ...
    begun = api.post("/artifact/upload", headers=bearer(user), json={"name": "gap2", "type": "plugin"}).json()
    upload = bearer(begun["token"])
    api.post("/artifact/upload/0", headers=upload, content=wasm[:1000])
    r = api.post("/artifact/upload/commit", headers=upload, json={"sha256": hashlib.sha256(wasm).hexdigest()})
    assert r.status_code == 422 and "SHA-256 mismatch" in r.json()["error"]
    api.delete(f"/artifact/{missing.json()['artifact_id']}", headers=bearer(user))

    cases = {
        "wrong digest": push(api, user, "wd", wasm, digest="ab" * 32),
        "oversize": push(api, user, "big", b"\0asm\1\0\0\0" + bytes(5 << 20), chunk=1 << 20),
        "not wasm": push(api, user, "nw", b"#!/bin/sh\nrm -rf /\n"),
        "invalid wasm": push(api, user, "iw", b"\0asm\1\0\0\0\x01\x05\x01\x60\x00"),
        "bad type": push(api, user, "bt", wasm, type_="docker"),
        "bad name": push(api, user, "../../etc", wasm),
        "zip slip": push(api, user, "zs", zipped({"../evil.wasm": wasm}), "bundle"),
        "absolute path": push(api, user, "ab", zipped({"/etc/cron.d/x.wasm": wasm}), "bundle"),
        "zip bomb": push(api, user, "zb", zipped({"a.wasm": wasm, "zeros": bytes(3 << 20)}), "bundle"),
        "no plugin": push(api, user, "np", zipped({"readme.txt": b"hi"}), "bundle"),
        "secrets": push(api, user, "se", zipped({"a.wasm": wasm, ".env": b"KEY=1"}), "bundle"),
        "bad manifest": push(
            api, user, "bm", zipped({"a.wasm": wasm, "modrun.json": b'{"models": 7}'}), "bundle"
        ),
        "bad inner wasm": push(api, user, "bw", zipped({"a.wasm": b"\0asm junk"}), "bundle"),
        "not an archive": push(api, user, "na", b"plain text", "bundle"),
    }
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w:gz") as t:
        info = tarfile.TarInfo("a.wasm")
        info.size = len(wasm)
        t.addfile(info, io.BytesIO(wasm))
        sym = tarfile.TarInfo("passwd")
        sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(sym)
    cases["tar symlink"] = push(api, user, "ts", link.getvalue(), "bundle")
    expected = {
        "wrong digest": (422, "SHA-256 mismatch"),
        "oversize": (413, "larger than the 4194304-byte limit"),
        "not wasm": (422, "not a WebAssembly module"),
        "invalid wasm": (422, "not valid WebAssembly"),
        "bad type": (400, "type: plugin or bundle"),
        "bad name": (400, "name:"),
        "zip slip": (422, "'../evil.wasm': absolute or '..' paths"),
        "absolute path": (422, "'/etc/cron.d/x.wasm': absolute or '..' paths"),
        "zip bomb": (422, "expands too much"),
        "no plugin": (422, "holds no .wasm plugin"),
        "secrets": (422, "no secrets"),
        "bad manifest": (422, "bundle manifest modrun.json: modrun.json: $.models"),
        "bad inner wasm": (422, "'a.wasm' is not valid WebAssembly"),
        "not an archive": (422, "a zip or tar archive"),
        "tar symlink": (422, "'passwd': only regular files"),
    }
    for what, r in cases.items():
        status, fragment = expected[what]
        assert r.status_code == status and fragment in r.json()["error"], (what, r.status_code, r.text)
    assert len(api.get("/artifact/list", headers=bearer(admin)).json()["artifacts"]) == before
    scratch = Path(orch.storage) / "tmp" / "uploads"
    assert list(scratch.iterdir()) == []  # no upload left behind

    good = push(
        api, user, "app", zipped({"plugins/a.wasm": wasm, "modrun.json": json.dumps({}).encode()}), "bundle"
    )
    assert good.status_code == 201, good.text


# a body for each artifact route that passes validation only after the access
# check, so an allowed caller changes nothing (deletion is given its own copy)
HARMLESS = {
    "deploy.create": {"replicas": -1000},
    "artifact.alias": {},
    "artifact.tag": {},
    "artifact.access": {"access": "nonsense"},
    "artifact.default_permission": {"permission": "nonsense"},
}


def test_role_matrix_over_every_artifact_route(api, admin):
    """Every route that acts on an artifact, generated from the route table,
    against reader, writer, owner, team admin, global admin, a stranger and
    API keys: full, expired, revoked, for another artifact, with the wrong scope."""
    _, owner = new_user(api, admin)
    lead_id, lead = new_user(api, admin)
    member_id, member = new_user(api, admin)
    _, stranger = new_user(api, admin)
    team = api.post("/team/create", headers=bearer(admin), json={"name": f"m{uuid.uuid4().hex[:6]}"}).json()[
        "id"
    ]
    api.post(f"/team/{team}/admins/{lead_id}", headers=bearer(admin))
    api.post(f"/team/{team}/users/{member_id}", headers=bearer(admin))

    def artifact(default: str) -> str:
        made = push(api, owner, f"mx-{uuid.uuid4().hex[:8]}", HELLO_AS.read_bytes()).json()["artifact_id"]
        body = {"access": "protected", "team_id": team}
        assert api.post(f"/artifact/{made}/access", headers=bearer(owner), json=body).status_code == 204
        perm = {"permission": default}
        assert (
            api.post(f"/artifact/{made}/default-permission", headers=bearer(owner), json=perm).status_code
            == 204
        )
        return made

    def key(artifacts: list[str], scopes: list[str], exp: str | None = None) -> dict:
        body = {"name": "m", "artifact_ids": artifacts, "scopes": scopes, "exp": exp or in_days(1)}
        made = api.post("/api-key/create", headers=bearer(owner), json=body)
        assert made.status_code == 201, made.text
        return {"x-api-key": made.json()["api_key"], "id": made.json()["id"]}

    read_art, write_art, other = artifact("read"), artifact("write"), artifact("read")
    all_scopes = ["invoke", "read", "deploy", "manage"]
    full = {art: key([art], all_scopes) for art in (read_art, write_art)}
    foreign = key([other], all_scopes)
    expiring = {
        art: key([art], all_scopes, (datetime.now(UTC) + timedelta(seconds=2)).isoformat())
        for art in (read_art, write_art)
    }
    revoked = {art: key([art], all_scopes) for art in (read_art, write_art)}
    for made in revoked.values():
        assert (
            api.post("/api-key/delete", headers=bearer(owner), json={"api_key_id": made["id"]}).status_code
            == 204
        )
    time.sleep(2.5)  # the expiring keys are now expired

    def scopeless(art: str, scope: str) -> dict:
        return key([art], [s for s in all_scopes if s != scope])

    levels = {  # caller -> level on (the default-read artifact, the default-write artifact)
        "stranger": (Level.NONE, Level.NONE),
        "member": (Level.READ, Level.WRITE),
        "owner": (Level.OWNER, Level.OWNER),
        "team admin": (Level.OWNER, Level.OWNER),
        "admin": (Level.OWNER, Level.OWNER),
    }
    tokens = {"stranger": stranger, "member": member, "owner": owner, "team admin": lead, "admin": admin}
    checked = 0
    routes = [e for e in endpoints() if e.artifact]
    assert len(routes) >= 12
    for endpoint in routes:
        scope, needed = ACTIONS[endpoint.artifact]
        for index, art in enumerate((read_art, write_art)):
            callers: list[tuple[str, dict, int | None]] = []
            for name, token in tokens.items():
                allowed = levels[name][index] >= needed
                callers.append((name, bearer(token), None if allowed else 403))
            callers += [
                ("full key", {"x-api-key": full[art]["x-api-key"]}, None),
                ("expired key", {"x-api-key": expiring[art]["x-api-key"]}, 401),
                ("revoked key", {"x-api-key": revoked[art]["x-api-key"]}, 401),
                ("key for another artifact", {"x-api-key": foreign["x-api-key"]}, 403),
                ("key without the scope", {"x-api-key": scopeless(art, scope)["x-api-key"]}, 403),
            ]
            for caller, headers, want in callers:
                target = art
                if endpoint.action == "artifact.delete" and want is None:
                    target = artifact("read" if index == 0 else "write")  # its own copy to delete
                    if caller == "full key":
                        headers = {"x-api-key": key([target], all_scopes)["x-api-key"]}
                path = endpoint.path.replace("{id}", target)
                r = api.request(
                    endpoint.method, path, headers=headers, json=HARMLESS.get(endpoint.action, {})
                )
                where = (endpoint.method, endpoint.path, caller, "default " + ("read", "write")[index])
                if want is None:
                    assert r.status_code not in (401, 403), (*where, r.status_code, r.text)
                else:
                    assert r.status_code == want, (*where, r.status_code, r.text)
                checked += 1
    assert checked == len(routes) * 2 * 10
