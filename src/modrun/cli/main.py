"""The ``modrun`` command: its command groups, registered in the order ``--help`` lists them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modrun.cli.control import register as register_control
from modrun.cli.database import inferences, migrate_app
from modrun.cli.flags import normalize
from modrun.cli.fleet import register as register_fleet
from modrun.cli.options import (
    DbOpt,
    MemoryOpt,
    PluginsOpt,
    StorageOpt,
    TimeoutOpt,
    parse_duration_option,
    parse_size_option,
)
from modrun.cli.secrets import nodes_app, secrets_app
from modrun.cli.serve import serve
from modrun.config.defaults import default_storage_path
from modrun.config.units import format_duration, format_size
from modrun.errors import ModrunError
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


app.command()(serve)


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
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Print the output as the function emits it (streaming functions)."),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Call it on a running node or gateway (e.g. http://127.0.0.1:8686) instead."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="MODRUN_API_KEY", help="X-API-Key for --url.")
    ] = None,
) -> None:
    """Run one function without a server and print its output.

    Exits 0 on success, 1 when the function fails, 2 when it cannot be found or
    the input is invalid. The function's log lines go to stderr. With
    ``--url`` the call goes to a running node or gateway over HTTP (streamed
    as server-sent events with ``--stream``).
    """
    from modrun.cli.run import call_remote, run_once

    if input_file is not None:
        data = input_file.read_bytes()
    elif input == "-":
        data = sys.stdin.buffer.read()
    else:
        data = (input or "").encode()
    if url is not None:
        raise typer.Exit(call_remote(url, function, data, stream=stream, api_key=api_key, quiet=quiet))
    settings = ServeSettings(
        plugins=plugins.expanduser().absolute(),  # a symlink swapped to a new release is followed
        storage_path=storage_path.expanduser(),
        timeout=parse_duration_option(timeout),
        max_memory=parse_size_option(max_memory),
    )
    raise typer.Exit(run_once(settings, function, data, quiet=quiet, stream=stream))


app.add_typer(migrate_app, name="migrate")
app.command()(inferences)


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


register_fleet(app)
register_control(app)
app.add_typer(secrets_app, name="secrets")
app.add_typer(nodes_app, name="nodes")


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
    try:
        code = app(args=args, prog_name="modrun", standalone_mode=False)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as exc:
        # a bad flag value, an unknown flag, a missing argument (usage errors exit 2): one line
        message = getattr(exc, "format_message", None)
        if getattr(exc, "exit_code", None) != 2 or message is None:
            raise
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        print(f"error: {message()}{where}", file=sys.stderr)
        sys.exit(2)
    if isinstance(code, int):  # typer.Exit, --help
        sys.exit(code)
