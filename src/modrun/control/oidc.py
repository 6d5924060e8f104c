"""``--auth oidc``: accept an OpenID Connect provider's tokens.

The provider is found through discovery (``{issuer}/.well-known/openid-configuration``)
and its keys through the ``jwks_uri`` it names; the discovered issuer must be
the configured one. Algorithms are pinned in configuration (default RS256),
the audience is configured (the client id the provider puts in ``aud``), the
clock-skew leeway is explicit. A subject seen for the first time gets a local
user; with a groups claim, its teams follow the provider's groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from modrun.control.guard import Issuer
from modrun.control.verify import KEYS_MAX_AGE, LEEWAY, JwksKeys, JwtVerifier


class OidcError(Exception):
    pass


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: float = LEEWAY
    groups_claim: str | None = "groups"  # None: teams are managed in modrun only
    client: str | None = None  # the console's client id (default: the audience)
    client_secret: str | None = None  # for a confidential client; PKCE is used either way
    keys_max_age: float = KEYS_MAX_AGE  # seconds the provider's JWKS is trusted before it is read again

    @property
    def client_id(self) -> str:
        return self.client or self.audience


def discover(issuer: str, timeout: float = 10.0) -> dict:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(f"OIDC discovery at {url} failed: {exc}") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise OidcError(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}")
    if not isinstance(document.get("jwks_uri"), str):
        raise OidcError(f"{url} has no jwks_uri")
    return document


def oidc_issuer(settings: OidcSettings) -> tuple[Issuer, dict]:
    """The trusted issuer entry for the provider, and its discovery document."""
    document = discover(settings.issuer)
    offered = document.get("id_token_signing_alg_values_supported") or []
    if offered and not set(settings.algorithms) & set(offered):
        raise OidcError(f"the provider signs with {offered}, none of the pinned {list(settings.algorithms)}")
    verifier = JwtVerifier(
        JwksKeys(document["jwks_uri"], max_age=settings.keys_max_age),
        settings.issuer,
        settings.audience,
        settings.algorithms,
        settings.leeway,
    )
    return Issuer(verifier, kind="oidc", groups_claim=settings.groups_claim or "groups"), document
