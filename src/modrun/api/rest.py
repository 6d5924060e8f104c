"""REST: ``POST /functions/{name}`` calls a function, ``GET /functions`` lists them.

The call endpoint is the hottest path of a node, so it is a plain ASGI handler
(no routing table, request or response objects): the body is the function's
input bytes and the response body is its output.

* ``{name}`` is a function name, or ``{plugin}/{name}`` to pick one plugin's
  function when several export the same name.
* Typed functions with JSON input take a JSON object of their params, checked
  against the schema (400 on mismatch); ``text``/``bytes`` input is the raw body.
* The response Content-Type follows the output: ``text/plain`` for String,
  ``application/json`` for JSON, ``application/octet-stream`` for Bytes or
  untyped binary output.
* A failure answers ``{"error", "function", "plugin", "kind", "logs"}`` with
  404 (unknown function), 400 (bad input), 413 (input too large), 422 (the
  function reported an error), 504 (timeout), 507 (memory limit) or 500.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modrun.api import streams
from modrun.errors import CallFailed, FunctionNotFound, InvalidInput
from modrun.http.asgi import (
    FUNCTIONS_PREFIX,
    JSON,
    BodyTooLarge,
    function_key,
    read_body,
    respond,
    stream_format,
)
from modrun.plugins.plugin import Function
from modrun.plugins.schema import check_object
from modrun.redact import REDACTOR

if TYPE_CHECKING:
    from modrun.api.parts import FunctionParts

PREFIX = FUNCTIONS_PREFIX
TEXT = b"text/plain; charset=utf-8"
BINARY = b"application/octet-stream"


def error_body(
    message: str, *, function: str = "", plugin: str = "", kind: str = "", logs: list | None = None
) -> bytes:
    doc: dict[str, Any] = {"error": REDACTOR.scrub(message), "function": function, "plugin": plugin}
    if kind:
        doc["kind"] = kind
    if logs:
        doc["logs"] = log_dicts(logs)
    return json.dumps(doc).encode()


def log_dicts(logs: list) -> list[dict[str, str]]:
    """Call log lines as sent to clients, with secret values scrubbed."""
    return [{"level": line.level, "message": REDACTOR.scrub(line.message)} for line in logs]


def prepare_input(fn: Function, body: bytes, types: Any) -> bytes:
    """Check a REST body against the function's signature."""
    sig = fn.signature
    if sig.input != "json":
        return body
    try:
        args = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise InvalidInput(fn.name, f"body must be a JSON object of the params: {exc}") from None
    try:
        check_object(args, sig.params, types, "")
    except ValueError as exc:
        raise InvalidInput(fn.name, str(exc)) from None
    return body if body.strip() else b"{}"


def content_type(fn: Function, output: bytes) -> bytes:
    kind = fn.signature.output
    if kind == "json":
        return JSON
    if kind == "bytes":
        return BINARY
    if output.isascii():
        return TEXT
    try:
        output.decode()
        return TEXT
    except UnicodeDecodeError:
        return BINARY if not fn.signature.typed else TEXT


class FunctionEndpoint:
    """ASGI handler for ``POST /functions/{name}``."""

    def __init__(self, functions: FunctionParts) -> None:
        self.functions = functions

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        name = function_key(scope["path"])
        catalog = self.functions.catalog
        try:
            plugin, fn = catalog.resolve(name)
        except FunctionNotFound as exc:
            await respond(send, 404, error_body(str(exc), function=name, kind="FunctionNotFound"), JSON)
            return
        try:
            body = await read_body(receive, self.functions.max_input)
            data = prepare_input(fn, body, plugin.schema.types)
        except BodyTooLarge:
            limit = self.functions.max_input
            await respond(
                send,
                413,
                error_body(
                    f"input larger than the {limit}-byte limit (--maxInput)",
                    function=fn.name,
                    plugin=fn.plugin,
                    kind="InputTooLarge",
                ),
                JSON,
            )
            return
        except InvalidInput as exc:
            await respond(
                send,
                400,
                error_body(exc.reason, function=fn.name, plugin=fn.plugin, kind="InvalidInput"),
                JSON,
            )
            return
        kind = stream_format(scope["headers"])
        if kind is not None:
            invoker = self.functions.invoker
            await streams.serve_stream(invoker, plugin, fn, data, kind, receive, send, error_body)
            return
        try:
            result = await self.functions.invoker.acall(plugin, fn, data)
        except CallFailed as exc:
            await respond(
                send,
                exc.http_status,
                error_body(exc.message, function=fn.name, plugin=fn.plugin, kind=exc.kind, logs=exc.logs),
                JSON,
            )
            return
        output = result.output
        if fn.signature.output == "none":
            await respond(send, 204, b"", TEXT)
            return
        await respond(send, 200, output, content_type(fn, output))


def list_functions(functions: FunctionParts) -> dict:
    catalog = functions.catalog
    return {
        "functions": [catalog.describe_function(fn) for fn in catalog.by_key.values()],
        "conflicts": [c.as_dict() for c in catalog.conflicts],
        "notInGraphQL": catalog.skipped,
        "loadErrors": functions.load_errors(),
    }
