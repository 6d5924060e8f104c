"""Fleet commands: ``modrun orchestrator`` and the client commands that talk to one
(``runtimes``, ``modules``, ``module create|delete``, ``files put|get|ls``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from modrun.config.defaults import default_storage_path
from modrun.config.units import format_size, parse_duration, parse_size
from modrun.errors import ConfigError, ModrunError

DEFAULT_ORCHESTRATOR = "http://127.0.0.1:8000"

OrchestratorOpt = Annotated[
    str,
    typer.Option(
        "--orchestrator",
        envvar="MODRUN_ORCHESTRATOR",
        help="Orchestrator URL.",
    ),
]


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
    no_signup: Annotated[bool, typer.Option("--noSignup", help="Only admins create users.")] = False,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Token issuer (iss); default http://HOST:PORT.")
    ] = None,
    max_key_lifetime: Annotated[
        str, typer.Option("--maxKeyLifetime", help="Longest an API key may live (Go duration).")
    ] = "2160h",
    max_artifact_size: Annotated[str, typer.Option("--maxArtifactSize", help="Largest artifact.")] = "1GiB",
    jsonlogs: Annotated[bool, typer.Option("--jsonlogs", help="Log one JSON object per line.")] = False,
    log_level: Annotated[str, typer.Option("--logLevel", help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the orchestrator: SilverLine control over MQTT, REST metadata API, file store, gateway."""
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
            ),
            encrypt_artifacts=encrypt_artifacts,
            default_quota=Limits(
                parse_size(quota_artifact_bytes) if quota_artifact_bytes else None,
                quota_deployments,
                quota_replicas,
            ),
        )
        settings.broker_host = settings.host
        log_file = settings.log_dir / "orchestrator.log" if settings.log_dir else None
        setup_logging(jsonlogs, log_level, log_file)
        node = Orchestrator(settings)
    except ModrunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    node.serve()


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
    return OidcSettings(issuer, audience, pinned, leeway_s, groups or None, client_id, client_secret)


# -- client commands ------------------------------------------------------------------------


class Api:
    """The fleet API with the credentials at hand (a secured fleet's routes need them)."""

    def __init__(self, url: str) -> None:
        from modrun.cli.credentials import client_for

        self.url = url.rstrip("/")
        with client_for(self.url) as client:
            headers = client.auth_headers()
        self.http = httpx.Client(base_url=self.url, timeout=60, headers=headers)

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            typer.echo(f"error: cannot reach the orchestrator at {self.url}: {exc}", err=True)
            raise typer.Exit(2) from None
        if response.status_code >= 400:
            try:
                detail = response.json()
                message = detail.get("error", response.text)
                if detail.get("data") not in (None, ""):
                    message += f": {detail['data']}"
            except ValueError:
                message = response.text or response.reason_phrase
            typer.echo(f"error: {message} ({response.status_code})", err=True)
            raise typer.Exit(1)
        return response


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


