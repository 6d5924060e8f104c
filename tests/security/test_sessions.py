"""Sessions: signing out ends that sign-in for good, guessing a password locks
out the guesser's address and not the account, and signing in through the
identity provider lands only on this site.

A real orchestrator (``--auth basic``, or ``--auth oidc`` against a real,
certified OpenID provider: oidc-provider, started with node); every request
through its HTTP API.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from control_support import ADMIN_PASSWORD, basic, bearer, login, new_user
from fleet_support import OrchestratorProcess
from modrun.control.auth import CONSOLE_HEADER
from modrun.control.routing import PREFIX


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory):
    storage = tmp_path_factory.mktemp("sessions")
    with OrchestratorProcess(storage, env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD}, auth="basic") as o:
        yield o


@pytest.fixture
def api(orch):
    with httpx.Client(base_url=orch.url + PREFIX, timeout=30) as client:
        yield client


def _refresh(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/user/refresh", json={"refresh_token": token})


def test_signing_out_ends_the_refresh_tokens_of_that_sign_in(api):
    admin = login(api, "admin", ADMIN_PASSWORD)["access_token"]
    new_user(api, admin, "samwise")
    laptop, phone = login(api, "samwise", "pw-samwise"), login(api, "samwise", "pw-samwise")
    # a refresh continues the sign-in (the old refresh token is spent)
    renewed = _refresh(api, laptop["refresh_token"])
    assert renewed.status_code == 200
    laptop = renewed.json()
    assert api.get("/user/info", headers=bearer(laptop["access_token"])).status_code == 200
    # signing out on the laptop: its access and refresh tokens stop working ...
    assert api.post("/user/logout", headers=bearer(laptop["access_token"])).status_code == 204
    assert api.get("/user/info", headers=bearer(laptop["access_token"])).status_code == 401
    stolen = _refresh(api, laptop["refresh_token"])
    assert stolen.status_code == 401, stolen.text
    # ... and nothing else: the phone's sign-in goes on (presenting the dead token was no replay)
    assert api.get("/user/info", headers=bearer(phone["access_token"])).status_code == 200
    assert _refresh(api, phone["refresh_token"]).status_code == 200


def test_signing_out_of_the_console_ends_its_refresh_cookie(orch):
    with httpx.Client(base_url=orch.url + PREFIX, timeout=30) as console:
        signed_in = console.post("/session", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert signed_in.status_code == 200
        assert console.post("/session/refresh").status_code == 200  # the legitimate renewal
        refresh_cookie = {c.name: c.value for c in console.cookies.jar}["modrun_refresh"]
        assert console.delete("/session", headers={CONSOLE_HEADER: "1"}).status_code == 204
    # someone who copied the refresh cookie before the sign-out gets nothing with it
    with httpx.Client(base_url=orch.url + PREFIX, timeout=30) as thief:
        thief.cookies.set("modrun_refresh", refresh_cookie, path=PREFIX + "/session")
        assert thief.post("/session/refresh").status_code == 401


def test_guessing_the_admins_password_does_not_lock_the_admin_out(orch):
    # the guesser connects from another loopback address
    guesser = httpx.Client(
        base_url=orch.url + PREFIX, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    )
    with guesser:
        answers = [
            guesser.get("/user/login", headers=basic("admin", f"guess {i}")).status_code for i in range(11)
        ]
        assert answers[:10] == [401] * 10 and answers[10] == 429
        assert guesser.get("/user/login", headers=basic("admin", ADMIN_PASSWORD)).status_code == 429
    with httpx.Client(base_url=orch.url + PREFIX, timeout=30) as admin:
        assert admin.get("/user/login", headers=basic("admin", ADMIN_PASSWORD)).status_code == 200


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory):
    from oidc_support import oidc_fleet

    provider, orch = oidc_fleet(tmp_path_factory.mktemp("sessions-oidc"))
    try:
        yield orch
    finally:
        orch.stop()
        provider.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    "wanted",
    ["/\\evil.example", "/\t/evil.example", "//evil.example", "https://evil.example/", "/\\/evil.example"],
)
def test_signing_in_through_the_provider_lands_only_on_this_site(oidc, wanted: str):
    with httpx.Client(timeout=30) as browser:
        landed = _sign_in(browser, oidc.url, wanted)
        assert landed == "/console", landed
        assert _sign_in(browser, oidc.url, "/console/nodes?x=1") == "/console/nodes?x=1"


@pytest.mark.slow
def test_a_sign_in_cannot_be_replayed(oidc):
    with httpx.Client(timeout=30) as browser:
        callback = _to_callback(browser, oidc.url, "/console")
        before = httpx.Cookies(browser.cookies)  # the sign-in's state cookie, as the callback will see it
        first = browser.get(callback)
        assert first.status_code in (302, 303, 307) and urlsplit(first.headers["location"]).path == "/console"
        assert browser.get(oidc.url + PREFIX + "/session").json()["user"]["username"] == "alice"
    # the same URL with the same state cookie again: the code and the state were used once
    with httpx.Client(timeout=30, cookies=before) as replayer:
        replayed = replayer.get(callback)
        assert urlsplit(replayed.headers["location"]).path == "/console/login"
        assert "already used" in replayed.headers["location"].replace("+", " ")
        assert replayer.get(oidc.url + PREFIX + "/session").json().get("user") is None
    with httpx.Client(timeout=30) as stranger:  # someone who got hold of the callback URL alone
        stolen = stranger.get(callback)
        assert urlsplit(stolen.headers["location"]).path == "/console/login"
        assert stranger.get(oidc.url + PREFIX + "/session").json().get("user") is None


def _to_callback(browser: httpx.Client, base: str, wanted: str) -> str:
    """Start the sign-in and go through the provider's pages: the callback URL it sends the browser to."""
    from oidc_support import through_the_provider

    begun = browser.get(base + PREFIX + "/session/oidc", params={"next": wanted})
    assert begun.status_code == 303
    callback = base + PREFIX + "/session/oidc/callback"
    return through_the_provider(browser, browser.get(begun.headers["location"]), "alice", callback)


