"""Who is calling: a user token (``Authorization: Bearer <JWT>``) or an API key
(``X-API-Key: mrk_...`` or ``Authorization: Bearer mrk_...``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.requests import Request

from modrun.control.accounts import Accounts, User
from modrun.control.keys import KeyGrant, key_hash, looks_like_key, well_formed
from modrun.control.tokens import Claims, InvalidToken, TokenService
from modrun.db.tables import api_keys
from modrun.db.times import utc, utc_now

LAST_USED_EVERY = timedelta(seconds=60)
ANONYMOUS_ADMIN = User(uuid.UUID(int=0), "anonymous", "", admin=True)


class Unauthenticated(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    user: User
    key: KeyGrant | None = None
    claims: Claims | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key.id}" if self.key else f"user:{self.user.id}"

    @property
    def session(self) -> bool:
        """Signed in as the user (a token), not through an API key."""
        return self.key is None


def credentials(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Authenticator:
    def __init__(
        self, engine: Engine, accounts: Accounts, tokens: TokenService, enabled: bool = True
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.tokens = tokens
        self.enabled = enabled

    def identify(self, request: Request) -> Principal | None:
        """The caller, None when no credentials were sent; Unauthenticated when
        credentials were sent and are not valid (never silently anonymous)."""
        if not self.enabled:
            return Principal(ANONYMOUS_ADMIN)
        secret = credentials(request)
        if secret is None:
            return None
        if looks_like_key(secret):
            return self._key(secret)
        try:
            claims = self.tokens.verify(secret)
        except InvalidToken as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        user = self.accounts.get(claims.user_id)
        if user is None:
            raise Unauthenticated("invalid token: no such user")
        return Principal(user, claims=claims)

    def _key(self, secret: str) -> Principal:
        if not well_formed(secret):
            raise Unauthenticated("invalid API key")
        moment = utc_now()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash(secret))).first()
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