def runtimes(
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    status: Annotated[str, typer.Option("--status", help="A, D or all.")] = "all",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the fleet's runtimes."""
    api = Api(orchestrator)
    listing = api("GET", "/api/runtimes/", params={"status": status}).json()["results"]
    details = [api("GET", f"/api/runtimes/{r['uuid']}/").json() for r in listing]
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    rows = []
    for r in details:
        load = r.get("load") or {}
        rows.append(
            [
                r["name"],
                r["uuid"],
                r["status"],
                r["runtime_type"],
                len(r["children"]),
                len(r["queued"]),
                r["max_nmodules"] or "∞",
                f"{load['cpu_percent']:.0f}%" if "cpu_percent" in load else "",
                (r.get("metadata") or {}).get("url", ""),
            ]
        )
    _table(
        f"{len(rows)} runtimes",
        ["name", "uuid", "state", "type", "modules", "queued", "max", "cpu", "url"],
        rows,
    )


def modules(
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    status: Annotated[str, typer.Option("--status", help="A, Q, K, E, D or all.")] = "all",
    runtime: Annotated[str | None, typer.Option("--runtime", help="Only modules on this runtime.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List modules and where they run."""
    api = Api(orchestrator)
    params = {"status": status} | ({"runtime": runtime} if runtime else {})
    listing = api("GET", "/api/modules/", params=params).json()["results"]
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    names = {
        r["uuid"]: r["name"] for r in api("GET", "/api/runtimes/", params={"status": "all"}).json()["results"]
    }
    rows = [
        [m["name"], m["uuid"], m["status"], names.get(m["parent"], m["parent"]), m["file"]] for m in listing
    ]
    _table(f"{len(rows)} modules", ["name", "uuid", "state", "runtime", "file"], rows)


module_app = typer.Typer(help="Create and delete modules.", no_args_is_help=True)


def _upload(api: Api, local: Path, path: str) -> dict:
    with open(local, "rb") as f:
        return api("PUT", f"/api/files/{path}", content=f).json()


@module_app.command("create")
def module_create(
    file: Annotated[str, typer.Argument(help="A local .wasm (uploaded first) or a path in the file store.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    name: Annotated[
        str | None, typer.Option("--name", help="Module name (default: the file's stem).")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Runtime name or uuid (default: scheduled).")
    ] = None,
    argv: Annotated[list[str] | None, typer.Option("--argv", help="An argv entry (repeat).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="NAME=value (repeat).")] = None,
    restart: Annotated[str | None, typer.Option("--restart", help="always, on-failure or never.")] = None,
    apis: Annotated[list[str] | None, typer.Option("--api", help="A required api (repeat).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a module (uploading FILE to the file store when it is a local file)."""
    api = Api(orchestrator)
    local = Path(file)
    path = file
    if local.is_file():
        path = local.name
        _upload(api, local, path)
    data: dict[str, Any] = {
        "name": name or Path(path).stem,
        "file": path,
        "args": {"argv": argv or [Path(path).name], "env": env or []},
    }
    if parent:
        data["parent"] = parent
    if restart:
        data["restart"] = restart
    if apis:
        data["apis"] = apis
    module = api("POST", "/api/modules/", json=data).json()
    if as_json:
        typer.echo(json.dumps(module, indent=2))
        return
    where = module["parent"] or "-"
    typer.echo(f"module {module['name']} {module['uuid']}: {module['state']} on {where} ({module['kind']})")


@module_app.command("delete")
def module_delete(
    query: Annotated[str, typer.Argument(help="Module uuid, name or uuid suffix.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Delete a module (its runtime stops it)."""
    module = Api(orchestrator)("DELETE", f"/api/modules/{query}/").json()
    typer.echo(f"module {module['name']} {module['uuid']}: {module['state']}")


files_app = typer.Typer(help="The orchestrator's file store.", no_args_is_help=True)


@files_app.command("put")
def files_put(
    local: Annotated[Path, typer.Argument(help="File to upload.", exists=True, dir_okay=False)],
    path: Annotated[str | None, typer.Argument(help="Path in the store (default: the file's name).")] = None,
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Upload a file."""
    info = _upload(Api(orchestrator), local, path or local.name)
    typer.echo(f"{info['path']}  {format_size(info['size'])}  sha256:{info['sha256']}")


@files_app.command("get")
def files_get(
    path: Annotated[str, typer.Argument(help="Path in the store.")],
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write it (default: its name).")
    ] = None,
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Download a file."""
    target = out or Path(Path(path).name)
    api = Api(orchestrator)
    response = api("GET", f"/api/files/{path}")
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(response.content)
    os.replace(tmp, target)
    typer.echo(f"{target}  {format_size(len(response.content))}")


@files_app.command("ls")
def files_ls(
    prefix: Annotated[str, typer.Argument(help="Only paths starting with this.")] = "",
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """List stored files."""
    listing = Api(orchestrator)("GET", "/api/files/", params={"prefix": prefix}).json()["results"]
    _table(
        f"{len(listing)} files",
        ["path", "size", "sha256", "updated"],
        [[f["path"], format_size(f["size"]), f["sha256"][:16] + "…", f["updated_at"]] for f in listing],
    )


def register(app: typer.Typer) -> None:
    app.command("orchestrator")(orchestrator)
    app.command("runtimes")(runtimes)
    app.command("modules")(modules)
    app.add_typer(module_app, name="module")
    app.add_typer(files_app, name="files")
