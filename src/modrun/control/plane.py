"""The control plane's parts, made once per orchestrator."""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from modrun.control.accounts import Accounts, User
from modrun.control.artifacts import Artifacts
from modrun.control.audit import AuditLog
from modrun.control.auth import Authenticator, Principal
from modrun.control.deployment_secrets import DeploymentSecrets, secrets_key
from modrun.control.deployments import DeploymentFleet, Deployments, DeploymentStore
from modrun.control.errors import ControlError, Unauthenticated
from modrun.control.guard import NO_ARTIFACT, SIGNED_IN, Decision, Issuer, Issuers, Subject
from modrun.control.keys import ApiKeys
from modrun.control.nodes import JoinTokens, NodeCredentials
from modrun.control.oidc import OidcSettings, oidc_issuer
from modrun.control.oidc_login import OidcLogin
from modrun.control.permissions import allowed
from modrun.control.quotas import Limits, Quotas
from modrun.control.ratelimit import FailureLimiter, Limiter, SharedFailureLimiter
from modrun.control.tenant_hosts import HostPattern, TenantHosts
from modrun.control.tokens import ALGORITHM, AUDIENCE, TokenService, load_signing_key
from modrun.control.verify import JwtVerifier
from modrun.errors import ConfigError
from modrun.secrets.sources import SecretSource
from modrun.storage.blobs import BlobStore, LocalBlobs
from modrun.storage.sealed import SealError, parse_key

log = logging.getLogger("modrun.control")

DEFAULT_MAX_KEY_LIFETIME = 90 * 86400

FleetFactory = Callable[[DeploymentStore, Artifacts], DeploymentFleet]
"""Makes the fleet side of deployments (the orchestrator's reconciler) from the
control plane's desired state and artifacts: the plane owns the protocol."""


def artifact_key() -> bytes:
    """The key for artifacts at rest, from the secrets layer: MODRUN_ARTIFACTS_KEY."""
    value, tried = SecretSource({}).lookup("artifacts", "key")
    if not value:
        raise ConfigError(f"--encryptArtifacts needs a 256-bit key in {tried[0]} (openssl rand -hex 32)")
    try:
        return parse_key(value)
    except SealError as exc:
        raise ConfigError(f"{tried[0]}: {exc}") from None


