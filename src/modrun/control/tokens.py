"""Access and refresh tokens.

Access tokens are JWTs signed with Ed25519 (EdDSA) carrying ``iss``, ``aud``,
``sub`` (the user id), ``iat``, ``exp`` and ``jti``; they live 15 minutes by
default and anyone can verify them with the published JWKS
(``/.well-known/jwks.json``), so nodes need not call the orchestrator. The
algorithm is pinned when verifying, never taken from the token's header.
Refresh tokens are random, stored only as SHA-256 hashes, single use: a used
one presented again revokes every token of that user (it was stolen).
Revocation: a token's ``jti``, or everything a user was issued before a
moment (``users.tokens_valid_after``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from modrun.control.verify import InvalidToken, JwtVerifier
from modrun.db.tables import refresh_tokens, revoked_tokens, users
from modrun.db.times import utc, utc_now
from modrun.storage.private import write_private

__all__ = ["ALGORITHM", "AUDIENCE", "Claims", "InvalidToken", "TokenService", "load_signing_key"]

ALGORITHM = "EdDSA"
AUDIENCE = "modrun"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The orchestrator's signing key, made on first start (mode 0600)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)
    return key


CALL_ASSERTION_TTL = 30  # seconds a gateway's call assertion is good for
CALL_HEADER = "x-modrun-assertion"  # where the gateway puts it on a call to a node


def call_audience(runtime: str) -> str:
    """The audience of call assertions for one runtime: no other node, and no
    user-token check, accepts them."""
    return f"runtime:{runtime}"


@dataclass(frozen=True)
class Claims:
    user_id: uuid.UUID
    jti: str
    issued_at: datetime
    expires_at: datetime
    family: str = ""  # the sign-in the token comes from (its refresh tokens share it)


class TokenService:
    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        issuer: str,
        access_ttl: float = 900,
        refresh_ttl: float = 30 * 86400,
    ) -> None:
        self.engine = engine
        self.key = key
        self.public = key.public_key()
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = hashlib.sha256(raw).hexdigest()[:16]
        self._jwk = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }
        self.issuer = issuer
        self.verifier = JwtVerifier(
            lambda _kid: self.public,
            issuer,
            AUDIENCE,
            [ALGORITHM],
            required=("iss", "aud", "sub", "exp", "iat", "jti"),
        )
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def jwks(self) -> dict:
        return {"keys": [self._jwk]}

    # -- issuing ------------------------------------------------------------------------

    def issue(self, user_id: uuid.UUID, family: str | None = None) -> dict:
        """An access token and a refresh token. A sign-in starts a family; its
        refreshes continue it, and signing out ends the whole family."""
        moment = utc_now()
        family = family or uuid.uuid4().hex
        access = jwt.encode(
            {
                "iss": self.issuer,
                "aud": AUDIENCE,
                "sub": str(user_id),
                "iat": moment.timestamp(),  # fractional, so a revocation cuts at the exact moment
                "nbf": int(moment.timestamp()),
                "exp": int((moment + timedelta(seconds=self.access_ttl)).timestamp()),
                "jti": uuid.uuid4().hex,
                "fam": family,
            },
            self.key,
            algorithm=ALGORITHM,
            headers={"kid": self.kid},
        )
        refresh = "mrr_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                refresh_tokens.insert().values(
                    id=_digest(refresh),
                    user_id=user_id,
                    expires_at=moment + timedelta(seconds=self.refresh_ttl),
                    used=False,
                    family=family,
                )
            )
        return {
            "user_id": str(user_id),
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
        }

    def refresh(self, token: str) -> dict:
        digest = _digest(token)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(refresh_tokens).where(refresh_tokens.c.id == digest)).first()
            if row is None or utc(row.expires_at) < utc_now():
                raise InvalidToken("unknown or expired refresh token")
            fresh = conn.execute(
                refresh_tokens.update()
                .where(refresh_tokens.c.id == digest, ~refresh_tokens.c.used)
                .values(used=True)
            ).rowcount
        if not fresh:  # replayed: whoever holds the newer tokens is not the user alone
            self.revoke_user(row.user_id)
            raise InvalidToken("refresh token already used; every token of this user is revoked")
        return self.issue(row.user_id, row.family)

    def assert_call(self, runtime: str, actor: str, artifacts: Iterable[str], function: str) -> str:
        """What the gateway sends a node instead of the caller's credential: a
        short-lived statement, for that one runtime, of who may run what
        (RFC 8693's spirit: a narrow token minted downstream, never the original)."""
        moment = utc_now()
        return jwt.encode(
            {
                "iss": self.issuer,
                "aud": call_audience(runtime),
                "sub": actor,
                "typ": "call",
                "art": sorted(set(artifacts)),
                "fn": function,
                "iat": moment.timestamp(),
                "exp": int((moment + timedelta(seconds=CALL_ASSERTION_TTL)).timestamp()),
                "jti": uuid.uuid4().hex,
            },
            self.key,
            algorithm=ALGORITHM,
            headers={"kid": self.kid},
        )

    # -- checking ------------------------------------------------------------------------

    def revoked(self, claims: Claims) -> str | None:
        """Why a well-signed token no longer counts (revoked, user gone), or None."""
        with self.engine.connect() as conn:
            if conn.execute(
                sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == claims.jti)
            ).first():
                return "token revoked"
            valid_after = conn.execute(
                sa.select(users.c.tokens_valid_after).where(users.c.id == claims.user_id)
            ).scalar()
        if valid_after is None:
            return "no such user"
        if claims.issued_at < utc(valid_after):
            return "token revoked"
        return None

    def revoke(self, claims: Claims) -> None:
        """Sign out: this access token, and every refresh token of its sign-in."""
        with self.engine.begin() as conn:
            conn.execute(revoked_tokens.delete().where(revoked_tokens.c.expires_at < utc_now()))
            conn.execute(revoked_tokens.insert().values(jti=claims.jti, expires_at=claims.expires_at))
            if claims.family:  # gone, not "used": presenting one later is no replay to punish
                conn.execute(refresh_tokens.delete().where(refresh_tokens.c.family == claims.family))

    def revoke_user(self, user_id: uuid.UUID) -> None:
        """Every access and refresh token the user holds stops working."""
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(tokens_valid_after=utc_now()))
            conn.execute(refresh_tokens.update().where(refresh_tokens.c.user_id == user_id).values(used=True))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
