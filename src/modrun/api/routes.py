"""The node's routes in one table: the router (``app.build_router``) and the
OpenAPI document (``node_openapi``) are both made from it, so a route cannot be
served undocumented or documented unserved. ``POST /functions/...`` is not here:
``app.NodeApp`` sends it to the raw ASGI endpoint before routing, and the
document gets one operation per loaded function instead.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from modrun.api.graphql_http import graphql_endpoint
from modrun.api.health import health_endpoint
from modrun.api.inferences import inferences_endpoint
from modrun.api.lambda_ import lambda_endpoint
from modrun.api.metrics import metrics_endpoint
from modrun.api.models import (
    add_weights,
    create_model,
    delete_model,
    invoke_model,
    list_models,
    list_weights,
    model_access,
    modify_model,
    ping_model,
)
from modrun.api.node_openapi import openapi_endpoint, reference_endpoint
from modrun.api.openai_compat import CHAT_PATH, MODELS_PATH, model_list, openai_error
from modrun.api.openapi import BUSY, GRAPHQL_RESULT, NodeRoute, error, json_response, typed_body
from modrun.api.rest import list_functions
from modrun.console import asset, page, wants_html
from modrun.version import __version__


async def _functions(request: Request) -> JSONResponse:
    return JSONResponse(list_functions(request.app.state.parts.functions))


async def _index(request: Request) -> Response:
    if wants_html(request):  # a browser: the console
        return RedirectResponse("/console", status_code=303)
    return JSONResponse(
        {
            "name": "modrun",
            "version": __version__,
            "endpoints": {
                "graphql": "/graphql",
                "functions": "/functions",
                "health": "/health",
                "metrics": "/metrics",
                "console": "/console",
            },
        }
    )


async def _openai_models(request: Request) -> JSONResponse:
    return JSONResponse(model_list(request.app.state.parts))


async def _openai_post_only(_request: Request) -> Response:
    """Never reached: NodeApp serves the POST before routing; here for OpenAPI."""
    return Response(openai_error("use POST"), status_code=405, media_type="application/json")


async def _console(_request: Request) -> Response:
    return page("node")


async def _method_not_allowed(request: Request) -> JSONResponse:
    return JSONResponse({"error": "use POST to call a function"}, status_code=405, headers={"allow": "POST"})


OBJECT = {"type": "object"}
HTML = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
GRAPHQL_REQUEST = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {"type": "string"},
        "variables": {"type": ["object", "null"]},
        "operationName": {"type": ["string", "null"]},
    },
}
GRAPHQL_ANSWERS = {
    "200": json_response("Data and errors", GRAPHQL_RESULT),
    "400": json_response("The query is invalid or too costly", GRAPHQL_RESULT),
    **BUSY,
}
CHANGES = {"403": error("Run-time model changes are off (--allowRuntimeChanges)")}
MISSING = {"404": error("No such model")}
MODEL_SPEC = {"type": "object", "description": "A model as in the manifest's models section, with its name"}
LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Most rows to return")


def _ok(text: str, schema: dict | None = None) -> dict:
    return {"200": json_response(text, schema if schema is not None else OBJECT)}


def node_routes() -> list[NodeRoute]:
    """Every route of a node, in matching order."""
    R = NodeRoute
    return [
        R(("GET",), "/", _index),
        R(
            ("GET",),
            "/functions",
            _functions,
            "listFunctions",
            "Every function, its signature and path",
            "functions",
            _ok("Functions"),
        ),
        R(("GET", "PUT", "DELETE"), "/functions/{name:path}", _method_not_allowed),
        R(
            ("GET",),
            MODELS_PATH,
            _openai_models,
            "openaiListModels",
            "OpenAI-compatible: the chat models and chat-handler functions",
            "openai",
            _ok("{object: list, data: [{id, object: model, created, owned_by}]}"),
        ),
        R(
            ("POST",),
            CHAT_PATH,
            _openai_post_only,
            "openaiChatCompletions",
            "OpenAI-compatible chat completions (stream: server-sent events)",
            "openai",
            {
                "200": {
                    "description": "A chat.completion, or chat.completion.chunk events with stream",
                    "content": {
                        "application/json": {"schema": OBJECT},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                "400": json_response("Not a chat request (no model, no messages, not JSON)", OBJECT),
                "404": json_response("No such model", OBJECT),
                "413": json_response("The request is larger than --maxInput", OBJECT),
                "422": json_response("The chat handler failed", OBJECT),
                "500": json_response("An internal error", OBJECT),
                "502": json_response("The model or a host function failed", OBJECT),
                "504": json_response("The call timed out", OBJECT),
                **BUSY,
            },
            body={"required": True, "content": {"application/json": {"schema": OBJECT}}},
        ),
        R(
            ("POST",),
            "/graphql",
            graphql_endpoint,
            "graphql",
            "Run a GraphQL query or mutation",
            "graphql",
            GRAPHQL_ANSWERS,
            body={
                "required": True,
                "content": {
                    "application/json": {"schema": GRAPHQL_REQUEST},
                    "application/graphql": {"schema": {"type": "string"}},
                },
            },
        ),
        R(
            ("GET",),
            "/graphql",
            graphql_endpoint,
            "graphqlGet",
            "Run a GraphQL query (without query: the explorer page)",
            "graphql",
            {
                **GRAPHQL_ANSWERS,
                "200": {
                    "description": "Data and errors, or the explorer page",
                    "content": {
                        "application/json": {"schema": GRAPHQL_RESULT},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
            },
            query=[
                ("query", {"type": "string"}, "The query"),
                ("variables", {"type": "string"}, "JSON object"),
                ("operationName", {"type": "string"}, "Which operation to run"),
            ],
        ),
        R(
            ("POST",),
            "/graphql-worker",
            lambda_endpoint,
            "lambda",
            "Dgraph Lambda: one resolver call or a batch",
            "graphql",
            {
                "200": json_response("The resolver's result (a list for a batch)"),
                "400": error("Not a resolver call"),
                "422": error("The function reported an error"),
                "500": error("The function failed"),
                **BUSY,
                "504": error("The batch ran past --timeout"),
                "507": error("A call ran past --maxMemory"),
            },
            body=typed_body(
                "application/json",
                {
                    "type": "object",
                    "properties": {
                        "resolver": {"type": "string"},
                        "args": OBJECT,
                        "parents": {"type": "array"},
                    },
                },
            ),
        ),
        R(
            ("GET",),
            "/health",
            health_endpoint,
            "health",
            "Status, plugins and load errors",
            "operations",
            _ok("Health"),
        ),
        R(
            ("GET",),
            "/inferences",
            inferences_endpoint,
            "inferences",
            "Model inference history, newest first",
            "models",
            {**_ok("A page of inferences and the cursor of the next"), "400": error("A bad filter")},
            query=[
                ("model", {"type": "string"}, "Only this model"),
                LIMIT,
                ("status", {"type": "string"}, "Only this status"),
                ("cursor", {"type": "string"}, "Next page"),
                ("since", {"type": "string"}, "RFC 3339 time"),
                ("until", {"type": "string"}, "RFC 3339 time"),
            ],
        ),
        R(
            ("GET",),
            "/models",
            list_models,
            "listModels",
            "Every model and its status",
            "models",
            _ok("Models"),
        ),
        R(
            ("POST",),
            "/models",
            create_model,
            "createModel",
            "Add a registry model",
            "models",
            {
                "201": json_response("Created", OBJECT),
                "400": error("Not a valid model"),
                **CHANGES,
                "409": error("The name is taken"),
            },
            body=typed_body("application/json", MODEL_SPEC),
        ),
        R(
            ("GET",),
            "/models/{name}",
            ping_model,
            "getModel",
            "A model and its status",
            "models",
            {**_ok("The model"), **MISSING},
        ),
        *(
            R(
                (method,),
                "/models/{name}",
                modify_model,
                f"modifyModel{method.title()}",
                "Change a registry model",
                "models",
                {**_ok("Changed"), "400": error("Not a valid change"), **CHANGES},
                body=typed_body("application/json", OBJECT),
            )
            for method in ("PUT", "PATCH")
        ),
        R(
            ("DELETE",),
            "/models/{name}",
            delete_model,
            "deleteModel",
            "Remove a registry model",
            "models",
            {**_ok("Removed"), "400": error("Not a registry model"), **CHANGES},
        ),
        R(
            ("POST",),
            "/models/{name}/invoke",
            invoke_model,
            "invokeModel",
            "Call a model with a JSON body",
            "models",
            {
                **_ok("The model's answer"),
                "400": error("The body is not JSON"),
                **MISSING,
                "502": error("The model failed"),
            },
            body=typed_body("application/json", {}, required=False),
        ),
        *(
            R(
                (method,),
                "/models/{name}/ping",
                ping_model,
                f"pingModel{method.title()}",
                "Is the model up",
                "models",
                {**_ok("The model and its status"), **MISSING},
            )
            for method in ("GET", "POST")
        ),
        R(
            ("GET",),
            "/models/{name}/access",
            model_access,
            "modelAccess",
            "Who called the model, newest first",
            "models",
            {**_ok("Access log rows"), "400": error("A bad limit")},
            query=[LIMIT],
        ),
        R(
            ("GET",),
            "/models/{name}/weights",
            list_weights,
            "listWeights",
            "The model's weight versions",
            "models",
            _ok("Versions"),
        ),
        R(
            ("POST",),
            "/models/{name}/weights",
            add_weights,
            "addWeights",
            "Add the next weights version",
            "models",
            {"201": json_response("The new version", OBJECT), "400": error("Not valid weights"), **CHANGES},
            body=typed_body(
                "application/json",
                {
                    "type": "object",
                    "properties": {"params": OBJECT, "weights": {"type": "string", "description": "base64"}},
                },
            ),
        ),
        R(
            ("GET",),
            "/metrics",
            metrics_endpoint,
            "metrics",
            "Prometheus metrics of every process of the node",
            "operations",
            {
                "200": {
                    "description": "Text exposition",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
            query=[("process", {"type": "string", "enum": ["self"]}, "Only the process that answers")],
        ),
        R(
            ("GET",),
            "/openapi.json",
            openapi_endpoint,
            "openapi",
            "This document",
            "operations",
            _ok("OpenAPI 3.1"),
        ),
        R(
            ("GET",),
            "/docs",
            reference_endpoint,
            "reference",
            "This document as a page",
            "operations",
            {"200": HTML},
        ),
        R(("GET",), "/console", _console),
        R(("GET",), "/console/assets/{name}", asset),
        R(("GET",), "/console/{path:path}", _console),
    ]
