"""Option types and value parsers the commands share (Go durations and sizes, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modrun.config.units import parse_duration, parse_size
from modrun.errors import ConfigError


def parse_labels(pairs: list[str]) -> dict[str, str]:
    from modrun.fleet.labels import BadLabel, parse

    try:
        return parse(pairs)
    except BadLabel as exc:
        raise typer.BadParameter(str(exc), param_hint="--label") from None


def parse_duration_option(value: str) -> float:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_size_option(value: str) -> int:
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
