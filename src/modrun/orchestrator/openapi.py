"""The orchestrator's OpenAPI document (``GET /openapi.json``) and reference
page (``GET /docs``), generated from the same route tables that route and
guard requests (fleet, control plane), plus the gateway.

Who may call a route comes from its access rule; answers are JSON objects
unless the route streams, redirects or serves bytes. The console's pages are
left out: they are for browsers, not clients."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modrun.api.openapi import GRAPHQL_RESULT, Document, error, json_response, typed_body
from modrun.api.reference import render_reference
from modrun.control.routing import Endpoint

NOT_JSON = {
    "fleet.metrics": ("text/plain", "Prometheus text exposition"),
    "fleet.events": ("text/event-stream", "Server-sent events: runtimes, modules, calls"),
    "fleet.file_get": ("application/octet-stream", "The file"),
    "artifact.download": ("application/octet-stream", "The artifact's bytes"),
    "fleet.reference": ("text/html", "This document as a page"),
}
REDIRECTS = {"session.oidc_begin", "session.oidc"}
RULE_TEXT = {
    "public": "Anyone.",
    "user": "A signed-in user or an API key.",
    "session": "A signed-in user (not an API key).",
    "admin": "An admin.",
    "upload": "The upload token from POST /api/v2/artifact/upload.",
    "node": "A joined node (its node credential, mrn_...) or an admin.",
    "joining": "A node (its join token or its node credential) or an admin.",
    "join": "A join token (mrj_...), exchanged once per runtime for a node credential.",
}
SECURITY = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An access token or API key"},
    "session": {"type": "apiKey", "in": "cookie", "name": "modrun_session", "description": "The console"},
}
ERRORS = {
    "4XX": error("Not signed in (401), not allowed (403), not found (404), refused (400, 409, 413, 429)")
}


def orchestrator_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    doc = Document(
        "modrun orchestrator",
        "The fleet: runtimes, modules, files, the control plane (users, keys, artifacts, deployments) "
        "and the gateway to every node's functions.",
    )
    seen: set[tuple[str, str]] = set()
    used_ids: set[str] = set()
    for e in endpoints:
        path = e.prefix + e.path
        if path == "/" or path.startswith("/console") or (e.method, path) in seen:
            continue
        seen.add((e.method, path))
        operation_id = e.action
        while operation_id in used_ids:  # one action, several paths (trailing slash, user or team)
            operation_id += "_"
        used_ids.add(operation_id)
        doc.add(
            e.method,
            path,
            operation_id,
            e.action.replace("_", " ").replace(".", ": "),
            {**_success(e), **ERRORS},
            tag=e.action.split(".")[0],
            body=_body(e),
            description=f"Who may call it: {RULE_TEXT[e.rule]}",
            security=None if e.rule == "public" else [{"bearer": []}, {"session": []}],
        )
    _well_known(doc)
    _gateway(doc)
    result = doc.as_dict()
    result["components"]["securitySchemes"] = SECURITY
    return result


def _body(e: Endpoint) -> dict[str, Any] | None:
    if e.action in ("fleet.file_put", "artifact.chunk"):
        return typed_body("application/octet-stream", {"type": "string"})
    if e.method in ("POST", "PUT"):
        return typed_body("application/json", {"type": "object"}, required=False)
    return None


def _well_known(doc: Document) -> None:
    for path, operation_id, summary in (
        ("/.well-known/jwks.json", "jwks", "The keys access tokens are signed with"),
        ("/.well-known/openid-configuration", "discovery", "Issuer and key set, for token verifiers"),
    ):
        doc.add(
            "GET",
            path,
            operation_id,
            summary,
            {"200": json_response(summary, {"type": "object"})},
            tag="user",
        )


def _success(e: Endpoint) -> dict[str, Any]:
    if e.action in NOT_JSON:
        media, text = NOT_JSON[e.action]
        return {"200": {"description": text, "content": {media: {"schema": {"type": "string"}}}}}
    if e.action in REDIRECTS:
        return {"2XX": json_response("Done"), "3XX": {"description": "On to the identity provider or back"}}
    return {"2XX": json_response("Done", {"type": ["object", "array"]}), "204": {"description": "Done"}}


def _gateway(doc: Document) -> None:
    calls = {
        "200": {"description": "The function's output (its type is on the node that serves it)"},
        "204": {"description": "Done; the function returns nothing"},
        **ERRORS,
        "5XX": error("The function failed (500, 502, 504, 507) or no node serves it (502, 503)"),
    }
    doc.add(
        "POST",
        "/functions/{name:path}",
        "gateway.call",
        "Call a function on a node that serves it",
        calls,
        tag="gateway",
        body={"required": False, "content": {"*/*": {"schema": {}}}},
        description="Who may call it: anyone allowed to invoke the artifact behind the function.",
    )
    doc.add(
        "POST",
        "/graphql",
        "gateway.graphql",
        "A GraphQL request, sent on to a node that serves its fields",
        {
            "200": json_response("Data and errors", GRAPHQL_RESULT),
            "400": json_response("Not a GraphQL request", GRAPHQL_RESULT),
            **ERRORS,
            "5XX": error("No node serves the fields"),
        },
        tag="gateway",
        body=typed_body("application/json", {"type": "object", "required": ["query"]}),
    )


def _document(request: Request) -> bytes:
    """The document, built on first use (the route tables do not change while running)."""
    state = request.app.state
    if state.openapi is None:
        state.openapi = json.dumps(orchestrator_document(state.endpoints)).encode()
    return state.openapi


async def openapi_endpoint(request: Request) -> Response:
    return Response(_document(request), media_type="application/json")


async def reference_endpoint(request: Request) -> Response:
    return HTMLResponse(render_reference(json.loads(_document(request))))
