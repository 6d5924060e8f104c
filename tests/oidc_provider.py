"""A small OpenID Connect provider for the tests, run as its own process.

It serves real discovery (``/.well-known/openid-configuration``), a JWKS
with a fresh RSA key, and a token endpoint with the resource-owner password
grant (``grant_type=password``, ``username``, ``password``, ``client_id``)
that returns RS256 ``id_token`` and ``access_token`` JWTs carrying ``iss``,
``aud`` (the client id), ``sub``, ``preferred_username``, ``email``,
``groups``, ``iat``, ``exp``. Users and their groups come from a JSON file
that the test may rewrite between requests. For tests of bad tokens the token
endpoint also takes ``aud``, ``iss`` and ``expires_in`` overrides.

    python tests/oidc_provider.py --port 9000 --users users.json
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
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
            }
        )

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse({"keys": [public_jwk]})

    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        users = json.loads(users_file.read_text())
        user = users.get(str(form.get("username")))
        if user is None or user["password"] != form.get("password"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
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
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return JSONResponse(
            {"access_token": signed, "id_token": signed, "token_type": "Bearer", "expires_in": int(lifetime)}
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
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
