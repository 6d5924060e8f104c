"""Signing in to the console through the OIDC provider: the authorization
code flow with PKCE (RFC 7636), a ``state`` bound to the browser by a
cookie, and a ``nonce`` checked in the ID token.

``begin`` makes the provider URL to send the browser to; ``finish`` takes the
code the provider sent back, redeems it at the token endpoint and returns the
verified ID token's claims. Pending sign-ins live in memory for ten minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from modrun.control.oidc import OidcSettings
from modrun.control.verify import InvalidToken, JwtVerifier

PENDING_FOR = 600.0
MAX_PENDING = 10_000


class LoginFailed(Exception):
    pass


@dataclass(frozen=True)
class _Pending:
    verifier: str
    nonce: str
    redirect_uri: str
    next: str
    until: float


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcLogin:
    def __init__(self, settings: OidcSettings, document: dict, id_tokens: JwtVerifier) -> None:
        self.settings = settings
        self.document = document
        self.id_tokens = id_tokens  # the provider's keys, pinned algorithms, audience = the client id
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return bool(self.document.get("authorization_endpoint") and self.document.get("token_endpoint"))

    def _scope(self) -> str:
        """openid, profile and email, and the groups claim's scope where the provider offers one."""
        offered = self.document.get("scopes_supported") or []
        groups = self.settings.groups_claim
        return "openid profile email" + (f" {groups}" if groups and groups in offered else "")

    def begin(self, redirect_uri: str, next_path: str, login_hint: str | None = None) -> tuple[str, str]:
        """(the provider URL to redirect to, the state to keep in the browser's cookie)."""
        state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
        with self._lock:
            moment = time.monotonic()
            for key in [k for k, p in self._pending.items() if p.until < moment]:
                del self._pending[key]
            if len(self._pending) >= MAX_PENDING:
                raise LoginFailed("too many sign-ins in progress; try again in a few minutes")
            self._pending[state] = _Pending(verifier, nonce, redirect_uri, next_path, moment + PENDING_FOR)
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self._scope(),
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        if login_hint:
            query["login_hint"] = login_hint
        return f"{self.document['authorization_endpoint']}?{urlencode(query)}", state

    def finish(self, code: str, state: str, cookie_state: str | None) -> tuple[dict, str]:
        """The ID token's claims and where to go next; LoginFailed otherwise."""
        if not cookie_state or not hmac.compare_digest(cookie_state.encode(), state.encode()):
            raise LoginFailed("this sign-in was not started in this browser (state mismatch)")
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or pending.until < time.monotonic():
            raise LoginFailed("the sign-in expired or was already used; start again")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": pending.verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        try:
            answer = httpx.post(self.document["token_endpoint"], data=form, timeout=10)
        except httpx.HTTPError as exc:
            raise LoginFailed(f"the identity provider cannot be reached: {exc}") from None
        if answer.status_code != 200:
            raise LoginFailed(f"the identity provider refused the code ({answer.status_code})")
        try:
            id_token = answer.json()["id_token"]
            claims = self.id_tokens.decode(id_token)
        except (ValueError, KeyError, TypeError):
            raise LoginFailed("the identity provider answered without an ID token") from None
        except InvalidToken as exc:
            raise LoginFailed(f"the ID token is not valid: {exc}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), pending.nonce.encode()):
            raise LoginFailed("the ID token's nonce does not match this sign-in")
        return claims, pending.next
