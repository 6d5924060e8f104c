"""``modrun`` commands: ``serve`` a plugins directory, ``call`` one function."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modrun.api.admission import DEFAULT_MAX_QUEUE, DEFAULT_MAX_RUNNING, AdmissionLimits
from modrun.api.graphql_limits import DEFAULT_MAX_CALLS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FIELDS, GraphQLLimits
from modrun.cli.flags import normalize
from modrun.config.defaults import DEFAULT_MAX_INPUT, DEFAULT_PORT, default_storage_path
from modrun.config.units import format_duration, format_size, parse_duration, parse_size
from modrun.errors import ConfigError, ModrunError
from modrun.node.settings import ServeSettings
from modrun.version import __version__
from modrun.wasm.limits import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT

app = typer.Typer(
    name="modrun",
    help="Run WebAssembly functions (Extism plugins) and AI models as one API.",
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _labels(pairs: list[str]) -> dict[str, str]:
    from modrun.fleet.labels import BadLabel, parse

    try:
        return parse(pairs)
    except BadLabel as exc:
        raise typer.BadParameter(str(exc), param_hint="--label") from None


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _size(value: str) -> int:
    try:
        return parse_size(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


PluginsOpt = Annotated[
    Path,
    typer.Option(
        "--plugins",
        "--plugin",
        "--appPath",
        envvar="MODRUN_PLUGINS",
        help="Plugins directory: .wasm files, a plugin source root with build/*.wasm, or a parent of roots.",
    ),
]
StorageOpt = Annotated[
    Path,
    typer.Option(
        "--storagePath",
        "--storage-path",
        envvar="MODRUN_STORAGE_PATH",
        help="Local storage (compiled-module cache). Default ~/.modrun.",
    ),
]
TimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout",
        envvar="MODRUN_TIMEOUT",
        help="Per-call time limit (Go duration).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Metadata database URL (postgresql://...); default: SQLite in --storagePath. "
        "Env: MODRUN_DB or HYPERMODE_METADATA_DB.",
    ),
]
MemoryOpt = Annotated[
    str,
    typer.Option(
        "--maxMemory",
        "--max-memory",
        envvar="MODRUN_MAX_MEMORY",
        help="Per-instance linear memory limit, e.g. 256MiB.",
    ),
]


@app.command()
def serve(
    plugins: PluginsOpt = Path("."),
    port: Annotated[int, typer.Option("--port", envvar="MODRUN_PORT", help="HTTP port.")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option("--host", envvar="MODRUN_HOST", help="Interface to listen on (0.0.0.0 for all).")
    ] = "127.0.0.1",
    storage_path: StorageOpt = default_storage_path(),
    refresh: Annotated[
        str,
        typer.Option(
            "--refresh",
            envvar="MODRUN_REFRESH",
            help="How often to look for plugin and manifest changes (Go duration: 5s, 500ms).",
        ),
    ] = "5s",
    noreload: Annotated[bool, typer.Option("--noreload", help="Disable hot reload.")] = False,
    jsonlogs: Annotated[
        bool, typer.Option("--jsonlogs", envvar="MODRUN_JSONLOGS", help="Log one JSON object per line.")
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--logLevel",
            "--log-level",
            envvar="MODRUN_LOG_LEVEL",
            help="debug, info, warning or error; also the level plugins see.",
        ),
    ] = "info",
    timeout: TimeoutOpt = format_duration(DEFAULT_TIMEOUT),
    max_memory: MemoryOpt = format_size(DEFAULT_MAX_MEMORY),
    max_input: Annotated[
        str,
        typer.Option(
            "--maxInput",
            "--max-input",
            envvar="MODRUN_MAX_INPUT",
            help="Largest request body accepted by POST /functions.",
        ),
    ] = format_size(DEFAULT_MAX_INPUT),
    workers: Annotated[
        int, typer.Option("--workers", envvar="MODRUN_WORKERS", help="Threads that run function calls.")
    ] = 32,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            envvar="MODRUN_PROCESSES",
            min=1,
            help="Node processes sharing the port (default: one per core; 1 with --orchestrator).",
        ),
    ] = None,
    max_running: Annotated[
        int, typer.Option("--maxRunning", help="Calls that run at once; more wait in the queue.")
    ] = DEFAULT_MAX_RUNNING,
    max_queue: Annotated[
        int, typer.Option("--maxQueue", help="Calls that may wait; beyond it the node answers 503 at once.")
    ] = DEFAULT_MAX_QUEUE,
    max_wait: Annotated[
        str, typer.Option("--maxWait", help="Longest a call waits for a place before a 503 (Go duration).")
    ] = "500ms",
    graphql_max_depth: Annotated[
        int, typer.Option("--graphqlMaxDepth", help="Deepest selection a GraphQL request may nest.")
    ] = DEFAULT_MAX_DEPTH,
    graphql_max_fields: Annotated[
        int,
        typer.Option(
            "--graphqlMaxFields", help="Most fields (aliases included) one GraphQL request selects."
        ),
    ] = DEFAULT_MAX_FIELDS,
    graphql_max_calls: Annotated[
        int,
        typer.Option(
            "--graphqlMaxCalls", help="Most function calls one GraphQL request or Lambda batch makes."
        ),
    ] = DEFAULT_MAX_CALLS,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxyHeaders",
            envvar="MODRUN_PROXY_HEADERS",
            help="Trust X-Forwarded-For/-Proto (only behind a reverse proxy).",
        ),
    ] = False,
    model_host: Annotated[
        str | None,
        typer.Option(
            "--modelHost",
            envvar="MODRUN_MODEL_HOST",
            help="Base DNS of KServe model hosts: kserve models are reached at "
            "http://<model>.<modelHost>/v1/models/<model>:predict.",
        ),
    ] = None,
    dgraph: Annotated[
        str,
        typer.Option(
            "--dgraph",
            envvar="MODRUN_DGRAPH",
            help="Dgraph Alpha HTTP URL for the default 'dgraph' connection.",
        ),
    ] = "http://localhost:8080",
    db: DbOpt = None,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Migrate the metadata database's schema if it is behind.")
    ] = False,
    no_history: Annotated[bool, typer.Option("--noHistory", help="Do not record model inferences.")] = False,
    use_aws_storage: Annotated[
        bool, typer.Option("--useAwsStorage", help="Load plugins and manifest from S3 (see --s3bucket).")
    ] = False,
    s3bucket: Annotated[
        str | None,
        typer.Option(
            "--s3bucket",
            envvar="MODRUN_S3_BUCKET",
            help="S3 bucket holding the app (implies --useAwsStorage).",
        ),
    ] = None,
    s3path: Annotated[
        str | None,
        typer.Option(
            "--s3path",
            envvar="MODRUN_S3_PATH",
            help="Folder in the bucket; with --s3bucket alone, --plugins names it (seed 001).",
        ),
    ] = None,
    use_aws_secrets: Annotated[
        bool, typer.Option("--useAwsSecrets", help="Also read secrets from AWS Secrets Manager.")
    ] = False,
    allow_runtime_changes: Annotated[
        bool,
        typer.Option(
            "--allowRuntimeChanges",
            "--allow-runtime-changes",
            envvar="ALLOW_MODEL_SERVER_RUNTIME_CHANGES",
            help="Allow creating, changing and deleting registry models at run time.",
        ),
    ] = False,
    orchestrator: Annotated[
        str | None,
        typer.Option(
            "--orchestrator",
            envvar="MODRUN_ORCHESTRATOR",
            help="Join this orchestrator's fleet (http://HOST:8000): register, keep alive, run its modules.",
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt", envvar="MODRUN_MQTT", help="Broker to use when joining (default: the orchestrator's)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Runtime name in the fleet (default HOSTNAME-PORT).")
    ] = None,
    apis: Annotated[
        str | None,
        typer.Option(
            "--apis", help="APIs this runtime offers, comma-separated (default wasm,wasi,extism,channels)."
        ),
    ] = None,
    max_modules: Annotated[
        int, typer.Option("--maxModules", help="Most modules this runtime takes (0 = unlimited).")
    ] = 0,
    advertise: Annotated[
        str | None, typer.Option("--advertise", help="URL the fleet gateway uses to reach this node.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MODRUN_JOIN_TOKEN",
            help="Join token of a secured fleet (an admin makes one: modrun node-token).",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="A node label, KEY=VALUE (repeat); deployments can require labels."),
    ] = None,
) -> None:
    """Serve every function of every plugin over GraphQL (/graphql) and REST (/functions)."""
    from modrun.logs import setup_logging
    from modrun.node.service import Node

    settings = ServeSettings(
        plugins=plugins.expanduser().absolute(),  # a symlink swapped to a new release is followed
        host=host,
        port=port,
        storage_path=storage_path.expanduser(),
        refresh=_duration(refresh),
        noreload=noreload,
        jsonlogs=jsonlogs,
        log_level=log_level,
        timeout=_duration(timeout),
        max_memory=_size(max_memory),
        max_input=_size(max_input),
        graphql_limits=GraphQLLimits(graphql_max_depth, graphql_max_fields, graphql_max_calls),
        admission=AdmissionLimits(max_running, max_queue, _duration(max_wait)),
        workers=workers,
        proxy_headers=proxy_headers,
        model_host=model_host,
        dgraph=dgraph,
        db=db,
        migrate=migrate,
        history=not no_history,
        s3_bucket=s3bucket,
        s3_path=s3path
        if s3path is not None
        else (str(plugins) if s3bucket and str(plugins) != "." else None),
        use_aws_storage=use_aws_storage or bool(s3bucket),
        use_aws_secrets=use_aws_secrets,
        allow_runtime_changes=allow_runtime_changes,
        orchestrator=orchestrator,
        mqtt=mqtt,
        runtime_name=name,
        apis=[a.strip() for a in apis.split(",") if a.strip()] if apis else None,
        max_modules=max_modules,
        advertise_url=advertise,
        join_token=token,
        labels=_labels(label or []),
        processes=_processes(processes, orchestrator),
    )
    setup_logging(jsonlogs, log_level)
    try:
        if settings.processes > 1:
            from modrun.processes.supervisor import Supervisor

            raise typer.Exit(Supervisor(settings).run())
        Node(settings).serve()  # the schema check and the first load may refuse to start
    except ModrunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _processes(requested: int | None, orchestrator: str | None) -> int:
    """--processes: one per usable core by default; a fleet node is one process
    (its agent holds the node's place in the fleet)."""
    if orchestrator:
        if requested not in (None, 1):
            raise typer.BadParameter(
                "a node that joins a fleet runs as one process", param_hint="--processes"
            )
        return 1
    if requested is not None:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@app.command()
def call(
    function: Annotated[str, typer.Argument(help="Function name, or plugin/function.")],
    input: Annotated[str | None, typer.Argument(help="Input (text or JSON); '-' reads stdin.")] = None,
    plugins: PluginsOpt = Path("."),
    input_file: Annotated[
        Path | None, typer.Option("--input-file", "-f", help="Read the input from this file.")
    ] = None,
    storage_path: StorageOpt = default_storage_path(),
    timeout: TimeoutOpt = format_duration(DEFAULT_TIMEOUT),
    max_memory: MemoryOpt = format_size(DEFAULT_MAX_MEMORY),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the function's logs.")] = False,
) -> None:
    """Run one function without a server and print its output.

    Exits 0 on success, 1 when the function fails, 2 when it cannot be found or
    the input is invalid. The function's log lines go to stderr.
    """
    from modrun.cli.run import run_once

    if input_file is not None:
        data = input_file.read_bytes()
    elif input == "-":
        data = sys.stdin.buffer.read()
    else:
        data = (input or "").encode()
    settings = ServeSettings(
        plugins=plugins.expanduser().absolute(),  # a symlink swapped to a new release is followed
        storage_path=storage_path.expanduser(),
        timeout=_duration(timeout),
        max_memory=_size(max_memory),
    )
    raise typer.Exit(run_once(settings, function, data, quiet=quiet))


migrate_app = typer.Typer(help="Metadata database schema migrations.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")


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


@app.command()
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


@app.command()
def repl(
    plugins: PluginsOpt = Path("."),
    url: Annotated[
        str | None, typer.Option("--url", help="Talk to a running node (e.g. http://127.0.0.1:8686) instead.")
    ] = None,
    storage_path: StorageOpt = default_storage_path(),
    db: DbOpt = None,
    allow_runtime_changes: Annotated[
        bool,
        typer.Option(
            "--allow-runtime-changes",
            "--allowRuntimeChanges",
            envvar="ALLOW_MODEL_SERVER_RUNTIME_CHANGES",
            help="Allow model-create, model-modify and model-delete.",
        ),
    ] = False,
) -> None:
    """Interactive console for models and functions (MER's commands: model-list,
    model-info, model-ping, model-execute, model-continuous-feedback, ...).

    Works on a local app directory (--plugins) or a running node (--url).
    """
    from modrun.repl.backends import HttpBackend, LocalBackend
    from modrun.repl.console import Repl, lines_from_prompt

    try:
        if url:
            backend: Any = HttpBackend(url)
        else:
            from modrun.runtime import Runtime

            runtime = Runtime(plugins, storage_path=storage_path.expanduser(), db=db)
            backend = LocalBackend(runtime, allow_runtime_changes)
    except ModrunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    console = Repl(backend)
    try:
        if sys.stdin.isatty():
            lines: Any = lines_from_prompt(console, storage_path.expanduser() / "repl_history")
        else:  # a script piped in
            lines = iter(sys.stdin.readline, "")
        for line in lines:
            if not console.run_line(line):
                break
    finally:
        backend.close()


from modrun.cli.control import register as _register_control  # noqa: E402
from modrun.cli.fleet import register as _register_fleet  # noqa: E402

_register_fleet(app)
_register_control(app)


@app.command()
def version() -> None:
    """Print the modrun version."""
    typer.echo(f"modrun {__version__}")


def _option_names() -> tuple[set[str], set[str]]:
    longs: set[str] = set()
    bools: set[str] = set()
    group = typer.main.get_command(app)
    for command in getattr(group, "commands", {}).values():
        for param in command.params:
            names = [n for n in getattr(param, "opts", ()) if n.startswith("--")]
            longs.update(names)
            if getattr(param, "is_flag", False):
                bools.update(names)
    return longs, bools


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    longs, bools = _option_names()
    args = normalize(args, longs, bools)
    if args and args[0].startswith("-") and args[0] not in ("-h", "--help", "--version"):
        args.insert(0, "serve")  # the seeds start the runtime with flags only
    if args[:1] == ["--version"]:
        args = ["version"]
    app(args=args, prog_name="modrun")
