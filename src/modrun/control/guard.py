"""Who may call a function: the check the gateway and every joined node make.

A call's credentials are read from its headers: a JWT (``Authorization:
Bearer``) is verified locally (signature, issuer, audience, expiry: no round
trip); an API key is reduced to its SHA-256. The question "may this subject
invoke this artifact?" goes to ``decide`` (in process on the orchestrator, an
HTTP call from a node) and its answer is cached for ``ttl`` seconds, so
revoking a key, a token or a user, or changing a permission, reaches the
whole fleet within that time, and a hot caller costs two dictionary lookups.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import jwt

from modrun.control.keys import JOIN_PREFIX, key_hash, looks_like_key, well_formed
from modrun.control.verify import InvalidToken, JwtVerifier
from modrun.expiring import ExpiringCache

DECISION_TTL = 2.0
MAX_ENTRIES = 50_000
NO_ARTIFACT = ""  # functions no artifact provides (a node's own plugins): admins only
SIGNED_IN = "*"  # nothing to invoke (GraphQL introspection): any valid caller


@dataclass(frozen=True)
class Subject:
    """Who presented the credentials, without the secret."""

    kind: str  # "user" (a modrun token), "oidc" (an identity provider's token) or "key"
    id: str  # user id, the IdP's subject, or the key's SHA-256
    issuer: str = ""
    jti: str = ""
    issued_at: float = 0.0
    expires_at: float = 0.0  # epoch seconds; 0 for keys (the decision carries expiry)
    groups: tuple[str, ...] = ()
    name: str = ""  # an OIDC user's preferred_username, for the local account made on first sight
    email: str = ""
    family: str = ""  # a modrun token's sign-in (its refresh family)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "issuer": self.issuer,
            "jti": self.jti,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "groups": list(self.groups),
            "name": self.name,
            "email": self.email,
            "fam": self.family,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Subject:
        groups = data.get("groups") or []
        return cls(
            str(data["kind"]),
            str(data["id"]),
            str(data.get("issuer") or ""),
            str(data.get("jti") or ""),
            float(data.get("iat") or 0),
            float(data.get("exp") or 0),
            tuple(str(g) for g in groups if isinstance(g, str)),
            str(data.get("name") or ""),
            str(data.get("email") or ""),
            str(data.get("fam") or ""),
        )


@dataclass(frozen=True)
class Decision:
    status: int  # 200 allowed, 401 not signed in (or credentials no longer good), 403 not allowed,
    # 503 the control plane could not be asked
    reason: str = ""
    actor: str = ""  # user:<id> or key:<id>, for logs

    @property
    def allowed(self) -> bool:
        return self.status == 200

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "actor": self.actor}


SIGN_IN = Decision(401, "sign in: send a token (Authorization: Bearer) or an API key (X-API-Key)")

TokenReader = Callable[[str], Subject]  # raises InvalidToken
Decide = Callable[[Subject, str], Awaitable[Decision]]


@dataclass(frozen=True)
class Issuer:
    """A token issuer the fleet trusts: modrun's own (``kind="user"``) or an OIDC provider."""

    verifier: JwtVerifier
    kind: str = "user"
    groups_claim: str = "groups"


class Issuers:
    """Reads a JWT into a Subject, with the verifier of the issuer it names."""

    def __init__(self, issuers: Iterable[Issuer]) -> None:
        self.by_name = {i.verifier.issuer: i for i in issuers}

    def __call__(self, token: str) -> Subject:
        try:
            named = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        issuer = self.by_name.get(named) if isinstance(named, str) else None
        if issuer is None:
            raise InvalidToken(f"tokens from {named!r} are not accepted here")
        claims = issuer.verifier.decode(token)
        try:
            groups = claims.get(issuer.groups_claim) or []
            return Subject(
                issuer.kind,
                str(claims["sub"]),
                issuer.verifier.issuer,
                str(claims.get("jti") or ""),
                float(claims["iat"]),
                float(claims["exp"]),
                tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
                str(claims.get("preferred_username") or ""),
                str(claims.get("email") or ""),
                str(claims.get("fam") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken(f"malformed claims: {exc}") from None


def presented(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The credential in raw ASGI headers: ``X-API-Key``, else a Bearer value,
    else the console's session cookie when the console's header is there too
    (calls change things: a cross-site form cannot add the header)."""
    bearer = cookie = None
    console = False
    for name, value in headers:
        if name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                bearer = rest.strip()
        elif name == b"cookie":
            cookie = _session_cookie(value.decode("latin-1"))
        elif name == b"x-modrun-console" and value == b"1":
            console = True
    return bearer or (cookie if console else None)


def _session_cookie(header: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "modrun_session" and value:
            return value
    return None


class CallGuard:
    def __init__(self, read_token: TokenReader, decide: Decide, ttl: float = DECISION_TTL) -> None:
        self.read_token = read_token
        self.decide = decide
        self.ttl = ttl
        self._subjects: ExpiringCache[str, Subject] = ExpiringCache(MAX_ENTRIES, time.time)
        self._decisions: ExpiringCache[tuple[str, str, str], Decision] = ExpiringCache(MAX_ENTRIES)

    def subject(self, secret: str) -> Subject:
        """Raises InvalidToken for credentials that are not good whatever they ask for."""
        cached = self._subjects.get(secret)
        if cached is not None:
            return cached
        moment = time.time()
        if looks_like_key(secret):
            if not well_formed(secret):
                raise InvalidToken("invalid API key")
            found, until = Subject("key", key_hash(secret)), moment + 3600
        elif secret.startswith(JOIN_PREFIX):
            raise InvalidToken("a join token is for nodes joining the fleet, not for calls")
        else:
            found = self.read_token(secret)
            until = found.expires_at
        self._subjects.put(secret, found, until)
        return found

    async def check(self, headers: Iterable[tuple[bytes, bytes]], artifacts: Iterable[str]) -> Decision:
        """Allowed only when every artifact (NO_ARTIFACT for admin-only functions)
        allows invoke; no artifacts at all asks only for valid credentials."""
        secret = presented(headers)
        if secret is None:
            return SIGN_IN
        try:
            subject = self.subject(secret)
        except InvalidToken as exc:
            return Decision(401, str(exc))
        decision = Decision(200)
        for artifact in sorted(set(artifacts)) or [SIGNED_IN]:
            decision = await self._decision(subject, artifact)
            if not decision.allowed:
                return decision
        return decision

    async def _decision(self, subject: Subject, artifact: str) -> Decision:
        key = (subject.kind, subject.id + subject.jti, artifact)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        decision = await self.decide(subject, artifact)
        if decision.status in (200, 401, 403):  # an unreachable control plane is asked again
            self._decisions.put(key, decision, time.monotonic() + self.ttl)
        return decision
