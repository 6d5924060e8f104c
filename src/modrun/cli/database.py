"""``modrun migrate ...`` (the metadata schema) and ``modrun inferences`` (the history)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modrun.cli.options import DbOpt, StorageOpt
from modrun.config.defaults import default_storage_path
from modrun.errors import ModrunError

migrate_app = typer.Typer(help="Metadata database schema migrations.", no_args_is_help=True)


def _engine(db: str | None, storage_path: Path):
    from modrun.db.engine import database_url, make_engine

    url = database_url(db, storage_path.expanduser())
    return url, make_engine(url)


def _migrate(direction: str, db: str | None, storage_path: Path, revision: str) -> None:
    """Move the schema to ``revision`` and say from where to where."""
    from modrun.db import migrate
    from modrun.db.engine import display

    url, engine = _engine(db, storage_path)
    before = migrate.state(engine)
    getattr(migrate, direction)(engine, revision)
    after = migrate.state(engine)
    typer.echo(f"{display(url)}: {before.current or 'empty'} -> {after.current or 'empty'}")


@migrate_app.command("up")
def migrate_up(
    db: DbOpt = None,
    storage_path: StorageOpt = default_storage_path(),
    revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: all)."""
    _migrate("upgrade", db, storage_path, revision)


@migrate_app.command("down")
def migrate_down(
    db: DbOpt = None,
    storage_path: StorageOpt = default_storage_path(),
    revision: Annotated[str, typer.Option("--revision", help="Target revision; 'base' removes all.")] = "-1",
) -> None:
    """Revert migrations (default: the latest one)."""
    _migrate("downgrade", db, storage_path, revision)


@migrate_app.command("status")
def migrate_status(db: DbOpt = None, storage_path: StorageOpt = default_storage_path()) -> None:
    """Show the database's revision and what is pending. Exits 1 when not up to date."""
    from modrun.db import migrate
    from modrun.db.engine import display

    url, engine = _engine(db, storage_path)
    s = migrate.state(engine)
    typer.echo(f"database: {display(url)}")
    typer.echo(f"current:  {s.current or 'none'}")
    typer.echo(f"latest:   {s.head}")
    if not s.known:
        typer.echo("status:   NEWER than this modrun")
    elif s.up_to_date:
        typer.echo("status:   up to date")
    else:
        typer.echo(f"pending:  {', '.join(s.pending())}")
    raise typer.Exit(0 if s.up_to_date else 1)


@migrate_app.command("new")
def migrate_new(message: Annotated[str, typer.Argument(help="What the migration does.")]) -> None:
    """Create the next numbered migration script (for modrun developers)."""
    from modrun.db import migrate

    typer.echo(str(migrate.new_revision(message)))


def inferences(
    db: DbOpt = None,
    storage_path: StorageOpt = default_storage_path(),
    model: Annotated[str | None, typer.Option("--model")] = None,
    function: Annotated[str | None, typer.Option("--function")] = None,
    plugin: Annotated[str | None, typer.Option("--plugin")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ok or error")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 or Unix seconds")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601 or Unix seconds")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="nextCursor of a previous page")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List recorded model inferences, newest first (the same as GET /inferences)."""
    import json as jsonlib

    from rich.console import Console
    from rich.table import Table

    from modrun.db.queries import InferenceFilter, list_inferences, parse_time

    _url, engine = _engine(db, storage_path)
    try:
        filters = InferenceFilter(
            model=model,
            function=function,
            plugin=plugin,
            status=status,
            since=parse_time(since),
            until=parse_time(until),
        )
        rows, next_cursor = list_inferences(engine, filters, limit, cursor)
    except ModrunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(jsonlib.dumps({"inferences": rows, "nextCursor": next_cursor}, indent=2))
        return
    table = Table(title=f"{len(rows)} inferences")
    for column in ("started", "model", "plugin", "function", "ms", "status", "input", "output"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r["startedAt"],
            r["model"],
            r["plugin"] or "",
            r["function"] or "",
            str(r["durationMs"]),
            r["status"],
            _short(r["input"]),
            _short(r["output"] or r["error"]),
        )
    Console().print(table)
    if next_cursor:
        typer.echo(f"more: --cursor {next_cursor}")


def _short(value: object, width: int = 60) -> str:
    import json as jsonlib

    text = value if isinstance(value, str) else jsonlib.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"
