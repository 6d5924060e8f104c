"""The SilverLine wire protocol, driven by raw MQTT clients against a real
orchestrator process on a private Mosquitto."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest

from fleet_support import RawClient, RawRuntime, envelope
from support import HELLO_AS, wait_until

REALM = "realm"
LOG = f"{REALM}/proc/log/orchestrator"
CONTROL = f"{REALM}/proc/control"


@pytest.fixture
def api(orchestrator):
    with orchestrator.api() as client:
        yield client


@pytest.fixture
def watcher(mosquitto):
    client = RawClient(mosquitto.port).subscribe(LOG)
    yield client
    client.close()


def unique_api() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def registered_pair(mosquitto) -> tuple[str, list[RawRuntime]]:
    """Runtimes ``a-X`` and ``b-X`` offering an api ``X`` no other test's runtimes have."""
    api_name = unique_api()
    pair = [RawRuntime(mosquitto.port, name=f"{n}-{api_name}", apis=["wasm", "wasi", api_name]) for n in "ab"]
    for rt in pair:
        rt.register()
    return api_name, pair


def deletes(mid: str):
    return lambda _t, v: v.get("action") == "delete" and v.get("data", {}).get("uuid") == mid


def module(api: httpx.Client, query: str) -> dict:
    r = api.get(f"/api/modules/{query}/")
    assert r.status_code == 200, r.text
    return r.json()


def test_registration_reply_in_both_generations(mosquitto, api):
    for kind, reply in (("req", "resp"), ("arts_req", "arts_resp")):
        rt = RawRuntime(mosquitto.port, name=f"gen-{kind}", kind=kind)
        answer = rt.register()
        assert answer["type"] == reply
        assert answer["data"]["result"] == "ok"
        details = answer["data"]["details"]
        assert details["uuid"] == rt.uuid and details["name"] == f"gen-{kind}"
        assert details["ka_interval_sec"] == 1.0
        found = api.get(f"/api/runtimes/{rt.uuid}/").json()
        assert found["status"] == "A" and found["apis"] == ["wasm", "wasi"]
        rt.close()


def test_capacity_queue_then_exit_dequeues(mosquitto, api):
    rt = RawRuntime(mosquitto.port, name=f"cap-{uuid.uuid4().hex[:6]}", max_nmodules=1)
    rt.register()
    user = RawClient(mosquitto.port)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for mid in (first, second):
        user.publish(
            CONTROL,
            envelope(
                "create", {"type": "module", "uuid": mid, "name": "job", "file": "x.wasm", "parent": rt.name}
            ),
        )
    rt.wait_for(lambda t, v: v.get("data", {}).get("uuid") == first, what="create of the first module")
    wait_until(lambda: module(api, second)["status"] == "Q", what="second module queued")
    assert [m["uuid"] for m in api.get("/api/queued/").json()["results"]] == [second]
    assert [c["uuid"] for c in rt.creates()] == [first]
    listed = api.get(f"/api/runtimes/{rt.uuid}/").json()
    assert [m["uuid"] for m in listed["queued"]] == [second]

    rt.exited(first, exit_code=0)
    rt.wait_for(
        lambda t, v: v.get("data", {}).get("uuid") == second and v.get("action") == "create",
        what="create of the dequeued module",
    )
    assert module(api, first)["status"] == "D"
    placed = module(api, second)
    assert placed["status"] == "A" and placed["parent"] == rt.uuid
    assert [e["status"] for e in placed["history"]] == ["Q", "A"]
    # room made by a delete dequeues too
    third = api.post("/api/modules/", json={"name": "job", "file": "x.wasm", "parent": rt.name}).json()
    assert third["status"] == "Q"
    assert api.delete(f"/api/modules/{second}/").json()["status"] == "E"
    rt.exited(second, reason="deleted")
    rt.wait_for(
        lambda t, v: v.get("action") == "create" and v.get("data", {}).get("uuid") == third["uuid"],
        what="create of the module queued behind a delete",
    )
    assert module(api, third["uuid"])["status"] == "A"
    user.close()
    rt.close()


