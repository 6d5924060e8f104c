"""``modrun secrets set|list|delete``: a deployment's secrets, and ``modrun
nodes list|revoke``: the runtimes that joined the fleet (admins)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from modrun.cli.control import call
from modrun.cli.fleet import DEFAULT_ORCHESTRATOR, OrchestratorOpt, print_table

secrets_app = typer.Typer(
    help="A deployment's secrets: the values its manifest's {{NAME}} placeholders resolve from.",
    no_args_is_help=True,
)
nodes_app = typer.Typer(help="Runtimes that joined the fleet (admins).", no_args_is_help=True)


def _value(assignment: str) -> tuple[str, str]:
    """``NAME=VALUE``, or ``NAME`` with the value from stdin (or a hidden prompt),
    which keeps it out of the shell's history and the process list."""
    name, sep, value = assignment.partition("=")
    if sep:
        return name, value
    if sys.stdin.isatty():
        return name, typer.prompt(f"{name}", hide_input=True)
    return name, sys.stdin.read().rstrip("\n")


@secrets_app.command("set")
def secrets_set(
    artifact: Annotated[str, typer.Argument(help="The deployment's artifact name.")],
    assignment: Annotated[str, typer.Argument(help="NAME=VALUE, or NAME to read the value from stdin.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Store a secret for a deployment; its modules read it when they next start."""
    name, value = _value(assignment)
    result = call(orchestrator, lambda client: client.set_secret(client.artifact_id(artifact), name, value))
    typer.echo(f"{artifact}: secret {name} {'stored' if result['created'] else 'replaced'}; {result['note']}")


@secrets_app.command("list")
def secrets_list(
    artifact: Annotated[str, typer.Argument(help="The deployment's artifact name.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """The names of a deployment's secrets (values are never shown)."""
    found = call(orchestrator, lambda client: client.secrets(client.artifact_id(artifact)))
    rows = [[s["name"], s["updated_at"], s["updated_by"]] for s in found]
    print_table(f"{len(rows)} secrets of {artifact}", ["name", "updated", "by"], rows)


@secrets_app.command("delete")
def secrets_delete(
    artifact: Annotated[str, typer.Argument(help="The deployment's artifact name.")],
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Delete a deployment's secret."""
    call(orchestrator, lambda client: client.delete_secret(client.artifact_id(artifact), name))
    typer.echo(f"{artifact}: secret {name} deleted")


@nodes_app.command("list")
def nodes_list(orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR) -> None:
    """Every runtime that exchanged a join token for its credential."""
    found = call(orchestrator, lambda client: client.nodes())
    rows = [
        [n["runtime"], n["name"], n["created_at"], n["last_used_at"] or "-", n["revoked_at"] or "-"]
        for n in found
    ]
    print_table(f"{len(rows)} joined runtimes", ["runtime", "name", "joined", "last used", "revoked"], rows)


@nodes_app.command("revoke")
def nodes_revoke(
    runtime: Annotated[str, typer.Argument(help="The runtime's uuid (modrun nodes list).")],
    orchestrator: OrchestratorOpt = DEFAULT_ORCHESTRATOR,
) -> None:
    """Cut a runtime off: its credential is refused everywhere, at once."""
    call(orchestrator, lambda client: client.revoke_node(runtime))
    typer.echo(f"runtime {runtime} revoked; it can no longer reach the fleet")
