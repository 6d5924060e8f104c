"""A small OpenID Connect provider for the tests, run as its own process.

It serves real discovery (``/.well-known/openid-configuration``), a JWKS
with a fresh RSA key, and a token endpoint with the resource-owner password
grant (``grant_type=password``, ``username``, ``password``, ``client_id``)
and the authorization code grant with PKCE (``/authorize`` approves at once,
as the user named by ``login_hint``; ``/token`` redeems the code against the
``code_verifier``) that return RS256 ``id_token`` and ``access_token`` JWTs carrying ``iss``,
``aud`` (the client id), ``sub``, ``preferred_username``, ``email``,
``groups``, ``iat``, ``exp``. Users and their groups come from a JSON file
that the test may rewrite between requests. For tests of bad tokens the token
endpoint also takes ``aud``, ``iss`` and ``expires_in`` overrides.

    python tests/oidc_provider.py --port 9000 --users users.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route


def build(issuer: str, users_file: Path) -> Starlette:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex[:12]
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public_jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})

    async def discovery(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/jwks",
                "token_endpoint": f"{issuer}/token",
                "authorization_endpoint": f"{issuer}/authorize",
                "response_types_supported": ["code", "id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["password", "authorization_code"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse({"keys": [public_jwk]})

    codes: dict[str, dict] = {}

    async def authorize(request: Request) -> RedirectResponse | JSONResponse:
        q = request.query_params
        users = json.loads(users_file.read_text())
        name = q.get("login_hint") or next(iter(users))
        if q.get("response_type") != "code" or name not in users or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        codes[code] = {
            "username": name,
            "client_id": q.get("client_id"),
            "redirect_uri": q.get("redirect_uri"),
            "challenge": q.get("code_challenge"),
            "nonce": q.get("nonce"),
        }
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}", 302
        )

    def _redeem(form: dict) -> tuple[str, dict] | None:
        grant = codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier") or "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (
            grant is None
            or grant["redirect_uri"] != form.get("redirect_uri")
            or grant["client_id"] != form.get("client_id")
            or challenge != grant["challenge"]
        ):
            return None
        return grant["username"], {"nonce": grant["nonce"], "client_id": grant["client_id"]}

    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        users = json.loads(users_file.read_text())
        extra: dict = {}
        if form.get("grant_type") == "authorization_code":
            redeemed = _redeem(form)
            if redeemed is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            form["username"], extra = redeemed[0], redeemed[1]
            user = users[form["username"]]
        elif form.get("grant_type") == "password":
            user = users.get(str(form.get("username")))
            if user is None or user["password"] != form.get("password"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        now = time.time()
        lifetime = float(form.get("expires_in") or 300)
        claims = {
            "iss": str(form.get("iss") or issuer),
            "aud": str(form.get("aud") or form.get("client_id") or "modrun"),
            "sub": user["sub"],
            "preferred_username": form.get("username"),
            "email": user.get("email", ""),
            "groups": user.get("groups", []),
            "iat": int(now),
            "exp": int(now + lifetime),
        }
        if extra.get("nonce"):
            claims["nonce"] = extra["nonce"]
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return JSONResponse(
            {"access_token": signed, "id_token": signed, "token_type": "Bearer", "expires_in": int(lifetime)}
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=Path, required=True)
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    uvicorn.run(build(issuer, args.users), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
