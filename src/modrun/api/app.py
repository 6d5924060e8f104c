"""The node's ASGI application.

``POST /functions/...`` goes straight to the raw ASGI function endpoint; every
other request goes through a Starlette router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Route

from modrun.api.admission import Shed
from modrun.api.graphql_subscriptions import GraphQLWebSocket
from modrun.api.openai_compat import CHAT_PATH, ChatCompletions
from modrun.api.rest import PREFIX, FunctionEndpoint
from modrun.api.routes import node_routes
from modrun.http.asgi import client_address, respond, stream_format

if TYPE_CHECKING:
    from modrun.api.parts import NodeParts


def build_router(parts: NodeParts, lifespan: Any = None) -> Starlette:
    table = node_routes()
    app = Starlette(
        routes=[Route(r.path, r.endpoint, methods=list(r.methods)) for r in table],
        lifespan=lifespan,
    )
    app.state.parts = parts
    app.state.routes = table  # what /openapi.json documents
    return app


class NodeApp:
    """ASGI entry point: the fast function path, else the router."""

    def __init__(self, parts: NodeParts, lifespan: Any = None) -> None:
        self.router = build_router(parts, lifespan)
        self.call_function = FunctionEndpoint(parts.functions)
        self.chat = ChatCompletions(parts)
        self.graphql_ws = GraphQLWebSocket(parts)
        self.admission = parts.admission
        self.stream_admission = parts.stream_admission

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH and scope["method"] == "POST":
            await self.chat(scope, receive, send)  # admitted once its body says if it streams
            return
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            await self.graphql_ws(scope, receive, send)  # each subscription admitted as a stream
            return
        if scope["type"] != "http" or not _is_call(scope):
            await self.router(scope, receive, send)
            return
        is_function = scope["path"].startswith(PREFIX)
        streaming = (is_function or scope["path"] == "/graphql") and stream_format(
            scope["headers"]
        ) is not None
        admission = self.stream_admission if streaming else self.admission
        try:
            await admission.enter(client_address(scope))
        except Shed as exc:
            what = "its stream limit" if admission is self.stream_admission else "capacity"
            message = f'{{"error": "the node is at {what} ({exc.reason}); retry shortly"}}'.encode()
            await respond(send, 503, message, b"application/json", [(b"retry-after", b"1")])
            return
        try:
            if is_function:
                await self.call_function(scope, receive, send)
            else:
                await self.router(scope, receive, send)
        finally:
            admission.leave()


def _is_call(scope: dict) -> bool:
    """Requests that run functions: the ones admission control bounds."""
    path, method = scope["path"], scope["method"]
    if method == "POST":
        return path.startswith(PREFIX) or path in ("/graphql", "/graphql-worker")
    return method == "GET" and path == "/graphql" and b"query=" in scope.get("query_string", b"")