def _sign_in(browser: httpx.Client, base: str, wanted: str) -> str:
    """The whole code flow; where the orchestrator sends the browser at the end."""
    back = browser.get(_to_callback(browser, base, wanted))
    assert back.status_code in (302, 303, 307), back.text
    target = urlsplit(back.headers["location"])
    assert not target.netloc or target.netloc == urlsplit(base).netloc, back.headers["location"]
    return target.path + (f"?{target.query}" if target.query else "")


def test_the_user_list_shows_only_what_the_caller_may_know(api):
    admin = login(api, "admin", ADMIN_PASSWORD)["access_token"]
    lead_id, lead = new_user(api, admin, "teamlead")
    mate_id, _ = new_user(api, admin, "teammate")
    stranger_id, stranger = new_user(api, admin, "stranger")
    team = api.post("/team/create", headers=bearer(admin), json={"name": "crew"}).json()["id"]
    assert api.post(f"/team/{team}/admins/{lead_id}", headers=bearer(admin)).status_code == 204
    assert api.post(f"/team/{team}/users/{mate_id}", headers=bearer(admin)).status_code == 204
    lead = login(api, "teamlead", "pw-teamlead")["access_token"]  # a token that knows the new team

    def listed(token: str) -> set[str]:
        answer = api.get("/user/list", headers=bearer(token))
        assert answer.status_code == 200
        assert all("email" not in u for u in answer.json()["users"]) or token == admin
        return {u["id"] for u in answer.json()["users"]}

    everyone = listed(admin)
    assert {lead_id, mate_id, stranger_id} <= everyone and len(everyone) > 3
    assert listed(lead) == {lead_id, mate_id}  # the team they administer, and themselves
    assert listed(stranger) == {stranger_id}


def test_a_node_asking_for_a_decision_creates_or_changes_no_account(api):
    admin = login(api, "admin", ADMIN_PASSWORD)["access_token"]
    token = api.post("/node-token", headers=bearer(admin), json={"name": "n"}).json()["token"]
    joined = api.post("/node/join", headers=bearer(token), json={"runtime": str(uuid.uuid4())})
    node = joined.json()["credential"]
    assert api.post("/auth/decide", headers=bearer(token), json={}).status_code == 403  # not joined yet
    users_before = {u["username"] for u in api.get("/user/list", headers=bearer(admin)).json()["users"]}
    forged = {
        "kind": "oidc",
        "id": "eve-at-nowhere",
        "issuer": "https://nowhere.example",
        "name": "eve",
        "email": "eve@nowhere.example",
        "groups": ["crew"],
    }
    answer = api.post("/auth/decide", headers=bearer(node), json={"subject": forged, "artifact": "*"})
    assert answer.status_code == 200 and answer.json()["status"] == 401, answer.text
    users_after = {u["username"] for u in api.get("/user/list", headers=bearer(admin)).json()["users"]}
    assert users_after == users_before and "eve" not in users_after
    # the route still answers for real subjects: the admin's own token, as a node reports it
    claims = jwt.decode(admin, options={"verify_signature": False})
    subject = {"kind": "user", "id": claims["sub"], "issuer": claims["iss"], "jti": claims["jti"],
               "iat": claims["iat"], "exp": claims["exp"], "fam": claims["fam"]}  # fmt: skip
    real = api.post("/auth/decide", headers=bearer(node), json={"subject": subject, "artifact": ""})
    assert real.status_code == 200 and real.json()["status"] == 200, real.text  # admins only: allowed
