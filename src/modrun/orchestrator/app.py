"""The orchestrator's ASGI entry point: gateway calls (``POST /functions/*``, ``POST /graphql``)
on a fast path to a live replica, everything else through the router."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modrun.api.openai_compat import CHAT_PATH, openai_error
from modrun.control.tokens import CALL_ASSERTION_TTL, CALL_HEADER, TokenService
from modrun.expiring import ExpiringCache
from modrun.fleet.graphql import BadGraphQL, root_fields
from modrun.http.asgi import FUNCTIONS_PREFIX as PREFIX
from modrun.http.asgi import (
    JSON,
    BodyTooLarge,
    function_key,
    media_type,
    read_body,
    refusal,
    respond,
    send_refusal,
    sse_event,
    stream_format,
    until_disconnected,
)
from modrun.http.upstream import Lost, Streamed, TooLarge
from modrun.orchestrator.forward import SAFE_METHODS
from modrun.orchestrator.gateway import NodeDied, NoReplica, Replica, Signer, forwarded_headers
from modrun.orchestrator.routes.table import build_router

if TYPE_CHECKING:
    from modrun.orchestrator.head import Head


MAX_GATEWAY_BODY = 64 * 1024 * 1024


CALL_HEADER_BYTES = CALL_HEADER.encode()
REUSE_FOR = CALL_ASSERTION_TTL - 10  # seconds an assertion is handed out again (10 s of life left)


class Vouchers:
    """Call assertions, signed once per caller, node, artifacts and function and
    handed out again while they have most of their life left: the signature is
    paid every ~20 s per hot caller, not per call."""

    def __init__(self, tokens: TokenService, limit: int = 10_000) -> None:
        self.tokens = tokens
        self._made: ExpiringCache[tuple, bytes] = ExpiringCache(limit)

    def assertion(self, runtime: str, actor: str, artifacts: Iterable[str], function: str) -> bytes:
        key = (runtime, actor, frozenset(artifacts), function)
        made = self._made.get(key)
        if made is None:
            made = self.tokens.assert_call(runtime, actor, key[2], function).encode()
            self._made.put(key, made, time.monotonic() + REUSE_FOR)
        return made


class OrchestratorApp:
    """ASGI entry point: gateway calls (``POST /functions/*``, ``POST /graphql``)
    on a fast path, everything else through the router."""

    def __init__(self, orchestrator: Head, lifespan: Any = None) -> None:
        self.orchestrator = orchestrator
        self.vouchers = Vouchers(orchestrator.control_plane.tokens)
        self.router = build_router(orchestrator, lifespan)
        self.forward = orchestrator.forward

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path.startswith(PREFIX):
                await self.timed(scope, receive, send, function_key(path))
                return
            if path == "/graphql":
                await self.timed(scope, receive, send, None)
                return
            if path == CHAT_PATH:
                await self.timed(scope, receive, send, CHAT_PATH)
                return
        if (
            self.forward is not None
            and scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not self.orchestrator.control.leading
        ):
            await self.forward(scope, receive, send, self.router)
            return
        await self.router(scope, receive, send)

    async def timed(self, scope: dict, receive: Any, send: Any, key: str | None) -> None:
        """A gateway call, counted in the fleet's call statistics (status, duration)."""
        started = time.perf_counter()
        status = 0
        ran: set[str] = set()  # the artifacts the call is for, once known

        async def tracked(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if key == CHAT_PATH:
                await self.chat(scope, receive, tracked, ran)
            else:
                await self.gateway(scope, receive, tracked, key, ran)
        finally:
            self.orchestrator.calls.record(status, time.perf_counter() - started, ran)

    async def gateway(self, scope: dict, receive: Any, send: Any, key: str | None, ran: set[str]) -> None:
        """A function call (``key``) or a GraphQL request (``None``) sent on to a node."""
        metrics = self.orchestrator.metrics
        gateway = self.orchestrator.gateway
        try:
            body = await read_body(receive, MAX_GATEWAY_BODY)
        except BodyTooLarge:
            await respond(send, 413, refusal("request body too large"), JSON)
            return
        headers = forwarded_headers(scope["headers"])  # never the caller's credentials
        guard = self.orchestrator.guard
        try:
            fields = root_fields(body, media_type(scope["headers"])) if key is None else frozenset()
            keys = fields if key is None else [key]
            ran.update(gateway.artifacts(keys))
            sign = None
            if guard is not None:  # a secured fleet: decided here, vouched for to the node
                sign = await self.allowed(scope, send, keys, ran, key or "graphql")
                if sign is None:
                    return
            streaming = stream_format(scope["headers"]) is not None
            if key is None:
                replica, got = await gateway.graphql(fields, body, headers, sign, streaming)
            else:
                replica, got = await gateway.forward(key, body, headers, sign, streaming)
            if isinstance(got, Streamed):
                metrics.gateway_calls.labels(str(got.status)).inc()
                await relay(got, replica, receive, send, key or "graphql")
                return
            answer = got
        except BadGraphQL as exc:
            await respond(send, 400, refusal(str(exc), graphql=True), JSON)
            return
        except (Lost, NodeDied) as exc:
            # the node went away during the call (or answered too much): it may have run, so it is not retried
            metrics.gateway_calls.labels("502").inc()
            lost = "node lost during the call"
            what = "the node's answer was refused" if isinstance(exc, TooLarge) else lost
            message = {"error": f"{what}: {exc}", "function": key or "graphql"}
            await respond(send, 502, json.dumps(message).encode(), JSON)
            return
        except NoReplica as exc:
            metrics.gateway_calls.labels("unavailable").inc()
            if key is None:
                await respond(send, 503, refusal(f"no live node serves all of: {exc}", graphql=True), JSON)
            else:
                message = {"error": f"no live node serves function {key!r}", "function": key}
                status = 503 if gateway.known(key) else 404
                await respond(send, status, json.dumps(message).encode(), JSON)
            return
        metrics.gateway_calls.labels(str(answer.status)).inc()
        extra = [(b"x-modrun-node", replica.name.encode()), (b"x-content-type-options", b"nosniff")]
        content_type = answer.headers.get(b"content-type", b"application/octet-stream")
        await respond(send, answer.status, answer.body, content_type, extra)

    async def chat(self, scope: dict, receive: Any, send: Any, ran: set[str]) -> None:
        """``POST /v1/chat/completions``: to a node serving the chat-handler
        function the request's ``model`` names, with the same keys and checks
        as calling it (``/functions/{model}``); streamed with ``stream``."""
        gateway = self.orchestrator.gateway
        try:
            body = await read_body(receive, MAX_GATEWAY_BODY)
            request = json.loads(body)
        except BodyTooLarge:
            await respond(send, 413, openai_error("the request body is too large"), JSON)
            return
        except ValueError:
            await respond(send, 400, openai_error("the body is not JSON"), JSON)
            return
        model = request.get("model") if isinstance(request, dict) else None
        if not isinstance(model, str) or model not in gateway.chat_models():
            message = f"The model `{model}` does not exist or you do not have access to it."
            await respond(send, 404, openai_error(message, code="model_not_found"), JSON)
            return
        ran.update(gateway.artifacts([model]))
        sign = None
        if self.orchestrator.guard is not None:
            sign = await self.allowed(scope, send, [model], ran, model)
            if sign is None:
                return
        stream = bool(request.get("stream"))
        headers = forwarded_headers(scope["headers"])
        try:
            replica, answer = await gateway.chat(model, body, headers, sign, stream)
        except (Lost, NodeDied) as exc:
            await respond(send, 502, openai_error(f"node lost during the call: {exc}", "server_error"), JSON)
            return
        except NoReplica:
            await respond(send, 503, openai_error(f"no live node serves {model!r}", "server_error"), JSON)
            return
        if isinstance(answer, Streamed):
            await relay(answer, replica, receive, send, model)
            return
        content_type = answer.headers.get(b"content-type", b"application/json")
        await respond(
            send, answer.status, answer.body, content_type, [(b"x-modrun-node", replica.name.encode())]
        )

    async def allowed(
        self, scope: dict, send: Any, keys: Iterable[str], artifacts: set[str], function: str
    ) -> Signer | None:
        """What signs the call for the replica it goes to (the node gets that
        assertion, never the caller's credential) when the caller may invoke
        ``artifacts`` (what ``keys`` run); else answer 401/403 and return None."""
        orch = self.orchestrator
        assert orch.guard is not None
        decision = await orch.guard.check(scope["headers"], artifacts)
        graphql = function == "graphql"
        if decision.allowed:
            actor = decision.actor or "anonymous"
            vouchers = self.vouchers

            def sign(replica: Replica) -> list[tuple[bytes, bytes]]:
                return [(CALL_HEADER_BYTES, vouchers.assertion(replica.runtime, actor, artifacts, function))]

            return sign
        orch.metrics.gateway_calls.labels(str(decision.status)).inc()
        client = scope.get("client")
        await asyncio.to_thread(
            orch.control_plane.audit.record,
            decision.actor or "anonymous",
            "function.invoke",
            ",".join(sorted(keys)) or "graphql",
            decision.status,
            client[0] if client else "?",
        )
        await send_refusal(send, decision.status, decision.reason, graphql)
        return None


async def relay(streamed: Streamed, replica: Replica, receive: Any, send: Any, key: str) -> None:
    """A node's streamed answer passed on piece by piece as it arrives. A caller
    that goes away closes the connection to the node (which stops the call); a
    node lost mid-way ends an event stream with an ``error`` event."""
    headers = [(b"x-modrun-node", replica.name.encode()), (b"x-content-type-options", b"nosniff")]
    headers += [(k, v) for k, v in streamed.headers.items() if k in (b"content-type", b"cache-control")]
    task = asyncio.current_task()
    assert task is not None

    watcher = asyncio.ensure_future(until_disconnected(receive))
    watcher.add_done_callback(lambda done: None if done.cancelled() else task.cancel())
    await send({"type": "http.response.start", "status": streamed.status, "headers": headers})
    tail = b""
    try:
        async for piece in streamed.pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    except Lost as exc:
        if streamed.headers.get(b"content-type", b"").startswith(b"text/event-stream"):
            doc = {"error": f"node lost during the call: {exc}", "function": key, "kind": "NodeLost"}
            tail = sse_event("error", doc)
    except asyncio.CancelledError:
        if not watcher.done():
            raise
        task.uncancel()
        return  # the caller went away: nothing more to send
    finally:
        watcher.cancel()
        streamed.close()
    await send({"type": "http.response.body", "body": tail, "more_body": False})
