"""``modrun orchestrator``: the fleet's head (SilverLine control over MQTT, the control
plane, the gateway)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modrun.config.defaults import default_storage_path
from modrun.config.units import parse_duration, parse_size
from modrun.errors import ConfigError, ModrunError

if TYPE_CHECKING:
    from modrun.control.tenant_hosts import TenantHosts
    from modrun.orchestrator.node_urls import Network


def _seconds(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def orchestrator(
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default 8000).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Interface (default 127.0.0.1).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="SilverLine config.json (http, http_port, realm, mqtt, ...)."),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            envvar="MODRUN_MQTT",
            help="Existing broker: mqtt://[user[:pass]@]host:port (mqtts:// TLS). Default: embedded broker.",
        ),
    ] = None,
    broker_port: Annotated[
        int, typer.Option("--brokerPort", help="Port of the embedded broker (without --mqtt).")
    ] = 1883,
    realm: Annotated[str | None, typer.Option("--realm", help="Topic realm (default 'realm').")] = None,
    storage_path: Annotated[
        Path, typer.Option("--storagePath", envvar="MODRUN_STORAGE_PATH", help="State and file store.")
    ] = default_storage_path(),
    db: Annotated[
        str | None, typer.Option("--db", help="Metadata database URL; default SQLite in --storagePath.")
    ] = None,
    migrate: Annotated[bool, typer.Option("--migrate", help="Migrate a database that is behind.")] = False,
    keepalive: Annotated[
        str, typer.Option("--keepalive", help="Keepalive interval runtimes are told (Go duration; 500ms ok).")
    ] = "5s",
    keepalive_timeout: Annotated[
        str | None,
        typer.Option(
            "--keepaliveTimeout", help="Silence after which a runtime is dead (default 3x --keepalive)."
        ),
    ] = None,
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="least-loaded (default) or round-robin.")
    ] = "least-loaded",
    files_s3: Annotated[
        str | None, typer.Option("--filesS3", help="Keep the file store in S3: s3://bucket/prefix.")
    ] = None,
    max_file_size: Annotated[str, typer.Option("--maxFileSize", help="Largest file accepted.")] = "256MiB",
    gateway_wait: Annotated[
        str, typer.Option("--gatewayWait", help="How long a gateway call waits for a module being re-placed.")
    ] = "10s",
    gateway_timeout: Annotated[
        str, typer.Option("--gatewayTimeout", help="Longest a gateway call may take on a node.")
    ] = "60s",
    gateway_max_response: Annotated[
        str,
        typer.Option("--gatewayMaxResponse", help="Largest node answer the gateway passes on (502 beyond)."),
    ] = "64MiB",
    node_networks: Annotated[
        str | None,
        typer.Option(
            "--nodeNetworks",
            help="Networks (CIDRs, comma-separated) a node's advertised address must be in; default any.",
        ),
    ] = None,
    mosquitto_files: Annotated[
        Path | None,
        typer.Option(
            "--mosquittoFiles",
            help="Keep an external Mosquitto's passwd and acl files in this directory (docs/security.md).",
        ),
    ] = None,
    mosquitto_reload: Annotated[
        str | None,
        typer.Option(
            "--mosquittoReload",
            help="Command run after they change, e.g. 'systemctl reload mosquitto' (rereads on SIGHUP).",
        ),
    ] = None,
    auth: Annotated[
        str,
        typer.Option(
            "--auth", help="basic (users, tokens, API keys), oidc (also an OIDC provider's tokens) or none."
        ),
    ] = "basic",
    oidc_issuer: Annotated[
        str | None, typer.Option("--oidcIssuer", help="OIDC provider issuer URL (discovery is read from it).")
    ] = None,
    oidc_audience: Annotated[
        str | None, typer.Option("--oidcAudience", help="Audience (aud) the provider's tokens must carry.")
    ] = None,
    oidc_algorithms: Annotated[
        str, typer.Option("--oidcAlgorithms", help="Accepted signing algorithms, comma-separated.")
    ] = "RS256",
    oidc_leeway: Annotated[str, typer.Option("--oidcLeeway", help="Clock skew accepted.")] = "30s",
    oidc_keys_max_age: Annotated[
        str,
        typer.Option(
            "--oidcKeysMaxAge", help="How long the provider's signing keys are trusted before re-reading."
        ),
    ] = "5m",
    oidc_client_id: Annotated[
        str | None,
        typer.Option(
            "--oidcClientId", help="The console's client id at the provider (default: --oidcAudience)."
        ),
    ] = None,
    oidc_client_secret: Annotated[
        str | None,
        typer.Option(
            "--oidcClientSecret",
            envvar="MODRUN_OIDC_CLIENT_SECRET",
            help="Its secret, for a confidential client (PKCE is used either way).",
        ),
    ] = None,
    oidc_groups_claim: Annotated[
        str,
        typer.Option("--oidcGroupsClaim", help='Claim listing groups, mapped to teams by name ("" = off).'),
    ] = "groups",
    encrypt_artifacts: Annotated[
        bool,
        typer.Option(
            "--encryptArtifacts",
            help="Store new artifact versions AES-256-GCM encrypted; key in MODRUN_ARTIFACTS_KEY (64 hex).",
        ),
    ] = False,
    quota_artifact_bytes: Annotated[
        str | None, typer.Option("--quotaArtifactBytes", help="Default artifact storage per user and team.")
    ] = None,
    quota_deployments: Annotated[
        int | None, typer.Option("--quotaDeployments", help="Default deployments per user and team.")
    ] = None,
    quota_replicas: Annotated[
        int | None, typer.Option("--quotaReplicas", help="Default replicas per user and team.")
    ] = None,
    tenant_hosts: Annotated[
        str | None,
        typer.Option(
            "--tenantHosts",
            help="Hosts tenants' HTTP connections may reach, comma-separated (name, *.domain, "
            "address or CIDR, optional :port or :*); default none.",
        ),
    ] = None,
    tenant_hosts_file: Annotated[
        Path | None,
        typer.Option(
            "--tenantHostsFile", help="JSON grants of hosts to everyone, users and teams (docs/security.md)."
        ),
    ] = None,
    no_signup: Annotated[bool, typer.Option("--noSignup", help="Only admins create users.")] = False,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Token issuer (iss); default http://HOST:PORT.")
    ] = None,
    max_key_lifetime: Annotated[
        str, typer.Option("--maxKeyLifetime", help="Longest an API key may live (Go duration).")
    ] = "2160h",
    max_artifact_size: Annotated[str, typer.Option("--maxArtifactSize", help="Largest artifact.")] = "1GiB",
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            envvar="MODRUN_INSTANCE",
            help="This orchestrator's name among several on one PostgreSQL (default HOSTNAME:PORT).",
        ),
    ] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option(
            "--advertiseUrl", help="Where the other orchestrators reach it (default http://HOST:PORT)."
        ),
    ] = None,
    jsonlogs: Annotated[bool, typer.Option("--jsonlogs", help="Log one JSON object per line.")] = False,
    log_level: Annotated[str, typer.Option("--logLevel", help="debug, info, warning, error.")] = "info",
    candidate: Annotated[bool, typer.Option("--candidate/--no-candidate", hidden=True)] = True,
) -> None:
    """Run the orchestrator: SilverLine control over MQTT, REST metadata API, file store, gateway.

    Several on one PostgreSQL (--db) form one fleet: one leads, the others follow
    and take over within seconds (docs/production.md)."""
    from modrun.control.quotas import Limits
    from modrun.head.service import Orchestrator
    from modrun.logs import setup_logging
    from modrun.mqtt.url import BrokerAddress
    from modrun.orchestrator.config import OrchestratorSettings, read_config

    try:
        values: dict[str, Any] = read_config(config) if config else {}
        flags = {
            "port": port,
            "host": host,
            "realm": realm,
            "mqtt": BrokerAddress.parse(mqtt) if mqtt else None,
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        settings = OrchestratorSettings(
            **values,
            broker_port=broker_port,
            storage_path=storage_path.expanduser(),
            db=db,
            migrate=migrate,
            keepalive=_seconds(keepalive, "--keepalive") or 5.0,
            keepalive_timeout=_seconds(keepalive_timeout, "--keepaliveTimeout"),
            scheduler=scheduler,
            files_s3=files_s3,
            max_file_size=parse_size(max_file_size),
            gateway_wait=_seconds(gateway_wait, "--gatewayWait") or 0.0,
            gateway_timeout=_seconds(gateway_timeout, "--gatewayTimeout") or 60.0,
            gateway_max_response=parse_size(gateway_max_response),
            node_networks=_networks(node_networks),
            mosquitto_files=mosquitto_files,
            mosquitto_reload=mosquitto_reload,
            jsonlogs=jsonlogs,
            log_level=log_level,
            auth=_auth_mode(auth),
            signup=not no_signup,
            issuer=issuer,
            max_key_lifetime=_seconds(max_key_lifetime, "--maxKeyLifetime") or 90 * 86400,
            max_artifact_size=parse_size(max_artifact_size),
            oidc=_oidc(
                auth,
                oidc_issuer,
                oidc_audience,
                oidc_algorithms,
                oidc_leeway,
                oidc_groups_claim,
                oidc_client_id,
                oidc_client_secret,
                oidc_keys_max_age,
            ),
            encrypt_artifacts=encrypt_artifacts,
            tenant_hosts=_tenant_hosts(tenant_hosts, tenant_hosts_file),
            default_quota=Limits(
                parse_size(quota_artifact_bytes) if quota_artifact_bytes else None,
                quota_deployments,
                quota_replicas,
            ),
        )
        settings.broker_host = settings.host
        settings.instance, settings.advertise_url, settings.candidate = instance, advertise_url, candidate
        if not candidate:
            _check_gateway(settings)
        log_file = settings.log_dir / "orchestrator.log" if settings.log_dir else None
        setup_logging(jsonlogs, log_level, log_file)
        Orchestrator(settings).serve()  # the schema check and the control plane may refuse to start
    except ModrunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def gateway(**options: Any) -> None:
    """Run a gateway: function calls, GraphQL, reads and the console for a fleet
    whose orchestrators share --db (PostgreSQL) and --mqtt; it never leads, and
    sends writes to the orchestrator that does. Add as many as you need behind a
    load balancer."""
    orchestrator(**options, candidate=False)


_signature = inspect.signature(orchestrator, eval_str=True)
gateway.__signature__ = _signature.replace(  # type: ignore[attr-defined]
    parameters=[p for name, p in _signature.parameters.items() if name != "candidate"]
)


def _check_gateway(settings: Any) -> None:
    from modrun.db.engine import database_url, is_postgres

    if not is_postgres(database_url(settings.db, settings.storage_path)):
        raise ConfigError("modrun gateway reads the fleet from its orchestrators' PostgreSQL: give --db")
    if settings.mqtt is None:
        raise ConfigError("modrun gateway hears the nodes through the fleet's broker: give --mqtt")


def _tenant_hosts(flag: str | None, policy_file: Path | None) -> TenantHosts:
    from modrun.control.tenant_hosts import TenantHosts

    try:
        return TenantHosts.load(flag, policy_file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tenantHosts") from None


def _networks(value: str | None) -> tuple[Network, ...]:
    from modrun.orchestrator.node_urls import parse_networks

    try:
        return tuple(parse_networks(value or ""))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--nodeNetworks") from None


def _auth_mode(value: str) -> str:
    if value not in ("basic", "oidc", "none"):
        raise typer.BadParameter("basic, oidc or none", param_hint="--auth")
    return value


def _oidc(
    auth: str,
    issuer: str | None,
    audience: str | None,
    algorithms: str,
    leeway: str,
    groups: str,
    client_id: str | None = None,
    client_secret: str | None = None,
    keys_max_age: str = "5m",
) -> Any:
    from modrun.control.oidc import OidcSettings

    if auth != "oidc":
        if issuer:
            raise typer.BadParameter("--oidcIssuer needs --auth oidc", param_hint="--oidcIssuer")
        return None
    if not issuer or not audience:
        raise typer.BadParameter("--auth oidc needs --oidcIssuer and --oidcAudience", param_hint="--auth")
    pinned = tuple(a.strip() for a in algorithms.split(",") if a.strip())
    leeway_s = _seconds(leeway, "--oidcLeeway") or 0.0
    max_age = _seconds(keys_max_age, "--oidcKeysMaxAge") or 300.0
    return OidcSettings(issuer, audience, pinned, leeway_s, groups or None, client_id, client_secret, max_age)
