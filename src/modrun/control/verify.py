"""Checking a JWT's signature and claims, with keys from anywhere.

One verifier serves the orchestrator (its own Ed25519 key), joined nodes
(the orchestrator's published JWKS) and OIDC (an identity provider's JWKS).
The algorithms are pinned by configuration and never taken from the token's
header; issuer and audience are always checked; the clock-skew leeway is
explicit. Keys from a JWKS URL are cached and fetched again for an unknown
``kid`` (at most once every few seconds, so a flood of forged kids cannot make
us hammer the key server) and once they are ``max_age`` old, so a key the
provider stopped publishing (rotated out, or compromised) stops being trusted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import jwt

LEEWAY = 30.0  # seconds of clock skew accepted
REFETCH_EVERY = 5.0
KEYS_MAX_AGE = 300.0  # seconds a fetched key set is trusted before it is read again

KeyLookup = Callable[[str | None], Any]


class InvalidToken(Exception):
    pass


class JwksKeys:
    """Signing keys published at a JWKS URL, by ``kid``."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        max_age: float = KEYS_MAX_AGE,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.timeout = timeout
        self.max_age = max_age
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = 0.0
        self._read_at = 0.0  # when the keys in hand were last read successfully
        self._lock = threading.Lock()

    def __call__(self, kid: str | None) -> Any:
        key = self._keys.get(kid)
        if key is not None and time.monotonic() - self._read_at < self.max_age:
            return key
        with self._lock:
            moment = time.monotonic()
            stale = moment - self._read_at >= self.max_age
            allowed = moment - self._fetched_at >= min(REFETCH_EVERY, self.max_age)
            if (stale or kid not in self._keys) and allowed:
                try:
                    self._fetch()
                except InvalidToken:
                    if not self._keys or not stale:
                        raise
                    # the keys trusted so far stay trusted while the provider cannot be read
        key = self._keys.get(kid) or (self._only() if kid is None else None)
        if key is None:
            raise InvalidToken(f"no signing key {kid!r} at {self.url}")
        return key

    def _only(self) -> Any:
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            response = httpx.get(self.url, headers=self.headers, timeout=self.timeout)
            response.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise InvalidToken(f"cannot read the signing keys at {self.url}: {exc}") from None
        self._keys = {k.key_id: k.key for k in keyset.keys}
        self._read_at = time.monotonic()


class JwtVerifier:
    def __init__(
        self,
        keys: KeyLookup,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Sequence[str],
        leeway: float = LEEWAY,
        required: Sequence[str] = ("iss", "aud", "sub", "exp", "iat"),
    ) -> None:
        if not algorithms or any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
            raise ValueError("pin asymmetric algorithms (EdDSA, RS256, ES256...): never none or HMAC")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.required = list(required)

    def decode(self, token: str) -> dict:
        """The token's claims when its signature, issuer, audience and times are good."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if header.get("alg") not in self.algorithms:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        key = self.keys(kid if isinstance(kid, str) else None)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.required},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