def test_scheduler_spreads_and_refuses_unsuitable(mosquitto, api, watcher):
    api_name = unique_api()
    runtimes = [
        RawRuntime(mosquitto.port, name=f"{n}-{api_name}", apis=["wasm", "wasi", api_name]) for n in "ab"
    ]
    for rt in runtimes:
        rt.register()
    placed = []
    for i in range(4):
        r = api.post("/api/modules/", json={"name": f"s{i}", "file": "x.wasm", "apis": ["wasm", api_name]})
        assert r.status_code == 201, r.text
        placed.append(r.json()["parent"])
    a, b = (rt.uuid for rt in runtimes)
    assert placed == [a, b, a, b]  # least-loaded, ties by name

    r = api.post("/api/modules/", json={"name": "nowhere", "file": "x.wasm", "apis": ["no-such-api"]})
    assert r.status_code == 422 and r.json()["error"] == "No suitable runtime!"
    user = RawClient(mosquitto.port)
    user.publish(
        CONTROL,
        envelope("create", {"type": "module", "name": "nowhere2", "file": "x.wasm", "apis": ["no-such-api"]}),
    )
    watcher.wait_for(lambda t, v: v["data"]["desc"] == "No suitable runtime!", what="error message")
    names = [m["name"] for m in api.get("/api/modules/", params={"status": "all"}).json()["results"]]
    assert "nowhere" not in names and "nowhere2" not in names
    user.close()
    for rt in runtimes:
        rt.close()


def test_last_will_moves_modules_keeping_their_uuid(mosquitto, api):
    api_name, (a, b) = registered_pair(mosquitto)
    r = api.post("/api/modules/", json={"name": "svc", "file": "hello.wasm", "apis": [api_name]})
    created = r.json()
    assert created["kind"] == "plugin" and created["restart"] == "always"
    assert created["sha256"] == hashlib.sha256(HELLO_AS.read_bytes()).hexdigest()
    assert created["parent"] == a.uuid
    started = time.monotonic()
    a.kill()  # no DISCONNECT: Mosquitto publishes a's Last Will
    b.wait_for(
        lambda t, v: v.get("action") == "create" and v.get("data", {}).get("uuid") == created["uuid"],
        what="the module re-created on b",
    )
    assert time.monotonic() - started < 2  # the Last Will, not the keepalive timeout
    moved = module(api, created["uuid"])
    assert moved["parent"] == b.uuid and moved["status"] == "A" and moved["restarts"] == 1
    reasons = [e["reason"] for e in moved["history"]]
    assert any("dead: deregistered" in r for r in reasons), reasons
    assert api.get(f"/api/runtimes/{a.uuid}/").json()["status"] == "D"
    b.close()


def test_keepalive_timeout_kills_silent_runtimes_only(mosquitto, api):
    quiet = RawRuntime(mosquitto.port, name="quiet")
    chatty = RawRuntime(mosquitto.port, name="chatty")
    quiet.register()
    chatty.register()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        chatty.keepalive(load={"cpu_percent": 5})
        time.sleep(0.4)
    assert api.get(f"/api/runtimes/{quiet.uuid}/").json()["status"] == "D"
    alive = api.get(f"/api/runtimes/{chatty.uuid}/").json()
    assert alive["status"] == "A" and alive["load"] == {"cpu_percent": 5}
    quiet.close()
    chatty.close()


def test_returning_runtime_is_told_to_drop_moved_modules(mosquitto, api):
    api_name, (a, b) = registered_pair(mosquitto)
    mid = api.post("/api/modules/", json={"name": "svc", "file": "hello.wasm", "apis": [api_name]}).json()[
        "uuid"
    ]
    # a goes quiet (a partition): it is declared dead and the module moves to b
    deadline = time.monotonic() + 10
    while module(api, mid)["parent"] != b.uuid and time.monotonic() < deadline:
        b.keepalive(children=[])
        time.sleep(0.3)
    assert module(api, mid)["parent"] == b.uuid
    # a comes back still running the module: the orchestrator deletes it there
    a.keepalive(children=[{"uuid": mid}])
    a.wait_for(deletes(mid), what="delete on a")
    assert api.get(f"/api/runtimes/{a.uuid}/").json()["status"] == "A"
    assert module(api, mid)["parent"] == b.uuid
    a.close()
    b.close()


