"""The node's ASGI application.

``POST /functions/...`` goes straight to the raw ASGI function endpoint; every
other request goes through a Starlette router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from modrun.api.admission import Shed
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
from modrun.api.rest import PREFIX, FunctionEndpoint, list_functions
from modrun.console import asset, page, wants_html
from modrun.http.asgi import respond
from modrun.version import __version__

if TYPE_CHECKING:
    from modrun.api.parts import NodeParts


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


async def _console(_request: Request) -> Response:
    return page("node")


async def _method_not_allowed(request: Request) -> JSONResponse:
    return JSONResponse({"error": "use POST to call a function"}, status_code=405, headers={"allow": "POST"})


def build_router(parts: NodeParts, lifespan: Any = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", _index),
            Route("/functions", _functions, methods=["GET"]),
            Route("/functions/{name:path}", _method_not_allowed, methods=["GET", "PUT", "DELETE"]),
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/graphql-worker", lambda_endpoint, methods=["POST"]),
            Route("/health", health_endpoint, methods=["GET"]),
            Route("/inferences", inferences_endpoint, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/models", create_model, methods=["POST"]),
            Route("/models/{name}", ping_model, methods=["GET"]),
            Route("/models/{name}", modify_model, methods=["PUT", "PATCH"]),
            Route("/models/{name}", delete_model, methods=["DELETE"]),
            Route("/models/{name}/invoke", invoke_model, methods=["POST"]),
            Route("/models/{name}/ping", ping_model, methods=["POST", "GET"]),
            Route("/models/{name}/access", model_access, methods=["GET"]),
            Route("/models/{name}/weights", list_weights, methods=["GET"]),
            Route("/models/{name}/weights", add_weights, methods=["POST"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_endpoint, methods=["GET"]),
            Route("/docs", reference_endpoint, methods=["GET"]),
            Route("/console", _console, methods=["GET"]),
            Route("/console/assets/{name}", asset, methods=["GET"]),
            Route("/console/{path:path}", _console, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.parts = parts
    return app


class NodeApp:
    """ASGI entry point: the fast function path, else the router."""

    def __init__(self, parts: NodeParts, lifespan: Any = None) -> None:
        self.router = build_router(parts, lifespan)
        self.call_function = FunctionEndpoint(parts.functions)
        self.admission = parts.admission

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _is_call(scope):
            await self.router(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "?"
        try:
            await self.admission.enter(client)
        except Shed as exc:
            message = f'{{"error": "the node is at capacity ({exc.reason}); retry shortly"}}'.encode()
            await respond(send, 503, message, b"application/json", [(b"retry-after", b"1")])
            return
        try:
            if scope["path"].startswith(PREFIX):
                await self.call_function(scope, receive, send)
            else:
                await self.router(scope, receive, send)
        finally:
            self.admission.leave()


def _is_call(scope: dict) -> bool:
    """Requests that run functions: the ones admission control bounds."""
    path, method = scope["path"], scope["method"]
    if method == "POST":
        return path.startswith(PREFIX) or path in ("/graphql", "/graphql-worker")
    return method == "GET" and path == "/graphql" and b"query=" in scope.get("query_string", b"")
