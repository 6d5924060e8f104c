"""``--auth oidc`` against an OpenID Connect provider process: discovery and
JWKS are read from it, its tokens are accepted on the API and the gateway, a
local user is made on first sight with teams from the provider's groups, and
tokens with the wrong audience, issuer, algorithm or age are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from control_support import ADMIN_PASSWORD, bearer
from fleet_support import OrchestratorProcess
from modrun.client import Client
from oidc_support import OidcProvider

AUDIENCE = "modrun-cli"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory):
    with OidcProvider(tmp_path_factory.mktemp("oidc")) as idp:
        yield idp.url, idp.users


@pytest.fixture(scope="module")
def orch(provider, tmp_path_factory: pytest.TempPathFactory):
    issuer, _users = provider
    with OrchestratorProcess(
        tmp_path_factory.mktemp("oidc-orch"),
        "--oidcIssuer",
        issuer,
        "--oidcAudience",
        AUDIENCE,
        "--oidcLeeway",
        "30s",
        env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        auth="oidc",
    ) as o:
        yield o


def idp_token(issuer: str, **overrides: str) -> str:
    form = {"grant_type": "password", "username": "alice", "password": "alice-pw", "client_id": AUDIENCE}
    answer = httpx.post(issuer + "/token", data=form | overrides, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_provider_tokens_make_a_local_user_with_teams(provider, orch):
    issuer, users = provider
    admin = Client(orch.url)
    admin.login("admin", ADMIN_PASSWORD)  # local accounts still sign in with a password
    team = admin.create_team("ml-team")
    api = httpx.Client(base_url=orch.url + "/api/v2", timeout=30)

    token = idp_token(issuer)
    info = api.get("/user/info", headers=bearer(token))
    assert info.status_code == 200, info.text
    me = info.json()
    assert me["username"] == "alice" and me["email"] == "alice@corp.example" and not me["admin"]
    assert [t["name"] for t in me["teams"]] == ["ml-team"]
    assert api.get("/user/info", headers=bearer(idp_token(issuer))).json()["id"] == me["id"]  # same user

    # exchanged for modrun's own tokens, which nodes verify without the provider
    exchanged = api.get("/user/login", headers=bearer(token))
    assert exchanged.status_code == 200
    own = exchanged.json()["access_token"]
    assert jwt.get_unverified_header(own)["alg"] == "EdDSA"
    assert api.get("/user/info", headers=bearer(own)).json()["id"] == me["id"]

    # the provider's groups decide the teams on the next sight
    data = json.loads(users.read_text())
    data["alice"]["groups"] = []
    users.write_text(json.dumps(data))
    assert api.get("/user/info", headers=bearer(idp_token(issuer))).json()["teams"] == []
    assert admin.team_members(team["id"]) == []

    # the gateway accepts them too: signed in, so the answer is about the function
    gone = httpx.post(orch.url + "/functions/nothing", headers=bearer(token), content=b"x")
    assert gone.status_code == 404
    assert httpx.post(orch.url + "/functions/nothing", content=b"x").status_code == 401


def test_bad_provider_tokens_are_refused(provider, orch):
    issuer, _ = provider
    api = httpx.Client(base_url=orch.url + "/api/v2", timeout=30)

    def status(token: str) -> int:
        return api.get("/user/info", headers=bearer(token)).status_code

    assert status(idp_token(issuer, aud="another-client")) == 401
    assert status(idp_token(issuer, iss="http://evil.example")) == 401
    assert status(idp_token(issuer, expires_in="-120")) == 401  # expired beyond the leeway
    assert status(idp_token(issuer, expires_in="-5")) == 200  # inside the 30 s leeway
    assert (
        httpx.post(orch.url + "/functions/x", headers=bearer(idp_token(issuer, aud="x"))).status_code == 401
    )

    good = idp_token(issuer)
    claims = jwt.decode(good, options={"verify_signature": False})
    public = httpx.get(issuer + "/jwks").json()["keys"][0]
    # algorithm confusion: HS256 keyed with the public key; and no signature at all
    pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(public))
    public_pem = pem.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert status(_hs256(claims, public_pem, public["kid"])) == 401
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert status(unsigned) == 401
    # a token signed by a key the provider never published
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert status(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": public["kid"]})) == 401
    assert status(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "made-up"})) == 401


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """What an attacker sends: HS256 with the public key as the HMAC secret
    (PyJWT refuses to make it, so it is put together by hand)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