BAD_PAYLOADS = [
    (CONTROL, b"not json", "Invalid JSON"),
    (CONTROL, b"[1, 2]", "invalid message"),
    (CONTROL, b'{"action": "create", "data": {}}', "missing field"),
    (CONTROL, b'{"type": "req", "action": "explode", "data": {}}', "invalid action/type"),
    (
        CONTROL,
        b'{"type": "req", "action": "create", "data": {"type": "module", "name": "x"}}',
        "missing field",
    ),
    (CONTROL, b'{"type": "req", "action": "create", "data": "a string"}', "invalid data"),
    (
        CONTROL,
        b'{"type": "req", "action": "delete", "data": {"type": "module", "uuid": "no-such"}}',
        "invalid module Name/UUID",
    ),
    (
        CONTROL,
        b'{"type": "req", "action": "create", "data": {"file": "x.wasm", "parent": "no-such-rt"}}',
        "invalid runtime Name/UUID",
    ),
    (CONTROL, b'{"type": "req", "action": "create", "data": {"file": "x.wasm", "args": 7}}', "invalid args"),
    (
        f"{REALM}/proc/reg/x",
        b'{"type": "req", "action": "create", "data": {"type": "runtime", "uuid": "x", "max_nmodules": -1}}',
        "invalid max_nmodules",
    ),
    (
        f"{REALM}/proc/reg/y",
        b'{"type": "req", "action": "create", "data": {"type": "toaster"}}',
        "invalid action/type",
    ),
    (
        f"{REALM}/proc/keepalive/ghost",
        b'{"type": "req", "action": "update", "data": {"uuid": "ghost"}}',
        "invalid runtime Name/UUID",
    ),
    (f"{REALM}/proc/reg/z", b"\xff\xfe\x00", "Invalid JSON"),
]


def test_malformed_payloads_get_errors_and_change_nothing(mosquitto, orchestrator, api, watcher):
    before = (
        api.get("/api/modules/", params={"status": "all"}).json()["count"],
        api.get("/api/runtimes/", params={"status": "all"}).json()["count"],
    )
    user = RawClient(mosquitto.port)
    for topic, payload, desc in BAD_PAYLOADS:
        user.publish(topic, payload)
        _, error = watcher.wait_for(
            lambda t, v, d=desc: isinstance(v, dict) and v["data"]["desc"] == d,
            what=f"error {desc!r} for {payload!r}",
        )
        assert error["action"] == "error" and error["type"] == "resp"
        assert error["data"]["kind"] in {"InvalidArgument", "MissingField", "UUIDNotFound"}
        watcher.seen.clear()
    after = (
        api.get("/api/modules/", params={"status": "all"}).json()["count"],
        api.get("/api/runtimes/", params={"status": "all"}).json()["count"],
    )
    assert after == before
    assert orchestrator.proc.poll() is None
    assert api.get("/health").json()["status"] == "ok"
    user.close()


def test_duplicate_module_uuid_is_refused(mosquitto, api):
    rt = RawRuntime(mosquitto.port, name=f"dup-{uuid.uuid4().hex[:6]}")
    rt.register()
    body = {"uuid": str(uuid.uuid4()), "name": "once", "file": "x.wasm", "parent": rt.uuid}
    assert api.post("/api/modules/", json=body).status_code == 201
    again = api.post("/api/modules/", json=body)
    assert again.status_code == 409 and again.json()["kind"] == "DuplicateUUID"
    rt.close()


