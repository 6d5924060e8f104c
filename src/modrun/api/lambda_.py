"""``POST /graphql-worker``: the Dgraph Lambda protocol, dispatched to functions.

Dgraph Alpha (``--graphql lambda-url=http://host:8686/graphql-worker``) posts
``{"resolver": "Query.field" | "Type.field", "args": {...}, "parents": [...] | null,
"authHeader": {"key", "value"}, "event": ..., "info": ...}`` and expects the
resolver's result as JSON.

* The resolver's field name picks the function: a GraphQL field name first
  (``Query.person`` -> ``getPerson``), then an export name.
* The function's input is a JSON object of ``args`` plus, when present,
  ``parent`` (one call per parent), ``parents`` (one call for all, when the
  function declares a ``parents`` param, and it must return a list), and
  ``authHeader``. Typed functions receive only the params they declare; a
  ``text`` function receives its one argument as text.
* No result for a non-webhook resolver is a 400, as in Dgraph's own lambda server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modrun.api.graphql import decode_output
from modrun.errors import CallFailed, CallTimeout
from modrun.plugins.catalog import Catalog
from modrun.plugins.plugin import Function
from modrun.redact import REDACTOR

if TYPE_CHECKING:
    from modrun.api.parts import FunctionParts


def _find(catalog: Catalog, resolver: str) -> Function | None:
    type_name, _, field = resolver.rpartition(".")
    table = catalog.mutations if type_name == "Mutation" else catalog.queries
    return table.get(field) or catalog.by_name.get(field)


def _input(fn: Function, values: dict[str, Any]) -> bytes:
    sig = fn.signature
    if sig.input == "text":
        value = values.get(sig.params[0].name)
        if value is None:
            return b""
        return (value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))).encode()
    if sig.input == "none":
        return b""
    if sig.typed:
        declared = {p.name for p in sig.params}
        values = {k: v for k, v in values.items() if k in declared}
    return json.dumps(values, separators=(",", ":")).encode()


async def lambda_endpoint(request: Request) -> Response:
    functions: FunctionParts = request.app.state.parts.functions
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "request body is not JSON"}, status_code=400)
    if not isinstance(body, dict) or not isinstance(body.get("resolver"), str):
        return JSONResponse({"error": 'expected {"resolver": ..., "args": ...}'}, status_code=400)
    resolver = body["resolver"]
    catalog = functions.catalog
    fn = _find(catalog, resolver)
    if fn is None:
        if resolver == "$webhook":
            return JSONResponse(None)
        return JSONResponse({"error": f"no function resolves {resolver!r}"}, status_code=400)
    plugin = catalog.plugins[fn.plugin]
    base: dict[str, Any] = dict(body.get("args") or {})
    if body.get("authHeader") is not None:
        base["authHeader"] = body["authHeader"]
    given = body.get("parents")
    parents: list[Any] = given if isinstance(given, list) else []
    per_parent = isinstance(given, list) and not any(p.name == "parents" for p in fn.signature.params)
    limit = functions.graphql_limits.max_calls
    if per_parent and len(parents) > limit:
        return JSONResponse(
            {"error": f"{len(parents)} parents would make more than {limit} calls (--graphqlMaxCalls)"},
            status_code=400,
        )
    deadline = time.monotonic() + functions.timeout  # the batch's calls share one deadline

    async def run(values: dict[str, Any]) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallTimeout("the batch's deadline (--timeout) passed", plugin=fn.plugin, function=fn.name)
        result = await functions.invoker.acall(plugin, fn, _input(fn, values), remaining)
        return decode_output(fn.signature, result.output)

    try:
        if isinstance(given, list) and any(p.name == "parents" for p in fn.signature.params):
            result = await run({**base, "parents": parents})
            if not isinstance(result, list) or len(result) != len(parents):
                return JSONResponse(
                    {"error": f"{fn.name} must return one result per parent ({len(parents)})"},
                    status_code=500,
                )
        elif per_parent:
            result = await asyncio.gather(*(run({**base, "parent": p}) for p in parents))
        else:
            result = await run(base)
    except CallFailed as exc:
        return JSONResponse(
            {"error": REDACTOR.scrub(exc.message), "function": fn.name, "plugin": fn.plugin},
            status_code=exc.http_status,
        )
    except Exception as exc:  # e.g. a JSON result that does not parse
        return JSONResponse({"error": REDACTOR.scrub(str(exc)), "function": fn.name}, status_code=500)
    if result is None:
        return JSONResponse({"error": f"{fn.name} returned nothing"}, status_code=400)
    return JSONResponse(result)
