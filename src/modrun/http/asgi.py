"""Raw ASGI plumbing shared by the node, the agent's guard and the gateway.

The hot paths (function calls, the gateway) are plain ASGI handlers, not
Starlette endpoints: these helpers read a bounded body and send a whole answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

FUNCTIONS_PREFIX = "/functions/"
"""``POST /functions/{name}``: the path of a function call, on a node and on the gateway."""

JSON = b"application/json"
GRAPHQL_TYPE = "application/graphql"  # a POST body that is the query itself


def function_key(path: str) -> str:
    """The function a ``/functions/...`` path names, read the one way the node's
    endpoint, its guard and the gateway all read it: the prefix off, empty
    segments dropped (``/functions//greet/`` names ``greet``,
    ``/functions/hello//greet`` names ``hello/greet``)."""
    return "/".join(part for part in path[len(FUNCTIONS_PREFIX) :].split("/") if part)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a request header (ASGI gives names lower-cased)."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


def stream_format(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The stream format a request's Accept asks for (SSE first), if any: such a
    function call is answered as it runs, on the node and through the gateway."""
    accept = header(headers, b"accept")
    if not accept or ("/x-ndjson" not in accept and "/event-stream" not in accept):
        return None
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if SSE in kinds:
        return SSE
    return NDJSON if NDJSON in kinds else None


def sse_event(name: str, doc: Any) -> bytes:
    """One server-sent event named ``name`` whose data is ``doc`` as JSON."""
    return f"event: {name}\ndata: {json.dumps(doc)}\n\n".encode()


def client_address(scope: dict) -> str:
    """The caller's address (admission control shares places out by it)."""
    client = scope.get("client")
    return client[0] if client else "?"


async def until_disconnected(receive: Any) -> None:
    """Return when the client goes away: a streaming answer, its request read,
    watches the connection with this to stop the work it does for it."""
    while (await receive())["type"] != "http.disconnect":
        pass


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The media type of an ASGI request (``application/json``), lower-cased, no parameters."""
    return (header(headers, b"content-type") or "").split(";")[0].strip().lower()


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole request body, or BodyTooLarge as soon as it passes ``limit`` bytes."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise BodyTooLarge()
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def respond(
    send: Any, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def graphql_errors(*messages: str, kind: str | None = None) -> dict[str, Any]:
    """A GraphQL response that carries only errors (``{"errors": [{"message"}]}``)."""
    errors: list[dict[str, Any]] = [{"message": m} for m in messages]
    if kind is not None:
        for error in errors:
            error["extensions"] = {"kind": kind}
    return {"errors": errors}


def refusal(message: str, graphql: bool = False) -> bytes:
    """The body of a refused request: ``{"error": ...}``, or the GraphQL shape
    for a GraphQL request, so every client reads a refusal where it reads errors."""
    return json.dumps(graphql_errors(message) if graphql else {"error": message}).encode()


async def send_refusal(send: Any, status: int, message: str, graphql: bool = False) -> None:
    """Refuse a request: a 401 names the Bearer scheme, a 503 asks to retry in a second."""
    extra = [(b"www-authenticate", b'Bearer realm="modrun"')] if status == 401 else []
    if status == 503:
        extra.append((b"retry-after", b"1"))
    await respond(send, status, refusal(message, graphql), JSON, extra)
