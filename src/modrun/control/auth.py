"""Who is calling: a user token (``Authorization: Bearer <JWT>``, modrun's
own or, with ``--auth oidc``, the identity provider's), an API key
(``X-API-Key: mrk_...`` or ``Authorization: Bearer mrk_...``), or a node
presenting its join token (``mrj_...``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request

from modrun.control.accounts import Accounts, User
from modrun.control.errors import Unauthenticated
from modrun.control.guard import Issuers, Subject
from modrun.control.keys import (
    LAST_USED_EVERY,
    KeyGrant,
    key_hash,
    looks_like_join_token,
    looks_like_key,
    looks_like_node_credential,
    well_formed,
)
from modrun.control.nodes import JoinTokens, NodeCredentials
from modrun.control.tokens import Claims, TokenService
from modrun.control.verify import InvalidToken
from modrun.db.tables import api_keys
from modrun.db.times import utc, utc_now

ANONYMOUS_ADMIN = User(uuid.UUID(int=0), "anonymous", "", admin=True)
NODE_USER = User(uuid.UUID(int=1), "node", "", admin=False)


@dataclass(frozen=True)
class Principal:
    user: User
    key: KeyGrant | None = None
    claims: Claims | None = None
    node: uuid.UUID | None = None  # the join token a node presented
    runtime: uuid.UUID | None = None  # the runtime whose credential was presented

    @property
    def actor(self) -> str:
        if self.runtime is not None:
            return f"runtime:{self.runtime}"
        if self.node is not None:
            return f"node-token:{self.node}"
        return f"key:{self.key.id}" if self.key else f"user:{self.user.id}"

    @property
    def session(self) -> bool:
        """Signed in as the user (a token), not through an API key or a node's credential."""
        return self.key is None and self.node is None and self.runtime is None


SESSION_COOKIE = "modrun_session"  # the console's access token: HttpOnly, SameSite=Strict
REFRESH_COOKIE = "modrun_refresh"  # its refresh token, sent only to /api/v2/session
CONSOLE_HEADER = "x-modrun-console"  # what a console request that changes something must carry
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def credentials(request: Request) -> str | None:
    """``X-API-Key``, else a Bearer value, else the console's session cookie. The
    cookie counts for a request that changes something only with the console's
    header: a form or image on another site cannot set one (CSRF), and
    SameSite=Strict keeps the cookie off cross-site requests besides."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    session = request.cookies.get(SESSION_COOKIE)
    if session and (request.method in SAFE_METHODS or request.headers.get(CONSOLE_HEADER) == "1"):
        return session
    return None


class Authenticator:
    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        tokens: TokenService,
        issuers: Issuers,
        join_tokens: JoinTokens,
        node_credentials: NodeCredentials,
        enabled: bool = True,
        oidc_groups: bool = False,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.tokens = tokens
        self.issuers = issuers
        self.join_tokens = join_tokens
        self.node_credentials = node_credentials
        self.enabled = enabled
        self.oidc_groups = oidc_groups  # IdP groups decide an OIDC user's teams

    def identify(self, request: Request) -> Principal | None:
        """The caller, None when no credentials were sent; Unauthenticated when
        credentials were sent and are not valid (never silently anonymous)."""
        if not self.enabled:
            return Principal(ANONYMOUS_ADMIN)
        secret = credentials(request)
        if secret is None:
            return None
        if looks_like_join_token(secret):
            node = self.join_tokens.check(secret)
            if node is None:
                raise Unauthenticated("invalid or expired join token")
            return Principal(NODE_USER, node=node)
        if looks_like_node_credential(secret):
            runtime = self.node_credentials.check(secret)
            if runtime is None:
                raise Unauthenticated("invalid or revoked node credential")
            return Principal(NODE_USER, runtime=runtime)
        if looks_like_key(secret):
            if not well_formed(secret):
                raise Unauthenticated("invalid API key")
            return self.principal(Subject("key", key_hash(secret)))
        try:
            subject = self.issuers(secret)
        except InvalidToken as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        return self.principal(subject)

    def principal(self, subject: Subject, first_sight: bool = True) -> Principal:
        """The account behind a subject whose credentials were already checked
        for signature and expiry; revocation and existence are checked here.
        ``first_sight``: an identity provider's new subject gets a local account
        (and its groups set its teams); False for a subject a node reports, which
        may create or change no one."""
        if subject.kind == "key":
            return self._key(subject.id)
        if subject.kind == "oidc" and not first_sight:
            known = self.accounts.find_external(subject.issuer, subject.id)
            if known is None:
                raise Unauthenticated("unknown user: sign in once through the orchestrator first")
            return Principal(known)
        if subject.kind == "oidc":
            user = self.accounts.external(
                subject.issuer,
                subject.id,
                subject.name,
                subject.email,
                subject.groups if self.oidc_groups else None,
            )
            return Principal(user)
        try:
            claims = Claims(
                uuid.UUID(subject.id),
                subject.jti,
                _moment(subject.issued_at),
                _moment(subject.expires_at),
                subject.family,
            )
        except ValueError:
            raise Unauthenticated("invalid token: malformed subject") from None
        reason = self.tokens.revoked(claims)
        if reason:
            raise Unauthenticated(f"invalid token: {reason}")
        found = self.accounts.get(claims.user_id)
        if found is None:
            raise Unauthenticated("invalid token: no such user")
        return Principal(found, claims=claims)

    def _key(self, digest: str) -> Principal:
        moment = utc_now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest)).first()
            if row is None:
                raise Unauthenticated("invalid API key")
            if utc(row.expires_at) <= moment:
                raise Unauthenticated("API key expired")
            if row.last_used_at is None or moment - utc(row.last_used_at) > LAST_USED_EVERY:
                conn.execute(api_keys.update().where(api_keys.c.id == row.id).values(last_used_at=moment))
        user = self.accounts.get(row.user_id)
        if user is None:
            raise Unauthenticated("invalid API key")
        grant = KeyGrant(
            row.id,
            row.user_id,
            frozenset(row.scopes),
            row.all_artifacts,
            frozenset(row.artifact_ids),
            utc(row.expires_at),
        )
        return Principal(user, key=grant)


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
