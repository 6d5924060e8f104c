"""GraphQL subscriptions: a streaming function's chunks as events, over
server-sent events (the graphql-sse protocol, distinct connections mode) and
over WebSocket (graphql-transport-ws, the protocol of the ``graphql-ws``
library that GraphiQL, Apollo and gql speak).

Functions whose schema says ``"streams": true`` get a ``Subscription`` field
(``modrun.api.graphql``): each chunk the function emits is one event,
``{"data": {"<field>": "<chunk>"}}``. A subscriber that leaves (closes the
connection, sends ``complete``) stops the function at its next host call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, execute, subscribe
from graphql.language import DocumentNode, OperationType
from graphql.utilities import get_operation_ast

from modrun.api.admission import Shed
from modrun.api.graphql import execution_context, schema_for
from modrun.api.graphql_documents import Refused, check_document
from modrun.http.asgi import client_address, sse_event

if TYPE_CHECKING:
    from modrun.api.parts import NodeParts

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0


def _formatted(result: ExecutionResult) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": result.data}
    if result.errors:
        doc["errors"] = [e.formatted for e in result.errors]
    return doc


async def events(
    parts: NodeParts, document: DocumentNode, variables: dict | None, operation: str | None
) -> AsyncGenerator[dict[str, Any], None]:
    """Each event of a subscription (or the one answer of a query or mutation),
    formatted, run on the node's catalog as it is now; closing the iterator
    closes the subscription."""
    functions = parts.functions
    catalog = functions.catalog
    schema = schema_for(catalog)
    context = execution_context(functions.invoker, catalog, functions.timeout)
    found = get_operation_ast(document, operation)
    if found is None or found.operation != OperationType.SUBSCRIPTION:
        result: Any = execute(
            schema, document, variable_values=variables, operation_name=operation, context_value=context
        )
        if isawaitable(result):
            result = await result
        yield _formatted(result)
        return
    stream: Any = subscribe(
        schema, document, variable_values=variables, operation_name=operation, context_value=context
    )
    if isawaitable(stream):
        stream = await stream
    if isinstance(stream, ExecutionResult):  # failed before it started
        yield _formatted(stream)
        return
    try:
        async for event in stream:
            yield _formatted(event)
    finally:
        await stream.aclose()


def prepare(parts: NodeParts, payload: Any) -> tuple[DocumentNode, dict | None, str | None] | list[dict]:
    """(document, variables, operation name) of a ``subscribe`` message, or the
    errors that refuse it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return [{"message": 'missing "query"'}]
    variables = payload.get("variables") or None
    if variables is not None and not isinstance(variables, dict):
        return [{"message": '"variables" must be an object'}]
    operation = payload.get("operationName") or None
    schema = schema_for(parts.functions.catalog)
    try:
        document, _found = check_document(schema, payload["query"], operation, parts.functions.graphql_limits)
    except Refused as exc:
        return exc.errors
    return document, variables, operation


class GraphQLWebSocket:
    """The raw ASGI endpoint for WebSocket connections to ``/graphql``."""

    def __init__(self, parts: NodeParts) -> None:
        self.parts = parts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if PROTOCOL not in (scope.get("subprotocols") or ()):
            await send({"type": "websocket.close", "code": 4406, "reason": f"use the {PROTOCOL} subprotocol"})
            return
        await send({"type": "websocket.accept", "subprotocol": PROTOCOL})
        await Connection(self.parts, send).serve(receive, scope)


class Connection:
    """One graphql-transport-ws connection: its subscriptions, by id."""

    def __init__(self, parts: NodeParts, send: Any) -> None:
        self.parts = parts
        self._send = send
        self._lock = asyncio.Lock()
        self.acked = False
        self.running: dict[str, asyncio.Task] = {}

    async def send(self, message: dict) -> None:
        async with self._lock:
            await self._send({"type": "websocket.send", "text": json.dumps(message)})

    async def close(self, code: int, reason: str) -> None:
        async with self._lock:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def serve(self, receive: Any, scope: dict) -> None:
        try:
            try:
                first = await asyncio.wait_for(receive(), INIT_TIMEOUT)
            except TimeoutError:
                await self.close(4408, "Connection initialisation timeout")
                return
            message: dict | None = first
            while message is not None and message["type"] == "websocket.receive":
                if not await self.handle(message.get("text") or "", scope):
                    return
                message = await receive()
        finally:
            for task in self.running.values():
                task.cancel()

    async def handle(self, text: str, scope: dict) -> bool:
        """Act on one message; False once the connection is closed."""
        try:
            message = json.loads(text)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            await self.close(4400, "Invalid message")
            return False
        if kind == "connection_init":
            if self.acked:
                await self.close(4429, "Too many initialisation requests")
                return False
            self.acked = True
            await self.send({"type": "connection_ack"})
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            ident = message.get("id")
            if not self.acked:
                await self.close(4401, "Unauthorized")
                return False
            if not isinstance(ident, str) or not ident:
                await self.close(4400, "Invalid message")
                return False
            if ident in self.running:
                await self.close(4409, f"Subscriber for {ident} already exists")
                return False
            task = asyncio.ensure_future(self.run(ident, message.get("payload"), scope))
            self.running[ident] = task
            task.add_done_callback(lambda _t: self.forget(ident, _t))
        elif kind == "complete":
            running = self.running.pop(str(message.get("id")), None)
            if running is not None:
                running.cancel()  # the client is done with it: stop the function
        else:
            await self.close(4400, f"Unknown message type {kind!r}")
            return False
        return True

    def forget(self, ident: str, task: asyncio.Task) -> None:
        if self.running.get(ident) is task:
            del self.running[ident]

    async def run(self, ident: str, payload: Any, scope: dict) -> None:
        prepared = prepare(self.parts, payload)
        if isinstance(prepared, list):
            await self.send({"id": ident, "type": "error", "payload": prepared})
            return
        admission = self.parts.stream_admission
        try:
            await admission.enter(client_address(scope))
        except Shed as exc:
            refused = [{"message": f"the node is at its stream limit ({exc.reason}); retry shortly"}]
            await self.send({"id": ident, "type": "error", "payload": refused})
            return
        try:
            document, variables, operation = prepared
            stream = events(self.parts, document, variables, operation)
            try:
                async for event in stream:
                    await self.send({"id": ident, "type": "next", "payload": event})
            finally:
                await stream.aclose()
            await self.send({"id": ident, "type": "complete"})
        finally:
            admission.leave()


async def sse_events(
    parts: NodeParts, document: DocumentNode, variables: dict | None, operation: str | None
) -> AsyncIterator[bytes]:
    """graphql-sse's distinct connections mode: ``next`` events, then ``complete``."""
    stream = events(parts, document, variables, operation)
    try:
        async for event in stream:
            yield sse_event("next", event)
    finally:
        await stream.aclose()
    yield b"event: complete\ndata: \n\n"
