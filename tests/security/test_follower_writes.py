"""A follower sends writes on to the leader, and that hop grants nothing: the
leader decides on the caller's own credentials, a forged forwarding header
is refused rather than trusted, and a write that reaches the follower without
credentials changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from control_support import ADMIN_PASSWORD, basic, bearer, login, new_user
from fleet_support import OrchestratorProcess, PrivateMosquitto
from support import HELLO_AS, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def secured_pair(tmp_path, postgres) -> Iterator[tuple[OrchestratorProcess, OrchestratorProcess]]:
    broker = PrivateMosquitto()
    db = postgres.fresh_database(f"sec_{uuid.uuid4().hex[:8]}")
    # one fleet: one database, one broker, one issuer and one key directory
    common = ("--db", db, "--migrate", "--mqtt", broker.url, "--issuer", "http://fleet.test")
    env = {"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    leader = OrchestratorProcess(
        tmp_path / "fleet", *common, "--instance", "a", auth="basic", env=env
    ).start()
    wait_until(lambda: leader.role() == "leader", timeout=10, what="a leads")
    follower = OrchestratorProcess(
        tmp_path / "fleet", *common, "--instance", "b", auth="basic", env=env
    ).start()
    wait_until(lambda: follower.role() == "follower", timeout=10, what="b follows")
    try:
        yield leader, follower
    finally:
        follower.stop()
        leader.stop()
        broker.stop()


def module(name: str) -> dict:
    return {"type": "module", "uuid": str(uuid.uuid4()), "name": name, "file": "x.wasm"}


def test_a_write_through_a_follower_is_decided_by_the_leader_on_the_callers_credentials(secured_pair):
    leader, follower = secured_pair
    with httpx.Client(base_url=follower.url, timeout=30) as api:
        v2 = httpx.Client(base_url=follower.url + "/api/v2", timeout=30)
        admin = login(v2, "admin", ADMIN_PASSWORD)["access_token"]
        _user, tenant = new_user(v2, admin)  # a write (user/create) carried out by the leader

        wasm = HELLO_AS.read_bytes()
        assert api.post("/api/modules/", json=module("anonymous")).status_code == 401
        assert api.put("/api/files/anon.wasm", content=wasm).status_code == 401
        assert api.put("/api/files/tenant.wasm", content=wasm, headers=bearer(tenant)).status_code == 403
        assert api.post("/api/modules/", json=module("tenant"), headers=bearer(tenant)).status_code == 403
        uploaded = api.put("/api/files/admin.wasm", content=wasm, headers=bearer(admin))
        assert uploaded.status_code == 201, uploaded.text  # carried out by the leader
        listed = {f["path"] for f in api.get("/api/files/", headers=bearer(admin)).json()["results"]}
        assert "admin.wasm" in listed and not listed & {"anon.wasm", "tenant.wasm"}

        # the forwarding header is no credential: on the follower it is refused, on the leader ignored
        forged = {"x-modrun-forwarded-by": "a"}
        assert api.post("/api/modules/", json=module("forged"), headers=forged).status_code == 503
        direct = httpx.post(leader.url + "/api/modules/", json=module("forged2"), headers=forged)
        assert direct.status_code == 401
        v2.close()


def test_guesses_spread_over_the_orchestrators_are_counted_together(secured_pair):
    leader, follower = secured_pair
    wrong = basic("admin", "not the password")
    for i in range(10):  # the limit is 10 failures per name and address, fleet-wide
        target = (leader, follower)[i % 2]
        assert httpx.get(target.url + "/api/v2/user/login", headers=wrong).status_code == 401
    for target in (leader, follower):
        refused = httpx.get(target.url + "/api/v2/user/login", headers=basic("admin", ADMIN_PASSWORD))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
