"""Output of plugin modules: their calls' log lines and errors on the module's
output topics, like a WASI module's stdout and stderr."""

from __future__ import annotations

from collections.abc import Callable

from modrun.agent.modules import Hosted
from modrun.fleet import protocol as P
from modrun.redact import REDACTOR


def ship_call_output(
    publish: Callable[[str, bytes], None],
    topics: P.Topics,
    hosted: Hosted,
    function: str,
    logs: list,
    error: str | None,
) -> None:
    """A plugin module's log lines (stdout; warnings and errors on stderr) and
    call errors (stderr) go to its output topics, as a WASI module's do, with
    secrets scrubbed; at most LINES_PER_SECOND per module, the rest counted."""
    lines = [(_stream(line.level), f"{line.level} {function}: {line.message}") for line in logs]
    if error is not None:
        lines.append(("stderr", f"error {function}: {error}"))
    for stream, text in lines:
        if not hosted.output_budget.take():
            continue
        dropped = hosted.output_budget.dropped_since_last()
        if dropped:
            publish(topics.stderr(hosted.uuid), f"({dropped} lines dropped)".encode())
        publish(getattr(topics, stream)(hosted.uuid), REDACTOR.scrub(text).encode())


def _stream(level: str) -> str:
    return "stderr" if level.lower() in ("warn", "warning", "error", "fatal") else "stdout"