def test_rest_shapes_and_lookups(mosquitto, api):
    rt = RawRuntime(mosquitto.port, name=f"shape-{uuid.uuid4().hex[:6]}")
    rt.register()
    created = api.post(
        "/api/modules/",
        json={
            "name": f"mod-{rt.name}",
            "file": "x.wasm",
            "parent": rt.uuid,
            "args": {"argv": ["x"], "env": ["A=1"]},
        },
    ).json()
    listing = api.get("/api/runtimes/").json()
    assert set(listing) == {"count", "start", "results"} and listing["start"] == 0
    entry = next(r for r in listing["results"] if r["uuid"] == rt.uuid)
    assert set(entry) == {"uuid", "name", "runtime_type", "children", "queued"}
    assert entry["children"] == [
        {"uuid": created["uuid"], "name": created["name"], "parent": rt.uuid, "file": "x.wasm"}
    ]
    for query in (created["uuid"], created["name"], created["uuid"][-8:]):
        assert module(api, query)["uuid"] == created["uuid"]
    for query in (rt.uuid, rt.name, rt.uuid[-6:]):
        assert api.get(f"/api/runtimes/{query}/").json()["uuid"] == rt.uuid
    assert api.get("/api/modules/no-such-thing/").status_code == 404
    assert api.get("/api/runtimes/no-such-thing/").status_code == 404
    filtered = api.get("/api/modules/", params={"runtime": rt.name}).json()["results"]
    assert [m["uuid"] for m in filtered] == [created["uuid"]]
    assert api.get("/api/modules/", params={"status": "bogus"}).status_code == 400
    assert api.get("/api/queued/", params={"status": "bogus"}).status_code == 400

    gone = api.delete(f"/api/modules/{created['uuid']}/").json()
    assert gone["status"] == "E"
    rt.wait_for(deletes(created["uuid"]), what="delete")
    rt.exited(created["uuid"], reason="deleted")
    wait_until(lambda: module(api, created["uuid"])["status"] == "D", what="module dead after exited")
    rt.close()


def test_file_store(api):
    data = b"\0asm\x01\0\0\0" + bytes(range(256)) * 100
    put = api.put("/api/files/dir/sub/mod.wasm", content=data)
    assert put.status_code == 201
    assert put.json()["sha256"] == hashlib.sha256(data).hexdigest() and put.json()["size"] == len(data)
    assert put.json()["kind"] == "unknown"  # a wasm header without exports or code
    assert api.put("/api/files/dir/sub/mod.wasm", content=data).status_code == 200
    got = api.get("/api/files/dir/sub/mod.wasm")
    assert got.content == data and got.headers["x-checksum-sha256"] == put.json()["sha256"]
    assert "dir/sub/mod.wasm" in [
        f["path"] for f in api.get("/api/files/", params={"prefix": "dir/"}).json()["results"]
    ]
    for bad in ("dir/%2e%2e/%2e%2e/etc/passwd", "a//b", "a/%2e/b", "x%5cy"):
        assert api.put(f"/api/files/{bad}", content=b"x").status_code == 400, bad
    assert api.delete("/api/files/dir/sub/mod.wasm").status_code == 204
    assert api.get("/api/files/dir/sub/mod.wasm").status_code == 404
    assert api.delete("/api/files/dir/sub/mod.wasm").status_code == 404
    r = api.post("/api/modules/", json={"name": "m", "file": "missing.wasm", "parent": "nope"})
    assert r.status_code == 404


