"""A real OpenID provider for tests: panva's oidc-provider (OpenID Certified),
started with node on a free port (tests/oidc/provider.mjs), and the
authorization code flow with PKCE driven through its login and consent pages."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from support import free_port, wait_until

HERE = Path(__file__).parent / "oidc"
USERS = {"alice": {"email": "alice@corp.example", "groups": ["ml-team", "unknown-group"]}}
CLI_REDIRECT = "http://127.0.0.1:1/callback"  # never reached: the flow stops at the redirect


def new_signing_key() -> dict:
    """A private RSA JWK with a fresh ``kid``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return jwk | {"kid": uuid.uuid4().hex[:12], "alg": "RS256", "use": "sig"}


class OidcProvider:
    """``node tests/oidc/provider.mjs``; ``restart(keys)`` rotates its signing keys."""

    def __init__(self, root: Path, redirects: list[str] | None = None, port: int | None = None) -> None:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                "node and tests/oidc/node_modules are needed: make test-deps (npm ci in tests/oidc)"
            )
        self.node = node
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.users = root / "users.json"
        self.users.write_text(json.dumps(USERS))
        self.keys = [new_signing_key()]
        self.redirects = redirects or []
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> OidcProvider:
        keys = self.root / "keys.json"
        keys.write_text(json.dumps(self.keys))
        log = open(self.root / f"provider-{self.port}.log", "ab")  # noqa: SIM115
        args = ["--port", str(self.port), "--users", str(self.users), "--keys", str(keys)]
        self.proc = subprocess.Popen(
            [self.node, str(HERE / "provider.mjs"), *args, "--redirects", ",".join(self.redirects)],
            stdout=log,
            stderr=log,
        )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"oidc-provider exited: {(self.root / f'provider-{self.port}.log').read_text()}"
                )
            try:
                return httpx.get(self.url + "/.well-known/openid-configuration", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=30, what="oidc-provider")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self, keys: list[dict]) -> None:
        """The same provider on the same port, now signing with ``keys[0]`` and
        publishing exactly ``keys``."""
        self.stop()
        self.keys = keys
        self.start()

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tokens(
        self, login: str = "alice", client_id: str = "modrun-cli", resource: str = "urn:modrun"
    ) -> dict:
        """A user signing in at the provider (its own login and consent pages)
        for ``client_id``: the token endpoint's answer for the code, with PKCE."""
        verifier = secrets.token_urlsafe(48)
        code = authorization_code(
            self.url + "/auth",
            {
                "client_id": client_id,
                "response_type": "code",
                "scope": "openid email profile groups",
                "redirect_uri": CLI_REDIRECT,
                "code_challenge": challenge(verifier),
                "code_challenge_method": "S256",
                "state": secrets.token_urlsafe(16),
                "nonce": secrets.token_urlsafe(16),
                "resource": resource,
            },
            login,
            CLI_REDIRECT,
        )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLI_REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": resource,
        }
        answer = httpx.post(self.url + "/token", data=form, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>.*?name="prompt" value="(\w+)"', re.S)


def through_the_provider(http: httpx.Client, response: httpx.Response, login: str, stop_at: str) -> str:
    """Follow redirects and fill the provider's login and consent forms until
    the browser is sent to ``stop_at``; that URL."""
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(stop_at):
                return target
            response = http.get(target)
            continue
        found = FORM.search(response.text)
        assert response.status_code == 200 and found, f"{response.status_code}: {response.text[:500]}"
        action, prompt = found.groups()
        form = {"prompt": prompt} | ({"login": login, "password": "any"} if prompt == "login" else {})
        response = http.post(urljoin(str(response.url), action), data=form)
    raise AssertionError("the provider never sent the browser back")


def authorization_code(endpoint: str, query: dict, login: str, redirect: str) -> str:
    with httpx.Client(timeout=10) as http:
        back = through_the_provider(http, http.get(endpoint, params=query), login, redirect)
    params = parse_qs(urlsplit(back).query)
    assert "code" in params, back
    return params["code"][0]


def oidc_fleet(root: Path, *extra: str):
    """A provider that knows the orchestrator's callback, and a started
    orchestrator (``--auth oidc``) trusting it: (provider, orchestrator)."""
    from control_support import ADMIN_PASSWORD
    from fleet_support import OrchestratorProcess

    port = free_port()
    provider = OidcProvider(root / "idp", [f"http://127.0.0.1:{port}/api/v2/session/oidc/callback"]).start()
    orch = OrchestratorProcess(
        root / "orch",
        "--oidcIssuer",
        provider.url,
        "--oidcAudience",
        "urn:modrun",
        "--oidcClientId",
        "modrun-console",
        *extra,
        port=port,
        env={"MODRUN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        auth="oidc",
    ).start()
    return provider, orch
