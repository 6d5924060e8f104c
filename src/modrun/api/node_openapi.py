"""The node's OpenAPI document (``GET /openapi.json``) and its reference page
(``GET /docs``): the fixed routes below, and one operation per loaded function
(rebuilt when the set of plugins changes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modrun.api.openapi import BUSY, GRAPHQL_RESULT, Document, add_functions, error, json_response, typed_body
from modrun.api.reference import render_reference

if TYPE_CHECKING:
    from modrun.plugins.catalog import Catalog

OBJECT = {"type": "object"}
GRAPHQL_REQUEST = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {"type": "string"},
        "variables": {"type": ["object", "null"]},
        "operationName": {"type": ["string", "null"]},
    },
}
CHANGES = {"403": error("Run-time model changes are off (--allowRuntimeChanges)")}
MODEL_SPEC = {"type": "object", "description": "A model as in the manifest's models section, with its name"}
LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Most rows to return")


def _fixed(doc: Document) -> None:
    """The routes every node has (app.build_router)."""
    ok = json_response
    html = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    for path, operation_id, summary, tag, answer in (
        (
            "/functions",
            "listFunctions",
            "Every function, its signature and path",
            "functions",
            ok("Functions", OBJECT),
        ),
        ("/health", "health", "Status, plugins and load errors", "operations", ok("Health", OBJECT)),
        ("/openapi.json", "openapi", "This document", "operations", ok("OpenAPI 3.1", OBJECT)),
        ("/docs", "reference", "This document as a page", "operations", html),
        ("/models", "listModels", "Every model and its status", "models", ok("Models", OBJECT)),
        (
            "/models/{name}/weights",
            "listWeights",
            "The model's weight versions",
            "models",
            ok("Versions", OBJECT),
        ),
    ):
        doc.add("GET", path, operation_id, summary, {"200": answer}, tag=tag)
    graphql_answers = {
        "200": ok("Data and errors", GRAPHQL_RESULT),
        "400": ok("The query is invalid or too costly", GRAPHQL_RESULT),
        **BUSY,
    }
    doc.add(
        "POST",
        "/graphql",
        "graphql",
        "Run a GraphQL query or mutation",
        graphql_answers,
        tag="graphql",
        body={
            "required": True,
            "content": {
                "application/json": {"schema": GRAPHQL_REQUEST},
                "application/graphql": {"schema": {"type": "string"}},
            },
        },
    )
    doc.add(
        "GET",
        "/graphql",
        "graphqlGet",
        "Run a GraphQL query (without query: the explorer page)",
        {
            **graphql_answers,
            "200": {
                "description": "Data and errors, or the explorer page",
                "content": {
                    "application/json": {"schema": GRAPHQL_RESULT},
                    "text/html": {"schema": {"type": "string"}},
                },
            },
        },
        tag="graphql",
        query=[
            ("query", {"type": "string"}, "The query"),
            ("variables", {"type": "string"}, "JSON object"),
            ("operationName", {"type": "string"}, "Which operation to run"),
        ],
    )
    doc.add(
        "POST",
        "/graphql-worker",
        "lambda",
        "Dgraph Lambda: one resolver call or a batch",
        {
            "200": ok("The resolver's result (a list for a batch)"),
            "400": error("Not a resolver call"),
            "422": error("The function reported an error"),
            "500": error("The function failed"),
            **BUSY,
            "504": error("The batch ran past --timeout"),
            "507": error("A call ran past --maxMemory"),
        },
        tag="graphql",
        body=typed_body(
            "application/json",
            {
                "type": "object",
                "properties": {"resolver": {"type": "string"}, "args": OBJECT, "parents": {"type": "array"}},
            },
        ),
    )
    doc.add(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics of every process of the node",
        {
            "200": {
                "description": "Text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
        tag="operations",
        query=[("process", {"type": "string", "enum": ["self"]}, "Only the process that answers")],
    )
    doc.add(
        "GET",
        "/inferences",
        "inferences",
        "Model inference history, newest first",
        {"200": ok("A page of inferences and the cursor of the next", OBJECT), "400": error("A bad filter")},
        tag="models",
        query=[
            ("model", {"type": "string"}, "Only this model"),
            LIMIT,
            ("status", {"type": "string"}, "Only this status"),
            ("cursor", {"type": "string"}, "Next page"),
            ("since", {"type": "string"}, "RFC 3339 time"),
            ("until", {"type": "string"}, "RFC 3339 time"),
        ],
    )
    missing = {"404": error("No such model")}
    doc.add(
        "POST",
        "/models",
        "createModel",
        "Add a registry model",
        {
            "201": ok("Created", OBJECT),
            "400": error("Not a valid model"),
            **CHANGES,
            "409": error("The name is taken"),
        },
        tag="models",
        body=typed_body("application/json", MODEL_SPEC),
    )
    doc.add(
        "GET",
        "/models/{name}",
        "getModel",
        "A model and its status",
        {"200": ok("The model", OBJECT), **missing},
        tag="models",
    )
    for method in ("PUT", "PATCH"):
        doc.add(
            method,
            "/models/{name}",
            f"modifyModel{method.title()}",
            "Change a registry model",
            {"200": ok("Changed", OBJECT), "400": error("Not a valid change"), **CHANGES},
            tag="models",
            body=typed_body("application/json", OBJECT),
        )
    doc.add(
        "DELETE",
        "/models/{name}",
        "deleteModel",
        "Remove a registry model",
        {"200": ok("Removed", OBJECT), "400": error("Not a registry model"), **CHANGES},
        tag="models",
    )
    doc.add(
        "POST",
        "/models/{name}/invoke",
        "invokeModel",
        "Call a model with a JSON body",
        {
            "200": ok("The model's answer", OBJECT),
            "400": error("The body is not JSON"),
            **missing,
            "502": error("The model failed"),
        },
        tag="models",
        body=typed_body("application/json", {}, required=False),
    )
    for method in ("GET", "POST"):
        doc.add(
            method,
            "/models/{name}/ping",
            f"pingModel{method.title()}",
            "Is the model up",
            {"200": ok("The model and its status", OBJECT), **missing},
            tag="models",
        )
    doc.add(
        "GET",
        "/models/{name}/access",
        "modelAccess",
        "Who called the model, newest first",
        {"200": ok("Access log rows", OBJECT), "400": error("A bad limit")},
        tag="models",
        query=[LIMIT],
    )
    doc.add(
        "POST",
        "/models/{name}/weights",
        "addWeights",
        "Add the next weights version",
        {"201": ok("The new version", OBJECT), "400": error("Not valid weights"), **CHANGES},
        tag="models",
        body=typed_body(
            "application/json",
            {
                "type": "object",
                "properties": {"params": OBJECT, "weights": {"type": "string", "description": "base64"}},
            },
        ),
    )


def node_document(catalog: Catalog) -> dict[str, Any]:
    doc = Document(
        "modrun node",
        "A modrun runtime node: WebAssembly functions over REST and GraphQL, models, history.",
    )
    _fixed(doc)
    add_functions(doc, catalog)
    return doc.as_dict()


def _document(request: Request) -> bytes:
    """The document for the catalog now served, built once per catalog."""
    catalog = request.app.state.parts.functions.catalog
    if catalog.openapi is None:
        catalog.openapi = json.dumps(node_document(catalog)).encode()
    return catalog.openapi


async def openapi_endpoint(request: Request) -> Response:
    return Response(_document(request), media_type="application/json")


async def reference_endpoint(request: Request) -> Response:
    return HTMLResponse(render_reference(json.loads(_document(request))))
