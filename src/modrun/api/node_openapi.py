"""The node's OpenAPI document (``GET /openapi.json``) and its reference page
(``GET /docs``): the operations of the route table the app was built from
(``api/routes.py``), and one per loaded function (rebuilt with the catalog)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modrun.api.openapi import Document, NodeRoute, add_functions
from modrun.api.reference import render_reference

if TYPE_CHECKING:
    from modrun.plugins.catalog import Catalog


def node_document(routes: Iterable[NodeRoute], catalog: Catalog) -> dict[str, Any]:
    """The routes' operations (those with an operation id), then one per function."""
    doc = Document(
        "modrun node",
        "A modrun runtime node: WebAssembly functions over REST and GraphQL, models, history.",
    )
    for route in routes:
        if route.operation_id is None:
            continue
        for method in route.methods:
            doc.add(
                method,
                route.path,
                route.operation_id,
                route.summary,
                route.answers,
                tag=route.tag,
                body=route.body,
                query=route.query,
            )
    add_functions(doc, catalog)
    return doc.as_dict()


def _document(request: Request) -> bytes:
    """The document for the catalog now served, built once per catalog."""
    catalog = request.app.state.parts.functions.catalog
    if catalog.openapi is None:
        catalog.openapi = json.dumps(node_document(request.app.state.routes, catalog)).encode()
    return catalog.openapi


async def openapi_endpoint(request: Request) -> Response:
    return Response(_document(request), media_type="application/json")


async def reference_endpoint(request: Request) -> Response:
    return HTMLResponse(render_reference(json.loads(_document(request))))
