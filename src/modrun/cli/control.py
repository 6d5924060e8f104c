"""Control-plane commands: ``login``, ``push``, ``keys create|list|delete``.

``modrun login`` keeps the tokens per orchestrator in
``<storagePath>/credentials.json`` (mode 0600); ``MODRUN_TOKEN`` or
``MODRUN_API_KEY`` take their place where a file is not wanted (CI).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from modrun.cli.credentials import client_for, save_login
from modrun.cli.fleet import DEFAULT_ORCHESTRATOR, OrchestratorOpt, print_table
from modrun.client import Client, ClientError

T = TypeVar("T")


def fail(exc: ClientError) -> NoReturn:
    typer.echo(f"error: {exc.message} ({exc.status})", err=True)
    raise typer.Exit(1)


def call(orchestrator: str, action: Callable[[Client], T]) -> T:
    """``action`` with a client of ``orchestrator``; a refusal ends the command (exit 1)."""
    with client_for(orchestrator) as client:
        try:
            return action(client)
        except ClientError as exc:
            fail(exc)


def login(
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    username: Annotated[str, typer.Option("--username", "-u", prompt=True, help="Username or email.")] = "",
    password: Annotated[
        str,
        typer.Option("--password", prompt=True, hide_input=True, envvar="MODRUN_PASSWORD", help="Password."),
    ] = "",
) -> None:
    """Log in to an orchestrator and keep the tokens for the other commands."""
    with Client(orchestrator) as client:
        try:
            tokens = client.login(username, password)
        except ClientError as exc:
            fail(exc)
        save_login(orchestrator, tokens)
        info = client.info()
    typer.echo(f"logged in to {orchestrator} as {info['username']}{' (admin)' if info['admin'] else ''}")


def push(
    path: Annotated[
        Path, typer.Argument(help="A .wasm plugin, a zip/tar bundle, or an app directory.", exists=True)
    ],
    name: Annotated[str, typer.Option("--name", help="Artifact name (a new version when it exists).")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    type_: Annotated[
        str | None, typer.Option("--type", help="plugin or bundle (default: from the path).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Push an artifact in chunks, with a progress bar."""
    with (
        client_for(orchestrator) as client,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=as_json,
        ) as progress,
    ):
        task = progress.add_task(f"pushing {name}", total=None)
        try:
            result = client.push(
                path,
                name,
                type_,
                progress=lambda sent, total: progress.update(task, completed=sent, total=total),
            )
        except ClientError as exc:
            fail(exc)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"{name} version {result['version']}  {result['artifact_id']}  sha256:{result['sha256']}")


keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", help="An artifact id (repeat).")] = None,
    all_artifacts: Annotated[bool, typer.Option("--all", help="Every artifact you can reach.")] = False,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="invoke, read, deploy, manage (repeat).")
    ] = None,
    expires: Annotated[str, typer.Option("--expires", help="30d, 12h, or an RFC 3339 time.")] = "30d",
) -> None:
    """Create an API key; it is printed once."""
    with client_for(orchestrator) as client:
        try:
            created = client.create_key(name, artifact or [], all_artifacts, scope or ["invoke"], expires)
        except ClientError as exc:
            fail(exc)
    typer.echo(created["api_key"])
    typer.echo(f"(key {created['id']}: shown once, keep it now)", err=True)


@keys_app.command("list")
def keys_list(orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR) -> None:
    """Your API keys (never the keys themselves)."""
    with client_for(orchestrator) as client:
        try:
            keys = client.api_keys()
        except ClientError as exc:
            fail(exc)
    rows = [
        [
            k["id"],
            k["name"],
            k["prefix"] + "…",
            ",".join(k["scopes"]),
            "all" if k["all_artifacts"] else ",".join(k["artifact_ids"]),
            k["expires_at"],
            k["last_used_at"] or "never",
        ]
        for k in keys
    ]
    print_table(
        f"{len(rows)} keys", ["id", "name", "prefix", "scopes", "artifacts", "expires", "last used"], rows
    )