class ControlPlane:
    def __init__(
        self,
        engine: Engine,
        storage: Path,
        issuer: str,
        auth: str = "basic",
        signup: bool = True,
        access_ttl: float = 900,
        max_key_lifetime: float = DEFAULT_MAX_KEY_LIFETIME,
        blobs: BlobStore | None = None,
        max_artifact_size: int = 1 << 30,
        oidc: OidcSettings | None = None,
        artifact_key: bytes | None = None,
        default_quota: Limits | None = None,
        fleet: FleetFactory | None = None,
        tenant_hosts: TenantHosts | None = None,
    ) -> None:
        self.engine = engine
        self.tenant_hosts = tenant_hosts or TenantHosts()
        self.mode = auth
        self.accounts = Accounts(engine)
        self.keys = ApiKeys(engine)
        self.tokens = TokenService(
            engine, load_signing_key(storage / "control" / "signing-key.pem"), issuer, access_ttl
        )
        self.join_tokens = JoinTokens(engine)
        self.node_credentials = NodeCredentials(engine)
        trusted = [Issuer(self.tokens.verifier)]
        self.oidc = oidc
        self.oidc_document: dict | None = None
        self.oidc_login: OidcLogin | None = None  # the console's sign-in through the provider
        if auth == "oidc":
            if oidc is None:
                raise ValueError("--auth oidc needs --oidcIssuer and --oidcAudience")
            provider, self.oidc_document = oidc_issuer(oidc)
            trusted.append(provider)
            id_tokens = JwtVerifier(
                provider.verifier.keys,  # the same keys (and cache) as its access tokens
                oidc.issuer,
                oidc.client_id,
                oidc.algorithms,
                oidc.leeway,
            )
            self.oidc_login = OidcLogin(oidc, self.oidc_document, id_tokens)
        self.issuers = Issuers(trusted)
        self.auth = Authenticator(
            engine,
            self.accounts,
            self.tokens,
            self.issuers,
            self.join_tokens,
            self.node_credentials,
            enabled=auth != "none",
            oidc_groups=bool(oidc and oidc.groups_claim),
        )
        self.audit = AuditLog(engine)
        self.artifacts = Artifacts(
            engine,
            blobs or LocalBlobs(storage / "artifacts"),
            storage / "tmp" / "uploads",
            max_artifact_size,
            artifact_key,
        )
        self.quotas = Quotas(engine, default_quota or Limits())
        try:
            self.secrets = DeploymentSecrets(engine, secrets_key(storage))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        # 10 failures per login name from one address, 100 per client address, in 5 minutes
        self.login_limiter: Limiter
        self.address_limiter: Limiter
        if engine.dialect.name == "postgresql":  # perhaps one of several orchestrators: count together
            self.login_limiter = SharedFailureLimiter(engine, "name", 10, 300)
            self.address_limiter = SharedFailureLimiter(engine, "address", 100, 300)
        else:
            self.login_limiter, self.address_limiter = FailureLimiter(10, 300), FailureLimiter(100, 300)
        self.signup = signup
        self.deployments: Deployments | None = None  # deployments need a fleet to run on
        if fleet is not None:
            store = DeploymentStore(engine)
            self.deployments = Deployments(store, fleet(store, self.artifacts))
        self.max_key_lifetime = max_key_lifetime
        if auth == "none":
            log.warning("--auth none: every request acts as an admin; only for a trusted network")
        self._bootstrap()

    def _bootstrap(self) -> None:
        """The first admin, on the first start: MODRUN_ADMIN_USER (default
        ``admin``) with MODRUN_ADMIN_PASSWORD, or a generated password printed once."""
        if self.accounts.count():
            return
        name = os.environ.get("MODRUN_ADMIN_USER") or "admin"
        password = os.environ.get("MODRUN_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(18)
        email = os.environ.get("MODRUN_ADMIN_EMAIL") or f"{name}@localhost"
        try:
            self.accounts.create_user(name, email, password, admin=True)
        except ControlError as exc:
            raise SystemExit(f"cannot create the first admin {name!r}: {exc}") from None
        if generated:
            log.warning("created admin user %r with password %s (shown once; change it)", name, password)
        else:
            log.info("created admin user %r (password from MODRUN_ADMIN_PASSWORD)", name)

    def tenant_grant(self, user: User) -> tuple[HostPattern, ...] | None:
        """The hosts ``user``'s bundles may reach; None: anything (an admin, or an open fleet)."""
        if user.admin or not self.secured:
            return None
        teams = [t["name"] for t in self.accounts.teams(set(user.teams))] if user.teams else []
        return self.tenant_hosts.granted(user.username, teams)

    # -- call decisions (the gateway's and the nodes') ----------------------------------

    @property
    def secured(self) -> bool:
        return self.auth.enabled

    def decide(self, subject: Subject, artifact: str, first_sight: bool = True) -> Decision:
        """May ``subject`` invoke functions of ``artifact`` (NO_ARTIFACT: a
        function no artifact provides, for admins only; SIGNED_IN: nothing)?
        ``first_sight`` False for a subject a node reports (``/auth/decide``):
        it may create or change no account."""
        try:
            principal = self.auth.principal(subject, first_sight)
        except Unauthenticated as exc:
            return Decision(401, str(exc))
        return Decision(*self._invoke(principal, artifact), principal.actor)

    def _invoke(self, principal: Principal, artifact: str) -> tuple[int, str]:
        if artifact == SIGNED_IN:
            return 200, ""
        key = principal.key
        if artifact == NO_ARTIFACT:
            if principal.user.admin and (key is None or (key.all_artifacts and key.covers("invoke"))):
                return 200, ""
            return 403, "only admins may call functions that no artifact provides"
        try:
            access = self.artifacts.access(uuid.UUID(artifact))
        except ValueError:
            access = None
        if access is None:
            return 403, "the artifact providing this function is gone"
        if allowed(principal.user, key, access, "invoke"):
            return 200, ""
        if key is not None and not key.covers("invoke", artifact):
            return 403, "this API key does not cover invoking this artifact"
        return 403, "needs Read on the artifact that provides this function"

    def node_auth(self, base_url: str) -> dict | None:
        """What joining nodes need to check calls themselves (None: an open fleet)."""
        if not self.secured:
            return None
        issuers: list[dict[str, Any]] = [
            {
                "issuer": self.tokens.issuer,
                "jwks_uri": base_url.rstrip("/") + "/.well-known/jwks.json",
                "audience": AUDIENCE,
                "algorithms": [ALGORITHM],
                "kind": "user",
            }
        ]
        if self.oidc is not None and self.oidc_document is not None:
            issuers.append(
                {
                    "issuer": self.oidc.issuer,
                    "jwks_uri": self.oidc_document["jwks_uri"],
                    "audience": self.oidc.audience,
                    "algorithms": list(self.oidc.algorithms),
                    "leeway": self.oidc.leeway,
                    "kind": "oidc",
                    "groups_claim": self.oidc.groups_claim or "groups",
                }
            )
        return {"issuers": issuers, "decide": "/api/v2/auth/decide"}
