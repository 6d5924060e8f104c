"""The control plane's users, teams, tokens, API keys and audit log, over
HTTP against a real orchestrator process; the authorization matrix walks the
route table itself."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import jwt

from control_support import ADMIN_PASSWORD, basic, bearer, in_days, login, new_user
from modrun.control.routes.table import endpoints
from modrun.control.routing import PREFIX
from modrun.orchestrator.routes.table import fleet_endpoints


def test_tokens_are_asymmetric_and_verifiable_from_the_jwks(orch, api, admin):
    keys = httpx.get(orch.url + "/.well-known/jwks.json").json()["keys"]
    assert keys[0]["kty"] == "OKP" and keys[0]["alg"] == "EdDSA" and "d" not in keys[0]
    public = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(admin, public, algorithms=["EdDSA"], audience="modrun", issuer=orch.url)
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= set(claims)
    assert 899 < claims["exp"] - claims["iat"] <= 900  # 15 minutes
    assert api.get("/user/info", headers=bearer(admin)).json()["admin"] is True

    # forged tokens: alg none, HS256 keyed with the public key, a token from another key
    unsigned = jwt.encode({**claims, "admin": True}, None, algorithm="none")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    header, _payload, signature = admin.split(".")
    tampered = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode())
            .rstrip(b"=")
            .decode(),
            signature,
        ]
    )
    for forged in (unsigned, other, tampered, "not.a.jwt", admin[:-4] + "AAAA"):
        r = api.get("/user/info", headers=bearer(forged))
        assert r.status_code == 401, forged


def test_signup_login_and_failed_login_limit(api):
    name = f"s{uuid.uuid4().hex[:8]}"
    r = api.post(
        "/user/signup", json={"username": name, "email": f"{name}@Example.com", "password": "longenough"}
    )
    assert r.status_code == 201
    assert (
        api.post(
            "/user/signup", json={"username": name, "email": "x@y.z", "password": "longenough"}
        ).status_code
        == 409
    )
    for bad in (
        {"username": "x", "email": "a@b.c", "password": "longenough"},
        {"username": "okname", "email": "nope", "password": "longenough"},
        {"username": "okname2", "email": "a@b.c", "password": "short"},
    ):
        assert api.post("/user/signup", json=bad).status_code == 400
    by_email = login(api, f"{name}@example.com", "longenough")
    assert by_email["user_id"] == r.json()["user_id"]
    assert api.get("/user/login").status_code == 401
    for _ in range(10):
        assert api.get("/user/login", headers=basic(name, "wrong")).status_code == 401
    limited = api.get("/user/login", headers=basic(name, "longenough"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_everything(api, admin):
    _, _ = new_user(api, admin, name := f"r{uuid.uuid4().hex[:8]}")
    first = login(api, name, "pw-" + name)
    second = api.post("/user/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert api.get("/user/info", headers=bearer(second["access_token"])).status_code == 200
    replay = api.post("/user/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert api.get("/user/info", headers=bearer(second["access_token"])).status_code == 401
    assert api.post("/user/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401


def test_logout_revokes_the_token(api, admin):
    _, token = new_user(api, admin)
    assert api.post("/user/logout", headers=bearer(token)).status_code == 204
    assert api.get("/user/info", headers=bearer(token)).status_code == 401


def test_admins_manage_users(api, admin):
    user_id, token = new_user(api, admin)
    assert api.post("/user/create", headers=bearer(token), json={}).status_code == 403
    assert api.post(f"/user/{user_id}/admin", headers=bearer(admin)).status_code == 204
    assert api.get("/user/info", headers=bearer(token)).json()["admin"] is True
    assert api.delete(f"/user/{user_id}/admin", headers=bearer(admin)).status_code == 204
    listed = api.get("/user/list", headers=bearer(token)).json()["users"]
    assert all("email" not in u for u in listed)
    assert all("email" in u for u in api.get("/user/list", headers=bearer(admin)).json()["users"])
    me = api.get("/user/info", headers=bearer(admin)).json()["id"]
    assert api.delete(f"/user/{me}/admin", headers=bearer(admin)).status_code == 422  # the last admin
    assert api.delete(f"/user/{me}", headers=bearer(admin)).status_code == 422
    assert api.delete(f"/user/{user_id}", headers=bearer(admin)).status_code == 204
    assert api.get("/user/info", headers=bearer(token)).status_code == 401  # a deleted user's token is dead
    assert api.delete(f"/user/{user_id}", headers=bearer(admin)).status_code == 404


def test_teams_and_team_admins(api, admin):
    lead_id, lead = new_user(api, admin)
    member_id, member = new_user(api, admin)
    outsider_id, outsider = new_user(api, admin)
    team = api.post("/team/create", headers=bearer(admin), json={"name": f"t{uuid.uuid4().hex[:6]}"}).json()
    assert api.post("/team/create", headers=bearer(lead), json={"name": "nope"}).status_code == 403
    assert api.post(f"/team/{team['id']}/admins/{lead_id}", headers=bearer(admin)).status_code == 204
    assert api.post(f"/team/{team['id']}/users/{member_id}", headers=bearer(lead)).status_code == 204
    assert api.post(f"/team/{team['id']}/users/{outsider_id}", headers=bearer(member)).status_code == 403
    users = api.get(f"/team/{team['id']}/users", headers=bearer(member)).json()["users"]
    assert {(u["id"], u["team_admin"]) for u in users} == {(lead_id, True), (member_id, False)}
    assert api.get(f"/team/{team['id']}/users", headers=bearer(outsider)).status_code == 403
    assert [t["id"] for t in api.get("/team/list", headers=bearer(member)).json()["teams"]] == [team["id"]]
    assert api.get("/team/list", headers=bearer(outsider)).json()["teams"] == []
    info = api.get("/user/info", headers=bearer(lead)).json()
    assert info["teams"] == [{"id": team["id"], "name": team["name"], "team_admin": True}]
    assert api.delete(f"/team/{team['id']}/users/{member_id}", headers=bearer(lead)).status_code == 204
    assert api.get(f"/team/{team['id']}/users", headers=bearer(member)).status_code == 403
    assert api.delete(f"/team/{team['id']}", headers=bearer(admin)).status_code == 204


def test_api_keys(api, admin):
    _, token = new_user(api, admin)
    good = {"name": "ci", "artifact_ids": ["a1"], "scopes": ["invoke", "read"], "exp": in_days(30)}
    for bad in (
        {**good, "exp": in_days(365)},
        {**good, "exp": in_days(-1)},
        {**good, "exp": "tomorrow"},
        {**good, "exp": "2030-01-01T00:00:00"},
        {**good, "scopes": ["root"]},
        {**good, "scopes": []},
        {**good, "artifact_ids": []},
        {**good, "name": ""},
    ):
        assert api.post("/api-key/create", headers=bearer(token), json=bad).status_code == 400, bad
    created = api.post("/api-key/create", headers=bearer(token), json=good)
    assert created.status_code == 201
    key = created.json()["api_key"]
    assert key.startswith("mrk_") and len(key) == 4 + 40 + 1 + 8
    for header in ({"x-api-key": key}, bearer(key)):
        info = api.get("/user/info", headers=header).json()
        assert info["api_key"] == {"id": created.json()["id"], "scopes": ["invoke", "read"]}
    assert api.post("/api-key/create", headers={"x-api-key": key}, json=good).status_code == 403
    assert api.get("/user/list", headers={"x-api-key": key}).status_code == 403
    flipped = key[:-1] + ("0" if key[-1] != "0" else "1")  # checksum no longer matches
    assert api.get("/user/info", headers={"x-api-key": flipped}).status_code == 401
    listed = api.get("/api-key/list", headers=bearer(token)).json()["keys"]
    assert [k["prefix"] for k in listed] == [key[:12]] and key not in json.dumps(listed)
    assert listed[0]["last_used_at"] is not None
    assert (
        api.post("/api-key/delete", headers=bearer(admin), json={"api_key_id": listed[0]["id"]}).status_code
        == 204
    )
    assert api.get("/user/info", headers={"x-api-key": key}).status_code == 401


def test_audit_log_records_outcomes_without_secrets(api, admin):
    _, token = new_user(api, admin)
    assert api.post("/team/create", headers=bearer(token), json={"name": "denied-team"}).status_code == 403
    key = api.post(
        "/api-key/create",
        headers=bearer(token),
        json={"name": "k", "all_artifacts": True, "scopes": ["read"], "exp": in_days(1)},
    ).json()["api_key"]
    assert api.get("/audit", headers=bearer(token)).status_code == 403
    entries = api.get("/audit", headers=bearer(admin), params={"limit": 1000}).json()["entries"]
    actions = {(e["action"], e["outcome"], e["status"]) for e in entries}
    assert ("team.create", "denied", 403) in actions
    assert ("api_key.create", "ok", 201) in actions
    assert ("user.create", "ok", 201) in actions
    assert ("audit.read", "denied", 403) in actions
    dump = json.dumps(entries)
    assert key not in dump and ADMIN_PASSWORD not in dump and token not in dump
    only_denied = api.get("/audit", headers=bearer(admin), params={"outcome": "denied"}).json()["entries"]
    assert only_denied and all(e["outcome"] == "denied" for e in only_denied)
    bad = api.get("/audit", headers=bearer(admin), params={"limit": "many"})
    assert bad.status_code == 400 and "limit must be a whole number" in bad.json()["error"]


def test_authorization_matrix_from_the_route_table(api, admin, orch):
    """Every route (control plane and fleet) against anonymous, an API key, a
    plain user, a join token, a joined node's credential and a garbage token."""
    _, user = new_user(api, admin)
    name = api.get("/user/info", headers=bearer(user)).json()["username"]
    key = api.post(
        "/api-key/create",
        headers=bearer(user),
        json={
            "name": "m",
            "all_artifacts": True,
            "scopes": list(("invoke", "read", "deploy", "manage")),
            "exp": in_days(1),
        },
    ).json()["api_key"]
    join = api.post("/node-token", headers=bearer(admin), json={"name": "matrix"}).json()["token"]
    joined = api.post("/node/join", headers=bearer(join), json={"runtime": str(uuid.uuid4())})
    callers = {
        "anonymous": {},
        "key": {"x-api-key": key},
        "user": bearer(user),
        "join": bearer(join),
        "node": bearer(joined.json()["credential"]),
        "garbage": bearer("x.y.z"),
    }
    no = {"anonymous": 401, "key": 403, "user": 403, "join": 403, "node": 403, "garbage": 401}
    expected = {
        "public": {**dict.fromkeys(callers), "garbage": 401},
        "user": {**no, "key": None, "user": None},
        "session": {**no, "user": None},
        "admin": no,
        "node": {**no, "node": None},
        "joining": {**no, "join": None, "node": None},
        "join": {**no, "join": None},
        "upload": dict.fromkeys(callers, 401),  # only an upload token opens them
    }
    routes = endpoints() + fleet_endpoints()
    checked = 0
    with httpx.Client(base_url=orch.url, timeout=30) as root:
        for endpoint in routes:
            if endpoint.rule == "public" and endpoint.prefix == PREFIX:
                continue  # login and sign-up take credentials of their own; exercised above
            path = endpoint.path.replace("{id}", str(uuid.uuid4())).replace("{uid}", str(uuid.uuid4()))
            path = path.replace("{runtime}", str(uuid.uuid4()))
            path = (
                path.replace("{chunk:int}", "0").replace("{query}", "nothing").replace("{path:path}", "x/y")
            )
            for caller, headers in callers.items():
                want = expected[endpoint.rule][caller]
                if endpoint.target and caller == "user":
                    want = 403  # neither an admin nor a member of a team nobody made
                if (
                    endpoint.action in ("user.logout", "session.logout") and caller == "user"
                ):  # it revokes the token it is sent
                    headers = bearer(login(api, name, "pw-" + name)["access_token"])
                # streamed: only the status is read (GET /api/events never ends)
                with root.stream(endpoint.method, endpoint.prefix + path, headers=headers, json={}) as r:
                    status = r.status_code
                    text = "" if status < 400 else r.read().decode(errors="replace")
                if want is None:
                    assert status not in (401, 403), (endpoint.method, path, caller, status)
                else:
                    assert status == want, (endpoint.method, path, caller, status, text)
                checked += 1
    skipped = sum(1 for e in routes if e.rule == "public" and e.prefix == PREFIX)
    assert skipped <= 8 and checked == len(callers) * (len(routes) - skipped)
    assert {e.rule for e in fleet_endpoints()} >= {"public", "user", "node", "joining", "admin"}


