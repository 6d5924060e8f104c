"""``--auth oidc`` against a real, certified OpenID provider (panva's
oidc-provider, started with node): discovery and JWKS are read from it, its
tokens (the authorization code flow with PKCE, through its own login and
consent pages) are accepted on the API and the gateway, a local user is made
on first sight with teams from the provider's groups; tokens for another
audience, from another issuer, expired, signed with a key it never published
or rotated out, or forged with ``none`` or HS256 are refused."""

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
from oidc_support import OidcProvider, new_signing_key
from support import wait_until

AUDIENCE = "urn:modrun"  # the resource the provider's access tokens are for


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory):
    with OidcProvider(tmp_path_factory.mktemp("oidc")) as idp:
        yield idp


@pytest.fixture(scope="module")
def orch(provider, tmp_path_factory: pytest.TempPathFactory):
    with OrchestratorProcess(
        tmp_path_factory.mktemp("oidc-orch"),
        "--oidcIssuer",
        provider.url,
        "--oidcAudience",
        AUDIENCE,
        "--oidcLeeway",
        "1s",
        "--oidcKeysMaxAge",
        "2s",
        env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        auth="oidc",
    ) as o:
        yield o


def idp_token(provider: OidcProvider, **how: str) -> str:
    return provider.tokens(**how)["access_token"]


def test_provider_tokens_make_a_local_user_with_teams(provider, orch):
    users = provider.users
    admin = Client(orch.url)
    admin.login("admin", ADMIN_PASSWORD)  # local accounts still sign in with a password
    team = admin.create_team("ml-team")
    api = httpx.Client(base_url=orch.url + "/api/v2", timeout=30)

    token = idp_token(provider)
    info = api.get("/user/info", headers=bearer(token))
    assert info.status_code == 200, info.text
    me = info.json()
    assert me["username"] == "alice" and me["email"] == "alice@corp.example" and not me["admin"]
    assert [t["name"] for t in me["teams"]] == ["ml-team"]
    assert api.get("/user/info", headers=bearer(idp_token(provider))).json()["id"] == me["id"]  # same user

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
    assert api.get("/user/info", headers=bearer(idp_token(provider))).json()["teams"] == []
    assert admin.team_members(team["id"]) == []

    # the gateway accepts them too: signed in, so the answer is about the function
    gone = httpx.post(orch.url + "/functions/nothing", headers=bearer(token), content=b"x")
    assert gone.status_code == 404
    assert httpx.post(orch.url + "/functions/nothing", content=b"x").status_code == 401


def test_bad_provider_tokens_are_refused(provider, orch, tmp_path):
    api = httpx.Client(base_url=orch.url + "/api/v2", timeout=30)

    def status(token: str) -> int:
        return api.get("/user/info", headers=bearer(token)).status_code

    good = provider.tokens()
    assert status(good["access_token"]) == 200
    assert status(idp_token(provider, resource="urn:other")) == 401  # for another audience
    assert status(good["id_token"]) == 401  # an ID token is for the client, not an access token
    with OidcProvider(tmp_path / "elsewhere") as other:  # the same software, another issuer
        assert status(idp_token(other)) == 401
    short = idp_token(provider, client_id="modrun-short")  # lives 2 s; the orchestrator allows 1 s of skew
    assert status(short) == 200
    wait_until(lambda: status(short) == 401, timeout=10, interval=0.25, what="the expired token refused")
    assert httpx.post(orch.url + "/functions/x", headers=bearer(short)).status_code == 401

    claims = jwt.decode(good["access_token"], options={"verify_signature": False})
    public = httpx.get(provider.url + "/jwks").json()["keys"][0]
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


def test_rotated_signing_keys_are_followed_and_a_retired_one_is_dropped(provider, orch):
    api = httpx.Client(base_url=orch.url + "/api/v2", timeout=30)

    def status(token: str) -> int:
        return api.get("/user/info", headers=bearer(token)).status_code

    old_key = provider.keys[0]
    before = idp_token(provider)
    assert status(before) == 200
    new_key = new_signing_key()
    provider.restart([new_key, old_key])  # rotation: a new key signs, the old one is still published
    after = idp_token(provider)
    assert jwt.get_unverified_header(after)["kid"] == new_key["kid"]
    # an unknown kid makes the orchestrator read the keys again, at most every 2 s here
    wait_until(lambda: status(after) == 200, timeout=10, interval=0.25, what="the new key followed")
    assert status(before) == 200
    provider.restart([new_key])  # the old key retired
    wait_until(lambda: status(before) == 401, timeout=10, interval=0.25, what="the retired key dropped")
    assert status(idp_token(provider)) == 200


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """What an attacker sends: HS256 with the public key as the HMAC secret
    (PyJWT refuses to make it, so it is put together by hand)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"
