"""``modrun call``: load the plugins once, run one function, print its output."""

from __future__ import annotations

import sys

from modrun.errors import CallFailed, FunctionNotFound, InvalidInput
from modrun.node.settings import ServeSettings
from modrun.runtime import Runtime
from modrun.wasm.host import LogLine


def _print_logs(logs: list[LogLine]) -> None:
    for line in logs:
        print(f"[{line.level}] {line.message}", file=sys.stderr)


def run_once(settings: ServeSettings, function: str, data: bytes, *, quiet: bool = False) -> int:
    with Runtime(
        settings.plugins,
        storage_path=settings.storage_path,
        timeout=settings.timeout,
        max_memory=settings.max_memory,
    ) as runtime:
        try:
            result = runtime.invoke(function, data)
        except (FunctionNotFound, InvalidInput) as exc:
            print(f"error: {exc}", file=sys.stderr)
            for name, problem in runtime.load_errors.items():
                print(f"  (plugin {name} failed to load: {problem})", file=sys.stderr)
            return 2
        except CallFailed as exc:
            if not quiet:
                _print_logs(exc.logs)
            print(f"error: {exc.plugin}.{exc.function}: {exc.message}", file=sys.stderr)
            return 1
    if not quiet:
        _print_logs(result.logs)
    out = sys.stdout.buffer
    out.write(result.output)
    if sys.stdout.isatty() and not result.output.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return 0