def test_console_sessions_use_httponly_cookies_and_renew(api):
    signed = api.post("/session", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert signed.status_code == 200 and "access_token" not in signed.text
    cookies = {c.name: c for c in signed.cookies.jar}
    assert set(cookies) == {"modrun_session", "modrun_refresh"}
    raw = signed.headers.get_list("set-cookie")
    assert all("httponly" in h.lower() and "samesite=strict" in h.lower() for h in raw)
    session, refresh = cookies["modrun_session"].value, cookies["modrun_refresh"].value
    api.cookies.clear()
    assert api.get("/session").json()["user"] is None
    assert (
        api.get("/session", headers=cookie("modrun_session", session)).json()["user"]["username"] == "admin"
    )
    # the access cookie gone (expired): the refresh cookie renews the session, once
    renewed = api.get("/session", headers=cookie("modrun_refresh", refresh))
    assert renewed.json()["user"]["username"] == "admin" and "modrun_session" in renewed.cookies
    api.cookies.clear()
    again = api.get("/session", headers=cookie("modrun_refresh", refresh))  # a replayed refresh token
    assert again.json()["user"] is None
    api.cookies.clear()
    wrong = api.post("/session", json={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401


def cookie(name: str, value: str) -> dict:
    return {"cookie": f"{name}={value}"}