@keys_app.command("delete")
def keys_delete(
    key_id: Annotated[str, typer.Argument()], orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR
) -> None:
    """Delete an API key (it stops working at once)."""
    with client_for(orchestrator) as client:
        try:
            client.delete_key(key_id)
        except ClientError as exc:
            fail(exc)
    typer.echo(f"deleted key {key_id}")


def _target(spec: str) -> tuple[str, str | None]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""
    if "@" in spec:
        name, _, alias = spec.partition("@")
        return name, alias
    name, _, version = spec.partition(":")
    return name, version or None


def deploy(
    spec: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS (default: latest).")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    replicas: Annotated[
        str, typer.Option("--replicas", help="How many nodes run it, or 'daemon' (all).")
    ] = "1",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it is complete (or failed).")] = False,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Only on nodes with this label, KEY=VALUE (repeat for several)."),
    ] = None,
) -> None:
    """Deploy an artifact version onto the fleet (a rolling update when it is deployed)."""
    from modrun.fleet.labels import BadLabel, parse

    name, version = _target(spec)
    count: int | str = replicas if replicas == "daemon" else int(replicas)
    try:
        labels = parse(label or [])
    except BadLabel as exc:
        raise typer.BadParameter(str(exc), param_hint="--label") from None
    with client_for(orchestrator) as client:
        try:
            artifact = client.artifact_id(name)
            result = client.deploy(artifact, version, count, labels)
            typer.echo(f"{name}: version {result['version']} on {result['replicas']} replicas")
            while wait:
                state = client.deployment(artifact)
                if state["status"] in ("complete", "failed") and state["version"] == result["version"]:
                    typer.echo(f"{name}: {state['status']}" + "".join(f"\n  {e}" for e in state["errors"]))
                    raise typer.Exit(0 if state["status"] == "complete" else 1)
                time.sleep(0.5)
        except ClientError as exc:
            fail(exc)


def deployments(orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR) -> None:
    """Deployments you can see: status, version, replicas per node."""
    with client_for(orchestrator) as client:
        try:
            found = client.deployments()
            names = {a["id"]: a["name"] for a in client.artifacts()}
        except ClientError as exc:
            fail(exc)
    rows = [
        [
            names.get(d["artifact_id"], d["artifact_id"]),
            d["status"],
            d["version"],
            d["replicas_wanted"],
            ", ".join(f"{r['node'] or '-'} v{r['version']} {r['state']}" for r in d["replicas"]),
            d["deployed_by"],
        ]
        for d in found
    ]
    print_table(
        f"{len(rows)} deployments", ["artifact", "status", "version", "replicas", "where", "by"], rows
    )


def rollback(
    name: Annotated[str, typer.Argument(help="Artifact name.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Go back to the last version of the deployment that was complete."""
    result = call(orchestrator, lambda client: client.rollback(client.artifact_id(name)))
    typer.echo(f"{name}: rolling back to version {result['version']}")


def node_token(
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
    name: Annotated[str, typer.Option("--name", help="What the token is for (shown in lists).")] = "node",
    expires: Annotated[
        str | None, typer.Option("--exp", help="Expiry, RFC 3339 (default: until deleted).")
    ] = None,
) -> None:
    """Make a join token (admins): give it to nodes as --token or MODRUN_JOIN_TOKEN."""
    made = call(orchestrator, lambda client: client.create_node_token(name, expires))
    typer.echo(made["token"])
    typer.echo(f"join token {made['id']}: shown once; delete it with the API to stop new joins", err=True)


def quota(orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR) -> None:
    """Your quotas and your teams': limits and what is used."""
    reports = call(orchestrator, lambda client: client.quota())

    def cell(report: dict, field: str) -> str:
        limit = report["limits"][field]
        return f"{report['usage'][field]} / {'-' if limit is None else limit}"

    rows = [
        [r["subject"], cell(r, "artifact_bytes"), cell(r, "deployments"), cell(r, "replicas")]
        for r in reports
    ]
    print_table("quotas (used / limit)", ["subject", "artifact bytes", "deployments", "replicas"], rows)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("push")(push)
    app.command("deploy")(deploy)
    app.command("deployments")(deployments)
    app.command("rollback")(rollback)
    app.command("node-token")(node_token)
    app.command("quota")(quota)
    app.add_typer(keys_app, name="keys")
