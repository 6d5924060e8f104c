"""GraphQL over HTTP: ``POST /graphql`` runs operations, ``GET /graphql``
serves the explorer to browsers and runs queries given as ``?query=``."""

from __future__ import annotations

import asyncio
import json
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import DocumentNode, GraphQLSchema, OperationType, execute
from graphql.language import OperationDefinitionNode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from modrun.api.explorer import explorer_page
from modrun.api.graphql import execution_context, schema_for
from modrun.api.graphql_documents import Refused, check_document
from modrun.api.graphql_limits import GraphQLLimits
from modrun.api.graphql_subscriptions import sse_events
from modrun.http.asgi import GRAPHQL_TYPE, SSE, graphql_errors, stream_format

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
) -> tuple[DocumentNode, OperationDefinitionNode] | Response:
    """The checked document and its operation, or the error answer."""
    try:
        document, operation = check_document(schema, query, operation_name, limits)
    except Refused as exc:
        return JSONResponse({"errors": exc.errors}, status_code=400)
    if method == "GET" and operation.operation != OperationType.QUERY:
        return _errors("only queries may be sent with GET; use POST", status=405)
    return document, operation


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
    document, operation = prepared
    if stream_format(request.headers.raw) == SSE:  # graphql-sse: events as they come
        events = sse_events(request.app.state.parts, document, variables, operation_name)
        return StreamingResponse(events, media_type=SSE, headers={"cache-control": "no-cache"})
    if operation.operation == OperationType.SUBSCRIPTION:
        needs = "Accept: text/event-stream (graphql-sse) or a WebSocket (graphql-transport-ws)"
        return _errors(f"a subscription needs {needs}")
    context = execution_context(functions.invoker, catalog, functions.timeout)
    result = execute(
        schema, document, variable_values=variables, operation_name=operation_name, context_value=context
    )
    if isawaitable(result):
        result = await result
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    if context["invocations"]:
        body["extensions"] = {"invocations": context["invocations"]}
    return JSONResponse(body)
