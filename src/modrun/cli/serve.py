"""``modrun serve``: a runtime node on the plugins directory (and, with ``--orchestrator``, in a fleet)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from modrun.api.admission import DEFAULT_MAX_QUEUE, DEFAULT_MAX_RUNNING, DEFAULT_MAX_STREAMS, AdmissionLimits
from modrun.api.graphql_limits import DEFAULT_MAX_CALLS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FIELDS, GraphQLLimits
from modrun.cli.options import (
    DbOpt,
    MemoryOpt,
    PluginsOpt,
    StorageOpt,
    TimeoutOpt,
    parse_duration_option,
    parse_labels,
    parse_size_option,
)
from modrun.config.defaults import DEFAULT_MAX_INPUT, DEFAULT_PORT, default_storage_path
from modrun.config.units import format_duration, format_size
from modrun.errors import ModrunError
from modrun.node.settings import ServeSettings
from modrun.wasm.limits import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT


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
    max_streams: Annotated[
        int,
        typer.Option(
            "--maxStreams", help="Streaming calls (SSE, NDJSON) open at once; beyond it the node answers 503."
        ),
    ] = DEFAULT_MAX_STREAMS,
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
    secrets_file: Annotated[
        Path | None,
        typer.Option(
            "--secretsFile",
            help="A JSON object of secret values (variable name to value), read before the .env files.",
        ),
    ] = None,
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
        refresh=parse_duration_option(refresh),
        noreload=noreload,
        jsonlogs=jsonlogs,
        log_level=log_level,
        timeout=parse_duration_option(timeout),
        max_memory=parse_size_option(max_memory),
        max_input=parse_size_option(max_input),
        graphql_limits=GraphQLLimits(graphql_max_depth, graphql_max_fields, graphql_max_calls),
        admission=AdmissionLimits(max_running, max_queue, parse_duration_option(max_wait)),
        max_streams=max_streams,
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
        secrets_file=secrets_file,
        allow_runtime_changes=allow_runtime_changes,
        orchestrator=orchestrator,
        mqtt=mqtt,
        runtime_name=name,
        apis=[a.strip() for a in apis.split(",") if a.strip()] if apis else None,
        max_modules=max_modules,
        advertise_url=advertise,
        join_token=token,
        labels=parse_labels(label or []),
        processes=_processes(processes, orchestrator),
    )
    setup_logging(jsonlogs, log_level)
    if token and any(a == "--token" or a.startswith("--token=") for a in sys.argv):
        logging.getLogger("modrun").warning(
            "--token on the command line is readable by every local user (/proc/PID/cmdline); "
            "give it as MODRUN_JOIN_TOKEN instead"
        )
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
