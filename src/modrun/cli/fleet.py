"""The fleet's client commands: ``runtimes``, ``modules``, ``module create|delete``, ``files``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from modrun.cli.orchestrator import gateway, orchestrator
from modrun.config.units import format_size
from modrun.http.bases import Bases

DEFAULT_ORCHESTRATOR = "http://127.0.0.1:8000"


OrchestratorOpt = Annotated[
    str,
    typer.Option(
        "--orchestrator",
        envvar="MODRUN_ORCHESTRATOR",
        help="Orchestrator URL (several of one fleet: comma-separated, tried in turn).",
    ),
]


class Api:
    """The fleet API with the credentials at hand (a secured fleet's routes need them)."""

    def __init__(self, url: str) -> None:
        from modrun.cli.credentials import client_for

        self.url = url.rstrip("/")
        self.bases = Bases(self.url)  # "http://a:8000,http://b:8000": any orchestrator of the fleet
        with client_for(self.url) as client:
            headers = client.auth_headers()
        self.http = httpx.Client(timeout=60, headers=headers)

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.bases.request(lambda base: self.http.request(method, base + path, **kwargs))
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


def every(api: Api, path: str, params: dict | None = None) -> list[dict]:
    """All entries of a paged list route (``{count, start, results}``, the
    number there are in ``X-Total-Count``)."""
    found: list[dict] = []
    while True:
        answer = api("GET", path, params={**(params or {}), "start": len(found)})
        page = answer.json()["results"]
        found += page
        if not page or len(found) >= int(answer.headers.get("x-total-count", len(found))):
            return found


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
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
    listing = every(api, "/api/runtimes/", {"status": status})
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
    print_table(
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
    listing = every(api, "/api/modules/", params)
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    names = {r["uuid"]: r["name"] for r in every(api, "/api/runtimes/", {"status": "all"})}
    rows = [
        [m["name"], m["uuid"], m["status"], names.get(m["parent"], m["parent"]), m["file"]] for m in listing
    ]
    print_table(f"{len(rows)} modules", ["name", "uuid", "state", "runtime", "file"], rows)


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
    listing = every(Api(orchestrator), "/api/files/", {"prefix": prefix})
    print_table(
        f"{len(listing)} files",
        ["path", "size", "sha256", "updated"],
        [[f["path"], format_size(f["size"]), f["sha256"][:16] + "…", f["updated_at"]] for f in listing],
    )


def register(app: typer.Typer) -> None:
    app.command("orchestrator")(orchestrator)
    app.command("gateway")(gateway)
    app.command("runtimes")(runtimes)
    app.command("modules")(modules)
    app.add_typer(module_app, name="module")
    app.add_typer(files_app, name="files")
