"""``modrun call``: load the plugins once, run one function, print its output
(or call it on a running node or gateway with ``--url``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator

import httpx

from modrun.errors import CallFailed, FunctionNotFound, InvalidInput
from modrun.node.settings import ServeSettings
from modrun.runtime import Runtime
from modrun.wasm.host import LogLine


def _print_logs(logs: Iterable[LogLine | dict]) -> None:
    for line in logs:
        level, message = (
            (line["level"], line["message"]) if isinstance(line, dict) else (line.level, line.message)
        )
        print(f"[{level}] {message}", file=sys.stderr)


def _write(chunks: Iterable[bytes]) -> None:
    """Each piece of output at once (a stream shows as it comes), then a newline
    on a terminal when the output did not end with one."""
    out = sys.stdout.buffer
    last = b""
    for chunk in chunks:
        if chunk:
            out.write(chunk)
            out.flush()
            last = chunk
    if sys.stdout.isatty() and not last.endswith(b"\n"):
        out.write(b"\n")
    out.flush()


def run_once(
    settings: ServeSettings, function: str, data: bytes, *, quiet: bool = False, stream: bool = False
) -> int:
    with Runtime(
        settings.plugins,
        storage_path=settings.storage_path,
        timeout=settings.timeout,
        max_memory=settings.max_memory,
    ) as runtime:
        try:
            if stream:
                _write(runtime.stream(function, data))
                return 0
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
    _write([result.output])
    return 0


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each server-sent event."""
    name, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line == "" and data:
            yield name, "\n".join(data)
            name, data = "message", []


def _failure(status: int, body: str, quiet: bool) -> int:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {"error": body.strip() or f"HTTP {status}"}
    if not quiet:
        _print_logs(doc.get("logs") or [])
    print(f"error: {doc.get('function') or '?'}: {doc.get('error')}", file=sys.stderr)
    return 2 if status in (400, 404, 413) else 1


def call_remote(
    url: str, function: str, data: bytes, *, stream: bool, api_key: str | None, quiet: bool
) -> int:
    headers = {"X-API-Key": api_key} if api_key else {}
    if stream:
        headers["Accept"] = "text/event-stream"
    endpoint = f"{url.rstrip('/')}/functions/{function}"
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client:
            if not stream:
                answer = client.post(endpoint, content=data, headers=headers)
                if answer.status_code >= 300:
                    return _failure(answer.status_code, answer.text, quiet)
                _write([answer.content])
                return 0
            with client.stream("POST", endpoint, content=data, headers=headers) as answer:
                if answer.status_code >= 300:
                    return _failure(answer.status_code, answer.read().decode("utf-8", "replace"), quiet)
                failed: list[str] = []

                def chunks() -> Iterator[bytes]:
                    for event, text in _sse(answer.iter_lines()):
                        if event == "message":
                            yield text.encode()
                        elif event == "error":
                            failed.append(text)
                            return

                _write(chunks())
                return _failure(200, failed[0], quiet) if failed else 0
    except httpx.HTTPError as exc:
        print(f"error: cannot call {endpoint}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
