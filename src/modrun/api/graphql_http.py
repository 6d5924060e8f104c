"""GraphQL over HTTP: ``POST /graphql`` runs operations, ``GET /graphql``
serves the explorer to browsers and runs queries given as ``?query=``."""

from __future__ import annotations

import asyncio
import json
import time
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modrun.api.explorer import explorer_page
from modrun.api.graphql import schema_for
from modrun.api.graphql_limits import GraphQLLimits, TooCostly, check_cost
from modrun.http.asgi import GRAPHQL_TYPE, graphql_errors

if TYPE_CHECKING:
    from modrun.api.parts import FunctionParts


def _errors(*messages: str, status: int = 400) -> JSONResponse:
    return JSONResponse(graphql_errors(*messages), status_code=status)


async def _params(request: Request) -> dict[str, Any] | JSONResponse:
    if request.method == "GET":
        params: dict[str, Any] = dict(request.query_params)
        if isinstance(params.get("variables"), str):
            try:
                params["variables"] = json.loads(params["variables"])
            except ValueError:
                return _errors("variables must be JSON")
        return params
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == GRAPHQL_TYPE:  # read as the guard and the gateway read it (fleet.graphql)
        return {"query": body.decode("utf-8", "replace")}
    try:
        doc = json.loads(body or b"null")
    except ValueError as exc:
        return _errors(f"request body is not JSON: {exc}")
    if not isinstance(doc, dict):
        return _errors('request body must be a JSON object like {"query": "..."}')
    return doc


def _prepare(
    schema: GraphQLSchema, query: str, operation_name: str | None, method: str, limits: GraphQLLimits
) -> DocumentNode | Response:
    """The parsed, cost-checked, validated document, or the error answer."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return JSONResponse({"errors": [exc.formatted]}, status_code=400)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return _errors("no operation to run: name one with operationName")
    try:
        check_cost(document, operation, limits)
    except TooCostly as exc:
        return JSONResponse(graphql_errors(str(exc), kind="QueryTooCostly"), status_code=400)
    problems = validate(schema, document)
    if problems:
        return JSONResponse({"errors": [e.formatted for e in problems]}, status_code=400)
    if method == "GET" and operation.operation != OperationType.QUERY:
        return _errors("only queries may be sent with GET; use POST", status=405)
    return document


async def graphql_endpoint(request: Request) -> Response:
    functions: FunctionParts = request.app.state.parts.functions
    if request.method == "GET" and "query" not in request.query_params:
        return explorer_page(request.url.path)
    params = await _params(request)
    if isinstance(params, Response):
        return params
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        return _errors('missing "query"')
    variables = params.get("variables") or None
    if variables is not None and not isinstance(variables, dict):
        return _errors('"variables" must be an object')
    operation_name = params.get("operationName") or None

    catalog = functions.catalog
    schema = schema_for(catalog)
    # parsing, the cost check and validation of a large document take time: not on the event loop
    prepared = await asyncio.to_thread(
        _prepare, schema, query, operation_name, request.method, functions.graphql_limits
    )
    if isinstance(prepared, Response):
        return prepared
    context = {
        "invoker": functions.invoker,
        "catalog": catalog,
        "invocations": {},
        "deadline": time.monotonic() + functions.timeout,
    }
    result = execute(
        schema, prepared, variable_values=variables, operation_name=operation_name, context_value=context
    )
    if isawaitable(result):
        result = await result
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    if context["invocations"]:
        body["extensions"] = {"invocations": context["invocations"]}
    return JSONResponse(body)