def test_nodes_fetch_files_checked_and_cached(orchestrator, api, tmp_path):
    from modrun.agent.files import FetchError, FileCache

    data = HELLO_AS.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    api.put("/api/files/cached/hello.wasm", content=data)
    cache = FileCache(orchestrator.url, tmp_path / "cache")
    with pytest.raises(FetchError, match="expects"):
        cache.get("cached/hello.wasm", "0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-kept
    path, got = cache.get("cached/hello.wasm", digest)
    assert got == digest and path.read_bytes() == data
    api.delete("/api/files/cached/hello.wasm")
    assert cache.get("cached/hello.wasm", digest)[0] == path  # from the cache, no request
    with pytest.raises(FetchError, match="not in the orchestrator's file store"):
        cache.get("cached/hello.wasm", None)
    cache.close()


def test_files_cli(orchestrator, tmp_path):
    from support import run_cli

    env = {"MODRUN_ORCHESTRATOR": orchestrator.url, "COLUMNS": "200"}
    local = tmp_path / "mod.wasm"
    local.write_bytes(HELLO_AS.read_bytes())
    put = run_cli("files", "put", str(local), "cli/mod.wasm", env=env)
    assert put.returncode == 0 and hashlib.sha256(local.read_bytes()).hexdigest().encode() in put.stdout
    listed = run_cli("files", "ls", "cli/", env=env)
    assert listed.returncode == 0 and b"cli/mod.wasm" in listed.stdout
    got = run_cli("files", "get", "cli/mod.wasm", "-o", str(tmp_path / "back.wasm"), env=env)
    assert got.returncode == 0 and (tmp_path / "back.wasm").read_bytes() == local.read_bytes()
    missing = run_cli("files", "get", "cli/none.wasm", "-o", str(tmp_path / "x"), env=env)
    assert missing.returncode == 1 and b"no file" in missing.stderr and not (tmp_path / "x").exists()


def test_lists_come_in_pages(mosquitto, api):
    rt = RawRuntime(mosquitto.port, name=f"pages-{uuid.uuid4().hex[:6]}", max_nmodules=1)
    rt.register()
    made = [
        api.post("/api/modules/", json={"name": f"page-{i}", "file": "x.wasm", "parent": rt.name}).json()[
            "uuid"
        ]
        for i in range(12)
    ]  # one runs, the rest are queued on it
    listed = lambda **params: api.get("/api/modules/", params={"status": "all", "runtime": rt.uuid, **params})  # noqa: E731
    answer = listed()
    assert set(answer.json()) == {"count", "start", "results"}  # SilverLine's shape, exactly
    assert answer.headers["x-total-count"] == "12" and answer.json()["count"] == 12
    assert [m["uuid"] for m in answer.json()["results"]] == made
    answer = listed(start=5, count=4)
    assert (answer.json()["start"], answer.json()["count"], answer.headers["x-total-count"]) == (5, 4, "12")
    assert [m["uuid"] for m in answer.json()["results"]] == made[5:9]
    answer = listed(start=50)
    assert (answer.json()["count"], answer.json()["results"], answer.headers["x-total-count"]) == (
        0,
        [],
        "12",
    )
    huge = api.get("/api/modules/", params={"status": "all", "runtime": rt.uuid, "count": 10**9}).json()
    assert huge["count"] == 12  # capped at 1,000 per page, here all there is
    for bad in ({"start": "x"}, {"count": "-1"}, {"start": "-3"}):
        refused = api.get("/api/modules/", params=bad)
        assert refused.status_code == 400 and "start and count" in refused.json()["error"]
    runtimes = api.get("/api/runtimes/", params={"status": "all", "count": 1})
    assert runtimes.json()["count"] == 1 and int(runtimes.headers["x-total-count"]) >= 1
    for mid in made:
        api.delete(f"/api/modules/{mid}/")
    rt.close()


def test_health_and_metrics_say_how_far_behind_the_control_loop_runs(mosquitto, api):
    rt = RawRuntime(mosquitto.port, name=f"lag-{uuid.uuid4().hex[:6]}")
    rt.register()
    for _ in range(5):
        rt.keepalive()
    wait_until(
        lambda: api.get("/health").json()["control"]["lag_ms"]["p99"] is not None, what="a lag measured"
    )
    control = api.get("/health").json()["control"]
    assert control["backlog"] >= 0 and 0 <= control["lag_ms"]["p50"] <= control["lag_ms"]["p99"] < 1000
    metrics = api.get("/metrics").text
    assert 'modrun_control_lag_seconds{quantile="0.99"}' in metrics and "modrun_control_backlog " in metrics
    rt.close()
