"""``modrun call``: load the plugins once, run one function, print its output."""

from __future__ import annotations

import sys

from modrun.api.rest import prepare_input
from modrun.config.settings import ServeSettings
from modrun.errors import CallFailed, FunctionNotFound, InvalidInput
from modrun.hostfns.base import LogLine
from modrun.plugins.invoker import Invoker
from modrun.services import Node


def _print_logs(logs: list[LogLine]) -> None:
    for line in logs:
        print(f"[{line.level}] {line.message}", file=sys.stderr)


def run_once(settings: ServeSettings, function: str, data: bytes, *, quiet: bool = False) -> int:
    node = Node(settings)
    node.reload()
    catalog = node.manager.catalog
    try:
        plugin, fn = catalog.resolve(function)
        data = prepare_input(fn, data, plugin.schema.types)
    except (FunctionNotFound, InvalidInput) as exc:
        print(f"error: {exc}", file=sys.stderr)
        for name, problem in node.load_errors().items():
            print(f"  (plugin {name} failed to load: {problem})", file=sys.stderr)
        return 2
    invoker: Invoker = node.invoker
    try:
        result = invoker.call(plugin, fn, data)
    except CallFailed as exc:
        if not quiet:
            _print_logs(exc.logs)
        print(f"error: {fn.plugin}.{fn.name}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        invoker.shutdown()
    if not quiet:
        _print_logs(result.logs)
    out = sys.stdout.buffer
    out.write(result.output)
    if sys.stdout.isatty() and not result.output.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return 0
